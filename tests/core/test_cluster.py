"""minjiang cluster: state, tokens, ports, Slurm scripts, attach-don't-crash, refusing
infeasible jobs before they are sent (no Ray needed here; see test_cluster_ray.py)."""

from __future__ import annotations

import http.server
import json
import socket
import stat
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from minjiang.core.cli import app
from typer.testing import CliRunner


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No recorded cluster and no Ray cluster in Ray's default temp folder."""
    monkeypatch.setenv("MINJIANG_CLUSTER_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "raytmp"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("MINJIANG_JOB_ADDRESS", raising=False)
    return tmp_path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_token_file_is_private(tmp_path) -> None:
    from minjiang.core._cluster import ensure_token

    token = ensure_token(tmp_path / "state")
    assert _mode(token) == 0o600 and _mode(token.parent) == 0o700
    first = token.read_text()
    assert len(first.strip()) == 64
    token.chmod(0o644)
    token.parent.chmod(0o755)
    again = ensure_token(tmp_path / "state")
    assert again.read_text() == first  # kept, but tightened
    assert _mode(again) == 0o600 and _mode(again.parent) == 0o700
    assert ensure_token(tmp_path / "other").read_text() != first


def test_cluster_dir_follows_the_environment(monkeypatch, tmp_path) -> None:
    from minjiang.core._cluster import cluster_dir

    monkeypatch.setenv("MINJIANG_CLUSTER_DIR", str(tmp_path / "x"))
    assert cluster_dir() == tmp_path / "x"
    monkeypatch.delenv("MINJIANG_CLUSTER_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert cluster_dir() == tmp_path / "xdg" / "minjiang" / "cluster"


def test_job_ports_are_explicit_and_do_not_collide() -> None:
    from dataclasses import astuple

    from minjiang.core._cluster import Ports

    def used(p: Ports) -> set[int]:
        values = astuple(p)
        return set(values[:-2]) | set(range(p.min_worker, p.max_worker + 1))

    for job in (0, 1, 87, 88, 12345, 99999999):
        head, worker = Ports.for_job(job), Ports.for_job(job, worker_node=True)
        assert not used(head) & used(worker)  # a head and a worker can share a host
        for p in (head, worker):
            assert all(10000 <= port < 32768 for port in used(p))  # below the ephemeral range
            assert len(used(p)) == 11 + 112
    assert not (used(Ports.for_job(5)) | used(Ports.for_job(5, worker_node=True))) & (
        used(Ports.for_job(6)) | used(Ports.for_job(6, worker_node=True))
    )


def test_free_ports_are_distinct() -> None:
    from dataclasses import astuple

    from minjiang.core._cluster import Ports

    p = Ports.free()
    singles = astuple(p)[:-2]
    assert len(set(singles)) == len(singles)
    assert not set(singles) & set(range(p.min_worker, p.max_worker + 1))


def test_sbatch_script_is_valid_bash(tmp_path) -> None:
    from minjiang.core._cluster import sbatch_script

    script = sbatch_script(
        ["minjiang", "run", "p.yaml", "--store", "/shared/my store"],
        nodes=3,
        time_limit="01:00:00",
        partition="cpu",
        gpus_per_node=1,
    )
    path = tmp_path / "job.sh"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True)
    assert "#SBATCH --nodes=3" in script and "#SBATCH --gpus-per-node=1" in script
    assert "minjiang run p.yaml --store '/shared/my store'" in script
    # token auth, loopback dashboard, ports from the job id, every port explicit
    assert "RAY_AUTH_MODE=token" in script and "--dashboard-host=127.0.0.1" in script
    assert "SLURM_JOB_ID % 88" in script
    for flag in (
        "--node-manager-port",
        "--object-manager-port",
        "--metrics-export-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--min-worker-port",
    ):
        assert flag in script


def test_sbatch_needs_a_command() -> None:
    out = CliRunner().invoke(app, ["cluster", "sbatch"])
    assert out.exit_code != 0
    assert "command to run" in str(out.exception) + out.output


def test_sbatch_insecure_flag_warns(tmp_path) -> None:
    out = CliRunner().invoke(
        app,
        [
            "cluster",
            "sbatch",
            "--insecure-no-token",
            "-o",
            str(tmp_path / "j.sh"),
            "--",
            "minjiang",
            "run",
            "p.yaml",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "WITHOUT token" in out.output
    text = (tmp_path / "j.sh").read_text()
    assert "RAY_AUTH_MODE=disabled" in text and "RAY_AUTH_MODE=token" not in text
    assert _mode(tmp_path / "j.sh") == 0o700


def _task(cpus=1.0, gpus=0.0, memory=0, resources=()):
    return SimpleNamespace(cpus=cpus, gpus=gpus, memory=memory, resources=tuple(resources))


def test_tasks_no_node_can_run_are_named() -> None:
    from minjiang.core._cluster import InfeasibleTaskError, NodeResources, check_tasks_feasible

    nodes = [
        NodeResources("a", "10.0.0.1", {"CPU": 8, "memory": 16 << 30}),
        NodeResources("b", "10.0.0.2", {"CPU": 2, "GPU": 1, "memory": 4 << 30, "licence": 1}),
    ]
    check_tasks_feasible([("step 'ok'", [_task(cpus=8, memory=8 << 30)])], nodes)
    check_tasks_feasible(
        [("step 'gpu'", [_task(cpus=2, gpus=1, resources=[("licence", 1)])])], nodes
    )
    cases = [
        (_task(gpus=2), "GPU", "the most on one node: 1"),
        (_task(resources=[("fast_disk", 1)]), "fast_disk", "the most on one node: 0"),
        (_task(memory=32 << 30), "memory", "32.0 GiB"),
        (_task(cpus=16), "CPU", "the most on one node: 8"),
    ]
    for task, resource, detail in cases:
        with pytest.raises(InfeasibleTaskError) as err:
            check_tasks_feasible([("step 'smooth'", [_task(), task])], nodes)
        msg = str(err.value)
        assert "step 'smooth'" in msg and resource in msg and detail in msg, msg
    # each resource exists somewhere, but never together on one node
    with pytest.raises(InfeasibleTaskError, match="no single node has all"):
        check_tasks_feasible([("step 's'", [_task(cpus=4, gpus=1)])], nodes)
    with pytest.raises(InfeasibleTaskError, match="no live node"):
        check_tasks_feasible([("step 's'", [_task()])], [])


def test_cluster_commands_without_a_cluster_name_the_fix(isolated) -> None:
    runner = CliRunner()
    for args in (["cluster", "stop"], ["cluster", "status"], ["job", "ls"]):
        out = runner.invoke(app, args)
        assert out.exit_code != 0
        assert "minjiang cluster start" in str(out.exception), args


def test_start_refuses_a_bad_interface_before_starting(isolated) -> None:
    from minjiang.core._cluster import start_cluster
    from minjiang.core.errors import ParameterError

    with pytest.raises(ParameterError, match="not an IP address"):
        start_cluster(node_ip="eth0; rm -rf /")
    assert not (isolated / "state" / "cluster.json").exists()


@pytest.fixture
def listener():
    """A socket that accepts connections on loopback (stands for a running GCS)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield f"127.0.0.1:{s.getsockname()[1]}"
    s.close()


def test_a_running_ray_start_cluster_is_joined_not_crashed_into(isolated, listener) -> None:
    """Ray's own ray.init() joins the cluster `ray start` recorded in its temp folder;
    given num_cpus as well it raised an untyped ValueError. minjiang finds the same
    cluster first: it attaches, or says how to choose when --num-cpus asks otherwise."""
    from minjiang.core._cluster import ClusterError
    from minjiang.core._executors import _resolve_address, running_cluster

    assert running_cluster() is None
    assert _resolve_address(None, 2) == (None, None)  # nothing running: start our own
    ray_tmp = isolated / "raytmp" / "ray"
    ray_tmp.mkdir(parents=True)
    (ray_tmp / "ray_current_cluster").write_text(listener)
    address, found = _resolve_address(None, None)
    assert address == listener and "ray start" in found
    with pytest.raises(ClusterError, match="--new-cluster"):
        _resolve_address(None, 2)
    assert _resolve_address("local", 2) == (None, None)  # --new-cluster
    # a stale record (nothing listens) is not joined
    (ray_tmp / "ray_current_cluster").write_text("127.0.0.1:1")
    assert _resolve_address(None, 2) == (None, None)


def test_a_recorded_minjiang_cluster_comes_first(isolated, listener, demo) -> None:
    import time

    from minjiang.core._cluster import ClusterState, cluster_dir
    from minjiang.core._executors import _resolve_address

    state = ClusterState(
        address=listener,
        dashboard="http://127.0.0.1:1",
        token_path="",
        temp_dir="/tmp/x",
        node_ip="127.0.0.1",
        num_cpus=1,
        num_gpus=0,
        started=time.time(),
    )
    state.save(cluster_dir())
    assert _mode(cluster_dir() / "cluster.json") == 0o600
    address, found = _resolve_address(None, None)
    assert address == listener and str(cluster_dir()) in found
    pipe = demo.dir / "demo.yaml"
    pipe.write_text(demo.text)
    out = CliRunner().invoke(
        app,
        [
            "run",
            str(pipe),
            "--num-cpus",
            "2",
            "--store",
            str(isolated / "s"),
            "-i",
            f"cube={demo.cube}",
            "-i",
            f"regions={demo.regions}",
        ],
    )
    assert out.exit_code != 0
    assert "drop --num-cpus" in str(out.exception)


class _FakeNodes(http.server.BaseHTTPRequestHandler):
    """The dashboard's state API answering the node table (nothing else)."""

    nodes: ClassVar[list] = []
    token = "secret-token"
    seen: ClassVar[list] = []

    def do_GET(self):
        type(self).seen.append(self.path)
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps(
            {
                "data": {
                    "result": {
                        "result": [
                            {
                                "node_id": f"n{i}",
                                "node_ip": f"10.0.0.{i}",
                                "state": "ALIVE",
                                "resources_total": r,
                            }
                            for i, r in enumerate(self.nodes)
                        ]
                    }
                }
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_dashboard(monkeypatch, tmp_path):
    _FakeNodes.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeNodes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token = tmp_path / "token"
    token.write_text(_FakeNodes.token)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def demo(tmp_path):
    from minjiang.core._demo import DEMO_PIPELINE, make_demo_inputs

    cube, regions = make_demo_inputs(tmp_path / "data", years=1, ny=8, nx=8)
    return SimpleNamespace(text=DEMO_PIPELINE, cube=cube, regions=regions, dir=tmp_path)


def _submit(demo, address, pipeline_text, *extra):
    pipe = demo.dir / "pipe" / "demo.yaml"
    pipe.parent.mkdir(exist_ok=True)
    pipe.write_text(pipeline_text)
    args = [
        "submit",
        str(pipe),
        "--address",
        address,
        "--store",
        str(demo.dir / "store"),
        "-i",
        f"cube={demo.cube}",
        "-i",
        f"regions={demo.regions}",
        *extra,
    ]
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, args)


def test_tiny_budget_is_refused_before_the_cluster_is_contacted(
    isolated, demo, fake_dashboard
) -> None:
    from minjiang.core.errors import MemoryBudgetError

    out = _submit(demo, fake_dashboard, demo.text, "--memory-budget", "1KiB")
    assert isinstance(out.exception, MemoryBudgetError), out.output
    assert _FakeNodes.seen == []  # the node table was never asked for


def test_a_step_no_node_can_run_is_refused_before_sending(isolated, demo, fake_dashboard) -> None:
    from minjiang.core._cluster import InfeasibleTaskError

    _FakeNodes.nodes = [{"CPU": 4.0, "memory": 8.0 * 2**30}]
    text = demo.text.replace(
        "    params: {sigma: {time: 0, y: 1.5, x: 1.5}}\n",
        "    params: {sigma: {time: 0, y: 1.5, x: 1.5}}\n    resources: {licence: 1}\n",
    )
    assert text != demo.text
    out = _submit(demo, fake_dashboard, text)
    assert isinstance(out.exception, InfeasibleTaskError), out.output
    msg = str(out.exception)
    assert "step 'smooth'" in msg and "licence" in msg
    assert any(p.startswith("/api/v0/nodes") for p in _FakeNodes.seen)
    assert not any(p.startswith("/api/jobs") for p in _FakeNodes.seen)  # nothing was sent
    # the same pipeline on a cluster that has the resource: the plan is shown, then sent
    _FakeNodes.seen = []
    _FakeNodes.nodes = [{"CPU": 4.0, "memory": 8.0 * 2**30, "licence": 2.0}]
    out = _submit(demo, fake_dashboard, text)
    assert "plan: demo.sst_summary" in out.output and "smooth" in out.output
    assert "executor ray · 4 workers" in out.output
    # this stand-in has no job API: the submission itself is what fails
    assert "cannot reach the Ray job server" in str(out.exception) or any(
        p.startswith("/api/") and not p.startswith("/api/v0/nodes") for p in _FakeNodes.seen
    ), out.output


def test_a_wrong_token_is_named(isolated, demo, fake_dashboard, monkeypatch, tmp_path) -> None:
    from minjiang.core._cluster import ClusterError

    bad = tmp_path / "bad"
    bad.write_text("nope")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(bad))
    out = _submit(demo, fake_dashboard, demo.text)
    assert isinstance(out.exception, ClusterError)
    assert "HTTP 401" in str(out.exception) and "RAY_AUTH_TOKEN" in str(out.exception)


def test_unreachable_cluster_is_a_typed_error(isolated, demo) -> None:
    from minjiang.core._cluster import ClusterError

    out = _submit(demo, "http://127.0.0.1:1", demo.text)
    assert isinstance(out.exception, ClusterError), out.output
    assert "dashboard address" in str(out.exception)


def test_submit_without_check_skips_the_plan(isolated, demo) -> None:
    out = _submit(demo, "http://127.0.0.1:1", demo.text, "--no-check")
    assert "plan:" not in out.output
    assert "cannot reach the Ray job server" in str(out.exception)


def test_the_ray_start_record_is_found_where_ray_looks(isolated, monkeypatch) -> None:
    """minjiang finds the record without importing Ray; it must be Ray's own path."""
    from minjiang.core._executors import _ray_address_file
    from ray._common.utils import get_ray_address_file

    assert _ray_address_file() == Path(get_ray_address_file(None))
    monkeypatch.delenv("RAY_TMPDIR")
    monkeypatch.setenv("TMPDIR", str(isolated / "t"))
    assert _ray_address_file() == Path(get_ray_address_file(None))
