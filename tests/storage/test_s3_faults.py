"""Object storage under faults: an ``s3://`` store behind a fault-injecting proxy.

moto's standalone server runs on loopback (``s3_endpoint``); :class:`FaultProxy` sits
between s3fs and it, and the stores under test talk only to the proxy. The proxy
answers 500/503 itself, resets connections before or after forwarding (the server
applied the request but the client never hears so), truncates response bodies and
holds responses past the client's read timeout, on the requests its rules select.

The promises tried here:

* retries are bounded: a transient fault is retried and the operation succeeds; a
  fault that persists ends, after at most ``S3_MAX_ATTEMPTS * S3_CALL_RETRIES``
  attempts, in a ``StoreError`` naming the store, the key and the fix — on the store's
  own calls and on zarr's chunk I/O alike, never a hang or a bare client exception;
* results are identical: ingest → a pipeline step on Ray → verify → open with xarray
  under faults gives the digests of a fault-free run;
* commits are atomic: a failed commit leaves no record, a retried one exactly one;
* credentials never appear in store files, records, captured logs (the driver's and
  Ray's) or error messages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from minjiang.errors import StoreError
from minjiang.storage import ObjectStore, open_store, verify_dataset
from minjiang.storage._store import S3_CALL_RETRIES, S3_MAX_ATTEMPTS

from tests._data import ingest_array
from tests.storage._s3proxy import Fault, FaultProxy

from .conftest import BUCKET

#: A secret that must never be written anywhere: the tests grep for it.
SECRET = f"mjsecret{uuid.uuid4().hex}"
ACCESS_KEY = "minjiang-faults"
READ_TIMEOUT = 1.0  # seconds: a "slow" fault holds a response longer than this
MAX_TRIES = S3_MAX_ATTEMPTS * S3_CALL_RETRIES
CHUNK = r"/arrays\.zarr/[^/]+/c/"
RECORD = r"/catalog/records/[0-9a-f]+\.json"

SHAPE, CHUNKS = (32, 32), (8, 16)  # 8 chunks
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def proxy(s3_endpoint: str) -> Iterator[FaultProxy]:
    parsed = urlparse(s3_endpoint)
    with FaultProxy((parsed.hostname or "127.0.0.1", int(parsed.port or 80))) as p:
        yield p


@pytest.fixture
def faults(proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The proxy with no rules and an empty request log; rules are dropped afterwards."""
    proxy.clear()
    yield proxy
    proxy.clear()


#: Options for a store that gives up sooner (2 x 2 attempts): tests of persistent 5xx
#: faults, whose jittered back-off would otherwise take 10-15 s each.
QUICK = {"retries": 2, "config_kwargs": {"retries": {"mode": "standard", "total_max_attempts": 2}}}


def _options(proxy: FaultProxy, extra: dict | None = None) -> dict:
    config = {"read_timeout": READ_TIMEOUT, "connect_timeout": READ_TIMEOUT}
    extra = dict(extra or {})
    config.update(extra.pop("config_kwargs", {}))
    return {
        "endpoint_url": proxy.endpoint,
        "key": ACCESS_KEY,
        "secret": SECRET,
        "client_kwargs": {"region_name": "us-east-1"},
        "config_kwargs": config,
        **extra,
    }


def _store(proxy: FaultProxy, extra: dict | None = None) -> ObjectStore:
    st = open_store(
        f"s3://{BUCKET}/faults-{uuid.uuid4().hex}", storage_options=_options(proxy, extra)
    )
    assert isinstance(st, ObjectStore)
    return st


def _max_tries(st: ObjectStore) -> int:
    botocore = st.storage_options["config_kwargs"]["retries"]["total_max_attempts"]
    return int(botocore) * st.call_retries


def _messages(err: BaseException) -> str:
    """The text of an error and every error it was raised from."""
    out, seen, cur = [], set(), err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        out += [str(cur), repr(cur)]
        cur = cur.__cause__ or cur.__context__
    return "\n".join(out)


# ------------------------------------------------------------------ store calls

