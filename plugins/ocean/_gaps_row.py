"""Gap filling of one series, compiled by both backends.

Plain Python: ``_gaps_cpu`` compiles it with ``numba.njit`` and ``_gaps_gpu`` as a
``numba.cuda`` device function (one thread per pixel), so both fill gaps with the
same arithmetic. NaN is tested as ``v != v`` because that compiles on both targets.
"""

from __future__ import annotations


def pad_row(row, max_length):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Interpolate NaN runs of at most ``max_length`` steps of ``row`` in place."""
    n = row.shape[0]
    i = 0
    while i < n:
        if row[i] == row[i]:
            i += 1
            continue
        s = i
        while i < n and row[i] != row[i]:
            i += 1
        e = i  # run is [s, e)
        if e - s > max_length or (s == 0 and e == n):
            continue
        if s == 0:
            for k in range(s, e):
                row[k] = row[e]
        elif e == n:
            for k in range(s, e):
                row[k] = row[s - 1]
        else:
            a = row[s - 1]
            b = row[e]
            x0 = s - 1
            for k in range(s, e):
                # np.interp's formula: slope * (x - x0) + y0
                row[k] = (b - a) / (e - x0) * (k - x0) + a
