"""Ray jobs: what an HPC operator submits, watches, stops and resumes.

``minjiang submit pipeline.yaml --address http://head:8265`` goes through Ray's Job
Submission API. The job runs ``minjiang run`` on the cluster, against the shared store,
with the pipeline file shipped in the job's ``working_dir``. Because every step is
content-addressed and every finished task leaves a verified manifest, submitting the
same pipeline again after a stop or a crash finishes only what is missing.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minjiang.core._executors import Executor
from minjiang.core.errors import ParameterError, PipelineError, PlanError

if TYPE_CHECKING:
    from minjiang.core._cluster import NodeResources
    from minjiang.core._runtime import Plan

__all__ = [
    "ClusterView",
    "check_address",
    "job_client",
    "parse_runtime_env",
    "plan_for_cluster",
    "resolve_job_address",
    "submit_pipeline",
    "use_cluster_token",
]


def parse_runtime_env(text: str) -> dict[str, Any]:
    """``--runtime-env`` JSON as a mapping; :class:`ParameterError` for anything else."""
    import json

    try:
        env = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ParameterError(
            f"--runtime-env is not valid JSON ({type(err).__name__}: {str(err)[:120]}); give an "
            'object such as \'{"pip": ["mylab-minjiang"]}\''
        ) from None
    if not isinstance(env, dict):
        raise ParameterError(
            f"--runtime-env must be a JSON object (Ray's runtime_env), not {type(env).__name__}"
        )
    return env


def check_address(address: str) -> str:
    """A Ray dashboard address (``http://head:8265``), checked without contacting it."""
    from urllib.parse import urlsplit

    shown = repr(address[:120]) if isinstance(address, str) else repr(address)
    if not isinstance(address, str) or not address or len(address) > 2048:
        raise ParameterError(f"--address {shown} is not an address; give e.g. http://head:8265")
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError as err:
        raise ParameterError(
            f"--address {shown} is not a valid URL ({err}); give e.g. http://head:8265"
        ) from None
    bad = any(ord(c) < 32 or c.isspace() for c in address)
    if parts.scheme not in ("http", "https") or not parts.hostname or bad:
        raise ParameterError(
            f"--address {shown} must be the http(s) address of the head node's dashboard, "
            "e.g. http://head:8265"
        )
    del port
    return address


def resolve_job_address(address: str | None) -> str:
    """The job API to talk to: ``address`` (``--address`` or ``MINJIANG_JOB_ADDRESS``),
    else the dashboard of the cluster ``minjiang cluster start`` recorded (its token is
    then used)."""
    if address:
        return check_address(address)
    from minjiang.core._cluster import cluster_dir, find_running, use_state_token

    state = find_running()
    if state is None:
        raise ParameterError(
            "no cluster to talk to: give --address http://head:8265 (or set "
            "MINJIANG_JOB_ADDRESS), or start a local one with `minjiang cluster start` "
            f"(none is running from {cluster_dir()})"
        )
    use_state_token(state)
    return state.dashboard


def use_cluster_token() -> None:
    """Ray clusters started with ``ray start`` require a token by default; when this host
    has one (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) send it."""
    import os
    import sys

    if os.environ.get("RAY_AUTH_MODE"):
        return
    if (
        os.environ.get("RAY_AUTH_TOKEN")
        or os.environ.get("RAY_AUTH_TOKEN_PATH")
        or (Path.home() / ".ray" / "auth_token").exists()
    ):
        os.environ["RAY_AUTH_MODE"] = "token"
        if "ray" in sys.modules:  # Ray caches its config at import: refresh it
            try:
                from ray._private.authentication.authentication_token_setup import (
                    _enable_token_auth,
                )
            except ImportError:
                return
            _enable_token_auth()


def job_client(address: str) -> Any:
    """A :class:`ray.job_submission.JobSubmissionClient` for the dashboard at ``address``."""
    check_address(address)
    from minjiang.core._cluster import use_token_for

    use_token_for(address)
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as err:
        raise PlanError(
            f"cannot reach the Ray job server at {address!r} ({type(err).__name__}: {err}); "
            "give the dashboard address of the head node, e.g. http://head:8265; if it says "
            "'Unauthorized', copy the cluster's token (`ray get-auth-token` on the head) into "
            "RAY_AUTH_TOKEN on this host"
        ) from None


class ClusterView(Executor):
    """A cluster's resources as the planner sees them, read from its node table; it
    runs nothing (a job's plan is built on the submitting host, then sent)."""

    name = "ray"

    def __init__(self, nodes: Sequence[NodeResources] | None) -> None:
        self.nodes = list(nodes or [])

    def workers(self) -> int:
        # before the cluster is asked (no nodes): one worker, so each task may use the
        # whole budget, and a budget that fails here fails on any cluster
        return max(1, int(sum(n.cpus for n in self.nodes))) if self.nodes else 1

    def gpus(self) -> float:
        return float(sum(n.gpus for n in self.nodes))

    def node_memory(self) -> int:
        return int(max((n.memory for n in self.nodes), default=0))

    def run(self, tasks: Any, on_result: Any) -> None:
        raise PlanError("a cluster view only plans; submit the job to run it")


def plan_for_cluster(
    pipeline: str | Path,
    *,
    store: str,
    nodes: Sequence[NodeResources] | None,
    inputs: Mapping[str, Any] | None = None,
    memory_budget: str | int | None = None,
    backend: str = "auto",
    gpu_read: str = "pinned",
) -> Plan:
    """Plan ``pipeline`` on this host for a cluster with ``nodes`` (None: before the
    cluster is asked, for one worker) and refuse a task no node can run.

    Raises
    ------
    MemoryBudgetError
        A task does not fit its share of the budget.
    InfeasibleTaskError
        A step's tasks ask for a resource (CPUs, GPUs, memory, a custom resource) that
        no node has.
    """
    from minjiang.core._cluster import check_tasks_feasible
    from minjiang.core._runtime import Runtime

    rt = Runtime(
        store=store,
        executor="local",
        memory_budget=memory_budget,
        backend=backend,
        gpu_read=gpu_read,
    )
    rt._executor = ClusterView(nodes)
    try:
        plan = rt.plan(str(pipeline), inputs=inputs)
    finally:
        rt._executor = None
        rt.close()
    if nodes is not None:
        check_tasks_feasible(
            (
                (f"step {step.step!r}", [t for stage in stages for t in stage.tasks])
                for step in plan.steps
                if not step.reused and (stages := getattr(step, "stages", None))
            ),
            nodes,
        )
    return plan


def submit_pipeline(
    pipeline: str | Path,
    *,
    address: str,
    store: str,
    inputs: Mapping[str, Any] | None = None,
    memory_budget: str | None = None,
    backend: str = "auto",
    gpu_read: str = "pinned",
    runtime_env: Mapping[str, Any] | None = None,
    extra_args: Sequence[str] = (),
    agent_wait: float = 90.0,
    check: bool = True,
    on_plan: Callable[[Plan], None] | None = None,
) -> str:
    """Submit ``pipeline`` (a YAML file or a registered name) as a Ray job; returns its id.

    The store must be reachable from the cluster under the same URL (a shared file
    system path or ``s3://``). ``runtime_env`` is passed to Ray as given (for example
    ``{"pip": ["mylab-minjiang==1.2"]}`` to ship a plugin); the pipeline file's folder
    becomes the job's ``working_dir``.

    With ``check`` (the default) the job is planned here first, against the cluster's
    node table, and ``on_plan`` gets the plan before the job is sent: a budget too
    small for any task is refused before the cluster is contacted, and a task that no
    node can run (:class:`~minjiang.core._cluster.InfeasibleTaskError`) before the job
    is sent. The store and the inputs must then be readable from this host too.
    """
    from minjiang.core._devices import GPU_READ_MODES
    from minjiang.core._units import parse_memory_budget
    from minjiang.core.errors import ContractError
    from minjiang.storage import open_store

    # fail here, not in a job on the cluster
    check_address(address)
    if backend not in ("auto", "cpu", "gpu"):
        raise ContractError(f"backend {backend!r} is not one of 'auto', 'cpu', 'gpu'")
    if gpu_read not in GPU_READ_MODES:
        raise ContractError(f"gpu_read {gpu_read!r} is not one of {GPU_READ_MODES!r}")
    budget = None if memory_budget is None else parse_memory_budget(memory_budget)
    if runtime_env is not None and not isinstance(runtime_env, Mapping):
        raise ParameterError(
            f"runtime_env must be a mapping (Ray's runtime_env), not {type(runtime_env).__name__}"
        )
    url = open_store(store).url
    env: dict[str, Any] = dict(runtime_env or {})
    path = Path(pipeline)
    if path.suffix in (".yaml", ".yml"):
        from minjiang.core._pipeline import load_pipeline

        pipe = load_pipeline(path)  # fail here, not on the cluster
        pipe.bind_inputs(inputs)
        env.setdefault("working_dir", str(path.resolve().parent))
        target = path.name
    else:
        target = str(pipeline)
        if not target or len(target) > 200 or any(ord(c) < 32 for c in target):
            raise PipelineError(
                f"pipeline {target[:80]!r} is neither a .yaml file nor a registered pipeline name"
            )
    args = ["minjiang", "run", target, "--executor", "ray", "--store", url, "--backend", backend]
    if gpu_read != "pinned":
        args += ["--gpu-read", gpu_read]
    for key, value in (inputs or {}).items():
        args += ["--input", f"{key}={value}"]
    if budget is not None:
        args += ["--memory-budget", str(budget)]  # exact bytes, already checked
    args += list(extra_args)
    if check:
        from minjiang.core._cluster import node_table

        planned = {
            "store": url,
            "inputs": inputs,
            "memory_budget": budget,
            "backend": backend,
            "gpu_read": gpu_read,
        }
        if budget is not None:  # a budget too small for one task fails on any cluster
            plan_for_cluster(pipeline, nodes=None, **planned)  # type: ignore[arg-type]
        plan = plan_for_cluster(pipeline, nodes=node_table(address), **planned)  # type: ignore[arg-type]
        if on_plan is not None:
            on_plan(plan)
    client = job_client(address)
    deadline = time.monotonic() + agent_wait
    while True:
        try:
            return str(
                client.submit_job(
                    entrypoint=shlex.join(args),
                    runtime_env=env or None,
                    metadata={"minjiang_pipeline": target, "minjiang_store": url},
                )
            )
        except RuntimeError as err:
            # a head that has just started answers this until its job agent is up
            if "No available agent" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(2.0)
