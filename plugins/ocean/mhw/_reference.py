"""NumPy specification of marine-heatwave detection for one pixel (Hobday et al. 2016).

A line-by-line restatement of ``detect()`` in E. Oliver's marineHeatWaves code:
missing days take the climatology (so they never exceed the threshold), runs of
exceedance shorter than ``min_duration`` are dropped, runs separated by at most
``max_gap`` days are joined, and each event gets the standard metrics. Categories
follow Hobday et al. (2018): the peak of (T - thresh) / (thresh - seas) in whole
multiples, 1 = I Moderate ... 4 = IV Extreme.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FLOAT_METRICS", "INT_METRICS", "detect_pixel"]

#: Float columns of an event, in kernel order.
FLOAT_METRICS = (
    "intensity_max",
    "intensity_mean",
    "intensity_var",
    "intensity_cumulative",
    "intensity_max_relThresh",
    "intensity_mean_relThresh",
    "intensity_var_relThresh",
    "intensity_cumulative_relThresh",
    "intensity_max_abs",
    "intensity_mean_abs",
    "intensity_var_abs",
    "intensity_cumulative_abs",
    "rate_onset",
    "rate_decline",
)
#: Integer columns of an event, in kernel order (indices are on the dense daily axis).
INT_METRICS = (
    "index_start",
    "index_peak",
    "index_end",
    "duration",
    "category",
    "duration_moderate",
    "duration_strong",
    "duration_severe",
    "duration_extreme",
)
#: Intensities whose sign flips back for cold spells (as the reference code does).
FLIPPED = (0, 1, 3, 4, 5, 7, 8, 9, 11)


def _runs(mask: np.ndarray) -> list[list[int]]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return [
        [int(s), int(e) - 1]
        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
    ]


def detect_pixel(
    temp: np.ndarray,
    seas: np.ndarray,
    thresh: np.ndarray,
    doy: np.ndarray,
    *,
    min_duration: int = 5,
    join_gaps: bool = True,
    max_gap: int = 2,
    cold_spells: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Events of one gap-free daily series.

    Parameters
    ----------
    temp
        (T,) values on consecutive days, NaN where missing.
    seas, thresh
        (366,) climatology by day of the 366-day year.
    doy
        (T,) day of the 366-day year (1..366) of each day.

    Returns
    -------
    ints : (n_events, len(INT_METRICS)) int64
    floats : (n_events, len(FLOAT_METRICS)) float64
    """
    sign = -1.0 if cold_spells else 1.0
    temp = sign * np.asarray(temp, dtype=np.float64)
    seas_t = sign * np.asarray(seas, dtype=np.float64)[doy - 1]
    thresh_t = sign * np.asarray(thresh, dtype=np.float64)[doy - 1]
    n = temp.size
    temp = np.where(np.isnan(temp), seas_t, temp)
    with np.errstate(invalid="ignore"):
        exceed = temp > thresh_t
    events = [r for r in _runs(exceed) if r[1] - r[0] + 1 >= min_duration]
    if join_gaps and len(events) > 1:
        gaps = np.array([events[i + 1][0] - events[i][1] - 1 for i in range(len(events) - 1)])
        while gaps.size and gaps.min() <= max_gap:
            ev = int(np.flatnonzero(gaps <= max_gap)[0])
            events[ev][1] = events[ev + 1][1]
            del events[ev + 1]
            gaps = np.array([events[i + 1][0] - events[i][1] - 1 for i in range(len(events) - 1)])
    ints = np.zeros((len(events), len(INT_METRICS)), dtype=np.int64)
    floats = np.zeros((len(events), len(FLOAT_METRICS)), dtype=np.float64)
    for k, (s, e) in enumerate(events):
        rel_seas = temp[s : e + 1] - seas_t[s : e + 1]
        rel_thresh = temp[s : e + 1] - thresh_t[s : e + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            norm = rel_thresh / (thresh_t[s : e + 1] - seas_t[s : e + 1])
        absolute = temp[s : e + 1]
        p = int(np.argmax(rel_seas))
        cats = np.floor(1.0 + norm)
        category = int(min(cats[int(np.argmax(norm))], 4.0))
        ints[k] = [
            s,
            s + p,
            e,
            e - s + 1,
            category,
            np.sum(cats == 1.0),
            np.sum(cats == 2.0),
            np.sum(cats == 3.0),
            np.sum(cats >= 4.0),
        ]
        if s > 0:
            start = 0.5 * (rel_seas[0] + temp[s - 1] - seas_t[s - 1])
            onset = (rel_seas[p] - start) / (p + 0.5)
        else:
            onset = (rel_seas[p] - rel_seas[0]) / (1.0 if p == 0 else p)
        if e < n - 1:
            end = 0.5 * (rel_seas[-1] + temp[e + 1] - seas_t[e + 1])
            decline = (rel_seas[p] - end) / (e - s - p + 0.5)
        else:
            decline = (rel_seas[p] - rel_seas[-1]) / (1.0 if s + p == n - 1 else e - s - p)
        floats[k] = [
            rel_seas[p],
            rel_seas.mean(),
            np.sqrt(rel_seas.var()),
            rel_seas.sum(),
            rel_thresh[p],
            rel_thresh.mean(),
            np.sqrt(rel_thresh.var()),
            rel_thresh.sum(),
            absolute[p],
            absolute.mean(),
            np.sqrt(absolute.var()),
            absolute.sum(),
            onset,
            decline,
        ]
    if cold_spells and len(events):
        floats[:, list(FLIPPED)] *= -1.0
    return ints, floats
