"""The selection both median kernels compile: numba ``njit`` (CPU) and a
``numba.cuda`` device function (GPU). Plain Python, so one source serves both."""

from __future__ import annotations


def select_kth(buf, n, k):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """The k-th smallest of ``buf[:n]`` (Hoare's selection; reorders ``buf`` partially)."""
    lo = 0
    hi = n - 1
    while hi > lo:
        mid = (lo + hi) // 2
        a = buf[lo]
        b = buf[mid]
        c = buf[hi]
        # median of three as pivot keeps sorted windows (flat regions) linear
        if a < b:
            pivot = b if b < c else (c if a < c else a)
        else:
            pivot = a if a < c else (c if b < c else b)
        i = lo
        j = hi
        while i <= j:
            while buf[i] < pivot:
                i += 1
            while buf[j] > pivot:
                j -= 1
            if i <= j:
                t = buf[i]
                buf[i] = buf[j]
                buf[j] = t
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return buf[k]
    return buf[k]
