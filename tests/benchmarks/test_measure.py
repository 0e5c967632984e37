"""The harness's memory sampling (benchmarks/_measure.py): a process's PSS is read
from ``smaps_rollup`` at most once per ``max_age`` and follows its RSS in between.
No timing is asserted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not (REPO / "benchmarks" / "_measure.py").exists() or not Path("/proc/self/statm").exists(),
    reason="needs benchmarks/ and Linux's /proc",
)

MIB = 1 << 20


def test_between_reads_the_pss_follows_the_rss() -> None:
    from benchmarks._measure import PssReader, _pss_bytes

    pid = os.getpid()
    reader = PssReader(max_age=3600.0)
    first = reader(pid)
    assert reader.reads == 1
    assert abs(first - _pss_bytes(pid)) < 8 * MIB

    block = np.ones(64 * MIB, dtype=np.uint8)  # 64 MiB of private pages touched
    estimate = reader(pid)
    assert reader.reads == 1, "within max_age smaps_rollup must not be read again"
    assert abs(estimate - _pss_bytes(pid)) < 8 * MIB
    assert estimate >= first + 60 * MIB
    del block


def test_a_process_is_read_again_once_its_reading_is_older_than_max_age() -> None:
    from benchmarks._measure import PssReader

    pid = os.getpid()
    reader = PssReader(max_age=0.0)
    reader(pid)
    reader(pid)
    assert reader.reads == 2


def test_a_process_that_is_gone_reads_as_zero_and_is_forgotten() -> None:
    from benchmarks._measure import PssReader

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    reader = PssReader()
    assert reader(proc.pid) == 0
    assert reader.reads == 0
