"""numba kernels against the NumPy references, on small random (and hostile) inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minjiang.plugins.ocean import _gaps
from minjiang.plugins.ocean._time import decode_time, doy366
from minjiang.plugins.ocean.climatology import _cpu as clim_cpu
from minjiang.plugins.ocean.climatology import _reference as clim_ref
from minjiang.plugins.ocean.climatology import climatology
from minjiang.plugins.ocean.climatology._pools import Pools
from minjiang.plugins.ocean.eof import gram_partial
from minjiang.plugins.ocean.mhw import detect_events
from minjiang.plugins.ocean.regional import weighted_sums

from .conftest import synthetic_sst


def _series(years: int = 6, ny: int = 2, nx: int = 2, seed: int = 1):
    time, sst = synthetic_sst(
        "2003-01-01", f"{2003 + years - 1}-12-31", ny=ny, nx=nx, seed=seed, nan_fraction=0.05
    )
    return decode_time(time), sst


@pytest.mark.parametrize("convention", ["marineHeatWaves", "heatwaveR"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_climatology_backends_agree(convention: str, dtype: type) -> None:
    cal, sst = _series()
    ref = climatology(sst.astype(dtype), cal, convention=convention, backend="reference")
    cpu = climatology(sst.astype(dtype), cal, convention=convention, backend="cpu")
    for a, b in zip(ref, cpu, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        assert a.shape == (366, 2, 2) and a.dtype == np.float64


def test_monthly_climatology_backends_agree_and_match_numpy() -> None:
    cal, sst = _series(years=8)
    seas, thresh = climatology(sst, cal, frequency="monthly", period=(2004, 2009))
    ref = climatology(sst, cal, frequency="monthly", period=(2004, 2009), backend="reference")
    np.testing.assert_allclose(seas, ref[0], rtol=1e-12)
    np.testing.assert_allclose(thresh, ref[1], rtol=1e-12)
    sel = (cal.month == 7) & (cal.year >= 2004) & (cal.year <= 2009)
    np.testing.assert_allclose(seas[6], np.nanmean(sst[sel].astype(np.float64), axis=0), rtol=1e-12)
    np.testing.assert_allclose(
        thresh[6], np.nanpercentile(sst[sel].astype(np.float64), 90, axis=0), rtol=1e-12
    )


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    pools=st.integers(1, 6),
    nan=st.floats(0.0, 1.0),
    q=st.floats(0.5, 99.5),
    seed=st.integers(0, 2**16),
)
def test_pooled_stats_property(n: int, pools: int, nan: float, q: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(3, n))
    values[rng.random(values.shape) < nan] = np.nan
    lists = [rng.integers(0, n, size=rng.integers(0, 2 * n + 1)) for _ in range(pools)]
    p = Pools.from_lists(lists)
    a = clim_ref.pooled_stats(values, p, q)
    b = clim_cpu.pooled_stats(values, p, q)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(width=st.sampled_from([1, 3, 5, 31]), seed=st.integers(0, 2**16))
def test_smoothing_property(width: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(2, 366))
    x[0, 5] = np.nan  # NaN spreads over its window, as in the reference code
    np.testing.assert_allclose(
        clim_ref.smooth_circular(x, width), clim_cpu.smooth_circular(x, width), atol=1e-12
    )


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 60), max_len=st.integers(0, 5), seed=st.integers(0, 2**16))
def test_gap_padding_property(n: int, max_len: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, n))
    x[rng.random(x.shape) < 0.4] = np.nan
    np.testing.assert_allclose(
        _gaps.pad_gaps_reference(x, max_len), _gaps.pad_gaps_cpu(x, max_len), atol=1e-12
    )


@pytest.mark.parametrize("cold", [False, True])
@pytest.mark.parametrize("pad", [0, 3])
def test_mhw_backends_agree(cold: bool, pad: int) -> None:
    cal, sst = _series(years=10, ny=2, nx=3, seed=7)
    pct = 10.0 if cold else 90.0
    seas, thresh = climatology(sst, cal, percentile=pct, max_pad_length=pad)
    kw = {"cold_spells": cold, "max_pad_length": pad}
    a = detect_events(sst, cal, seas, thresh, backend="reference", **kw)
    b = detect_events(sst, cal, seas, thresh, backend="cpu", **kw)
    assert len(a) == len(b) > 10
    np.testing.assert_array_equal(a.pixel, b.pixel)
    np.testing.assert_array_equal(a.ints, b.ints)
    np.testing.assert_allclose(a.floats, b.floats, rtol=1e-12, atol=1e-12)
    if cold:  # cold-spell intensities are negative, as the reference code reports them
        assert (a.column("intensity_max") < 0).all()


def test_mhw_rules_on_a_hand_made_series() -> None:
    # exceedances of 5, 1 and 6 days; the 1-day run is no event, so the gap is 6 days
    time = np.arange(
        np.datetime64("2001-01-01"), np.datetime64("2001-03-01"), dtype="datetime64[D]"
    )
    n = time.size
    temp = np.zeros((n, 1, 1))
    for s, e in [(10, 14), (17, 17), (21, 26)]:
        temp[s : e + 1] = 2.0
    seas = np.zeros((366, 1, 1))
    thresh = np.ones((366, 1, 1))
    ev = detect_events(temp, decode_time(time), seas, thresh)
    assert ev.column("index_start").tolist() == [10, 21]  # the 1-day run is not an event
    ev = detect_events(temp, decode_time(time), seas, thresh, max_gap=5)
    assert len(ev) == 2
    ev = detect_events(temp, decode_time(time), seas, thresh, max_gap=6)
    assert ev.column("index_start").tolist() == [10] and ev.column("index_end").tolist() == [26]
    ev = detect_events(temp, decode_time(time), seas, thresh, join_gaps=False, min_duration=1)
    assert len(ev) == 3


def test_weighted_sums_backends_agree(rng: np.random.Generator) -> None:
    x = rng.normal(size=(7, 5, 6)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan
    w = rng.random((5, 6))
    w[0, 0] = 0.0
    for a, b in zip(weighted_sums(x, w, backend="reference"), weighted_sums(x, w), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_gram_backends_agree(rng: np.random.Generator) -> None:
    x = rng.normal(size=(12, 4, 5))
    x[:, 1, 2] = np.nan  # a land cell
    x[3, 0, 0] = np.nan  # a cell with one gap is dropped as well (eofs' rule)
    w = rng.random((4, 5))
    np.testing.assert_allclose(
        gram_partial(x, w, backend="reference"), gram_partial(x, w), rtol=1e-12
    )
    np.testing.assert_allclose(
        gram_partial(x, None, center=False, backend="reference"),
        gram_partial(x, None, center=False),
        rtol=1e-12,
    )


def test_doy366_and_calendars() -> None:
    import cftime

    assert doy366(np.array([2, 3, 12]), np.array([29, 1, 31])).tolist() == [60, 61, 366]
    noleap = [cftime.DatetimeNoLeap(2001, 2, 28), cftime.DatetimeNoLeap(2001, 3, 1)]
    cal = decode_time(np.array(noleap, dtype=object))
    assert np.diff(cal.day).tolist() == [1] and cal.doy.tolist() == [59, 61]
