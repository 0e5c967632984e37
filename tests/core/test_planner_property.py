"""Random shapes, chunkings and halos give the NumPy answer over the whole array."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.ndimage as ndi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._data import ingest_array

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))


@st.composite
def cubes(draw, min_dims=2):
    ndim = draw(st.integers(min_dims, 3))
    shape = tuple(draw(st.integers(2, 13)) for _ in range(ndim))
    chunks = tuple(draw(st.integers(1, s)) for s in shape)
    seed = draw(st.integers(0, 2**16))
    return shape, chunks, seed


def _values(shape, seed, nan_frac=0.05):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(np.float64)
    x[rng.random(shape) < nan_frac] = np.nan
    return x


def _budget(chunks, halo=0, factor=12):
    """A budget that fits a one-chunk task (with halo) and zarr's codec buffers for 4
    chunks in flight (3 chunks each), but forces many tasks."""
    padded = int(np.prod([c + 2 * halo for c in chunks]))
    codec = 3 * 4 * 8 * int(np.prod(chunks))
    return f"{max(16 * 1024, factor * 8 * padded + codec)}B"


def _dims(n):
    return ("t", "y", "x")[-n:] if n < 3 else ("t", "y", "x")


@SETTINGS
@given(
    cubes(),
    st.floats(0.3, 2.0),
    st.sampled_from(["reflect", "nearest", "mirror", "wrap", "constant"]),
)
def test_gaussian_equals_scipy(tmp_path_factory, cube, sigma, mode) -> None:
    from minjiang.core._runtime import Runtime

    shape, chunks, seed = cube
    tmp = tmp_path_factory.mktemp("g")
    from minjiang.kernels.gaussian import gaussian_radius

    # a wrapped halo makes every task span its axis: budget for the whole extent then
    blocks = shape if mode == "wrap" else chunks
    rt = Runtime(
        store=tmp / "store", executor="local", memory_budget=_budget(blocks, gaussian_radius(sigma))
    )
    x = np.nan_to_num(_values(shape, seed, 0.0))
    src = ingest_array(rt, tmp, "t/x", x, _dims(len(shape)), chunks)
    res = rt.run("array.gaussian", inputs={"x": src}, params={"sigma": sigma, "mode": mode})
    got = res.to_xarray()["data"].values
    np.testing.assert_allclose(
        got, ndi.gaussian_filter(x, sigma, mode=mode), rtol=1e-10, atol=1e-12
    )


@SETTINGS
@given(cubes(), st.sampled_from(["mean", "std", "min", "max", "count", "sum"]))
def test_reduce_equals_numpy(tmp_path_factory, cube, stat) -> None:
    from minjiang.core._runtime import Runtime

    shape, chunks, seed = cube
    tmp = tmp_path_factory.mktemp("r")
    rt = Runtime(store=tmp / "store", executor="local", memory_budget=_budget(chunks))
    x = _values(shape, seed)
    dims = _dims(len(shape))
    src = ingest_array(rt, tmp, "t/x", x, dims, chunks)
    res = rt.run("array.reduce", inputs={"x": src}, params={"dims": [dims[0]], "stat": stat})
    got = res.to_xarray()[stat].values
    ref = {
        "mean": np.nanmean,
        "std": np.nanstd,
        "min": np.nanmin,
        "max": np.nanmax,
        "count": lambda a, axis: np.sum(~np.isnan(a), axis=axis),
        # documented: an all-NaN slice sums to NaN (numpy.nansum would give 0)
        "sum": lambda a, axis: np.where(
            np.isnan(a).all(axis=axis), np.nan, np.nansum(a, axis=axis)
        ),
    }[stat]
    with np.errstate(all="ignore"), _quiet():
        want = ref(x, axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, equal_nan=True)


@SETTINGS
@given(cubes())
def test_a_map_worked_a_chunk_at_a_time_equals_numpy(tmp_path_factory, cube) -> None:
    """Tasks that read, compute and write their block one chunk at a time give
    NumPy's answer over any shape and chunking."""
    from unittest import mock

    from minjiang.core import _blocks
    from minjiang.core._runtime import Runtime

    shape, chunks, seed = cube
    tmp = tmp_path_factory.mktemp("m")
    rt = Runtime(store=tmp / "store", executor="local", memory_budget=_budget(chunks, factor=48))
    a, b = _values(shape, seed), _values(shape, seed + 1)
    dims = _dims(len(shape))
    src_a = ingest_array(rt, tmp, "t/a", a, dims, chunks)
    src_b = ingest_array(rt, tmp, "t/b", b, dims, chunks)
    with mock.patch.object(_blocks, "STREAM_STEP_BYTES", 0):
        res = rt.run(
            "array.band_math",
            inputs={"a": src_a, "b": src_b},
            params={"expression": "(a - b) / (a + b)"},
        )
    with np.errstate(all="ignore"):
        want = (a - b) / (a + b)
    np.testing.assert_allclose(
        res.to_xarray()["result"].values, want, rtol=1e-12, atol=0, equal_nan=True
    )


