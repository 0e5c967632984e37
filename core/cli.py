"""The ``minjiang`` command line (typer + rich).

Every command takes ``--store`` (default ``$MINJIANG_STORE`` or ``./minjiang-store``).
Errors minjiang raises on purpose are printed as one red line (exit status 2), and
every option is checked before a store is written or a cluster contacted; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from minjiang.core._runtime import Plan, Runtime

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="minjiang: distributed compute plugins for research data.",
)
catalog_app = typer.Typer(
    no_args_is_help=True, help="Browse the catalog: datasets, names and lineage."
)
app.add_typer(catalog_app, name="catalog")
job_app = typer.Typer(no_args_is_help=True, help="Watch and stop jobs on a Ray cluster.")
app.add_typer(job_app, name="job")
from minjiang.core._cli_cluster import cluster_app  # noqa: E402

app.add_typer(cluster_app, name="cluster")
#: ``minjiang --verbose ...``: an error prints its traceback (a task's, from the worker)
_VERBOSE = False


@app.callback()
def _options(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="On an error, print its traceback (a failed task's in full)."
    ),
) -> None:
    global _VERBOSE
    _VERBOSE = verbose
JobAddressOpt = typer.Option(
    None,
    "--address",
    envvar="MINJIANG_JOB_ADDRESS",
    help="Ray dashboard of the head node, e.g. http://head:8265 (default: the cluster "
    "`minjiang cluster start` runs).",
)
console = Console()
err_console = Console(stderr=True)
for _c in (console, err_console):
    if not _c.is_terminal and "COLUMNS" not in os.environ:
        _c.width = 160  # logs and pipes: keep ids and names on one line

GpuReadOpt = typer.Option(
    "pinned",
    "--gpu-read",
    help="How GPU tasks copy their inputs to the device: pinned (async, slab by slab) or zarr "
    "(zarr's GPU buffers).",
)
StoreOpt = typer.Option(
    None, "--store", envvar="MINJIANG_STORE", help="Store root (folder or s3://bucket/prefix)."
)


def _runtime(store: str | None, executor: str = "local", **kw: Any) -> Runtime:
    from minjiang.core._executors import EXECUTORS
    from minjiang.core._runtime import Runtime
    from minjiang.core.errors import ParameterError

    if executor not in EXECUTORS:
        raise ParameterError(f"--executor {executor[:80]!r} is not one of {sorted(EXECUTORS)!r}")
    if kw.get("num_cpus") is not None and not 1 <= kw["num_cpus"] <= 4096:
        raise ParameterError(f"--num-cpus {kw['num_cpus']} must be between 1 and 4096")
    if kw.get("memory_budget") is not None:
        from minjiang.core._units import parse_memory_budget

        parse_memory_budget(kw["memory_budget"])  # refuse it before the store is opened
    return Runtime(store=store, executor=executor, **kw)


def _parse_value(value: str, what: str) -> Any:
    """A ``key=value`` value: YAML flow syntax (``[a.nc, b.nc]``, ``1.5``), as data only."""
    from minjiang.core._pipeline import MAX_REF_CHARS, load_yaml
    from minjiang.core.errors import MinjiangError, ParameterError

    if len(value) > MAX_REF_CHARS:
        raise ParameterError(
            f"{what} is {len(value)} characters long; the limit is {MAX_REF_CHARS}"
        )
    try:
        return load_yaml(value, what)
    except MinjiangError as err:
        msg = " ".join(str(err).split())[:200]
        raise ParameterError(f"{what}: cannot read the value ({msg}); quote it or fix it") from None


def _parse_kv(items: list[str] | None, what: str) -> dict[str, Any]:
    from minjiang.core.errors import ParameterError

    out: dict[str, Any] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ParameterError(f"{what} {item[:80]!r} must look like key=value")
        if key in out:
            raise ParameterError(f"{what} {key[:80]!r} is given twice")
        out[key] = _parse_value(value, f"{what} {key[:80]!r}") if value else value
    return out


def _plan_table(plan: Plan) -> Table:
    table = Table(
        title=f"plan: {plan.pipeline.name or 'pipeline'} · executor {plan.executor} · "
        f"{plan.workers} workers · budget {plan.budget / 2**30:.1f} GiB"
    )
    rows = plan.summary_rows()
    for col in (
        "step",
        "what",
        "dataset",
        "tasks",
        "memory/task",
        "decode amp.",
        "backend",
        "status",
    ):
        table.add_column(
            col, justify="right" if col in ("tasks", "memory/task", "decode amp.") else "left"
        )
    for r in rows:
        table.add_row(
            *(
                str(r[c])
                for c in (
                    "step",
                    "what",
                    "dataset",
                    "tasks",
                    "memory/task",
                    "decode amp.",
                    "backend",
                    "status",
                )
            )
        )
    return table


def _inputs(items: list[str] | None) -> dict[str, Any]:
    from minjiang.core.errors import ParameterError

    raw = _parse_kv(items, "--input")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if isinstance(v, dict) or (
            isinstance(v, list) and any(isinstance(x, list | dict) for x in v)
        ):
            raise ParameterError(
                f"--input {k[:80]!r} must be a path, a dataset name or a list of paths"
            )
        out[k] = [str(x) for x in v] if isinstance(v, list) else str(v)
    return out


@app.command()
def version() -> None:
    """Print the minjiang version."""
    import minjiang

    console.print(f"minjiang {minjiang.__version__}")


def _print_origin(origin: dict[str, str]) -> None:
    if origin:
        pkg = f" · package {origin['package']} {origin['version']}" if "package" in origin else ""
        console.print(f"  from plugin {escape(origin['name'])} ({escape(origin['module'])}){pkg}")


@app.command()
def plugins(
    store: str | None = StoreOpt,
    operator: str | None = typer.Option(
        None, "--operator", help="Show one operator's contract and parameter schema."
    ),
    reader: str | None = typer.Option(
        None, "--reader", help="Show one reader: what it reads and its parameter schema."
    ),
    pipeline: str | None = typer.Option(
        None, "--pipeline", help="Show one registered pipeline: inputs, steps, report."
    ),
) -> None:
    """List installed plugins with their operators, readers and pipelines."""
    rt = _runtime(store)
    reg = rt.registry
    if operator:
        op = reg.operator(operator)
        console.print(
            f"[bold]{op.name}[/] v{op.version} · pattern {op.pattern.pattern} · backends {op.backends}"
        )
        _print_origin(reg.provenance("operator", op.name))
        if op.description:
            console.print(op.description)
        for i in op.inputs:
            console.print(
                f"  input {i.name}: kind={i.kind} dims={i.dims} dtypes={i.dtypes}"
                + (" (optional)" if i.optional else "")
                + (" (tiled)" if i.tiled else "")
            )
        console.print_json(json.dumps(op.json_schema()))
        return
    if reader:
        rd = reg.reader(reader)
        console.print(f"[bold]{rd.name}[/] v{rd.version} · reader")
        _print_origin(reg.provenance("reader", rd.name))
        if rd.description:
            console.print(rd.description)
        console.print(
            f"  files ending {', '.join(rd.extensions) or '(any: name the reader)'}"
            + (" · folders" if rd.supports_directories else "")
            + (" · several sources" if rd.supports_multiple else " · one source")
        )
        schema = rd.params.model_json_schema() if rd.params is not None else {}
        console.print_json(json.dumps(schema))
        return
    if pipeline:
        pipe = reg.pipeline(pipeline)
        console.print(f"[bold]{pipe.name}[/] · pipeline")
        console.print_json(json.dumps(pipe.model_dump(mode="json", exclude_none=True)))
        return
    kinds = ("operators", "readers", "pipelines", "reports")
    table = Table(title="plugins")
    for col in ("plugin", *kinds):
        table.add_column(col)
    by_plugin: dict[str, dict[str, list[str]]] = {
        n: {k: [] for k in kinds} for n in reg.plugin_names()
    }
    tables: tuple[dict[str, tuple[str, Any]], ...] = (
        reg.operators,
        reg.readers,
        reg.pipelines,
        reg.reports,
    )
    for kind, items in zip(kinds, tables, strict=True):
        for name, (plugin, _) in items.items():
            by_plugin.setdefault(plugin, {k: [] for k in kinds})[kind].append(name)
    for name, found in sorted(by_plugin.items()):
        table.add_row(escape(name), *("\n".join(found[k]) for k in kinds))
    console.print(table)
    for p in reg.problems:
        err_console.print(
            f"[yellow]plugin {escape(repr(p.plugin))} ({escape(p.stage)}): "
            f"{escape(p.error)}[/]",
            soft_wrap=True,
        )


@app.command()
def plan(
    pipeline: str = typer.Argument(..., help="A pipeline YAML file or a registered pipeline name."),
    input: list[str] = typer.Option(
        None, "--input", "-i", help="Pipeline input as name=value (repeatable)."
    ),
    store: str | None = StoreOpt,
    executor: str = typer.Option(
        "ray", help="Plan for this executor, as `run` runs: ray (default) or local."
    ),
    address: str | None = typer.Option(None, envvar="RAY_ADDRESS", help="Ray cluster to plan for."),
    new_cluster: bool = typer.Option(
        False,
        "--new-cluster",
        help="Plan for a local Ray of its own, as `run --new-cluster` starts.",
    ),
    num_cpus: int | None = typer.Option(
        None, help="CPUs of the local Ray that `run` would start (default: this machine's)."
    ),
    memory_budget: str | None = typer.Option(
        None, "--memory-budget", help="Total memory, e.g. 8GiB."
    ),
    backend: str = typer.Option("auto", help="auto, cpu or gpu."),
    reuse: bool = typer.Option(True, help="Reuse results already in the catalog."),
) -> None:
    """Show the steps, tasks, memory per task and what is reused, without running.

    With the same options it shows the plan that `run` runs: the same executor (Ray by
    default, joining the same cluster), workers and budget. Planning does not start Ray:
    where `run` would start a local Ray, the plan is for the CPUs it would start it with.
    """
    rt = _runtime(
        store,
        executor,
        address="local" if new_cluster else address,
        num_cpus=num_cpus,
        memory_budget=memory_budget,
        backend=backend,
    )
    try:
        p = rt.plan(pipeline, inputs=_inputs(input), reuse=reuse)
        console.print(_plan_table(p))
        for s in p.steps:
            for note in getattr(s, "notes", []):
                console.print(f"  [dim]{s.step}: {note}[/]")
    finally:
        rt.close()


@app.command()
def run(
    pipeline: str = typer.Argument(..., help="A pipeline YAML file or a registered pipeline name."),
    input: list[str] = typer.Option(
        None, "--input", "-i", help="Pipeline input as name=value (repeatable)."
    ),
    store: str | None = StoreOpt,
    executor: str = typer.Option(
        "ray", help="ray (default: local Ray on demand, or --address) or local."
    ),
    address: str | None = typer.Option(None, envvar="RAY_ADDRESS", help="Join this Ray cluster."),
    new_cluster: bool = typer.Option(
        False,
        "--new-cluster",
        help="Start a local Ray of its own even when a cluster is running (default: use it).",
    ),
    num_cpus: int | None = typer.Option(None, help="CPUs for a local Ray started on demand."),
    memory_budget: str | None = typer.Option(
        None, "--memory-budget", help="Total memory, e.g. 8GiB."
    ),
    backend: str = typer.Option("auto", help="auto, cpu or gpu."),
    gpu_read: str = GpuReadOpt,
    reuse: bool = typer.Option(True, help="Reuse results already in the catalog."),
) -> None:
    """Plan and run a pipeline; interrupted runs resume where they stopped.

    On a cluster ``minjiang cluster start`` started, the cluster's run service drives
    the run (``core/_service.py``), unless an option asks for another Ray."""
    args: dict[str, Any] = dict(
        pipeline=pipeline,
        inputs=input or [],
        store=store,
        executor=executor,
        memory_budget=memory_budget,
        backend=backend,
        gpu_read=gpu_read,
        reuse=reuse,
    )
    if executor == "ray" and address is None and not new_cluster and num_cpus is None:
        from minjiang.core._service import run_on_service

        code = run_on_service(args, verbose=_VERBOSE)
        if code is not None:
            raise typer.Exit(code)
    address = "local" if new_cluster else address
    code = run_here(**args, address=address, num_cpus=num_cpus, progress=sys.stderr.isatty())
    if code:
        raise typer.Exit(code)


def run_here(
    pipeline: str,
    inputs: list[str],
    *,
    store: str | None,
    executor: str = "ray",
    address: str | None = None,
    num_cpus: int | None = None,
    memory_budget: str | None = None,
    backend: str = "auto",
    gpu_read: str = "pinned",
    reuse: bool = True,
    progress: bool | Console = False,
    out: Console = console,
    err: Console = err_console,
) -> int:
    """``minjiang run`` in this process, printing on ``out`` and ``err``: its exit status
    (typed errors are raised, as :func:`main` reports them)."""
    rt = _runtime(
        store,
        executor,
        address=address,
        num_cpus=num_cpus,
        memory_budget=memory_budget,
        backend=backend,
        gpu_read=gpu_read,
        progress=progress,
    )
    try:
        result = rt.run_pipeline(pipeline, inputs=_inputs(inputs), reuse=reuse)
        _summary(rt, result, out)
    except KeyboardInterrupt:
        err.print(
            "[yellow]interrupted: chunks already written are kept; run the same command to resume[/]"
        )
        return 130
    finally:
        rt.close()
    return 0


def _summary(rt: Runtime, out: Any, console: Console = console) -> None:
    table = Table(title="results")
    for col in ("step", "status", "tasks", "seconds", "dataset", "name"):
        table.add_column(col)
    for step, res in out.results.items():
        t = res.record.timings
        status = "reused" if res.reused else "computed"
        table.add_row(
            step, status, str(t.get("tasks", "")), str(t.get("seconds", "")), res.id, res.name or ""
        )
    console.print(table)
    reused = sum(1 for r in out.results.values() if r.reused)
    if reused == len(out.results):
        console.print(f"[green]all {reused} steps reused from the catalog: nothing to compute[/]")
    console.print(f"store: {rt.store.url}")
    for path in out.reports:
        console.print(f"report: {path}")


@app.command()
def ingest(
    sources: list[str] = typer.Argument(
        ...,
        metavar="[READER] PATH...",
        help="Source files or folders, optionally after the reader name (e.g. ocean.netcdf).",
    ),
    reader: str | None = typer.Option(
        None, "--reader", "-r", help="Reader name; default: the one reader that claims the files."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Publish under this name, e.g. ocean/oisst."
    ),
    param: list[str] = typer.Option(
        None, "--param", "-p", help="Reader parameter key=value (repeatable)."
    ),
    store: str | None = StoreOpt,
) -> None:
    """Ingest source files into a dataset (id = hash of the source bytes).

    Without a reader name, the one registered reader whose ``guess_can_open`` claims
    every path is used; when none or several do, the error lists them.
    """
    from minjiang.core.errors import ReaderError

    params = _parse_kv(param, "--param")
    if name is not None:
        from minjiang.storage._names import validate_name

        validate_name(name)
    rt = _runtime(store)
    paths = list(sources)
    if reader is None and len(paths) > 1 and paths[0] in rt.registry.readers:
        if not os.path.lexists(paths[0]):
            reader = paths.pop(0)
    if not paths:
        raise ReaderError("no source paths given; give the files or folders to ingest")
    chosen = rt.registry.reader(reader) if reader else rt.registry.guess_reader(paths)
    res = rt.ingest(chosen.name, paths, name=name, params=params)
    console.print(
        escape(
            f"{'reused' if res.reused else 'ingested'} {res.id} with {chosen.name}"
            + (f" as {name}" if name else "")
        )
    )


@app.command()
def verify(
    ref: str = typer.Argument(..., help="Dataset name or id."), store: str | None = StoreOpt
) -> None:
    """Check a dataset against everything its record claims: the record's own digest and
    id, the Zarr metadata, every chunk of the grid, table parts, and stray files."""
    from minjiang.errors import RecordIntegrityError
    from minjiang.storage import verify_dataset

    rt = _runtime(store)
    try:
        record = rt.catalog.get(ref)
    except RecordIntegrityError as err:
        err_console.print(error_line(err), soft_wrap=True, highlight=False)
        raise typer.Exit(1) from None
    report = verify_dataset(rt.store, record.id)
    if report.ok:
        console.print(
            f"[green]ok[/]: {report.checked} chunks, parts and documents of {record.id} "
            "match its record"
        )
        return
    for p in report.problems[:20]:
        where = f"array {p.array!r} " if p.array and not p.array.startswith("(") else ""
        err_console.print(f"[red]{p.problem}[/]: dataset {record.id} {where}{p.chunk_key}")
    if len(report.problems) > 20:
        err_console.print(f"... and {len(report.problems) - 20} more problems")
    raise typer.Exit(1)


@app.command()
def demo(
    store: str | None = StoreOpt,
    executor: str = typer.Option("ray", help="ray (local Ray on demand) or local."),
    num_cpus: int | None = typer.Option(None, help="CPUs for the local Ray."),
    years: int = typer.Option(3, help="Years of daily data in the synthetic cube."),
    data: Path = typer.Option(
        Path("demo-data"), help="Where the synthetic source files are written."
    ),
) -> None:
    """Run the main job on the embedded default: synthetic SST → every chunk pattern."""
    from minjiang.core._demo import DEMO_PIPELINE, make_demo_inputs
    from minjiang.core._pipeline import load_pipeline

    rt = _runtime(store, executor, num_cpus=num_cpus, progress=sys.stderr.isatty())
    cube, regions = make_demo_inputs(data, years=years)
    try:
        pipe = load_pipeline(DEMO_PIPELINE)
        console.print(
            _plan_table(rt.plan(pipe, inputs={"cube": str(cube), "regions": str(regions)}))
        )
        out = rt.run_pipeline(pipe, inputs={"cube": str(cube), "regions": str(regions)})
        _summary(rt, out)
        stats = out.results["by_region"].table("stats").to_pandas()
        table = Table(title="90th percentile of smoothed SST, by region (degC)")
        for col in ("region", "pixels", "mean", "min", "max"):
            table.add_column(col, justify="right")
        for row in stats.itertuples():
            table.add_row(
                str(row.label),
                str(row.count),
                f"{row.mean:.2f}",
                f"{row.min:.2f}",
                f"{row.max:.2f}",
            )
        console.print(table)
        console.print(
            'open a result: [bold]python -c "import minjiang as mj; '
            f"print(mj.open('demo/sst-p90', store='{rt.store.url}'))\"[/]"
        )
    finally:
        rt.close()


@app.command()
def submit(
    pipeline: str = typer.Argument(..., help="A pipeline YAML file or a registered pipeline name."),
    address: str | None = JobAddressOpt,
    input: list[str] = typer.Option(
        None, "--input", "-i", help="Pipeline input as name=value (repeatable)."
    ),
    store: str | None = StoreOpt,
    memory_budget: str | None = typer.Option(
        None, "--memory-budget", help="Total memory, e.g. 64GiB."
    ),
    backend: str = typer.Option("auto", help="auto, cpu or gpu."),
    gpu_read: str = GpuReadOpt,
    runtime_env: str | None = typer.Option(
        None,
        "--runtime-env",
        help='Ray runtime_env as JSON, e.g. \'{"pip": ["mylab-minjiang"]}\' to ship a plugin.',
    ),
    check: bool = typer.Option(
        True,
        help="Plan here against the cluster's nodes and refuse what no node can run, "
        "before sending (needs the store and inputs readable from this host).",
    ),
    wait: bool = typer.Option(False, help="Follow the job until it ends; exit 1 if it fails."),
) -> None:
    """Submit a pipeline as a Ray job (resumable: submit it again to finish what is missing).

    The job is planned here first and its plan printed; a budget too small for any task
    is refused before the cluster is contacted, and a step whose tasks no node can run
    (CPUs, GPUs, memory, custom resources) before the job is sent.
    """
    from minjiang.core._jobs import (
        job_client,
        parse_runtime_env,
        resolve_job_address,
        submit_pipeline,
    )

    env = parse_runtime_env(runtime_env) if runtime_env else None
    inputs = _inputs(input)
    if memory_budget is not None:
        from minjiang.core._units import parse_memory_budget

        parse_memory_budget(memory_budget)  # refuse it before the store or cluster
    address = resolve_job_address(address)

    def show(plan: Plan) -> None:
        console.print(_plan_table(plan))

    job = submit_pipeline(
        pipeline,
        address=address,
        store=store or "./minjiang-store",
        inputs=inputs,
        memory_budget=memory_budget,
        backend=backend,
        gpu_read=gpu_read,
        runtime_env=env,
        check=check,
        on_plan=show,
    )
    console.print(
        f"submitted job [bold]{escape(job)}[/]; watch it with: "
        + escape(f"minjiang job logs {job} --address {address}")
    )
    if wait:
        _follow(job_client(address), job)


def _follow(client: Any, job: str) -> None:
    import time

    from ray.job_submission import JobStatus

    seen = 0
    while True:
        logs = client.get_job_logs(job)
        console.out(logs[seen:], end="")
        seen = len(logs)
        status = client.get_job_status(job)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            console.print(f"job {job}: {status.value}")
            if status != JobStatus.SUCCEEDED:
                raise typer.Exit(1)
            return
        time.sleep(1.0)


@job_app.command("ls")
def job_ls(address: str | None = JobAddressOpt) -> None:
    """List the cluster's minjiang jobs."""
    from minjiang.core._jobs import job_client, resolve_job_address

    address = resolve_job_address(address)
    table = Table(title="jobs")
    for col in ("job", "status", "pipeline", "store"):
        table.add_column(col)
    for j in job_client(address).list_jobs():
        meta = j.metadata or {}
        if "minjiang_pipeline" in meta:
            table.add_row(
                j.submission_id or j.job_id or "",
                str(j.status.value),
                meta["minjiang_pipeline"],
                meta.get("minjiang_store", ""),
            )
    console.print(table)


