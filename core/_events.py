"""Run events: what the driver tells observers (progress bars, audit, benchmarks)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

__all__ = ["EventKind", "RunEvent", "TaskResult"]

EventKind = Literal[
    "run_started",
    "step_planned",
    "step_reused",
    "step_started",
    "task_finished",
    "task_skipped",
    "step_committed",
    "run_finished",
    "run_failed",
]


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """What a task returns to the driver: small metadata only, never array data.

    ``checksums`` maps array name -> chunk key -> digest of the stored chunk bytes;
    ``tables`` maps table name -> part key -> digest (digests name their algorithm,
    e.g. ``xxh3-128:``). Timings are seconds. ``device``
    describes the GPU a ``gpu`` task ran on (model, compute capability, CuPy and CUDA
    versions); it is empty on the CPU. ``summaries`` maps each final array the task
    wrote to the mergeable data-quality summary of its blocks
    (:func:`minjiang.storage.merge_summaries`). ``bytes_decoded`` is the decoded size of
    every chunk and table part the task read: more than ``bytes_read`` where a read ends
    inside a chunk (a halo), so ``bytes_decoded / bytes_read`` is the task's decode
    amplification. ``cpu`` holds the CPU seconds of the task's process (every thread:
    chunks are encoded and decoded on threads) in each phase: ``read`` (fetch, check,
    decode, pad), ``kernel``, ``write`` (crop, cast, encode, digest, store, table
    parts) and ``summary`` (the data-quality summary of the blocks written, a part of
    ``write_s``). A process runs one task at a time (a Ray worker; the local executor
    runs them in turn), so the process's clock is the task's.
    """

    key: str
    stage: str
    checksums: dict[str, dict[str, str]]
    tables: dict[str, dict[str, str]]
    bytes_read: int
    bytes_written: int
    read_s: float
    kernel_s: float
    write_s: float
    total_s: float
    backend: str
    host: str
    pid: int
    fingerprint: str = ""
    skipped: bool = False
    device: dict[str, str] = dataclasses.field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    bytes_decoded: int = 0
    cpu: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskResult:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


@dataclasses.dataclass(frozen=True)
class RunEvent:
    """One event of a run. Fields not relevant to ``kind`` are left empty."""

    kind: EventKind
    run: str
    step: str = ""
    operator: str = ""
    dataset_id: str = ""
    tasks_total: int = 0
    tasks_done: int = 0
    task: TaskResult | None = None
    message: str = ""
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
