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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from minjiang.core.errors import PipelineError, PlanError

__all__ = ["job_client", "submit_pipeline", "use_cluster_token"]


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
    use_cluster_token()
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
) -> str:
    """Submit ``pipeline`` (a YAML file or a registered name) as a Ray job; returns its id.

    The store must be reachable from the cluster under the same URL (a shared file
    system path or ``s3://``). ``runtime_env`` is passed to Ray as given (for example
    ``{"pip": ["mylab-minjiang==1.2"]}`` to ship a plugin); the pipeline file's folder
    becomes the job's ``working_dir``.
    """
    from minjiang.core._devices import GPU_READ_MODES
    from minjiang.core.errors import ContractError
    from minjiang.storage import open_store

    # fail here, not in a job on the cluster
    if backend not in ("auto", "cpu", "gpu"):
        raise ContractError(f"backend {backend!r} is not one of 'auto', 'cpu', 'gpu'")
    if gpu_read not in GPU_READ_MODES:
        raise ContractError(f"gpu_read {gpu_read!r} is not one of {GPU_READ_MODES!r}")
    url = open_store(store).url
    env: dict[str, Any] = dict(runtime_env or {})
    path = Path(pipeline)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise PipelineError(f"pipeline file {str(path)!r} does not exist")
        from minjiang.core._pipeline import load_pipeline

        load_pipeline(path)  # fail here, not on the cluster
        env.setdefault("working_dir", str(path.resolve().parent))
        target = path.name
    else:
        target = str(pipeline)
    args = ["minjiang", "run", target, "--executor", "ray", "--store", url, "--backend", backend]
    if gpu_read != "pinned":
        args += ["--gpu-read", gpu_read]
    for key, value in (inputs or {}).items():
        args += ["--input", f"{key}={value}"]
    if memory_budget:
        args += ["--memory-budget", memory_budget]
    args += list(extra_args)
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
