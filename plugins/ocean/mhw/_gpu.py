"""GPU kernel of marine-heatwave detection (``numba.cuda``): one thread per pixel.

The CPU kernel's two passes, as two launches of one kernel body (so both see the same
events): the first counts each pixel's events, the host turns the counts into row
offsets, the second writes each event's metrics into its row. The CPU kernel keeps
(time,)-long scratch series and event lists per pixel; a GPU thread cannot (their
length is not a compile-time constant and would not fit in local memory), so here

* the prepared series (sign, climatology by day of year, missing days filled with the
  climatology) is recomputed from the inputs wherever it is read: a few loads and a
  multiply, cheaper than a scratch array in global memory;
* events are joined while they are found (the pending event absorbs the next one when
  the gap is at most ``max_gap``), which gives the CPU's and the reference's joined
  events without storing the unjoined list.

Each metric is computed with the CPU kernel's operations in its order (sums from 0.0
in time order, the same peak and category rules), so integer columns are exact and
float columns equal the CPU's. Threads take neighbouring pixels of (time, pixel)
blocks, so each step along time is a coalesced load across a warp.

Why ``numba.cuda``: run finding and joining are sequential, branchy per-pixel scans
with no CuPy primitive; the kernel is plain Python that also runs under numba's CUDA
simulator, where ``tests/plugins/ocean/test_ocean_cudasim.py`` checks it against
the NumPy reference.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from minjiang.kernels import cuda as _cuda
from numba import cuda

__all__ = ["detect"]


def _build() -> Any:
    @cuda.jit(device=True)
    def value(temps, seas, thresh, doy, sign, p, t):
        # the CPU's _prepare for one day: (temp, seas_t, thresh_t)
        d = doy[t] - 1
        st = sign * seas[p, d]
        ht = sign * thresh[p, d]
        v = sign * temps[p, t]
        if v != v:
            v = st
        return v, st, ht

    @cuda.jit(device=True)
    def floor(x):
        # np.floor: NaN and infinities pass through (math.floor would make them ints)
        if x - x == 0.0:
            return float(math.floor(x))
        return x

    @cuda.jit(device=True)
    def rel_seas_at(temps, seas, thresh, doy, sign, p, t):
        v, st, _ht = value(temps, seas, thresh, doy, sign, p, t)
        return v - st

    @cuda.jit(device=True)
    def write(temps, seas, thresh, doy, sign, p, s, e, row, ints, floats):
        n = temps.shape[1]
        length = e - s + 1
        # peak: first maximum of temp - seas
        pk = 0
        best = rel_seas_at(temps, seas, thresh, doy, sign, p, s)
        for j in range(1, length):
            r = rel_seas_at(temps, seas, thresh, doy, sign, p, s + j)
            if r > best:
                best = r
                pk = j
        norm_max = -math.inf
        n1 = 0
        n2 = 0
        n3 = 0
        n4 = 0
        sum_seas = 0.0
        sum_thr = 0.0
        sum_abs = 0.0
        for j in range(length):
            v, st, ht = value(temps, seas, thresh, doy, sign, p, s + j)
            norm = (v - ht) / (ht - st)
            if norm > norm_max or j == 0:
                norm_max = norm
            c = floor(1.0 + norm)
            if c == 1.0:
                n1 += 1
            elif c == 2.0:
                n2 += 1
            elif c == 3.0:
                n3 += 1
            elif c >= 4.0:
                n4 += 1
            sum_seas += v - st
            sum_thr += v - ht
            sum_abs += v
        m_seas = sum_seas / length
        m_thr = sum_thr / length
        m_abs = sum_abs / length
        var_seas = 0.0
        var_thr = 0.0
        var_abs = 0.0
        for j in range(length):
            v, st, ht = value(temps, seas, thresh, doy, sign, p, s + j)
            var_seas += (v - st - m_seas) * (v - st - m_seas)
            var_thr += (v - ht - m_thr) * (v - ht - m_thr)
            var_abs += (v - m_abs) * (v - m_abs)
        cat = floor(1.0 + norm_max)
        if 4.0 < cat:  # min(cat, 4.0), written out: min() does not lower for sm_90 here
            cat = 4.0
        ints[row, 0] = s
        ints[row, 1] = s + pk
        ints[row, 2] = e
        ints[row, 3] = length
        ints[row, 4] = int(cat)
        ints[row, 5] = n1
        ints[row, 6] = n2
        ints[row, 7] = n3
        ints[row, 8] = n4
        vp, sp, hp = value(temps, seas, thresh, doy, sign, p, s + pk)
        peak_seas = vp - sp
        v0, s0, _h0 = value(temps, seas, thresh, doy, sign, p, s)
        first = v0 - s0
        ve, se, _he = value(temps, seas, thresh, doy, sign, p, e)
        last = ve - se
        if s > 0:
            vb, sb, _hb = value(temps, seas, thresh, doy, sign, p, s - 1)
            start = 0.5 * (first + vb - sb)
            onset = (peak_seas - start) / (pk + 0.5)
        else:
            onset = (peak_seas - first) / (1.0 if pk == 0 else pk)
        if e < n - 1:
            va, sa, _ha = value(temps, seas, thresh, doy, sign, p, e + 1)
            end = 0.5 * (last + va - sa)
            decline = (peak_seas - end) / (e - s - pk + 0.5)
        else:
            den = 1.0 if s + pk == n - 1 else e - s - pk
            decline = (peak_seas - last) / den
        # intensities flip back for cold spells (as the CPU kernel: negation, exact)
        flip = sign < 0
        floats[row, 0] = -peak_seas if flip else peak_seas
        floats[row, 1] = -m_seas if flip else m_seas
        floats[row, 2] = math.sqrt(var_seas / length)
        floats[row, 3] = -sum_seas if flip else sum_seas
        floats[row, 4] = -(vp - hp) if flip else vp - hp
        floats[row, 5] = -m_thr if flip else m_thr
        floats[row, 6] = math.sqrt(var_thr / length)
        floats[row, 7] = -sum_thr if flip else sum_thr
        floats[row, 8] = -vp if flip else vp
        floats[row, 9] = -m_abs if flip else m_abs
        floats[row, 10] = math.sqrt(var_abs / length)
        floats[row, 11] = -sum_abs if flip else sum_abs
        floats[row, 12] = onset
        floats[row, 13] = decline

    @cuda.jit
    def events(
        temps,
        seas,
        thresh,
        doy,
        sign,
        min_duration,
        join_gaps,
        max_gap,
        fill,
        counts,
        offsets,
        ints,
        floats,
    ):
        # temps: (pixel, time) view; seas, thresh: (pixel, 366) views
        npix, n = temps.shape
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for p in range(start, npix, stride):
            if fill and offsets[p + 1] == offsets[p]:
                continue
            m = 0
            pending = False
            ps = 0
            pe = 0
            i = 0
            while i < n:
                v, _st, ht = value(temps, seas, thresh, doy, sign, p, i)
                if v > ht:
                    s = i
                    while i < n:
                        v, _st, ht = value(temps, seas, thresh, doy, sign, p, i)
                        if not v > ht:
                            break
                        i += 1
                    if i - s >= min_duration:
                        if pending and join_gaps and s - pe - 1 <= max_gap:
                            pe = i - 1
                        else:
                            if pending:
                                if fill:
                                    row = offsets[p] + m
                                    write(
                                        temps, seas, thresh, doy, sign, p, ps, pe, row, ints, floats
                                    )
                                m += 1
                            pending = True
                            ps = s
                            pe = i - 1
                else:
                    i += 1
            if pending:
                if fill:
                    write(temps, seas, thresh, doy, sign, p, ps, pe, offsets[p] + m, ints, floats)
                m += 1
            if not fill:
                counts[p] = m

    return events


def detect(
    temps: Any,
    seas: Any,
    thresh: Any,
    doy: np.ndarray,
    *,
    min_duration: int,
    join_gaps: bool,
    max_gap: int,
    cold_spells: bool,
) -> tuple[Any, Any, Any]:
    """All events of device (pixel, T) series, as :func:`._cpu.detect` does.

    Parameters
    ----------
    temps
        (pixel, T) float64 device array, best a transposed view of (T, pixel) memory.
    seas, thresh
        (pixel, 366) float64 device arrays (views of (366, pixel) memory likewise).
    doy
        (T,) host day of the 366-day year of each day.
    min_duration, join_gaps, max_gap, cold_spells
        As :func:`minjiang.plugins.ocean.mhw.detect_events`.

    Returns
    -------
    pixel, ints, floats
        Device arrays: (n_events,) int64 pixel, (n_events, 9) int64 and (n_events, 14)
        float64 metrics, events ordered by pixel and then time.
    """
    xp = _cuda.array_module(temps)
    npix = temps.shape[0]
    sign = -1.0 if cold_spells else 1.0
    doy_d = xp.asarray(np.ascontiguousarray(doy, dtype=np.int64))
    kernel = _cuda.cached(("ocean.mhw_events",), _build)
    args = (sign, int(min_duration), bool(join_gaps), int(max_gap))
    counts = xp.zeros(npix, dtype=np.int64)
    offsets = xp.zeros(npix + 1, dtype=np.int64)
    empty_i = xp.zeros((0, 9), dtype=np.int64)
    empty_f = xp.zeros((0, 14), dtype=np.float64)
    if npix:
        _cuda.launch(
            kernel,
            npix,
            temps,
            seas,
            thresh,
            doy_d,
            *args,
            False,
            counts,
            offsets,
            empty_i,
            empty_f,
        )
        xp.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])  # the one host synchronisation: the size of the outputs
    ints = xp.zeros((total, 9), dtype=np.int64)
    floats = xp.zeros((total, 14), dtype=np.float64)
    if total:
        _cuda.launch(
            kernel, npix, temps, seas, thresh, doy_d, *args, True, counts, offsets, ints, floats
        )
    pixel = np.repeat(np.arange(npix, dtype=np.int64), _cuda.to_host(counts))
    return xp.asarray(pixel), ints, floats
