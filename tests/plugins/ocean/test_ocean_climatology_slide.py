"""The sliding pooled statistics of the numba climatology against the NumPy reference.

Day-of-year pools slide (days leave and enter) unless a pool shares too little with
the one before; missing days (NaN) must neither enter nor leave the sorted samples.
"""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.plugins.ocean._time import decode_time
from minjiang.plugins.ocean.climatology import _cpu, _pools, _reference


@pytest.fixture(scope="module")
def series() -> tuple[np.ndarray, object]:
    rng = np.random.default_rng(7)
    time = np.arange(np.datetime64("1999-03-01"), np.datetime64("2004-02-10"))
    n = time.size
    doy = np.arange(n) * 2 * np.pi / 365.25
    values = 20 + 3 * np.sin(doy)[None, :] + rng.normal(0, 1, (9, n))
    values[1, 40:90] = np.nan  # a gap across many pools
    values[2, rng.random(n) < 0.3] = np.nan  # scattered missing days
    values[3, :] = np.nan  # no data
    values[4] = np.round(values[4])  # many ties
    values[5, :400] = np.nan
    return values, decode_time(time.astype("datetime64[ns]"))


@pytest.mark.parametrize("convention", ["marineHeatWaves", "heatwaveR", "monthly"])
@pytest.mark.parametrize("percentile", [90.0, 10.0, 50.0])
def test_sliding_pools_match_reference(series, convention: str, percentile: float) -> None:
    values, cal = series
    y0, y1 = 2000, 2003
    if convention == "marineHeatWaves":
        pools = _pools.marineheatwaves_pools(cal, y0, y1, 5)
        samples = values
    elif convention == "heatwaveR":
        pools = _pools.heatwaver_pools(y1 - y0 + 1, 5)
        samples = _pools.spread(values, cal, y0, y1)
    else:
        pools = _pools.monthly_pools(cal, y0, y1)
        samples = values
    fresh = _cpu._slides(pools)[0]
    if convention != "monthly":
        assert fresh.sum() < len(pools) // 4  # most day-of-year pools slide
    seas, thresh = _cpu.pooled_stats(samples, pools, percentile)
    ref_seas, ref_thresh = _reference.pooled_stats(samples, pools, percentile)
    # the same order statistics and interpolation; numpy.nanpercentile's own path can
    # differ in the last bit (as the sort-based kernel did before)
    np.testing.assert_allclose(thresh, ref_thresh, rtol=1e-15, atol=0)
    np.testing.assert_allclose(seas, ref_seas, rtol=1e-13)
    assert np.isnan(thresh[3]).all()
