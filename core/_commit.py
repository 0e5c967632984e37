"""Records and lineage: what a committed dataset's catalog record says about it.

The execution loop (``core/_execution.py``) calls :func:`ingested_record` and
:func:`computed_record` once a dataset is complete, and :func:`compare_with_record` when a
committed dataset was computed again on purpose (``reuse=False``): a committed dataset
is never rewritten, so the recompute is staged apart and only compared with its record.

The output of a composite operator is recorded under the composite the user called
(``producer.operator``, ``version`` and ``params`` are the composite's, and
``producer.inputs`` its inputs as the user gave them), with its sub-steps in
``producer.steps`` (each with its operator, version, parameters, inputs and dataset id;
see ``core/_patterns/composite.py``). The record's ``inputs`` stay the datasets the
output was computed from.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from minjiang.core.errors import OutputChangedError

if TYPE_CHECKING:
    from minjiang.core._events import TaskResult
    from minjiang.core._plan import IngestPlan
    from minjiang.core._planner import StepPlan
    from minjiang.storage import DatasetInfo, Record, Staging

__all__ = [
    "OutputChangedError",
    "compare_with_record",
    "computed_record",
    "ingested_record",
    "now",
    "software",
]


def code_version() -> str:
    import minjiang

    return minjiang.__version__


def software() -> dict[str, str]:
    """Versions of Python, minjiang and the packages a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "minjiang": code_version()}
    for pkg in (
        "numpy",
        "numba",
        "numba-cuda",
        "zarr",
        "ray",
        "xarray",
        "pyarrow",
        "cupy",
        "cupy-cuda12x",
        "cupy-cuda13x",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def host() -> dict[str, Any]:
    import psutil

    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory": int(psutil.virtual_memory().total),
        "python": sys.executable and platform.python_version(),
    }


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def gpu_lineage(results: Sequence[TaskResult], gpu_read: str) -> dict[str, Any]:
    """The devices a GPU step's tasks ran on (model, CuPy and CUDA versions) and how
    they read their inputs, for the record's ``producer``."""
    devices = {tuple(sorted(r.device.items())) for r in results if r.device}
    return {"devices": [dict(d) for d in sorted(devices)], "gpu_read": gpu_read}


def ingested_record(step: IngestPlan, summary: Any, started: str, seconds: float) -> Record:
    """The record of an ingested dataset (``summary``: what ``write_xarray`` wrote)."""
    from minjiang.storage import Record, dataset_prefix

    return Record(
        id=step.dataset_id,
        kind="ingested",
        names=[step.name] if step.name else [],
        domain=step.reader.domain,
        prefix=dataset_prefix(step.dataset_id),
        schema=summary.schema,
        producer={
            "reader": step.reader.name,
            "version": step.reader.version,
            "params": step.params.model_dump(mode="json") if step.params is not None else {},
            "sources": step.reader.describe_sources(step.files),
        },
        inputs={},
        software=software(),
        host=host(),
        timings={
            "started": started,
            "seconds": round(seconds, 3),
            "bytes_written": summary.bytes_written,
            "tasks": 1,
        },
        checksums=summary.checksums,
        tables=summary.tables,
        metadata={},
        created=now(),
    )


def _summaries(
    staging: Staging, info: DatasetInfo, results: Sequence[TaskResult]
) -> dict[str, dict[str, Any]]:
    """Each array's data summary, folded from its tasks' block summaries, and each
    coordinate's, from its values (decoded: times as dates)."""
    from minjiang.storage import (
        finish_summary,
        merge_summaries,
        read_coord_values,
        values_summary,
    )

    out: dict[str, dict[str, Any]] = {}
    for name, arr in info.arrays.items():
        merged = merge_summaries(r.summaries[name] for r in results if name in r.summaries)
        # every cell accounted for once (a task resumed from an older manifest may
        # carry no summary: then none is recorded rather than a partial one)
        if merged["cells"] == math.prod(arr.shape):
            out[name] = finish_summary(merged)
    for name, coord in info.coords.items():
        out[name] = values_summary(read_coord_values(staging.store, coord))
    return out


