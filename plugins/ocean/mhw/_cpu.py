"""numba kernel of marine-heatwave detection: the reference, fused over pixels.

Two passes per pixel (count the events, then fill them) so that the outputs are
flat arrays sized exactly; no Python objects inside the loop.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _events(temp, seas_t, thresh_t, min_duration, join_gaps, max_gap, starts, ends):
    # Fills starts/ends (capacity >= T // 2 + 1) and returns the number of events.
    n = temp.size
    m = 0
    i = 0
    while i < n:
        if temp[i] > thresh_t[i]:
            s = i
            while i < n and temp[i] > thresh_t[i]:
                i += 1
            if i - s >= min_duration:
                starts[m] = s
                ends[m] = i - 1
                m += 1
        else:
            i += 1
    if join_gaps and m > 1:
        k = 0
        for j in range(1, m):
            if starts[j] - ends[k] - 1 <= max_gap:
                ends[k] = ends[j]
            else:
                k += 1
                starts[k] = starts[j]
                ends[k] = ends[j]
        m = k + 1
    return m


@njit(cache=True)
def _prepare(temp_raw, seas, thresh, doy, sign, temp, seas_t, thresh_t):
    for t in range(temp_raw.size):
        d = doy[t] - 1
        seas_t[t] = sign * seas[d]
        thresh_t[t] = sign * thresh[d]
        v = sign * temp_raw[t]
        temp[t] = seas_t[t] if np.isnan(v) else v


@njit(cache=True, parallel=True)
def _count(temps, seas, thresh, doy, sign, min_duration, join_gaps, max_gap, counts):
    npix, n = temps.shape
    for p in prange(npix):
        temp = np.empty(n)
        seas_t = np.empty(n)
        thresh_t = np.empty(n)
        starts = np.empty(n // 2 + 1, dtype=np.int64)
        ends = np.empty(n // 2 + 1, dtype=np.int64)
        _prepare(temps[p], seas[p], thresh[p], doy, sign, temp, seas_t, thresh_t)
        counts[p] = _events(temp, seas_t, thresh_t, min_duration, join_gaps, max_gap, starts, ends)


@njit(cache=True)
def _std(x, mean):
    acc = 0.0
    for v in x:
        acc += (v - mean) * (v - mean)
    return np.sqrt(acc / x.size)


@njit(cache=True, parallel=True, error_model="numpy")
def _fill(temps, seas, thresh, doy, sign, min_duration, join_gaps, max_gap, offsets, ints, floats):
    npix, n = temps.shape
    for p in prange(npix):
        if offsets[p + 1] == offsets[p]:
            continue
        temp = np.empty(n)
        seas_t = np.empty(n)
        thresh_t = np.empty(n)
        starts = np.empty(n // 2 + 1, dtype=np.int64)
        ends = np.empty(n // 2 + 1, dtype=np.int64)
        _prepare(temps[p], seas[p], thresh[p], doy, sign, temp, seas_t, thresh_t)
        m = _events(temp, seas_t, thresh_t, min_duration, join_gaps, max_gap, starts, ends)
        for k in range(m):
            row = offsets[p] + k
            s = starts[k]
            e = ends[k]
            length = e - s + 1
            rel_seas = temp[s : e + 1] - seas_t[s : e + 1]
            rel_thresh = temp[s : e + 1] - thresh_t[s : e + 1]
            absolute = temp[s : e + 1]
            pk = 0
            for j in range(1, length):
                if rel_seas[j] > rel_seas[pk]:
                    pk = j
            norm_max = -np.inf
            n1 = 0
            n2 = 0
            n3 = 0
            n4 = 0
            for j in range(length):
                norm = rel_thresh[j] / (thresh_t[s + j] - seas_t[s + j])
                if norm > norm_max or (j == 0):
                    norm_max = norm
                c = np.floor(1.0 + norm)
                if c == 1.0:
                    n1 += 1
                elif c == 2.0:
                    n2 += 1
                elif c == 3.0:
                    n3 += 1
                elif c >= 4.0:
                    n4 += 1
            cat = min(np.floor(1.0 + norm_max), 4.0)
            ints[row, 0] = s
            ints[row, 1] = s + pk
            ints[row, 2] = e
            ints[row, 3] = length
            ints[row, 4] = int(cat)
            ints[row, 5] = n1
            ints[row, 6] = n2
            ints[row, 7] = n3
            ints[row, 8] = n4
            m_seas = rel_seas.sum() / length
            m_thr = rel_thresh.sum() / length
            m_abs = absolute.sum() / length
            floats[row, 0] = rel_seas[pk]
            floats[row, 1] = m_seas
            floats[row, 2] = _std(rel_seas, m_seas)
            floats[row, 3] = rel_seas.sum()
            floats[row, 4] = rel_thresh[pk]
            floats[row, 5] = m_thr
            floats[row, 6] = _std(rel_thresh, m_thr)
            floats[row, 7] = rel_thresh.sum()
            floats[row, 8] = absolute[pk]
            floats[row, 9] = m_abs
            floats[row, 10] = _std(absolute, m_abs)
            floats[row, 11] = absolute.sum()
            if s > 0:
                start = 0.5 * (rel_seas[0] + temp[s - 1] - seas_t[s - 1])
                floats[row, 12] = (rel_seas[pk] - start) / (pk + 0.5)
            else:
                floats[row, 12] = (rel_seas[pk] - rel_seas[0]) / (1.0 if pk == 0 else pk)
            if e < n - 1:
                end = 0.5 * (rel_seas[length - 1] + temp[e + 1] - seas_t[e + 1])
                floats[row, 13] = (rel_seas[pk] - end) / (e - s - pk + 0.5)
            else:
                den = 1.0 if s + pk == n - 1 else e - s - pk
                floats[row, 13] = (rel_seas[pk] - rel_seas[length - 1]) / den
            if sign < 0:
                for c in (0, 1, 3, 4, 5, 7, 8, 9, 11):
                    floats[row, c] = -floats[row, c]


def detect(temps, seas, thresh, doy, *, min_duration, join_gaps, max_gap, cold_spells):
    """All events of (pixel, T) series: (pixel index, ints, floats) as in the reference."""
    temps = np.ascontiguousarray(temps, dtype=np.float64)
    seas = np.ascontiguousarray(seas, dtype=np.float64)
    thresh = np.ascontiguousarray(thresh, dtype=np.float64)
    doy = np.ascontiguousarray(doy, dtype=np.int64)
    sign = -1.0 if cold_spells else 1.0
    npix = temps.shape[0]
    counts = np.zeros(npix, dtype=np.int64)
    args = (sign, int(min_duration), bool(join_gaps), int(max_gap))
    if npix:
        _count(temps, seas, thresh, doy, *args, counts)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    ints = np.zeros((int(offsets[-1]), 9), dtype=np.int64)
    floats = np.zeros((int(offsets[-1]), 14), dtype=np.float64)
    if offsets[-1]:
        _fill(temps, seas, thresh, doy, *args, offsets, ints, floats)
    pixel = np.repeat(np.arange(npix, dtype=np.int64), counts)
    return pixel, ints, floats
