"""A validated plan and its summary: what ``minjiang plan`` prints and ``run`` executes.

:class:`Plan` holds one entry per step (composites expanded into hidden steps):
an :class:`IngestPlan` or a :class:`~minjiang.core._planner.StepPlan`.
:meth:`Plan.summary_rows` is the table the CLI prints.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minjiang.core._planner import StepPlan
from minjiang.core._units import format_bytes

if TYPE_CHECKING:
    from minjiang.core._pipeline import Pipeline
    from minjiang.core._reader import Reader
    from minjiang.storage import DatasetInfo

__all__ = ["IngestPlan", "Plan"]


@dataclasses.dataclass(frozen=True)
class IngestPlan:
    step: str
    reader: Reader
    params: Any
    files: list[Path]
    dataset_id: str
    info: DatasetInfo
    chunks: dict[str, int]
    dataset: Any = dataclasses.field(repr=False)
    name: str | None = None
    reused: bool = False


@dataclasses.dataclass
class Plan:
    """A validated plan: one entry per step (composites expanded into hidden steps)."""

    pipeline: Pipeline
    steps: list[StepPlan | IngestPlan]
    outputs: dict[str, str]
    budget: int
    workers: int
    executor: str
    reuse: bool = True

    def summary_rows(self) -> list[dict[str, Any]]:
        rows = []
        for s in self.steps:
            if isinstance(s, IngestPlan):
                rows.append(
                    {
                        "step": s.step,
                        "what": f"ingest {s.reader.name}",
                        "dataset": s.dataset_id[:12],
                        "tasks": 0 if s.reused else 1,
                        "memory/task": "",
                        "decode amp.": "",
                        "backend": "cpu",
                        "status": "reuse" if s.reused else "run",
                    }
                )
                continue
            rows.append(
                {
                    "step": s.step + (" (hidden)" if s.hidden else ""),
                    "what": s.operator.name,
                    "dataset": s.dataset_id[:12],
                    "tasks": s.n_tasks,
                    "memory/task": format_bytes(s.task_memory),
                    "decode amp.": f"{s.block.decode_amplification:.2f}" if s.block else "",
                    "backend": s.backend,
                    "status": "reuse" if s.reused else "run",
                }
            )
        return rows