@SETTINGS
@given(cubes(), st.sampled_from(["mean", "std", "min", "max"]), st.data())
def test_a_reduce_worked_a_chunk_at_a_time_equals_numpy(tmp_path_factory, cube, stat, data):
    """Reduce tasks that span their reduced dims and work the kept dims one chunk at a
    time give NumPy's answer over any shape, chunking and reduced dims."""
    from unittest import mock

    from minjiang.core import _blocks
    from minjiang.core._runtime import Runtime

    shape, chunks, seed = cube
    dims = _dims(len(shape))
    reduced = data.draw(st.sets(st.sampled_from(dims), min_size=1, max_size=len(dims) - 1))
    tmp = tmp_path_factory.mktemp("s")
    rt = Runtime(store=tmp / "store", executor="local", memory_budget=_budget(chunks, factor=48))
    x = _values(shape, seed)
    src = ingest_array(rt, tmp, "t/x", x, dims, chunks)
    with mock.patch.object(_blocks, "STREAM_STEP_BYTES", 0):
        res = rt.run(
            "array.reduce",
            inputs={"x": src},
            params={"dims": [d for d in dims if d in reduced], "stat": stat},
        )
    axes = tuple(i for i, d in enumerate(dims) if d in reduced)
    ref = {"mean": np.nanmean, "std": np.nanstd, "min": np.nanmin, "max": np.nanmax}[stat]
    with np.errstate(all="ignore"), _quiet():
        want = ref(x, axis=axes)
    np.testing.assert_allclose(
        res.to_xarray()[stat].values, want, rtol=1e-10, atol=1e-12, equal_nan=True
    )


@SETTINGS
@given(cubes(), st.floats(0.0, 1.0))
def test_quantile_full_axis_equals_numpy(tmp_path_factory, cube, q) -> None:
    from minjiang.core._runtime import Runtime

    shape, chunks, seed = cube
    tmp = tmp_path_factory.mktemp("q")
    rt = Runtime(store=tmp / "store", executor="local", memory_budget=_budget(chunks))
    x = _values(shape, seed)
    dims = _dims(len(shape))
    src = ingest_array(rt, tmp, "t/x", x, dims, chunks)
    res = rt.run("array.quantile", inputs={"x": src}, params={"dim": dims[0], "q": q})
    with _quiet():
        want = np.nanquantile(x, q, axis=0)
    np.testing.assert_allclose(
        res.to_xarray()["quantile"].values, want, rtol=1e-10, atol=1e-12, equal_nan=True
    )


@SETTINGS
@given(cubes(min_dims=2), st.integers(1, 5))
def test_label_stats_equals_pandas(tmp_path_factory, cube, n_labels) -> None:
    from minjiang.core._runtime import Runtime

    shape, chunks, seed = cube
    tmp = tmp_path_factory.mktemp("a")
    rt = Runtime(store=tmp / "store", executor="local", memory_budget="1MiB")
    x = _values(shape, seed)
    labels = np.random.default_rng(seed + 1).integers(0, n_labels + 1, size=shape).astype(np.int32)
    dims = _dims(len(shape))
    v = ingest_array(rt, tmp, "t/v", x, dims, chunks)
    lab = ingest_array(rt, tmp, "t/l", labels, dims, chunks, var="labels")
    res = rt.run("array.label_stats", inputs={"values": v, "labels": lab})
    got = res.table("stats").to_pandas().set_index("label").sort_index()
    df = pd.DataFrame({"label": labels.ravel(), "v": x.ravel()})
    df = df[df.label != 0]
    want = df.groupby("label")["v"].agg(["count", "sum", "mean", "min", "max"])
    # documented: a label with no non-NaN value sums to NaN (pandas gives 0)
    want.loc[want["count"] == 0, "sum"] = np.nan
    assert list(got.index) == list(want.index)
    np.testing.assert_array_equal(got["count"].to_numpy(), want["count"].to_numpy())
    for col in ("sum", "mean", "min", "max"):
        np.testing.assert_allclose(
            got[col].to_numpy(), want[col].to_numpy(), rtol=1e-10, equal_nan=True
        )


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *a):
        self._w.__exit__(*a)
