"""minjiang cluster on a real Ray: locked down, attached to, refused when infeasible,
and the processes a driver starts end with it."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _cli(env, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "minjiang.core.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_SERVICE_PLUGIN = """
import os
import time
from pathlib import Path

from minjiang.core import ArrayOutput, Input, Map, Operator, hookimpl
from pydantic import BaseModel, ConfigDict

FACTOR = {factor}


class P(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    hold: str = "-"


def scale(arrays, params, ctx):
    if params.hold != "-":
        Path(params.hold + f".{{ctx.task}}.started").write_text(str(os.getpid()))
        while Path(params.hold).exists():  # a task that waits to be let go
            time.sleep(0.05)
    return {{"y": arrays["x"] * FACTOR}}


OP = Operator(
    name="svcprobe.scale", version="1", inputs=(Input("x"),), outputs=(ArrayOutput("y"),),
    pattern=Map(scale), params=P,
)


@hookimpl
def minjiang_register_operators():
    return [OP]
"""


def _install_plugin(site: Path, factor: float) -> Path:
    """``svcprobe``, a plugin distribution in ``site`` (on PYTHONPATH): one operator."""
    module = site / "svcprobe.py"
    module.write_text(_SERVICE_PLUGIN.format(factor=factor))
    dist = site / "svcprobe-1.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: svcprobe\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[minjiang]\nsvcprobe = svcprobe\n")
    (dist / "top_level.txt").write_text("svcprobe\n")
    return module


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("cluster")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    site = base / "site"
    site.mkdir()
    _install_plugin(site, 2.0)
    env.update(
        MINJIANG_CLUSTER_DIR=str(base / "state"),
        RAY_TMPDIR=str(base / "raytmp"),  # Ray's default temp folder, isolated
        COLUMNS="200",
        # the cluster (its run service, its workers) and the commands import the same
        PYTHONPATH=os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    env.pop("MINJIANG_JOB_ADDRESS", None)
    out = _cli(env, "cluster", "start", "--num-cpus", "1", timeout=400)
    state_file = base / "state" / "cluster.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else None
    try:
        assert out.returncode == 0, out.stdout + out.stderr
        yield {"env": env, "state": state, "base": base, "site": site}
    finally:
        stopped = _cli(env, "cluster", "stop")
        left = []
        if state is not None:  # whatever the stop missed, by this cluster's folder only
            from minjiang.core._cluster import cluster_processes, terminate

            pids = [tuple(p) for p in state["pids"]]
            left = cluster_processes(state["temp_dir"], pids, state["address"])
            terminate(left)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        # every process it started went with it (the Ray client server and the run
        # service included)
        assert not left, [" ".join(p.cmdline()[:3]) for p in left if p.is_running()]


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _get(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None


def test_cluster_is_locked_down(cluster) -> None:
    state = cluster["state"]
    token = Path(state["token_path"])
    assert _mode(token) == 0o600 and _mode(token.parent) == 0o700
    for root, dirs, _ in os.walk(state["temp_dir"]):
        for d in dirs:
            p = Path(root) / d
            if not p.is_symlink():
                assert _mode(p) == 0o700, p
    assert _mode(state["temp_dir"]) == 0o700
    # the run service: a socket only its user can open, a process the cluster owns
    assert _mode(state["run_socket"]) == 0o600
    assert Path(state["run_socket"]).parent == Path(state["temp_dir"])
    out = _cli(cluster["env"], "cluster", "status", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    status = json.loads(out.stdout)
    listening = status["listening"]
    # GCS, raylet (2), dashboard, its metrics, autoscaler metrics, agents (4+)
    assert len(listening) >= 8, listening
    exposed = [s for s in listening if s["address"] not in ("127.0.0.1", "::ffff:127.0.0.1")]
    assert exposed == [], exposed
    assert status["nodes"] and status["nodes"][0]["resources"]["CPU"] == 1.0
    assert status["run_service"] == "listening"
    # the job API wants the token
    assert _get(state["dashboard"] + "/api/jobs/")[0] == 401
    assert _get(state["dashboard"] + "/api/jobs/", token.read_text().strip())[0] == 200
    # a second start is refused while this one runs
    again = _cli(cluster["env"], "cluster", "start")
    assert again.returncode == 2 and "already running" in again.stderr


def _drivers(state) -> list[dict]:
    token = Path(state["token_path"]).read_text().strip()
    code, jobs = _get(state["dashboard"] + "/api/jobs/", token)
    assert code == 200
    return [j for j in jobs if j["type"] == "DRIVER"]


def test_commands_attach_to_the_cluster(cluster, tmp_path) -> None:
    from minjiang.core._demo import DEMO_PIPELINE, make_demo_inputs

    env, state = cluster["env"], cluster["state"]
    cube, regions = make_demo_inputs(tmp_path / "data", years=1, ny=8, nx=8)
    pipe = tmp_path / "pipe" / "demo.yaml"
    pipe.parent.mkdir()
    pipe.write_text(DEMO_PIPELINE)
    args = [str(pipe), "--store", str(tmp_path / "store"), "-i", f"cube={cube}"]
    args += ["-i", f"regions={regions}"]
    before = len(_drivers(state))
    out = _cli(env, "run", *args)
    assert out.returncode == 0, out.stdout + out.stderr
    # the cluster's run service drove it: no driver of its own, no note saying otherwise
    assert len(_drivers(state)) == before and "note:" not in out.stderr, out.stderr
    again = _cli(env, "run", *args)
    assert "all 6 steps reused" in again.stdout, again.stdout + again.stderr
    # a run told the cluster's address drives it from its own process, as a driver
    own = _cli({**env, "RAY_ADDRESS": state["address"]}, "run", *args, "--no-reuse")
    assert own.returncode == 0 and "computed" in own.stdout, own.stdout + own.stderr
    assert len(_drivers(state)) == before + 1
    # options that only apply to a Ray of its own are a typed error naming the choice
    clash = _cli(env, "run", *args, "--num-cpus", "2")
    assert clash.returncode == 2 and "--new-cluster" in clash.stderr, clash.stderr
    # submit and job find the cluster without --address; the plan is shown first
    sub = _cli(env, "submit", *args, "--wait", timeout=400)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    assert sub.stdout.index("plan: demo.sst_summary") < sub.stdout.index("submitted job")
    assert "reused from the catalog" in sub.stdout
    ls = _cli(env, "job", "ls")
    assert ls.returncode == 0 and "demo.yaml" in ls.stdout, ls.stdout + ls.stderr


def test_infeasible_run_is_refused_not_left_pending(cluster, tmp_path) -> None:
    from minjiang.core._demo import DEMO_PIPELINE, make_demo_inputs

    env = cluster["env"]
    cube, regions = make_demo_inputs(tmp_path / "data", years=1, ny=8, nx=8)
    text = DEMO_PIPELINE.replace(
        "    params: {sigma: {time: 0, y: 1.5, x: 1.5}}\n",
        "    params: {sigma: {time: 0, y: 1.5, x: 1.5}}\n    resources: {licence: 1}\n",
    )
    pipe = tmp_path / "demo.yaml"
    pipe.write_text(text)
    args = [str(pipe), "--store", str(tmp_path / "store"), "-i", f"cube={cube}"]
    args += ["-i", f"regions={regions}"]
    out = _cli(env, "run", *args, timeout=300)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "licence" in out.stderr and "array.gaussian" in out.stderr
    sub = _cli(env, "submit", *args)
    assert sub.returncode == 2 and "step 'smooth'" in sub.stderr and "licence" in sub.stderr


def test_ray_alone_crashes_where_minjiang_attaches(cluster, tmp_path) -> None:
    """The crash this guards against: with a cluster recorded in Ray's temp folder,
    ``ray.init(num_cpus=...)`` joins it and raises an untyped ValueError."""
    env = dict(cluster["env"])
    env["MINJIANG_CLUSTER_DIR"] = str(tmp_path / "no-cluster-here")
    ray_tmp = Path(env["RAY_TMPDIR"]) / "ray"
    ray_tmp.mkdir(parents=True, exist_ok=True)
    (ray_tmp / "ray_current_cluster").write_text(cluster["state"]["address"])
    env["RAY_AUTH_TOKEN_PATH"] = cluster["state"]["token_path"]
    try:
        raw = subprocess.run(
            [sys.executable, "-c", "import ray; ray.init(num_cpus=2)"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert raw.returncode != 0 and "ValueError" in raw.stderr
        from minjiang.core._demo import DEMO_PIPELINE, make_demo_inputs

        cube, regions = make_demo_inputs(tmp_path / "data", years=1, ny=8, nx=8)
        pipe = tmp_path / "demo.yaml"
        pipe.write_text(DEMO_PIPELINE)
        args = [str(pipe), "--store", str(tmp_path / "store"), "-i", f"cube={cube}"]
        args += ["-i", f"regions={regions}", "--num-cpus", "2"]
        out = _cli(env, "run", *args)
        assert out.returncode == 2, out.stdout + out.stderr
        assert "ray_current_cluster" in out.stderr and "drop --num-cpus" in out.stderr
    finally:
        (ray_tmp / "ray_current_cluster").unlink()


_DRIVER = textwrap.dedent(
    """
    import json, os, sys
    from minjiang.core._executors import RayExecutor
    from minjiang.core._cluster import cluster_processes, listening_sockets

    ex = RayExecutor(address="local", num_cpus=1)
    ray = ex.connect()
    assert ray.get(ray.remote(lambda: 7).remote()) == 7
    procs = cluster_processes(ex._temp_dir)
    print(json.dumps({
        "temp": ex._temp_dir,
        "procs": [[p.pid, p.create_time()] for p in procs],
        "sockets": listening_sockets(procs),
        "modes": {d: oct(os.stat(os.path.join(ex._temp_dir, d)).st_mode & 0o777)
                  for d in os.listdir(ex._temp_dir)},
    }), flush=True)
    if sys.argv[1] == "kill":
        os.kill(os.getpid(), 9)
    ex.close()
    """
)


@pytest.mark.parametrize("how", ["kill", "close"])
def test_a_local_ray_is_locked_down_and_ends_with_its_driver(tmp_path, how) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(MINJIANG_CLUSTER_DIR=str(tmp_path / "state"), RAY_TMPDIR=str(tmp_path / "rt"))
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER)
    out = subprocess.run(
        [sys.executable, str(script), how], env=env, capture_output=True, text=True, timeout=400
    )
    line = [x for x in out.stdout.splitlines() if x.startswith("{")]
    assert line, out.stdout + out.stderr
    info = json.loads(line[0])
    assert info["sockets"], "the local Ray listens somewhere"
    exposed = [s for s in info["sockets"] if s[2] not in ("127.0.0.1", "::ffff:127.0.0.1")]
    assert exposed == [], exposed
    assert set(info["modes"].values()) == {"0o700"}, info["modes"]
    if how == "kill":
        assert out.returncode == -9
    # every process that Ray started for it ends (agents and idle workers included)
    deadline = time.monotonic() + 30
    left = info["procs"]
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = [p for p in left if _alive(*p)]
    assert left == [], left
    deadline = time.monotonic() + 30
    while Path(info["temp"]).exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not Path(info["temp"]).exists()  # the token and Ray's files went with it


def _alive(pid: int, created: float) -> bool:
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - created) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# ------------------------------------------------------------------ warm workers
_WARM_PLUGIN = """
import os
from pathlib import Path

from minjiang.core import ArrayOutput, Input, Map, Operator, hookimpl
from pydantic import BaseModel, ConfigDict

FACTOR = {factor}


class P(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    markers: str


def scale(arrays, params, ctx):
    marks = Path(params.markers)
    Path(marks, f"{{ctx.task}}.{{os.getpid()}}").write_text("")
    if (marks / "die").exists():  # the worker dies under its task, once
        (marks / "die").unlink()
        os._exit(1)
    return {{"y": arrays["x"] * FACTOR}}


OP = Operator(
    name="warmprobe.scale", version="1", inputs=(Input("x"),), outputs=(ArrayOutput("y"),),
    pattern=Map(scale), params=P,
)


@hookimpl
def minjiang_register_operators():
    return [OP]
"""

_WARM_DRIVER = """
import json, sys
import numpy as np
import minjiang as mj
import warmprobe
from minjiang.core.testing import make_dataset

store, markers = sys.argv[1], sys.argv[2]
rt = mj.Runtime(store=store, executor="ray", plugins=[warmprobe])
x = make_dataset(rt, {"x": (("t", "y"), np.arange(12.0).reshape(3, 4))}, chunks=-1)
res = rt.run("warmprobe.scale", inputs={"x": x}, params={"markers": markers})
pool = rt.executor.warm_pool()
print(json.dumps({
    "y": res.to_xarray()["y"].values.tolist(),
    "created": pool.created, "replaced": pool.replaced, "size": len(pool.actors),
}), flush=True)
rt.close()
"""


def test_warm_workers_serve_later_runs_and_are_replaced_when_code_changes(
    cluster, tmp_path
) -> None:
    """The first run starts the warm worker, a second run's task runs in that same
    process, an edited plugin gets a fresh one, and a task whose warm worker dies
    under it runs again as a plain Ray task (the results right every time)."""
    assert cluster["state"]["warm_workers"] == 1  # one per CPU by default
    # beside the driver script: Ray puts the script's folder on its workers' path
    module = tmp_path / "warmprobe.py"
    module.write_text(_WARM_PLUGIN.format(factor=2.0))
    driver = tmp_path / "driver.py"
    driver.write_text(_WARM_DRIVER)
    env = cluster["env"]
    x = np.arange(12.0).reshape(3, 4)

    def run(n: int) -> tuple[dict, set[str]]:
        marks = tmp_path / f"marks{n}"
        marks.mkdir(exist_ok=True)
        if n == 4:
            (marks / "die").write_text("")
        out = subprocess.run(
            [sys.executable, str(driver), str(tmp_path / f"store{n}"), str(marks)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
        assert out.returncode == 0 and lines, out.stdout + out.stderr
        pids = {p.name.rsplit(".", 1)[1] for p in marks.iterdir() if p.name != "die"}
        return json.loads(lines[-1]), pids

    first, pids1 = run(1)
    assert first["y"] == (x * 2).tolist() and (first["created"], first["size"]) == (1, 1)
    second, pids2 = run(2)
    assert second["y"] == (x * 2).tolist()
    assert (second["created"], second["replaced"]) == (0, 0) and pids2 == pids1
    module.write_text(_WARM_PLUGIN.format(factor=3.0))
    later = time.time() + 5  # a new mtime even on a coarse clock
    os.utime(module, (later, later))
    third, pids3 = run(3)
    assert third["y"] == (x * 3).tolist()  # the edited code ran, not the warm copy
    assert (third["created"], third["replaced"]) == (1, 1) and pids3.isdisjoint(pids1)
    fourth, pids4 = run(4)
    assert fourth["y"] == (x * 3).tolist()
    assert len(pids4) == 2 and pids3 < pids4  # the warm worker, then a plain task


# ------------------------------------------------------------------ the run service
_SERVICE_PIPELINE = """\
name: svc.probe
version: "1"
inputs: [cube]
steps:
  - id: sst
    reader: array.zarr
    paths: $cube
  - id: scaled
    operator: svcprobe.scale
    inputs: {{x: sst}}
    params: {{hold: {hold}}}
    name: probe/scaled
"""


def _listening(path: str) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
            return True
        except OSError:
            return False


def test_run_service_serves_runs_stops_them_and_restarts_for_new_code(cluster, tmp_path) -> None:
    """``minjiang run`` goes through the cluster's run service: the same output, exit
    status and typed errors; Ctrl-C stops the run (the same command resumes it); a
    second run while one runs drives Ray itself; an edited plugin is never run stale."""
    import xarray as xr
    from minjiang.core._demo import make_demo_inputs

    env, state = cluster["env"], cluster["state"]
    cube, _ = make_demo_inputs(tmp_path / "data", years=1, ny=8, nx=8)
    sst = xr.open_zarr(cube, consolidated=False)["sst"].values
    drivers = len(_drivers(state))

    def args(store: str, hold: str = "-") -> list[str]:
        pipe = tmp_path / f"probe-{store}.yaml"
        pipe.write_text(_SERVICE_PIPELINE.format(hold=json.dumps(hold)))
        return [str(pipe), "--store", str(tmp_path / store), "-i", f"cube={cube}"]

    def scaled(store: str) -> np.ndarray:
        import minjiang as mj

        return mj.open("probe/scaled", store=str(tmp_path / store))["y"].values

    served = _cli(env, "run", *args("s1"))
    assert served.returncode == 0 and "note:" not in served.stderr, served.stdout + served.stderr
    assert "scaled" in served.stdout and "computed" in served.stdout
    np.testing.assert_array_equal(scaled("s1"), sst * 2.0)
    # a typed error comes back as the one red line and exit status 2
    bad = _cli(env, "run", *args("s1")[:3], "-i", "cube=/no/such")
    assert bad.returncode == 2 and "error:" in bad.stderr and "/no/such" in bad.stderr
    assert "note:" not in bad.stderr and "Traceback" not in bad.stderr
    assert len(_drivers(state)) == drivers  # both were driven by the service

    # Ctrl-C: the run stops, as in-process; while it was held, another run drove itself
    hold = tmp_path / "hold"
    hold.write_text("")
    held = subprocess.Popen(
        [sys.executable, "-m", "minjiang.core.cli", "run", *args("s2", str(hold))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as at a terminal: a test run in the background inherits SIGINT ignored, and
        # Python then keeps ignoring it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("hold.*.started")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(tmp_path.glob("hold.*.started")), "the held task never started"
    busy = _cli(env, "run", *args("s3"))
    assert busy.returncode == 0 and "busy with another run" in busy.stderr, busy.stderr
    np.testing.assert_array_equal(scaled("s3"), sst * 2.0)
    held.send_signal(signal.SIGINT)
    try:  # the run stops while its task still holds, as it would in-process
        stdout, stderr = held.communicate(timeout=120)
    finally:
        hold.unlink()  # let the task go (its worker then serves the next run)
    assert held.returncode == 130 and "interrupted" in stderr, stdout + stderr
    resumed = _cli(env, "run", *args("s2", str(hold)))
    assert resumed.returncode == 0 and "note:" not in resumed.stderr, resumed.stderr
    np.testing.assert_array_equal(scaled("s2"), sst * 2.0)

    # an edited plugin: the service refuses that run (driven in its own process, with
    # the new code) and restarts, so the next run it serves runs the new code too
    module = _install_plugin(cluster["site"], 3.0)
    later = time.time() + 5  # a new mtime even on a coarse clock
    os.utime(module, (later, later))
    edited = _cli(env, "run", *args("s4"))
    assert edited.returncode == 0 and "svcprobe.py changed" in edited.stderr, edited.stderr
    np.testing.assert_array_equal(scaled("s4"), sst * 3.0)
    deadline = time.monotonic() + 120
    while not _listening(state["run_socket"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    fresh = _cli(env, "run", *args("s5"))
    assert fresh.returncode == 0 and "note:" not in fresh.stderr, fresh.stderr
    np.testing.assert_array_equal(scaled("s5"), sst * 3.0)
