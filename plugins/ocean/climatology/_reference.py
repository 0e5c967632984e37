"""NumPy specification of the climatology statistics (obvious, slow is fine)."""

from __future__ import annotations

import warnings

import numpy as np
from minjiang.plugins.ocean.climatology._pools import Pools

__all__ = ["pooled_stats", "smooth_circular"]


def pooled_stats(
    values: np.ndarray, pools: Pools, percentile: float
) -> tuple[np.ndarray, np.ndarray]:
    """NaN-skipping mean and percentile (NumPy's ``linear`` = R type 7) of each pool.

    ``values`` is (pixel, sample); returns ``seas``, ``thresh`` of shape (pixel, pool),
    NaN where a pool has no finite sample.
    """
    npix = values.shape[0]
    seas = np.full((npix, len(pools)), np.nan)
    thresh = np.full((npix, len(pools)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pools give NaN
        for k in range(len(pools)):
            idx = pools.pool(k)
            if idx.size == 0:
                continue
            sub = values[:, idx].astype(np.float64)
            seas[:, k] = np.nanmean(sub, axis=1)
            thresh[:, k] = np.nanpercentile(sub, percentile, axis=1)
    return seas, thresh


def smooth_circular(clim: np.ndarray, width: int) -> np.ndarray:
    """Centred running mean of odd ``width`` along the last axis, periodic (NaN spreads).

    As ``runavg`` in the marineHeatWaves code: the year is tiled three times and
    convolved with a boxcar of ``width`` ones / ``width``.
    """
    n = clim.shape[-1]
    out = np.empty_like(clim, dtype=np.float64)
    kernel = np.ones(width) / width
    for i in np.ndindex(clim.shape[:-1]):
        tiled = np.concatenate([clim[i], clim[i], clim[i]])
        out[i] = np.convolve(tiled, kernel, mode="same")[n : 2 * n]
    return out
