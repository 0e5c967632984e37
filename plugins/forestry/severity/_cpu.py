"""numba kernel of the burn-severity computation (no validation inside)."""

from __future__ import annotations

import math

import numba


@numba.njit(cache=True, nogil=True)
def burn_severity(pre, post, edges, dnbr, rdnbr, rbr, severity):  # pragma: no cover - jitted
    for i in range(pre.size):
        d = pre[i] - post[i]  # in the inputs' type; ratios in float64, stored in it
        dnbr[i] = d
        root = math.sqrt(abs(float(pre[i])))
        rdnbr[i] = math.nan if root == 0 else float(d) / root
        den = float(pre[i]) + 1.001
        rbr[i] = math.nan if den == 0 else float(d) / den
        if math.isnan(d):
            severity[i] = 0
        else:
            k = 1
            dd = float(d)
            for e in edges:
                if dd >= e:
                    k += 1
            severity[i] = k
