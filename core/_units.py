"""Byte quantities as users write them (``"4GiB"``, ``"512 MB"``) and as messages print them."""

from __future__ import annotations

import math
import re

from minjiang.core.errors import MemoryBudgetError

__all__ = ["format_bytes", "parse_bytes", "parse_memory_budget"]

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "p": 10**15,
    "pb": 10**15,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
    "pib": 1 << 50,
}
_SIZE_RE = re.compile(r"^([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)([A-Za-z]*)$")


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def parse_bytes(value: str | int | float) -> int:
    """``"4GiB"``, ``"512 MB"``, ``2e9`` -> bytes.

    Raises :class:`MemoryBudgetError` for anything that is not a finite, non-negative
    size with a known unit (B, kB/MB/GB/TB/PB, KiB/MiB/GiB/TiB/PiB).
    """
    if isinstance(value, bool):
        raise MemoryBudgetError(f"cannot read memory size {value!r}; write e.g. '4GiB' or '512MB'")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    elif isinstance(value, str):
        m = _SIZE_RE.match(value.strip().replace(" ", "").replace("_", ""))
        if m is None or m.group(2).lower() not in _UNITS:
            raise MemoryBudgetError(
                f"cannot read memory size {value!r}; write e.g. '4GiB' or '512MB' "
                "(units: B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)"
            )
        number, unit = float(m.group(1)), m.group(2).lower()
    else:
        raise MemoryBudgetError(
            f"cannot read memory size {value!r} ({type(value).__name__}); write e.g. '4GiB'"
        )
    if not math.isfinite(number) or number < 0:
        raise MemoryBudgetError(f"memory size {value!r} must be a finite size of at least 0 bytes")
    return int(number * _UNITS[unit])


def parse_memory_budget(value: str | int | float) -> int:
    """A ``--memory-budget``: a positive size (``0`` or ``"-1"`` is a mistake, not "no limit").

    A budget too small for the plan's smallest task is refused later, by the planner,
    with both sizes; tiny budgets are legitimate for splitting small test data finely.
    """
    n = parse_bytes(value)
    if n <= 0:
        raise MemoryBudgetError(
            f"memory budget {value!r} must be a positive size: give the memory the job may "
            "use in all, e.g. '4GiB'"
        )
    return n