TRANSIENT = {
    "500": Fault("status", status=500, times=2),
    "503": Fault("status", status=503, times=2),
    "reset": Fault("reset", times=2),
    "reset-after-forwarding": Fault("reset_after", times=2),
    "slow": Fault("slow", delay=READ_TIMEOUT + 1.0, times=1),
}


@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize("name", list(TRANSIENT))
def test_a_transient_fault_is_retried(faults: FaultProxy, name: str, method: str) -> None:
    st = _store(faults)
    data = np.arange(300, dtype="<i4").tobytes()
    st.write_bytes("obj/x", data)
    faults.clear()
    rule = TRANSIENT[name]
    faults.add(Fault(rule.kind, method=method, path="/obj/x$", **_args(rule)))
    if method == "GET":
        assert st.read_bytes("obj/x") == data
    else:
        st.write_bytes("obj/x", data[::-1])
        assert st.read_bytes("obj/x") == data[::-1]
    tried = faults.matching(method, "/obj/x$")
    hit = [r for r in tried if r.fault]
    assert len(hit) == rule.times
    assert len(tried) == rule.times + 1  # the faulted attempts, then one that succeeded


def test_a_truncated_body_is_read_again(faults: FaultProxy) -> None:
    st = _store(faults)
    data = bytes(range(256)) * 8
    st.write_bytes("obj/t", data)
    faults.clear()
    faults.add(Fault("truncate", method="GET", path="/obj/t$", keep=100, times=2))
    assert st.read_bytes("obj/t") == data
    assert [r.fault for r in faults.matching("GET", "/obj/t$")] == ["truncate", "truncate", None]


def _args(rule: Fault) -> dict:
    return {"status": rule.status, "keep": rule.keep, "delay": rule.delay, "times": rule.times}


PERSISTENT = {
    "500": (Fault("status", status=500, times=None), QUICK),
    "503": (Fault("status", status=503, times=None), QUICK),
    "reset": (Fault("reset", times=None), None),
    "truncate": (Fault("truncate", keep=3, times=None), None),
}


def test_the_store_sets_bounded_retries_explicitly(s3_endpoint: str) -> None:
    st = ObjectStore(f"s3://{BUCKET}/defaults")
    config = st.storage_options["config_kwargs"]
    assert config["retries"] == {"mode": "standard", "total_max_attempts": S3_MAX_ATTEMPTS}
    assert config["connect_timeout"] > 0 and config["read_timeout"] > 0
    assert st.call_retries == S3_CALL_RETRIES and st.fs.retries == S3_CALL_RETRIES
    assert _max_tries(st) == MAX_TRIES
    assert st.zarr_store("z").fs.retries == S3_CALL_RETRIES  # zarr's chunk I/O too
    mine = ObjectStore(f"s3://{BUCKET}/x", {"config_kwargs": {"read_timeout": 3}, "retries": 1})
    assert mine.storage_options["config_kwargs"]["read_timeout"] == 3
    assert mine.storage_options["config_kwargs"]["retries"]["total_max_attempts"] == 4
    assert "retries" not in mine.storage_options and mine.call_retries == 1


@pytest.mark.parametrize("name", list(PERSISTENT))
def test_a_persistent_fault_is_a_bounded_store_error(faults: FaultProxy, name: str) -> None:
    rule, extra = PERSISTENT[name]
    st = _store(faults, extra)
    st.write_bytes("obj/p", b"payload" * 64)
    faults.clear()
    faults.add(Fault(rule.kind, path="/obj/p$", **_args(rule)))
    t0 = time.perf_counter()
    with pytest.raises(StoreError) as info:
        st.read_bytes("obj/p")
    seconds = time.perf_counter() - t0
    msg = str(info.value)
    assert st.url in msg and "'obj/p'" in msg, msg
    assert "total_max_attempts" in msg and "reachable" in msg, msg  # the fix
    tried = faults.matching(None, "/obj/p$")
    # a read is a HEAD (its size) then a GET: either may be the request that gave up
    heads = [r for r in tried if r.method == "HEAD"]
    gets = [r for r in tried if r.method == "GET"]
    assert 1 < len(heads) + len(gets), tried
    assert len(heads) <= _max_tries(st) and len(gets) <= _max_tries(st), tried
    assert SECRET not in _messages(info.value)
    print(
        f"persistent {name}: {len(heads)} HEAD + {len(gets)} GET, StoreError after {seconds:.2f} s"
    )


