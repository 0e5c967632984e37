"""Ray jobs on a real head node started by the test: submit, watch, resume."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from minjiang.core.cli import app
from typer.testing import CliRunner

pytestmark = [pytest.mark.ray, pytest.mark.slow]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head():
    temp = tempfile.mkdtemp(prefix="mjray", dir="/tmp")  # unix socket paths must stay short
    gcs, dash, client, agent_http, agent_grpc, metrics = (_free_port() for _ in range(6))
    before = {p.pid for p in psutil.process_iter()}
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        # a busy 2-core CI machine can take longer than Ray's 30 s to start the
        # per-client server behind a ray:// address
        "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "180",
    }
    env.pop("RAY_ADDRESS", None)
    cmd = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={gcs}",
        f"--dashboard-port={dash}",
        "--dashboard-host=127.0.0.1",
        f"--ray-client-server-port={client}",
        "--min-worker-port=21000",
        "--max-worker-port=21400",
        f"--dashboard-agent-listen-port={agent_http}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--metrics-export-port={metrics}",
        "--num-cpus=1",
        # a GPU the scheduler offers but no task can use (no CuPy here): the device
        # probe must find that out instead of planning GPU tasks
        "--num-gpus=1",
        "--include-dashboard=true",
        f"--temp-dir={temp}",
        "--disable-usage-stats",
    ]
    address = f"http://127.0.0.1:{dash}"
    from minjiang.core._jobs import job_client

    try:
        subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=180)
        deadline = time.time() + 120
        while True:
            try:
                job_client(address).list_jobs()
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(1)
        yield {"jobs": address, "client": f"ray://127.0.0.1:{client}", "env": env}
    finally:  # also when the head never answered: nothing of it outlives the module
        _stop_head(before, temp)


def _stop_head(before: set[int], temp: str) -> None:
    # stop only the Ray processes this head brought (a session Ray may run beside it,
    # and unrelated processes such as 'xarray' ones must survive)
    marker = re.compile(
        r"site-packages/ray/|\bray::|-m ray\.|ray\.dashboard|ray-dashboard-|raylet|gcs_server|"
        + re.escape(temp)
    )
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid not in before and marker.search(" ".join(proc.info["cmdline"] or ())):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    shutil.rmtree(temp, ignore_errors=True)


def _wait(address: str, job: str, timeout: float = 240) -> str:
    from minjiang.core._jobs import job_client

    client = job_client(address)
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = client.get_job_status(job).value
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return status
        time.sleep(1)
    raise TimeoutError(job)


def test_submit_watch_and_resubmit(head, tmp_path) -> None:
    from minjiang.core._demo import DEMO_PIPELINE, make_demo_inputs

    head = head["jobs"]
    cube, regions = make_demo_inputs(tmp_path / "data", years=1, ny=16, nx=16)
    pipe = tmp_path / "pipe" / "demo.yaml"
    pipe.parent.mkdir()
    pipe.write_text(DEMO_PIPELINE)
    store = str(tmp_path / "store")
    runner = CliRunner(env={"COLUMNS": "200"})
    args = [
        "submit",
        str(pipe),
        "--address",
        head,
        "--store",
        store,
        "-i",
        f"cube={cube}",
        "-i",
        f"regions={regions}",
    ]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    job = out.output.split("submitted job ")[1].split(";")[0].strip()
    assert _wait(head, job) == "SUCCEEDED"
    logs = runner.invoke(app, ["job", "logs", job, "--address", head])
    assert "demo/sst-p90-by-region" in logs.output
    from minjiang.storage import Catalog, open_store

    assert Catalog(open_store(store)).exists(Catalog(open_store(store)).get("demo/sst-p90").id)
    again = runner.invoke(app, args)
    job2 = again.output.split("submitted job ")[1].split(";")[0].strip()
    assert _wait(head, job2) == "SUCCEEDED"
    logs2 = runner.invoke(app, ["job", "logs", job2, "--address", head])
    assert "reused from the catalog" in logs2.output
    ls = runner.invoke(app, ["job", "ls", "--address", head])
    assert job in ls.output and job2 in ls.output


def _run_through_client(head, pipe, store, cube, regions, *extra: str):
    """``minjiang run`` the demo through the head's ``ray://`` address.

    Ray starts one client server per connection; on a loaded 2-core machine that start
    occasionally fails ("Starting Ray client server failed") before minjiang runs at
    all. That one failure is retried once; any other outcome is returned as it is.
    """
    cmd = [
        str(BIN / "minjiang"),
        "run",
        str(pipe),
        "--address",
        head["client"],
        "--store",
        str(store),
        "-i",
        f"cube={cube}",
        "-i",
        f"regions={regions}",
        *extra,
    ]
    for attempt in range(2):
        out = subprocess.run(
            cmd, env=head["env"], capture_output=True, text=True, timeout=300, check=False
        )
        if attempt or "Starting Ray client server failed" not in out.stdout + out.stderr:
            return out
        time.sleep(5)
    return out


def test_run_through_ray_client_address(head, tmp_path) -> None:
    from minjiang.core._demo import DEMO_PIPELINE, make_demo_inputs

    cube, regions = make_demo_inputs(tmp_path / "data", years=1, ny=12, nx=12)
    pipe = tmp_path / "demo.yaml"
    pipe.write_text(DEMO_PIPELINE)
    store = tmp_path / "store"
    out = _run_through_client(head, pipe, store, cube, regions)
    assert out.returncode == 0, out.stdout + out.stderr
    from minjiang.storage import Catalog, open_store

    rec = Catalog(open_store(store)).get("demo/sst-mean")
    assert rec.producer["executor"] == "ray"
    # auto: the head offers a GPU, the probe found it unusable, the step fell back
    smooth = Catalog(open_store(store)).get(rec.inputs["x"])
    assert smooth.producer["backend"] == "cpu"
    assert any(
        n.startswith("BackendFallbackWarning") and "CuPy is not importable" in n
        for n in smooth.producer["notes"]
    ), smooth.producer["notes"]

    # gpu: refused at plan time with the probe's reason, before any task
    out = _run_through_client(head, pipe, store, cube, regions, "--backend", "gpu", "--no-reuse")
    assert out.returncode != 0
    message = " ".join((out.stdout + out.stderr).split())
    assert "BackendUnavailableError" in message or "backend 'gpu' was asked" in message, message
    assert "no GPU of the cluster is usable" in message and "CuPy is not importable" in message


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"backend": "cuda"}, "backend 'cuda'"), ({"gpu_read": "dma"}, "gpu_read 'dma'")],
)
def test_submit_refuses_bad_options_before_contacting_the_cluster(tmp_path, kw, match) -> None:
    from minjiang.core._demo import DEMO_PIPELINE
    from minjiang.core._jobs import submit_pipeline
    from minjiang.core.errors import ContractError

    pipe = tmp_path / "demo.yaml"
    pipe.write_text(DEMO_PIPELINE)
    # no server listens there: the error must come first
    with pytest.raises(ContractError, match=match):
        submit_pipeline(pipe, address="http://127.0.0.1:9", store=str(tmp_path / "s"), **kw)
