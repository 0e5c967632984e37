"""Several Ray nodes on one machine (``ray.cluster_utils.Cluster``): placement by custom
resources, a worker node lost mid-job, and a job resubmitted after the head restarted.

One cluster serves the module: a head and two worker nodes of one CPU each, with
custom resources that steer tasks (``pool_a`` on node a, ``licence`` on node b). It
runs in a host process of its own, with its own Ray temporary folder (``RAY_TMPDIR``,
so even the "current cluster" file Ray writes stays there) and token authentication;
the test sends it commands (remove a node, restart the cluster) over stdin. Each job
is a driver process joining the cluster through ``RAY_ADDRESS``, as ``minjiang run
--address`` does on a real cluster; the store is a folder all nodes share.

A task writes a marker naming the Ray node it ran on (``tests/core/_nodeops.py``), so
the tests read placement from the tasks themselves. Results are compared with the
``local`` executor's (the oracle): same chunk digests.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests._data import ingest_array
from tests.core import _nodeops

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SHAPE, CHUNKS = (48, 16), (4, 16)  # 12 chunks: 12 tasks of one chunk each

HOST = textwrap.dedent("""
    import json, sys
    import psutil
    from ray.cluster_utils import Cluster

    temp = sys.argv[1]
    common = dict(num_cpus=1, object_store_memory=80 * 2**20, temp_dir=temp,
                  include_dashboard=False, node_ip_address="127.0.0.1")

    def start(tries=3):
        # Ray gives a node 30 s to register; a busy machine can miss that: start again,
        # after removing what this process started
        for attempt in range(tries):
            cluster = None
            try:
                cluster = Cluster(initialize_head=True,
                                  head_node_args=dict(common, resources={"head": 1}))
                nodes = {"head": cluster.head_node,
                         "a": cluster.add_node(**common, resources={"pool_a": 1}),
                         "b": cluster.add_node(**common, resources={"licence": 1})}
                cluster.wait_for_nodes(timeout=120)
                return cluster, nodes
            except Exception:
                if attempt == tries - 1:
                    raise
                try:
                    if cluster is not None:
                        cluster.shutdown()
                except Exception:
                    pass
                for child in psutil.Process().children(recursive=True):
                    child.kill()

    def say(cluster, nodes, **more):
        print(json.dumps({"address": cluster.address,
                          "nodes": {k: n.node_id for k, n in nodes.items()}, **more}), flush=True)

    try:
        cluster, nodes = start()
        say(cluster, nodes)
        for line in sys.stdin:
            cmd = line.split()
            if cmd[0] == "remove":
                cluster.remove_node(nodes.pop(cmd[1]), allow_graceful=False)
            elif cmd[0] == "restart":
                cluster.shutdown()
                cluster, nodes = start()
            elif cmd[0] == "quit":
                break
            say(cluster, nodes)
        cluster.shutdown()
    finally:
        for child in psutil.Process().children(recursive=True):  # anything Ray left behind
            child.kill()
    print(json.dumps({"stopped": True}), flush=True)
""")

DRIVER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import minjiang as mj
    from tests.core import _nodeops

    events = []
    rt = mj.Runtime(store={store!r}, executor="ray", plugins=[_nodeops], memory_budget="6KiB")
    rt.subscribe(lambda e: events.append(e.kind))
    out = {{}}
    for step in {steps!r}:
        res = rt.run_pipeline({{"steps": [step]}}).results[step["id"]]
        out[step["id"]] = {{"id": res.id, "checksums": res.record.checksums,
                           "tasks": res.record.timings["tasks"]}}
    out["events"] = events
    out["nodes"] = rt.executor.describe()["nodes"]
    rt.close()
    print(json.dumps(out))
""")


class Host:
    """The process that holds the cluster; commands go to its stdin, state comes back."""

    def __init__(self, temp: Path, env: dict[str, str]) -> None:
        self.temp = temp
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOST, str(temp / "ray")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(temp / "host.log").open("w"),
            text=True,
            env=env,
        )
        self.state = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            log = (self.temp / "host.log").read_text()[-3000:]
            raise RuntimeError(f"the cluster host exited ({self.proc.wait()}): {log}")
        return dict(json.loads(line))

    def send(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        self.state = self._read()
        return self.state

    @property
    def address(self) -> str:
        return str(self.state["address"])

    def node(self, name: str) -> str:
        return str(self.state["nodes"][name])

    def close(self) -> None:
        try:
            self.send("quit")
            self.proc.wait(timeout=60)
        except (OSError, RuntimeError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Host]:
    temp = Path(tempfile.mkdtemp(prefix="mjmn-", dir="/tmp"))  # short: unix socket paths
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(
        RAY_TMPDIR=str(temp),  # Ray's "current cluster" file goes here, not /tmp/ray
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
        RAY_TQDM_PATCH_PRINT="0",
        PYTHONPATH=str(ROOT),
    )
    try:
        host = Host(temp, env)
        try:
            yield host
        finally:
            host.close()
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _driver(host: Host, store: Path, steps: list[dict], **popen: Any) -> subprocess.Popen:
    env = {**host.env, "RAY_ADDRESS": host.address}
    script = DRIVER.format(root=str(ROOT), store=str(store), steps=steps)
    return subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=store.parent,
        **popen,
    )