@job_app.command("status")
def job_status(job: str = typer.Argument(...), address: str | None = JobAddressOpt) -> None:
    """Print a job's status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""
    from minjiang.core._jobs import job_client, resolve_job_address

    address = resolve_job_address(address)
    console.print(job_client(address).get_job_status(job).value)


@job_app.command("logs")
def job_logs(
    job: str = typer.Argument(...),
    address: str | None = JobAddressOpt,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep following until the job ends."),
) -> None:
    """Print a job's output."""
    from minjiang.core._jobs import job_client, resolve_job_address

    address = resolve_job_address(address)
    client = job_client(address)
    if follow:
        _follow(client, job)
    else:
        console.out(client.get_job_logs(job), end="")


@job_app.command("stop")
def job_stop(job: str = typer.Argument(...), address: str | None = JobAddressOpt) -> None:
    """Stop a job; what it wrote is kept, and submitting the pipeline again resumes it."""
    from minjiang.core._jobs import job_client, resolve_job_address

    address = resolve_job_address(address)
    stopped = job_client(address).stop_job(job)
    console.print(f"job {job}: {'stopping' if stopped else 'already finished'}")


@catalog_app.command("ls")
def catalog_ls(
    store: str | None = StoreOpt,
    domain: str | None = typer.Option(None, help="Only this domain."),
    operator: str | None = typer.Option(None, help="Only results of this operator."),
    all_: bool = typer.Option(False, "--all", help="Include hidden intermediates."),
) -> None:
    """List committed datasets, newest first."""
    rt = _runtime(store)
    table = Table(title="catalog")
    for col in ("id", "names", "kind", "producer", "created"):
        table.add_column(col)
    pointers = rt.catalog.names_by_dataset()  # every name, a reused dataset's later ones too
    for r in rt.catalog.list(domain=domain, operator=operator, include_hidden=all_):
        producer = r.producer.get("operator") or r.producer.get("reader") or ""
        names = rt.catalog.names_of(r, pointers=pointers)
        table.add_row(r.id, ", ".join(names), r.kind, producer, r.created)
    console.print(table)


