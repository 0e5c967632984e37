"""Execution and resume: a :class:`Plan` runs step by step, stage by stage.

For each step: create the output group and write its coordinates, skip the tasks
whose manifests still verify (resume), run the rest on the executor, then build the
record (``core/_commit.py``) and publish it; staging is removed afterwards. A step
whose record exists and that is recomputed (or an ingest re-read) on purpose
(``reuse=False``) runs in a separate staging area and is compared with its record;
nothing committed is touched. A run that finds an id committed removes the staging a
driver killed after publishing left behind.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minjiang.core._commit import compare_with_record, computed_record, ingested_record, now
from minjiang.core._events import RunEvent, TaskResult
from minjiang.core._plan import IngestPlan, Plan
from minjiang.core._planner import Stage, StepPlan
from minjiang.core._runtime import PipelineResult, Result
from minjiang.core._units import format_bytes
from minjiang.core.errors import (
    ExecutionError,
    MemoryBudgetError,
    OutputChangedError,
    ReaderError,
)
from minjiang.storage import Staging

if TYPE_CHECKING:
    from minjiang.core._runtime import Runtime
    from minjiang.storage import DatasetInfo, Record

log = logging.getLogger("minjiang")

__all__ = ["Progress", "Run"]


class Run:
    """One execution of a :class:`Plan`: its steps in order, each step's stages in
    order, the tasks of a stage on the executor; events to the runtime's observers."""

    def __init__(self, rt: Runtime, plan: Plan) -> None:
        self.rt = rt
        self.plan = plan
        self.run_id = uuid.uuid4().hex[:12]
        self.results: dict[str, Result] = {}

    def emit(self, kind: str, **kw: Any) -> None:
        self.rt._emit(RunEvent(kind=kind, run=self.run_id, **kw))  # type: ignore[arg-type]

    def execute(self) -> PipelineResult:
        self.rt.last_run_events = []
        self.emit(
            "run_started",
            tasks_total=sum(
                0 if s.reused else (s.n_tasks if isinstance(s, StepPlan) else 1)
                for s in self.plan.steps
            ),
        )
        for step in self.plan.steps:
            self.emit(
                "step_planned",
                step=step.step,
                dataset_id=step.dataset_id,
                operator=step.operator.name
                if isinstance(step, StepPlan)
                else f"ingest {step.reader.name}",
                tasks_total=0
                if step.reused
                else (step.n_tasks if isinstance(step, StepPlan) else 1),
                data={
                    "status": "reuse" if step.reused else "run",
                    "backend": step.backend if isinstance(step, StepPlan) else "cpu",
                    "task_memory": step.task_memory if isinstance(step, StepPlan) else 0,
                    "hidden": bool(getattr(step, "hidden", False)),
                },
            )
        shown = self.rt.progress
        progress = Progress(self.plan, None if shown is True else shown) if shown else None
        try:
            for step in self.plan.steps:
                if step.reused:
                    if isinstance(step, StepPlan):  # staging a killed run left behind
                        self._staging(step).cleanup()
                        Staging(self.rt.store, step.dataset_id, recompute=True).cleanup()
                    record = self.rt.catalog.get(step.dataset_id)
                    if step.name:
                        self.rt.catalog.set_name(step.name, step.dataset_id)
                    self.results[step.step] = Result(step.dataset_id, record, self.rt, reused=True)
                    self.emit(
                        "step_reused",
                        step=step.step,
                        dataset_id=step.dataset_id,
                        operator=getattr(getattr(step, "operator", None), "name", ""),
                    )
                    continue
                if isinstance(step, IngestPlan):
                    self.results[step.step] = self._ingest(step)
                else:
                    self.results[step.step] = self._step(step, progress)
        except BaseException as err:
            self.emit("run_failed", message=f"{type(err).__name__}: {err}")
            raise
        finally:
            if progress is not None:
                progress.close()
        self.emit("run_finished")
        visible = {
            k: v for k, v in self.results.items() if k in {s.id for s in self.plan.pipeline.steps}
        }
        reports = self._report(visible)
        return PipelineResult(visible, reports, self.plan)

    def _report(self, results: dict[str, Result]) -> list[Path]:
        report = self.rt.registry.pipeline_report(self.plan.pipeline)
        if report is None or not results:
            return []
        last = results[self.plan.pipeline.steps[-1].id]
        name = (self.plan.pipeline.name or "pipeline").replace("/", "_")
        directory = self.rt.store.local_path(f"reports/{name}/{last.id}")
        if directory is None:
            return []
        directory.mkdir(parents=True, exist_ok=True)
        return report.write(results, directory)

    # -- ingest
    def _ingest(self, step: IngestPlan) -> Result:
        from minjiang.storage import write_xarray

        self.emit(
            "step_started",
            step=step.step,
            dataset_id=step.dataset_id,
            operator=step.reader.name,
            tasks_total=1,
        )
        if self.rt.catalog.exists(step.dataset_id):  # reuse=False on a committed id
            return self._reingest(step)
        t0 = time.perf_counter()
        started = now()
        summary = write_xarray(
            self.rt.store,
            step.dataset_id,
            step.dataset,
            chunks=step.chunks,
            tables=_reader_tables(step),
        )
        record = ingested_record(step, summary, started, time.perf_counter() - t0)
        return self._publish(record, step.name, step.step)

    def _reingest(self, step: IngestPlan) -> Result:
        """Ingest a committed id again, staged apart, and compare with its record.

        The committed group is never written: equal digests leave it as it is, a
        difference is an :class:`OutputChangedError` naming the reader.
        """
        from minjiang.storage import write_xarray

        record = self.rt.catalog.get(step.dataset_id)
        staging = Staging(self.rt.store, step.dataset_id, recompute=True)
        try:
            summary = write_xarray(
                self.rt.store,
                step.dataset_id,
                step.dataset,
                chunks=step.chunks,
                writer=staging.writer,
                tables=_reader_tables(step),
            )
            diffs = staging.differences(
                summary.checksums, summary.tables, record.checksums, record.tables
            )
        finally:
            staging.cleanup()
        if diffs:
            shown = ", ".join(diffs[:3]) + (f" and {len(diffs) - 3} more" if len(diffs) > 3 else "")
            raise OutputChangedError(
                f"step {step.step!r}: reader {step.reader.name} version {step.reader.version} "
                f"ingested dataset {step.dataset_id} again with different output ({shown}): its "
                "output changed without a version bump. The committed dataset was left "
                "untouched; bump the reader's version (a new id) if the change is intended, "
                "or restore the reader"
            )
        if step.name:
            self.rt.catalog.set_name(step.name, step.dataset_id)
        return Result(step.dataset_id, record, self.rt, reused=False)

    def _publish(self, record: Record, name: str | None, step: str) -> Result:
        # the plugin (and its package and version) that produced the dataset
        kind = "operator" if "operator" in record.producer else "reader"
        origin = self.rt.registry.provenance(kind, str(record.producer.get(kind, "")))
        if origin:
            software = dict(record.software)
            if "package" in origin:
                software[origin["package"]] = origin["version"]
            record = record.model_copy(
                update={"producer": {**record.producer, "plugin": origin}, "software": software}
            )
        extra: dict[str, Any] = {}
        for plugin, fields in self.rt.registry.emit("minjiang_catalog_metadata", record=record):
            if fields:
                extra[plugin] = dict(fields)
        if extra:
            record = record.model_copy(update={"metadata": {**record.metadata, **extra}})
        won = self.rt.catalog.publish(record)
        if not won:
            log.info("dataset %s was published concurrently by another run; reusing it", record.id)
        record = self.rt.catalog.get(record.id)  # the sealed record, as the store holds it
        if name:
            self.rt.catalog.set_name(name, record.id)
        self.emit("step_committed", step=step, dataset_id=record.id, data={"won": won})
        return Result(record.id, record, self.rt, reused=not won)

    # -- operator steps
    def _prepare(self, step: StepPlan) -> dict[str, dict[str, str]]:
        """Create the output group, its arrays (and scratch arrays), and write its coords."""
        import numpy as np
        from minjiang.storage import open_dataset_info, read_array

        staging = self._staging(step)
        writer, scratch = staging.writer, staging.scratch
        writer.create(attrs=step.attrs)
        if any(a.scratch for a in step.arrays.values()):
            scratch.create(attrs={})
        for a in step.arrays.values():
            (scratch if a.scratch else writer).create_array(
                a.name,
                shape=a.shape,
                dtype=a.dtype,
                chunks=a.chunks,
                dims=a.dims,
                attrs=dict(a.attrs),
                fill_value=a.fill_value,
            )
        sums: dict[str, dict[str, str]] = {}
        sources: dict[str, DatasetInfo] = {}
        for c in step.coords:
            if c.source is not None:
                # the source existed only as a plan when this step was planned: reopen it
                did = c.source.dataset_id
                if did not in sources:
                    sources[did] = open_dataset_info(self.rt.store, did)
                source = sources[did].coords[c.source.name]
                values, attrs = read_array(self.rt.store, source), dict(source.attrs)
            else:
                values, attrs = np.asarray(c.values), dict(c.attrs)
            sums[c.name] = writer.write_coord(c.name, values, dims=c.dims, attrs=attrs)
        return sums

    def _staging(self, step: StepPlan) -> Staging:
        from minjiang.storage import Staging

        return Staging(self.rt.store, step.dataset_id, recompute=step.recompute)

    def _done_tasks(self, step: StepPlan, stage: Stage) -> dict[str, TaskResult]:
        """Tasks of ``stage`` whose manifest exists and whose chunks still verify."""
        from minjiang.core._tasks import task_fingerprint

        staging = self._staging(step)
        done: dict[str, TaskResult] = {}
        fingerprints = {t.key: task_fingerprint(t) for t in stage.tasks}
        for doc in staging.manifests(stage.name):
            try:
                res = TaskResult.from_json(doc)
            except Exception:
                continue
            if fingerprints.get(res.key) == res.fingerprint and staging.verify(
                res.checksums, res.tables
            ):
                done[res.key] = dataclasses.replace(res, skipped=True)
        return done

    def _check_feasible(self, step: StepPlan) -> None:
        node = self.rt.executor.node_memory()
        if node and step.task_memory > node:
            raise MemoryBudgetError(
                f"step {step.step!r} ({step.operator.name}): a task needs {format_bytes(step.task_memory)} but the "
                f"largest node has {format_bytes(node)}; lower --memory-budget or re-chunk the input"
            )

    def _step(self, step: StepPlan, progress: Progress | None) -> Result:

        self._check_feasible(step)
        self.emit(
            "step_started",
            step=step.step,
            dataset_id=step.dataset_id,
            operator=step.operator.name,
            tasks_total=step.n_tasks,
        )
        t0 = time.perf_counter()
        started = now()
        coord_sums = self._prepare(step)
        results: list[TaskResult] = []
        for stage in step.stages:
            # reuse=False recomputes everything: manifests of earlier runs are not trusted
            done = self._done_tasks(step, stage) if self.plan.reuse else {}
            for res in done.values():
                results.append(res)
                self.emit(
                    "task_skipped",
                    step=step.step,
                    dataset_id=step.dataset_id,
                    task=res,
                    tasks_total=step.n_tasks,
                )
                if progress is not None:
                    progress.advance(res)
            todo = [t for t in stage.tasks if t.key not in done]

            def on_result(res: TaskResult) -> None:
                results.append(res)
                self.emit(
                    "task_finished",
                    step=step.step,
                    dataset_id=step.dataset_id,
                    task=res,
                    tasks_total=step.n_tasks,
                    tasks_done=len(results),
                )
                if progress is not None:
                    progress.advance(res)

            if todo:
                try:
                    self.rt.executor.run(todo, on_result)
                except Exception:
                    if self.rt.catalog.exists(step.dataset_id):  # another run finished it meanwhile
                        log.info(
                            "dataset %s was committed by another run while this one ran",
                            step.dataset_id,
                        )
                        break
                    raise
        if step.recompute:  # a committed dataset is never rewritten: compare, then drop
            record = self.rt.catalog.get(step.dataset_id)
            staging = self._staging(step)
            try:
                compare_with_record(step, staging, results, coord_sums, record)
            finally:
                staging.cleanup()
                # and the staging a driver killed after publishing left behind
                Staging(self.rt.store, step.dataset_id).cleanup()
            if step.name:
                self.rt.catalog.set_name(step.name, step.dataset_id)
            return Result(step.dataset_id, record, self.rt, reused=False)
        if self.rt.catalog.exists(step.dataset_id):  # committed meanwhile by another run
            self._cleanup(step)
            record = self.rt.catalog.get(step.dataset_id)
            if step.name:
                self.rt.catalog.set_name(step.name, step.dataset_id)
            return Result(step.dataset_id, record, self.rt, reused=True)
        return self._commit(step, results, coord_sums, started, time.perf_counter() - t0)

    def _cleanup(self, step: StepPlan) -> None:
        self._staging(step).cleanup()

    def _commit(
        self,
        step: StepPlan,
        results: list[TaskResult],
        coord_sums: dict[str, dict[str, str]],
        started: str,
        seconds: float,
    ) -> Result:
        staging = self._staging(step)
        staging.writer.consolidate()
        record = computed_record(
            step,
            staging,
            results,
            coord_sums,
            started=started,
            seconds=seconds,
            executor=self.rt.executor.name,
            gpu_read=self.rt.gpu_read,
        )
        result = self._publish(record, step.name, step.step)
        self._cleanup(step)
        return result


