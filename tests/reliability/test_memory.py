"""The memory model holds: every built-in operator's projected task memory is within
±25 % of what one of its tasks really uses.

Each operator runs through the runtime on inputs big enough that one task holds tens
of MiB of arrays (a 71 MiB float32 cube, a 64 MiB volume), planned as for two Ray
workers; one task of its step runs in a separate worker process that has run the same
step on a small input first (imports, numba kernels, zarr warmed up) and that has the
environment a local Ray gives its workers. The measured figure is that process's peak
resident set during the task minus its resident set just before (``VmHWM`` reset
through ``/proc/self/clear_refs``), so numba's NRT allocations and zarr's codec
buffers count. See ``benchmarks/memory_model.py`` (``python -m benchmarks.memory_model``
prints the same table).

This is a measurement, not a timing: the machine may be busy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

memory_model = pytest.importorskip("benchmarks.memory_model")

#: Projected within this fraction of the measured peak, either way.
TOLERANCE = 0.25

#: (case, operator) pairs: a composite's case measures each of its sub-operators, and
#: some operators have a second case (an int16 CT volume beside float32).
#: Operators whose memory depends on the data, not only on the block: their formula is
#: the worst case, so on the smooth test masks it may exceed the use (never fall short),
#: by at most this factor.
WORST_CASE = {
    # runs of foreground along x: 32 bytes each, up to one per two voxels (a mask that
    # alternates along x); a smooth mask has far fewer
    "medicine.label_blocks": 4.0,
    "medicine.label_volume": 4.0,
    # the padded labels and the label pairs that touch across faces: at most one pair
    # per face voxel and neighbour offset; a smooth mask has far fewer
    "medicine.label_equivalences": 4.0,
}

MEASURED = [(case.name, op) for case in memory_model.CASES for op in case.targets]
OPERATORS = sorted({op for _, op in MEASURED})
CASES = {case.name: case for case in memory_model.CASES}


def _clear_refs_works() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not _clear_refs_works():
        pytest.skip("this kernel does not let a process reset its peak RSS (/proc/self/clear_refs)")
    return memory_model.Session(tmp_path_factory.mktemp("memory-model"))


@pytest.fixture(scope="module")
def measured(session: Any) -> dict[tuple[str, str], Any]:
    """Measurements by operator, filled case by case as the tests ask for them."""
    return {}


def _measurement(session: Any, measured: dict[tuple[str, str], Any], case: str, op: str) -> Any:
    if (case, op) not in measured:
        for m in session.measure(CASES[case]):
            measured[(case, m.operator)] = m
    return measured[(case, op)]


@pytest.mark.parametrize(
    ("case", "operator"),
    MEASURED,
    ids=[op if case == op else f"{case}:{op}" for case, op in MEASURED],
)
def test_projection_within_a_quarter_of_the_measured_peak(
    session: Any,
    measured: dict[tuple[str, str], Any],
    case: str,
    operator: str,
    reliability_report: Any,
) -> None:
    m = _measurement(session, measured, case, operator)
    mib = 1 << 20
    reliability_report(
        operator=operator,
        case=case,
        kind=m.kind,
        tasks=m.tasks,
        input_mib=round(m.input_bytes / mib, 1),
        output_mib=round(m.output_bytes / mib, 1),
        projected=m.projected_bytes,
        measured=m.measured_bytes,
        ratio=round(m.ratio, 3),
        worker_baseline_rss=m.baseline_rss_bytes,
    )
    # the arrays dominate: tens of MiB per task, not interpreter noise
    assert m.input_bytes + m.output_bytes >= 8 * mib
    if operator in WORST_CASE:
        assert m.measured_bytes <= m.projected_bytes <= WORST_CASE[operator] * m.measured_bytes, (
            f"{operator} ({case}): worst-case projection {m.projected_bytes / mib:.1f} MiB for "
            f"a task that used {m.measured_bytes / mib:.1f} MiB (x{m.ratio:.2f})"
        )
        return
    assert abs(m.projected_bytes - m.measured_bytes) <= TOLERANCE * m.measured_bytes, (
        f"{operator} ({case}): projected {m.projected_bytes / mib:.1f} MiB for a task that "
        f"used {m.measured_bytes / mib:.1f} MiB (x{m.ratio:.2f})"
    )


def test_every_builtin_operator_is_measured(tmp_path: Path, reliability_report: Any) -> None:
    from minjiang import Runtime
    from minjiang.core._operator import Composite

    with Runtime(tmp_path / "store", executor="local") as rt:
        ops = rt.operators
    builtin = {n: op for n, op in ops.items() if n.split(".")[0] in ("array", "ocean", "medicine")}
    direct = {n for n, op in builtin.items() if not isinstance(op.pattern, Composite)}
    composites = {n for n, op in builtin.items() if isinstance(op.pattern, Composite)}
    cases = set(CASES)
    reliability_report(
        operators=len(builtin),
        composites=len(composites),
        measured_operators=len(OPERATORS),
        cases=len(cases),
    )
    assert direct <= set(OPERATORS), f"not measured: {sorted(direct - set(OPERATORS))}"
    # a composite is measured through each of its sub-steps, in a case of its own name
    assert composites <= cases, f"composites without a case: {sorted(composites - cases)}"