def test_exists_does_not_mistake_a_failing_server_for_a_missing_key(faults: FaultProxy) -> None:
    st = _store(faults, QUICK)
    st.write_bytes("obj/e", b"here")
    faults.add(Fault("status", status=500, path="/obj/e", times=None))
    with pytest.raises(StoreError, match="cannot test 'obj/e'"):
        st.exists("obj/e")


def test_zarr_chunk_io_failures_are_store_errors(faults: FaultProxy) -> None:
    import zarr

    st = _store(faults, QUICK)
    group = zarr.open_group(st.zarr_store("z"), mode="w", zarr_format=3)
    arr = group.create_array("a", shape=(4,), chunks=(2,), dtype="f8")
    faults.add(Fault("reset", method="PUT", path="/z/a/c/", times=None))
    with pytest.raises(StoreError) as info:
        arr[:] = np.arange(4.0)
    assert f"{st.url}/z" in str(info.value) and "c/" in str(info.value)
    faults.clear()
    arr[:] = np.arange(4.0)
    faults.add(Fault("status", status=500, method="GET", path="/z/a/c/", times=None))
    with pytest.raises(StoreError, match="cannot read"):
        arr[:]


# ------------------------------------------------------------------ commits


def test_a_create_whose_answer_was_lost_counts_once(faults: FaultProxy) -> None:
    st = _store(faults)
    # the first conditional PUT reaches the server; the client hears nothing and retries
    faults.add(Fault("reset_after", method="PUT", path="/once$", times=1))
    assert st.create_bytes("once", b"mine") is True
    assert [r.status for r in faults.matching("PUT", "/once$")] == [200, 412]
    assert st.create_bytes("once", b"theirs") is False  # a real second creator still loses
    assert st.read_bytes("once") == b"mine"


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The fault-free run: a local store and the local executor."""
    import minjiang as mj

    tmp = tmp_path_factory.mktemp("s3-oracle")
    with mj.Runtime(store=tmp / "store", executor="local", memory_budget="16KiB") as rt:
        src = ingest_array(rt, tmp, "t/x", _values(), ("y", "x"), CHUNKS)
        res = rt.run("array.gaussian", inputs={"x": src}, params={"sigma": 1.0})
        return {
            "source_id": src.id,
            "source": json.loads(json.dumps(src.record.checksums)),
            "id": res.id,
            "out": json.loads(json.dumps(res.record.checksums)),
        }


def _values() -> np.ndarray:
    return np.random.default_rng(7).normal(size=SHAPE).astype(np.float32)


def _records(st: ObjectStore) -> list[str]:
    return st.list("catalog/records")


def test_a_failed_commit_leaves_no_record_and_a_rerun_exactly_one(
    faults: FaultProxy, tmp_path: Path, oracle: dict
) -> None:
    import minjiang as mj

    st = _store(faults, QUICK)
    with mj.Runtime(store=st, executor="local", memory_budget="16KiB") as rt:
        src = ingest_array(rt, tmp_path, "t/x", _values(), ("y", "x"), CHUNKS)
        before = _records(st)
        faults.add(Fault("status", status=500, method="PUT", path=RECORD, times=None))
        with pytest.raises(StoreError) as info:
            rt.run("array.gaussian", inputs={"x": src}, params={"sigma": 1.0}, name="t/y")
        assert "catalog/records/" in str(info.value)
        assert SECRET not in _messages(info.value)
        assert _records(st) == before  # no record, not even a partial one
        assert not st.exists("catalog/names/t/y.json")
        failed_puts = len(faults.matching("PUT", RECORD))
        assert 1 < failed_puts <= _max_tries(st)
        faults.clear()
        # the next commit's first answer is lost after the server stored the record
        faults.add(Fault("reset_after", method="PUT", path=RECORD, times=1))
        res = rt.run("array.gaussian", inputs={"x": src}, params={"sigma": 1.0}, name="t/y")
        kinds = [e.kind for e in rt.last_run_events]
    records = _records(st)
    assert records == sorted([*before, f"catalog/records/{res.id}.json"])
    assert res.id == oracle["id"]
    assert json.loads(json.dumps(res.record.checksums)) == oracle["out"]
    assert "task_finished" not in kinds  # every task resumed from its manifest
    assert st.exists(f"catalog/index/{res.id}.json")  # the retried create counted as ours
    assert verify_dataset(st, res.id).ok
    print(f"persistent 500 on the record PUT: {failed_puts} attempts, then StoreError")


# ------------------------------------------------------------------ end to end

# The driver of the end-to-end run. It is a separate process that starts its own local
# Ray (the runtime's, in a private temporary folder), configured as an operator
# configures a cluster: the endpoint (the proxy) and the credentials come from the
# environment, which Ray's workers inherit, because tasks open the store by its URL.
DRIVER = textwrap.dedent("""
    import json, logging, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    logging.basicConfig(filename={log!r}, level=logging.DEBUG)
    import numpy as np
    import xarray as xr
    import minjiang as mj
    from minjiang.storage import verify_dataset
    from tests._data import ingest_array

    import os, time

    def ray_files():
        # this Ray's session folder (logs included), read before the runtime removes it
        import ray
        secret = os.environ["AWS_SECRET_ACCESS_KEY"].encode()
        session = Path(ray._private.worker._global_node.get_session_dir_path())
        files = [p for p in session.rglob("*") if p.is_file() and not p.is_symlink()]
        return [len(files), [str(p) for p in files if secret in p.read_bytes()]]

    t0 = time.perf_counter()
    values = np.random.default_rng(7).normal(size={shape!r}).astype(np.float32)
    # two Ray workers share the budget (12 KiB per task): several tasks per worker
    with mj.Runtime(store={url!r}, executor="ray", memory_budget="24KiB") as rt:
        t1 = time.perf_counter()
        src = ingest_array(rt, Path({tmp!r}), "t/x", values, ("y", "x"), {chunks!r})
        t2 = time.perf_counter()
        res = rt.run("array.gaussian", inputs={{"x": src}}, params={{"sigma": 1.0}}, name="t/y")
        t3 = time.perf_counter()
        report = verify_dataset(rt.store, res.id)
        got = res.to_xarray()["data"].values
        group = rt.store.zarr_store(f"datasets/{{res.id}}/arrays.zarr", read_only=True)
        plain = xr.open_zarr(group, consolidated=True)["data"].values
        print(json.dumps({{
            "source": [src.id, dict(src.record.checksums)],
            "out": [res.id, dict(res.record.checksums)],
            "tasks": res.record.timings["tasks"],
            "verify_ok": report.ok,
            "problems": [str(p) for p in report.problems],
            "xarray_equal": bool(np.array_equal(got, plain)),
            "record": res.record.to_json().decode(),
            "ray_files": ray_files(),
            "seconds": {{"start": t1 - t0, "ingest": t2 - t1, "step": t3 - t2,
                        "verify_and_open": time.perf_counter() - t3}},
        }}))
