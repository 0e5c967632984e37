"""What a task reports about its I/O: bytes decoded against bytes needed (decode
amplification) and CPU seconds by phase, and that its writes read nothing back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from minjiang.core._planner import ArrayRead
from minjiang.storage import Store
from minjiang.storage._encoding import ChunkCodec

from tests._data import ingest_array

CHUNKS = (120, 32, 32)


@pytest.fixture
def pencils(runtime: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A pencil cube that a Gaussian (halo 8 along y and x) splits over two workers."""
    from minjiang.core._executors import LocalExecutor

    x = np.random.default_rng(1).normal(size=(120, 96, 160)).astype(np.float32)
    src = ingest_array(runtime, tmp_path, "test/pencils", x, ("time", "y", "x"), CHUNKS)
    monkeypatch.setattr(LocalExecutor, "workers", lambda self: 2)
    return src


def test_decode_amplification_of_a_halo_step(
    runtime: Any, pencils: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = {
        "id": "g",
        "operator": "array.gaussian",
        "inputs": {"x": pencils.id},
        "params": {"sigma": 2},
    }
    (g,) = runtime.plan({"steps": [step]}).steps
    reads = {
        t.key: [r.read for r in t.reads if isinstance(r, ArrayRead)]
        for s in g.stages
        for t in s.tasks
    }
    assert len(reads) >= 2
    # every chunk the tasks decode, counted where it is decoded
    decoded: list[tuple[int, ...]] = []
    original = ChunkCodec.decode_into

    def counting(self: ChunkCodec, data: Any, out: np.ndarray, within: Any) -> None:
        if self.chunks == CHUNKS:
            decoded.append(self.chunks)
        original(self, data, out, within)

    monkeypatch.setattr(ChunkCodec, "decode_into", counting)
    res = runtime.run("array.gaussian", inputs={"x": pencils}, params={"sigma": 2}, reuse=False)
    tasks = [e.task for e in runtime.last_run_events if e.kind == "task_finished"]
    assert sorted(t.key for t in tasks) == sorted(reads)
    chunk_bytes = int(np.prod(CHUNKS)) * 4
    assert sum(t.bytes_decoded for t in tasks) == len(decoded) * chunk_bytes
    for t in tasks:
        # needed: the task's block and its halo; decoded: whole 32 x 32 pencils around it
        needed = sum(int(np.prod([s.stop - s.start for s in r])) * 4 for r in reads[t.key])
        assert t.bytes_read == needed
        ys, xs = reads[t.key][0][1], reads[t.key][0][2]
        pencils_touched = ((ys.stop - 1) // 32 - ys.start // 32 + 1) * (
            (xs.stop - 1) // 32 - xs.start // 32 + 1
        )
        assert t.bytes_decoded == pencils_touched * chunk_bytes
        assert t.bytes_decoded > t.bytes_read  # the halo reaches into neighbouring pencils
    # the record keeps what the tasks measured, beside the planner's projection
    timings = res.record.timings
    assert timings["bytes_decoded"] == sum(t.bytes_decoded for t in tasks)
    assert timings["decode_amplification_measured"] == round(
        timings["bytes_decoded"] / timings["bytes_read"], 3
    )
    assert timings["decode_amplification_measured"] > 1
    assert set(timings["cpu_s"]) == {"read", "kernel", "write", "summary"}


def test_tasks_report_cpu_by_phase_and_read_nothing_back(
    runtime: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from minjiang.storage._guard import is_metadata_key

    x = np.arange(4 * 6 * 8, dtype=np.float32).reshape(4, 6, 8)
    src = ingest_array(runtime, tmp_path, "test/small", x, ("time", "y", "x"), (2, 3, 8))
    gets: list[str] = []
    original = Store.zarr_store

    def spying(self: Store, prefix: str, *, read_only: bool = False) -> Any:
        zs = original(self, prefix, read_only=read_only)
        get = zs.get

        async def spy(key: str, *args: Any, **kwargs: Any) -> Any:
            if not is_metadata_key(key):
                gets.append(f"{prefix}/{key}")
            return await get(key, *args, **kwargs)

        zs.get = spy  # type: ignore[method-assign]
        return zs

    monkeypatch.setattr(Store, "zarr_store", spying)
    res = runtime.run(
        "array.band_math", inputs={"a": src, "b": src}, params={"expression": "a + b"}
    )
    tasks = [e.task for e in runtime.last_run_events if e.kind == "task_finished"]
    assert tasks and all(set(t.cpu) == {"read", "kernel", "write", "summary"} for t in tasks)
    assert all(v >= 0 for t in tasks for v in t.cpu.values())
    # reads happened, all of them from the input; none of the output chunks written
    assert gets and all(src.id in k for k in gets), gets
    assert not [k for k in gets if res.id in k]
    np.testing.assert_array_equal(res.to_xarray()["result"].values, 2 * x)


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "constant"])
def test_padding_in_place_is_padding(mode: str) -> None:
    from minjiang.core._tasks import pad_in_place
    from minjiang.kernels.gaussian import pad_boundary

    rng = np.random.default_rng(7)
    cases = [
        ((6, 5, 7), ((2, 3), (0, 0), (1, 4))),
        ((3, 4), ((4, 4), (2, 0))),  # pads wider than the block: reflected again
        ((1, 6), ((0, 2), (3, 3))),  # a one-cell axis
        ((5,), ((0, 0),)),
    ]
    for shape, pads in cases:
        block = rng.normal(size=shape).astype(np.float32)
        full = np.full(
            tuple(n + lo + hi for n, (lo, hi) in zip(shape, pads, strict=True)), np.inf, "f4"
        )
        full[tuple(slice(lo, lo + n) for n, (lo, _) in zip(shape, pads, strict=True))] = block
        np.testing.assert_array_equal(
            pad_in_place(full, pads, mode), pad_boundary(block, pads, mode), err_msg=str(shape)
        )
