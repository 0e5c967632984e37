"""forestry.tree_tops: the numba kernel against its reference, a fixed window against
SciPy's maximum filter, and the chunked operator against one whole-raster call, on a
real height surface: lidar's 1 m DEM above its lowest cell (local maxima of terrain
stand in for crowns; the package ships no canopy model)."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import package_file

rasterio = pytest.importorskip("rasterio")

PARAMS = {"a": 2.0, "b": 0.4, "min_window": 3.0, "max_window": 9.0, "min_height": 2.0}


@pytest.fixture(scope="module")
def chm(tmp_path_factory):
    """A height GeoTIFF (float32, 1 m): lidar's DEM minus its lowest elevation."""
    dem = package_file("lidar", "data", "dem.tif")
    with rasterio.open(dem) as b:
        z = b.read(1).astype(np.float64)
        h = (z - z.min()).astype(np.float32)
        profile = {**b.profile, "dtype": "float32", "nodata": None}
    path = tmp_path_factory.mktemp("chm") / "chm.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(h[None])
    return path, h.astype(np.float64)


def test_kernel_cpu_matches_reference(chm):
    from minjiang.plugins.forestry.treetops import tree_tops

    _, h = chm
    block = np.pad(h[:90, :110], 4, constant_values=np.nan)
    block[20, 30] = np.nan
    block[40:43, 50:53] = 7.0  # a plateau: one top
    kw = dict(dx=1.0, dy=1.0, halo=(4, 4), **PARAMS)
    ref = tree_tops(block, backend="reference", **kw)
    cpu = tree_tops(block, backend="cpu", **kw)
    np.testing.assert_array_equal(ref[0], cpu[0])
    np.testing.assert_array_equal(ref[1], cpu[1])
    assert ref[0].size >= 8


def test_fixed_window_matches_scipy_maximum_filter(chm):
    ndi = pytest.importorskip("scipy.ndimage")
    from minjiang.plugins.forestry.treetops import tree_tops

    _, h = chm
    r = 3
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = yy**2 + xx**2 <= r * r
    mx = ndi.maximum_filter(h, footprint=disk, mode="constant", cval=-np.inf)
    want = (h == mx) & (h >= 2.0)
    # a plateau of equal maxima is one top here and several for the filter: compare elsewhere
    eq = ndi.generic_filter(
        h, lambda v: np.sum(v == v[v.size // 2]) > 1, footprint=disk, mode="constant", cval=np.nan
    )
    rows, cols = tree_tops(
        np.pad(h, r, constant_values=np.nan),
        dx=1.0,
        dy=1.0,
        a=2 * r,
        b=0.0,
        min_window=2 * r,
        max_window=2 * r,
        min_height=2.0,
        halo=(r, r),
    )
    got = np.zeros_like(want)
    got[rows, cols] = True
    keep = ~(eq.astype(bool) & want)
    np.testing.assert_array_equal(got[keep], want[keep])
    assert want.sum() > 50


def test_operator_chunked_equals_whole(rt, chm):
    from minjiang.plugins.forestry.treetops import max_radius_cells, tree_tops

    path, h = chm
    ing = rt.ingest("forestry.raster", path, params={"chunks": {"y": 128, "x": 128}})
    table = (
        rt.run("forestry.tree_tops", inputs={"chm": ing}, params=PARAMS).table("tops").to_pandas()
    )
    ry, rx = max_radius_cells(PARAMS["max_window"], 1.0, 1.0)
    rows, cols = tree_tops(
        np.pad(h, ((ry, ry), (rx, rx)), constant_values=np.nan),
        dx=1.0,
        dy=1.0,
        halo=(ry, rx),
        **PARAMS,
    )
    np.testing.assert_array_equal(table["row"].to_numpy(), rows)
    np.testing.assert_array_equal(table["col"].to_numpy(), cols)
    np.testing.assert_array_equal(table["height"].to_numpy(), h[rows, cols])
    with rasterio.open(path) as src:
        xs, ys = rasterio.transform.xy(src.transform, rows, cols)
    np.testing.assert_allclose(table["x"].to_numpy(), xs)
    np.testing.assert_allclose(table["y"].to_numpy(), ys)
    assert len(table) > 50


@pytest.mark.parametrize(
    ("dx", "dy", "params"),
    [
        (1.0, 1.0, PARAMS),
        (0.5, 1.5, {**PARAMS, "b": 0.3}),  # anisotropic cells: elliptic boxes in cells
        (2.0, 2.0, {"a": 0.0, "b": 1.0, "min_window": 0.0, "max_window": 12.0, "min_height": 0}),
    ],
)
def test_reference_is_independent_and_agrees_on_random_surfaces(rng, dx, dy, params):
    """Integer heights (many ties), NaN holes: the vectorised reference (maximum
    filters per window footprint) and the numba loops find the same tops."""
    from minjiang.plugins.forestry.treetops import max_radius_cells, tree_tops

    ry, rx = max_radius_cells(params["max_window"], dx, dy)
    h = rng.integers(0, 12, size=(60, 70)).astype(np.float64)
    h[rng.random(h.shape) < 0.05] = np.nan
    block = np.pad(h, ((ry, ry), (rx, rx)), constant_values=np.nan)
    kw = dict(dx=dx, dy=dy, halo=(ry, rx), **params)
    ref = tree_tops(block, backend="reference", **kw)
    cpu = tree_tops(block, backend="cpu", **kw)
    np.testing.assert_array_equal(ref[0], cpu[0])
    np.testing.assert_array_equal(ref[1], cpu[1])
    assert ref[0].size > 20