class Progress:
    """A rich progress bar: tasks done/total, MB/s, ETA (on ``console``, default rich's)."""

    def __init__(self, plan: Plan, console: Any = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        total = sum(s.n_tasks for s in plan.steps if isinstance(s, StepPlan) and not s.reused)
        self.bytes = 0
        self.t0 = time.perf_counter()
        self.bar = Progress(
            TextColumn("[bold]tasks"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            transient=False,
            console=console,
        )
        self.task = self.bar.add_task("run", total=max(total, 1), rate="")
        self.bar.start()

    def advance(self, res: TaskResult) -> None:
        self.bytes += 0 if res.skipped else res.bytes_read + res.bytes_written
        rate = self.bytes / max(time.perf_counter() - self.t0, 1e-6) / 1e6
        self.bar.update(self.task, advance=1, rate=f"{rate:8.1f} MB/s")

    def close(self) -> None:
        self.bar.stop()


def _reader_tables(step: IngestPlan) -> Iterator[tuple[str, str, Any]]:
    """The reader's table parts, each cast to the columns it declared at plan time."""
    from minjiang.core._tasks import to_arrow

    declared = step.reader.table_columns(step.dataset, step.params)
    seen: set[str] = set()
    for item in step.reader.tables(step.files, step.params, step.dataset):
        if not (isinstance(item, tuple) and len(item) == 3):
            raise ReaderError(
                f"{step.reader.name}: tables() yielded a {type(item).__name__}; yield "
                "(table name, part name, rows) tuples"
            )
        table, part, rows = item
        if table not in declared:
            raise ReaderError(
                f"{step.reader.name}: tables() yielded a part of table {table!r}, which "
                f"table_columns() does not declare (it declares {sorted(declared)!r}); "
                "declare every table the reader writes"
            )
        seen.add(table)
        try:
            yield table, part, to_arrow(rows, declared[table])
        except (ExecutionError, ValueError, TypeError) as err:
            raise ReaderError(
                f"{step.reader.name}: part {part!r} of table {table!r} does not fit the "
                f"declared columns {dict(declared[table])!r}: {err}"
            ) from err
    if missing := sorted(set(declared) - seen):
        raise ReaderError(
            f"{step.reader.name}: tables() yielded no part of declared table(s) {missing!r}; "
            "yield at least one part (it may have no rows) of every declared table"
        )