def staged_digests(
    staging: Staging,
    results: Sequence[TaskResult],
    coord_sums: Mapping[str, Mapping[str, str]],
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """The digests of the final arrays (coordinates included) and of the output tables'
    parts, by array and table name, from what the step's tasks reported."""
    checksums: dict[str, dict[str, str]] = {k: dict(v) for k, v in coord_sums.items()}
    tables: dict[str, dict[str, str]] = {}
    for res in results:
        for name, sums in staging.final_checksums(res.checksums).items():
            checksums.setdefault(name, {}).update(sums)
        for tname, parts in staging.final_tables(res.tables).items():
            tables.setdefault(tname, {}).update(parts)
    return checksums, tables


def computed_record(
    step: StepPlan,
    staging: Staging,
    results: Sequence[TaskResult],
    coord_sums: Mapping[str, Mapping[str, str]],
    *,
    started: str,
    seconds: float,
    executor: str,
    gpu_read: str,
) -> Record:
    """The record of a computed dataset whose arrays are consolidated in ``staging``."""
    from minjiang.storage import (
        Record,
        dataset_prefix,
        dataset_schema,
        open_dataset_info,
        with_summaries,
    )

    checksums, tables = staged_digests(staging, results, coord_sums)
    info = open_dataset_info(staging.store, step.dataset_id)
    schema = with_summaries(dataset_schema(info), _summaries(staging, info, results))
    from minjiang.core._patterns.composite import composite_lineage

    op = step.operator
    fresh = [r for r in results if not r.skipped]
    # a composite's output is recorded under the composite, its sub-steps beneath
    composite = composite_lineage(step)
    called = composite.producer() if composite is not None else {}
    return Record(
        id=step.dataset_id,
        kind="computed",
        names=[step.name] if step.name else [],
        domain=op.domain,
        hidden=step.hidden,
        prefix=dataset_prefix(step.dataset_id),
        schema=schema,
        producer={
            "operator": op.name,
            "version": op.version,
            "params": step.params.model_dump(mode="json"),
            # the kernels' backend; rechunk and combine tasks only move bytes
            "pattern": op.pattern.pattern,
            "backend": step.backend,
            **(gpu_lineage(results, gpu_read) if step.backend == "gpu" else {}),
            "kernels": sorted({k for s in step.stages for t in s.tasks for k in t.kernels}),
            "executor": executor,
            "notes": list(step.notes),
            **called,
        },
        inputs={k: b.dataset_id for k, b in step.inputs.items()},
        software=software(),
        host=host(),
        timings={
            "started": started,
            "seconds": round(seconds, 3),
            "tasks": len(results),
            "tasks_skipped": len(results) - len(fresh),
            "bytes_read": sum(r.bytes_read for r in fresh),
            "bytes_written": sum(r.bytes_written for r in fresh),
            "read_s": round(sum(r.read_s for r in fresh), 3),
            "kernel_s": round(sum(r.kernel_s for r in fresh), 3),
            "write_s": round(sum(r.write_s for r in fresh), 3),
            "task_memory": step.task_memory,
            "decode_amplification": round(step.block.decode_amplification, 3)
            if step.block
            else None,
            **_measured_io(fresh),
        },
        checksums=checksums,
        tables=tables,
        metadata={},
        created=now(),
    )


def _measured_io(fresh: Sequence[TaskResult]) -> dict[str, Any]:
    """What the tasks measured of their I/O: bytes decoded, the decode amplification
    that gives (beside the planner's projection), CPU seconds per phase."""
    read = sum(r.bytes_read for r in fresh)
    decoded = sum(r.bytes_decoded or r.bytes_read for r in fresh)
    return {
        "bytes_decoded": decoded,
        "decode_amplification_measured": round(decoded / read, 3) if read else None,
        "cpu_s": {
            k: round(sum(r.cpu.get(k, 0.0) for r in fresh), 3)
            for k in ("read", "kernel", "write", "summary")
        },
    }


def compare_with_record(
    step: StepPlan,
    staging: Staging,
    results: Sequence[TaskResult],
    coord_sums: Mapping[str, Mapping[str, str]],
    record: Record,
) -> None:
    """Compare a recompute of a committed dataset with its record.

    Raises
    ------
    OutputChangedError
        When any chunk or table part differs: the operator's output changed without a
        version bump. Nothing committed was touched (the recompute was staged apart).
    """
    checksums, tables = staged_digests(staging, results, coord_sums)
    diffs = staging.differences(checksums, tables, record.checksums, record.tables)
    if diffs:
        op = step.operator
        shown = ", ".join(diffs[:3]) + (f" and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise OutputChangedError(
            f"step {step.step!r}: {op.name} version {op.version} recomputed dataset "
            f"{step.dataset_id} with different output ({shown}): its output changed without "
            "a version bump. The committed dataset was left untouched; bump the operator's "
            "version (a new id) if the change is intended, or restore the kernel"
        )