@catalog_app.command("show")
def catalog_show(
    ref: str = typer.Argument(..., help="Dataset name or id."), store: str | None = StoreOpt
) -> None:
    """Print a dataset's catalog record (data quality, schema, producer, inputs, timings)."""
    rt = _runtime(store)
    record = rt.catalog.get(ref)
    data = record.model_dump(mode="json", by_alias=True)
    # the data-quality summary of each array and coordinate, recorded at commit, first
    quality = {
        name: entry["summary"]
        for section in ("arrays", "coords")
        for name, entry in (data["schema"].get(section) or {}).items()
        if "summary" in entry
    }
    data = {"id": data["id"], "quality": quality, **data}
    data["checksums"] = {k: f"{len(v)} chunks" for k, v in data["checksums"].items()}
    console.print_json(json.dumps(data))


@catalog_app.command("lineage")
def catalog_lineage(
    ref: str = typer.Argument(..., help="Dataset name or id."),
    store: str | None = StoreOpt,
    down: bool = typer.Option(False, "--down", help="Descendants instead of ancestors."),
    prov: bool = typer.Option(False, "--prov", help="Print W3C PROV-JSON."),
    stac: bool = typer.Option(False, "--stac", help="Print a STAC item with processing:* fields."),
) -> None:
    """Walk lineage up (inputs) or down (what was derived), or export it."""
    rt = _runtime(store)
    did = rt.catalog.get(ref).id
    if prov:
        console.print_json(json.dumps(rt.catalog.to_prov(did)))
        return
    if stac:
        console.print_json(json.dumps(rt.catalog.to_stac(did)))
        return
    graph = rt.catalog.lineage(did, direction="down" if down else "up")
    pointers = rt.catalog.names_by_dataset()

    def label(r: Any) -> str:
        names = ", ".join(rt.catalog.names_of(r, pointers=pointers))
        return f"{r.id} ({names or r.producer.get('operator') or r.producer.get('reader')})"

    for parent, child, name in graph.edges:
        console.print(f"{label(graph.nodes[parent])} --{name}--> {label(graph.nodes[child])}")
    if not graph.edges:
        console.print(f"{did}: no {'descendants' if down else 'inputs'}")


