"""What staging leaves and what it reads: leftovers of a killed driver are removed by
the next run, a lost partial state is an error (never fill values), task table parts
carry the chunk digest, and a planned ingest has the chunks the ingest will write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests._data import ingest_array


def _staging_files(runtime, did: str) -> list[str]:
    root = Path(runtime.store.local_path(f"datasets/{did}"))
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0].startswith("_")
    )


def _leave_staging(runtime, did: str) -> None:
    """What a driver killed after publishing (before its cleanup) leaves under ``did``."""
    from minjiang.storage import Staging

    for staging in (Staging(runtime.store, did), Staging(runtime.store, did, recompute=True)):
        staging.write_manifest("map/000000", {"checksums": {}, "tables": {}})
        staging.scratch.create({})
        staging.write_partial_part("000000", {"s": np.arange(2)})


@pytest.mark.parametrize("reuse", [True, False])
def test_a_later_run_removes_staging_left_under_a_committed_dataset(
    runtime, tmp_path, rng, reuse
) -> None:
    x = rng.normal(size=(8, 6))
    src = ingest_array(runtime, tmp_path, "test/s", x, ("y", "x"), (4, 6))
    params = {"sigma": 1}
    first = runtime.run("array.gaussian", inputs={"x": src}, params=params)
    root = Path(runtime.store.local_path(f"datasets/{first.id}"))
    committed = {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    _leave_staging(runtime, first.id)
    assert {p.split("/")[0] for p in _staging_files(runtime, first.id)} == {
        "_tasks",
        "_scratch",
        "_recompute",
    }
    again = runtime.run("array.gaussian", inputs={"x": src}, params=params, reuse=reuse)
    assert again.id == first.id
    assert _staging_files(runtime, first.id) == []
    after = {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    assert after == committed


def test_a_lost_partial_state_is_an_error_not_fill(runtime, tmp_path, rng, monkeypatch) -> None:
    """A partial-state chunk deleted between the partial and combine stages of a real
    reduce is a MissingChunkError naming the chunk; nothing is committed."""
    from minjiang.core._runtime import Runtime
    from minjiang.errors import MissingChunkError

    x = rng.normal(size=(80, 12, 10))
    src = ingest_array(runtime, tmp_path, "test/r", x, ("time", "y", "x"), (5, 6, 10))
    rt = Runtime(store=runtime.store.url, executor="local", memory_budget="48KiB")
    pipe = {
        "steps": [
            {
                "id": "m",
                "operator": "array.reduce",
                "inputs": {"x": src.id},
                "params": {"dims": ["time"], "stat": "mean"},
            }
        ]
    }
    plan = rt.plan(pipe)
    (step,) = plan.steps[-1:]
    assert [s.name for s in step.stages] == ["partial", "combine"]
    real = rt.executor.run
    deleted: list[str] = []

    def run(tasks, on_result):
        if tasks and tasks[0].key.startswith("combine/"):
            root = Path(rt.store.local_path(f"datasets/{step.dataset_id}/_scratch"))
            chunk = next(
                p
                for p in sorted(root.rglob("*"))
                if p.is_file() and "c" in p.parts and any(q.startswith("state_") for q in p.parts)
            )
            chunk.unlink()
            deleted.append(str(chunk))
        return real(tasks, on_result)

    monkeypatch.setattr(rt.executor, "run", run)
    with pytest.raises(MissingChunkError, match=r"chunk .*state_") as err:
        rt.run_pipeline(pipe)
    assert deleted and step.dataset_id in str(err.value)
    assert not rt.catalog.exists(step.dataset_id)
    rt.close()


def test_staging_scratch_group_refuses_a_missing_chunk(tmp_path: Path) -> None:
    from minjiang.errors import MissingChunkError
    from minjiang.storage import Staging, open_store

    store = open_store(str(tmp_path / "store"))
    staging = Staging(store, "abc")
    staging.scratch.create({})
    staging.scratch.create_array("state_n", shape=(4,), dtype="int64", chunks=(2,), dims=("p",))
    staging.scratch.write_region("state_n", (slice(0, 4),), np.arange(4))
    np.testing.assert_array_equal(staging.scratch_group()["state_n"][:], np.arange(4))
    store.delete(f"{staging.scratch.arrays_prefix}/state_n/c/1")
    with pytest.raises(MissingChunkError, match=r"'c/1'.*'abc'"):
        staging.scratch_group()["state_n"][:]


def test_task_table_parts_carry_the_chunk_digest(runtime, tmp_path, rng) -> None:
    from minjiang.storage import verify_dataset
    from minjiang.storage._digest import CHUNK_ALGORITHM

    x = rng.normal(size=(12, 10))
    labels = (np.arange(120).reshape(12, 10) % 3).astype("int32")
    xs = ingest_array(runtime, tmp_path, "test/v", x, ("y", "x"), (6, 5))
    ls = ingest_array(runtime, tmp_path, "test/l", labels, ("y", "x"), (6, 5))
    res = runtime.run("array.label_stats", inputs={"values": xs, "labels": ls}, params={})
    digests = [d for parts in res.record.tables.values() for d in parts.values()]
    assert digests and all(d.startswith(f"{CHUNK_ALGORITHM}:") for d in digests)
    assert verify_dataset(runtime.store, res.record).ok


def test_a_planned_ingest_has_the_chunks_the_ingest_writes(
    runtime, tmp_path, rng, monkeypatch
) -> None:
    """A reader asking for the full extent (-1) on one dim and naming none of the
    others: the planned info, the written arrays and a step planned on it agree."""
    from minjiang.plugins.array._operators import ZarrReader
    from minjiang.storage import open_dataset_info

    from tests._data import write_zarr

    x = rng.normal(size=(6, 400, 1000)).astype("float32")  # 9.6 MB: default chunks split it
    path = write_zarr(tmp_path / "big.zarr", {"data": (("time", "y", "x"), x)})
    monkeypatch.setattr(ZarrReader, "chunks", lambda self, ds, params: {"time": -1})
    pipe = {
        "steps": [
            {"id": "src", "reader": "array.zarr", "paths": [str(path)]},
            {
                "id": "m",
                "operator": "array.reduce",
                "inputs": {"x": "src"},
                "params": {"dims": ["time"], "stat": "max"},
            },
        ]
    }
    plan = runtime.plan(pipe)
    planned = plan.steps[0].info.arrays["data"].chunks
    assert planned[0] == 6 and all(c > 0 for c in planned)
    res = runtime.run_pipeline(pipe)
    written = open_dataset_info(runtime.store, plan.outputs["src"]).arrays["data"].chunks
    assert planned == written
    np.testing.assert_array_equal(runtime.open(res.results["m"])["max"].values, x.max(axis=0))