""")


@pytest.mark.slow
def test_ingest_pipeline_verify_open_under_faults_on_ray(
    faults: FaultProxy, tmp_path: Path, oracle: dict
) -> None:
    prefix = f"e2e-{uuid.uuid4().hex}"
    url = f"s3://{BUCKET}/{prefix}"
    log = tmp_path / "driver.log"
    faults.add(
        # chunk writes of the ingest and of the step's tasks (on Ray workers)
        Fault("status", status=503, method="PUT", path=CHUNK, skip=1, times=3),
        Fault("reset", method="PUT", path=CHUNK, skip=6, times=2),
        Fault("reset_after", method="PUT", path=CHUNK, skip=12, times=2),
        Fault("slow", method="PUT", path=CHUNK, skip=16, times=2, delay=1.5),
        # chunk reads by the step's tasks, verify and xarray
        Fault("truncate", method="GET", path=CHUNK, keep=7, skip=2, times=2),
        Fault("status", status=500, method="GET", path=CHUNK, skip=9, times=3),
        Fault("slow", method="GET", path=CHUNK, skip=20, times=1, delay=1.5),
        # task manifests, metadata and the commits
        Fault("status", status=503, method="PUT", path=r"/_tasks/", times=2),
        Fault("reset", method="GET", path=r"zarr\.json$", skip=3, times=2),
        Fault("reset_after", method="PUT", path=RECORD, times=2),
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "RAY_", "MINJIANG_STORE")) and k != "TMPDIR"
    }
    env.update(
        AWS_ENDPOINT_URL=faults.endpoint,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_DEFAULT_REGION="us-east-1",
    )
    script = DRIVER.format(
        root=str(ROOT),
        log=str(log),
        url=url,
        tmp=str(tmp_path),
        shape=SHAPE,
        chunks=CHUNKS,
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
        cwd=tmp_path,
    )
    seconds = time.perf_counter() - t0
    hit = faults.faulted()
    requests = len(faults.requests)
    faults.clear()
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    print("driver seconds", out["seconds"])
    assert out["verify_ok"], out["problems"]
    assert out["xarray_equal"]
    assert out["tasks"] >= 4
    # identical results: the ids and chunk digests of the fault-free run
    assert out["source"] == [oracle["source_id"], oracle["source"]]
    assert out["out"] == [oracle["id"], oracle["out"]]
    # one record per dataset, each committed once although its answers were lost
    check = open_store(url, storage_options=_options(faults))
    assert isinstance(check, ObjectStore)
    records = _records(check)
    assert records == sorted(
        f"catalog/records/{i}.json" for i in (oracle["source_id"], oracle["id"])
    )
    kinds = {r.fault for r in hit}
    assert kinds == {"status", "reset", "reset_after", "slow", "truncate"}, kinds
    print(
        f"end to end on Ray under faults: {requests} requests, {len(hit)} faulted "
        f"({', '.join(f'{k} {sum(r.fault == k for r in hit)}' for k in sorted(kinds))}), "
        f"{seconds:.1f} s, {out['tasks']} tasks"
    )

    # credentials are never written anywhere: store objects, the record, the driver's
    # DEBUG log (botocore, s3fs, minjiang), its output, Ray's session files and logs
    written = {key: check.read_bytes(key) for key in check.list("")}
    assert len(written) > 10
    assert [k for k, v in written.items() if SECRET.encode() in v] == []
    assert SECRET not in out["record"]
    text = log.read_text()
    assert ACCESS_KEY in text  # botocore logged its signed requests, without the secret
    assert SECRET not in text
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    n_ray_files, leaked_ray = out["ray_files"]
    assert n_ray_files > 10 and leaked_ray == []


def test_tasks_open_the_store_as_the_driver_configured_it(
    faults: FaultProxy, tmp_path: Path
) -> None:
    import pickle

    import minjiang as mj
    from minjiang.core._tasks import TaskIO

    st = _store(faults, QUICK)
    with mj.Runtime(store=st, executor="local", memory_budget="16KiB") as rt:
        src = ingest_array(rt, tmp_path, "t/x", _values(), ("y", "x"), CHUNKS)
        plan = rt.plan(
            {
                "steps": [
                    {
                        "id": "g",
                        "operator": "array.gaussian",
                        "inputs": {"x": src.id},
                        "params": {"sigma": 1.0},
                    }
                ]
            }
        )
    specs = [t for s in plan.steps[0].stages for t in s.tasks]
    assert specs
    for spec in specs:
        # what Ray keeps of a task: its pickled spec, with no credential in it
        assert SECRET.encode() not in pickle.dumps(spec) and ACCESS_KEY not in repr(spec)
        assert spec.store_options == st.shared_options()
    opened = TaskIO(specs[0]).store
    assert isinstance(opened, ObjectStore)
    assert opened.endpoint == faults.endpoint  # through the proxy, not $AWS_ENDPOINT_URL
    assert opened.storage_options["config_kwargs"]["read_timeout"] == READ_TIMEOUT
    assert opened.call_retries == st.call_retries