@catalog_app.command("search")
def catalog_search(
    text: str = typer.Argument("", help="Substring of a name, operator, domain, id or variable."),
    domain: str | None = typer.Option(None, help="Exact domain (ocean, forestry, ...)."),
    variable: str | None = typer.Option(
        None, help="An array name or CF standard_name (e.g. sea_surface_temperature)."
    ),
    bbox: str | None = typer.Option(
        None, help="west,south,east,north in degrees: datasets whose extent intersects it."
    ),
    start: str | None = typer.Option(None, help="ISO date: time ranges ending on or after it."),
    end: str | None = typer.Option(None, help="ISO date: time ranges starting on or before it."),
    operator: str | None = typer.Option(None, help="Producing operator or reader."),
    producer: str | None = typer.Option(
        None, help="Producing plugin: registered name, module or package."
    ),
    ancestor_of: str | None = typer.Option(
        None, "--ancestor-of", help="Only what this dataset was computed from."
    ),
    descendant_of: str | None = typer.Option(
        None, "--descendant-of", help="Only what was derived from this dataset."
    ),
    all_: bool = typer.Option(False, "--all", help="Include hidden intermediates."),
    store: str | None = StoreOpt,
) -> None:
    """Search the catalog across domains (answered from the index kept at commit)."""
    box = None
    if bbox is not None:
        try:
            box = tuple(float(v) for v in bbox.split(","))
        except ValueError:
            box = ()
        if len(box) != 4:
            raise typer.BadParameter(
                f"--bbox {bbox!r} must be four numbers west,south,east,north", param_hint="--bbox"
            )
    rt = _runtime(store)
    try:
        found = rt.catalog.search(
            text,
            domain=domain,
            variable=variable,
            bbox=box,  # type: ignore[arg-type]
            start=start,
            end=end,
            operator=operator,
            producer=producer,
            ancestor_of=ancestor_of,
            descendant_of=descendant_of,
            include_hidden=all_,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    table = Table(title=f"catalog search: {len(found)} found")
    for col in ("id", "names", "domain", "produced by", "variables", "created"):
        table.add_column(col)
    pointers = rt.catalog.names_by_dataset()
    for r in found:
        producer_name = r.producer.get("operator") or r.producer.get("reader") or ""
        variables = ", ".join(sorted(r.schema_.get("arrays") or {})[:6])
        names = ", ".join(rt.catalog.names_of(r, pointers=pointers))
        table.add_row(r.id, names, r.domain, producer_name, escape(variables), r.created)
    console.print(table)


@app.command()
def serve(
    store: str | None = StoreOpt,
    host: str = typer.Option(
        "127.0.0.1",
        help="Address to listen on; loopback by default. Another (e.g. 0.0.0.0) makes the "
        "catalog reachable from other machines, with no authentication.",
    ),
    port: int = typer.Option(8765, help="Port to listen on."),
    max_download_mib: int = typer.Option(
        256, help="The most decoded MiB one table or array-subset download may hold."
    ),
) -> None:
    """Serve a read-only web catalog of the store: browse and search datasets, their
    schema, quality, quicklooks and lineage, download tables and array subsets, and a
    JSON API under /api (needs minjiang's web extra: FastAPI, uvicorn, Jinja2)."""
    try:
        from minjiang.web import serve as serve_catalog
    except ImportError as err:
        from minjiang.core.errors import ParameterError

        raise ParameterError(
            f"minjiang serve needs the web extra ({err}); install it with "
            "pip install 'minjiang[web]'"
        ) from None
    serve_catalog(store, host=host, port=port, max_download_mib=max_download_mib)


def error_line(err: BaseException) -> str:
    """A typed error as the one line the command line prints (markup escaped)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return f"[red]error:[/] {escape(text)}"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: typed errors become one red line, exit status 2.

    Parameters
    ----------
    argv
        The arguments (default: ``sys.argv[1:]``).
    """
    from minjiang.core.errors import MinjiangError

    try:
        app(args=argv, prog_name="minjiang")
    except MinjiangError as err:
        report_error(err, err_console, verbose=_VERBOSE)
        sys.exit(2)


def report_error(err: BaseException, console: Console, *, verbose: bool) -> None:
    """Print a typed error as :func:`main` does: one red line, after its traceback (and a
    failed task's, from the worker) when ``verbose``."""
    if verbose:
        import traceback

        console.print(
            escape("".join(traceback.format_exception(err))), soft_wrap=True, highlight=False
        )
        details = getattr(err, "details", "")
        if details:
            console.print("[bold]the task's traceback:[/]")
            console.print(escape(details), soft_wrap=True, highlight=False)
    console.print(error_line(err), soft_wrap=True, highlight=False)


# the plugin author's commands: new-plugin, doctor, validate (core/_cli_kit.py)
from minjiang.core._cli_kit import register as _register_kit  # noqa: E402

_register_kit(app)


if __name__ == "__main__":
    main()