def _finish(proc: subprocess.Popen, timeout: float = 240) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-4000:]
    return dict(json.loads(out.strip().splitlines()[-1]))


def _values() -> np.ndarray:
    return np.random.default_rng(5).normal(size=SHAPE).astype(np.float32)


def _step(step_id: str, markers: Path, **more: Any) -> dict[str, Any]:
    markers.mkdir(parents=True, exist_ok=True)
    return {
        "id": step_id,
        "operator": "nodelab.where",
        "inputs": {"x": "t/x"},
        "params": {"markers": str(markers), **more.pop("params", {})},
        **more,
    }


def _placed(markers: Path) -> dict[int, set[str]]:
    """Task number -> the nodes its attempts ran on."""
    out: dict[int, set[str]] = {}
    for p in markers.iterdir():
        out.setdefault(int(p.name.split(".")[0]), set()).add(p.read_text())
    return out


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The chunk digests of the step on the local executor, and its task count."""
    import minjiang as mj

    tmp = tmp_path_factory.mktemp("multinode-oracle")
    with mj.Runtime(
        store=tmp / "store", executor="local", plugins=[_nodeops], memory_budget="1GiB"
    ) as rt:
        src = ingest_array(rt, tmp, "t/x", _values(), ("y", "x"), CHUNKS)
        res = rt.run("nodelab.where", inputs={"x": src}, params={"markers": str(tmp)})
        return {"checksums": json.loads(json.dumps(res.record.checksums))}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    import minjiang as mj

    with mj.Runtime(store=tmp_path / "store", executor="local") as rt:
        ingest_array(rt, tmp_path, "t/x", _values(), ("y", "x"), CHUNKS)
    return tmp_path / "store"


def test_a_custom_resource_steers_tasks_to_its_node(cluster: Host, store: Path) -> None:
    steps = [
        _step("licensed", store.parent / "m-licence", resources={"licence": 1}),
        _step("pooled", store.parent / "m-pool", resources={"pool_a": 1}),
    ]
    out = _finish(_driver(cluster, store, steps))
    assert out["nodes"] == 3
    licensed = _placed(store.parent / "m-licence")
    pooled = _placed(store.parent / "m-pool")
    assert len(licensed) == out["licensed"]["tasks"] > 1
    assert len(pooled) == out["pooled"]["tasks"] > 1
    assert set().union(*licensed.values()) == {cluster.node("b")}
    assert set().union(*pooled.values()) == {cluster.node("a")}
    print(f"placement: {len(licensed)} tasks on node b only, {len(pooled)} on node a only")


def test_a_worker_node_removed_mid_job_gives_identical_output(
    cluster: Host, store: Path, oracle: dict[str, Any]
) -> None:
    markers = store.parent / "m-lost"
    b = cluster.node("b")
    # a task on b holds until b is removed under it (one that finished there first
    # would not run again, and the test would say nothing about lost tasks)
    params = {"delay": 0.2, "hold_on": b}
    driver = _driver(cluster, store, [_step("lost", markers, params=params)])
    deadline = time.monotonic() + 180
    while not any(b in nodes for nodes in _placed(markers).values()):
        assert driver.poll() is None, "the job ended before a task ran on node b"
        assert time.monotonic() < deadline, "no task reached node b"
        time.sleep(0.1)
    on_b = {t for t, nodes in _placed(markers).items() if b in nodes}
    cluster.send("remove b")  # kills its raylet and its workers, the running task with them
    out = _finish(driver)
    placed = _placed(markers)
    assert out["lost"]["tasks"] == len(placed)
    assert out["lost"]["checksums"] == oracle["checksums"]
    # the tasks that were on b ran again elsewhere
    assert all(placed[t] - {b} for t in on_b), placed
    assert b not in cluster.state["nodes"].values()
    print(f"node b removed while it ran tasks {sorted(on_b)}; {len(placed)} tasks, same digests")


def test_a_job_resubmitted_after_a_head_restart_resumes(
    cluster: Host, store: Path, oracle: dict[str, Any]
) -> None:
    markers = store.parent / "m-resume"
    step = _step("resume", markers, params={"delay": 0.5})
    first = _driver(cluster, store, [step])
    done = 4

    def manifests() -> int:
        found = (store / "datasets").rglob("*.json")
        return sum(1 for p in found if "_tasks" in p.parts and not p.name.startswith("."))

    deadline = time.monotonic() + 180
    while manifests() < done:
        assert first.poll() is None, first.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the first job never finished 4 tasks"
        time.sleep(0.05)
    cluster.send("restart")  # the head and both workers go; a new cluster comes up
    first.kill()  # the job died with its cluster
    first.communicate()
    finished_before = manifests()
    out = _finish(_driver(cluster, store, [step]))
    kinds = out["events"]
    n = out["resume"]["tasks"]
    assert out["resume"]["checksums"] == oracle["checksums"]
    assert kinds.count("task_skipped") >= finished_before >= done
    assert kinds.count("task_finished") == n - kinds.count("task_skipped")
    print(
        f"resumed after a head restart: {finished_before} of {n} tasks had manifests, "
        f"{kinds.count('task_skipped')} skipped, {kinds.count('task_finished')} run"
    )
