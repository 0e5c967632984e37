"""GPU device helpers that need no GPU: task shares of a device, pinned-read slabs, and
the device report of a process without one."""

from __future__ import annotations

import itertools

import pytest
from minjiang.core._devices import (
    DEVICE_HEADROOM,
    MAX_TASKS_PER_GPU,
    SLAB_BYTES,
    DeviceReport,
    device_report,
    gpu_share,
    slab_rows,
)

GiB = 1 << 30


@pytest.mark.parametrize(
    ("task", "free", "share"),
    [
        (10 * GiB, 140 * GiB, 1 / MAX_TASKS_PER_GPU),  # small: the most tasks per device
        (30 * GiB, 100 * GiB, 0.5),  # 0.8 * 100 // 30 = 2 fit
        (40 * GiB, 100 * GiB, 0.5),
        (41 * GiB, 100 * GiB, 1.0),  # only one fits the headroom
        (90 * GiB, 100 * GiB, 1.0),  # over the headroom: still one (checked elsewhere)
        (10 * GiB, 0, 1.0),  # free memory unknown: a whole GPU
        (int(0.8 * 90 * GiB) // 3, 90 * GiB, 0.3333),  # Ray keeps 4 decimals: round down
    ],
)
def test_gpu_share(task, free, share) -> None:
    got = gpu_share(task, free)
    assert got == pytest.approx(share, abs=1e-9)
    n = round(1 / got)
    assert n * got <= 1.0  # n tasks fit one GPU in Ray's accounting
    if free:
        assert n == 1 or n * task <= DEVICE_HEADROOM * free


@pytest.mark.parametrize(
    ("start", "stop", "chunk", "row_bytes"),
    [
        (0, 100, 10, 1 << 20),
        (5, 100, 10, 1 << 20),
        (3, 4, 7, 8),
        (0, 1000, 1, 1 << 10),
        (17, 311, 24, 3 << 20),
    ],
)
def test_slab_rows_cover_the_block_along_chunk_edges(start, stop, chunk, row_bytes) -> None:
    slabs = slab_rows(start, stop, chunk, row_bytes)
    # contiguous, in order, covering 0 .. stop - start
    assert slabs[0].start == 0 and slabs[-1].stop == stop - start
    assert all(a.stop == b.start for a, b in itertools.pairwise(slabs))
    # inner cuts lie on chunk boundaries of the array (absolute rows), so no chunk is
    # decoded by two slabs
    assert all((start + s.start) % chunk == 0 for s in slabs[1:])
    # slabs other than the two edge ones hold at least SLAB_BYTES (or the whole chunk)
    for s in slabs[1:-1]:
        assert (s.stop - s.start) * row_bytes >= min(
            SLAB_BYTES, chunk * row_bytes
        ) - chunk * row_bytes // 2


def test_slab_rows_of_an_empty_range() -> None:
    assert slab_rows(4, 4, 3, 8) == []


def test_device_report_without_a_gpu_says_why() -> None:
    report = device_report(fresh=True)
    if report.usable:
        pytest.skip("this machine has a usable GPU")
    assert report.node and not report.model
    assert "CuPy is not importable" in report.error or "CUDA device" in report.error


def test_lineage_keeps_the_device_and_software_not_the_momentary_memory() -> None:
    report = DeviceReport(
        node="gpu07",
        model="NVIDIA H200",
        compute_capability="9.0",
        memory_total=141 * GiB,
        memory_free=100 * GiB,
        cupy="13.6.0",
        cuda_runtime="12.8",
        cuda_driver="12.9",
    )
    assert report.lineage() == {
        "model": "NVIDIA H200",
        "compute_capability": "9.0",
        "cupy": "13.6.0",
        "cuda_runtime": "12.8",
        "cuda_driver": "12.9",
    }
    assert report.usable and not DeviceReport(error="no CuPy").usable
