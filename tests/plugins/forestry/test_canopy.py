"""Canopy height kernels: the numba kernels against the NumPy/SciPy reference, against
whitebox-workflows on laspy's real aerial LiDAR (autzen_trim.laz), and on surfaces
whose interpolation is known exactly (planes)."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import autzen_path

BACKENDS = ("reference", "cpu")
CELL = 5.0  # feet, the file's unit


@pytest.fixture(scope="module")
def points():
    laspy = pytest.importorskip("laspy")
    las = laspy.read(str(autzen_path()))
    return {
        "x": np.asarray(las.x),
        "y": np.asarray(las.y),
        "z": np.asarray(las.z),
        "classification": np.asarray(las.classification),
        "return_number": np.asarray(las.return_number),
        "mins": las.header.mins,
        "maxs": las.header.maxs,
    }


@pytest.fixture(scope="module")
def whitebox(points, tmp_path_factory):
    """whitebox-workflows' block maximum and TIN gridding (ground only) at 5 ft."""
    wbw = pytest.importorskip("whitebox_workflows")
    rasterio = pytest.importorskip("rasterio")
    out = tmp_path_factory.mktemp("wbw")
    env = wbw.WbEnvironment()
    env.verbose = False
    lid = env.read_lidar(str(autzen_path()))
    grid = env.lidar.interpolation_gridding
    not_ground = ",".join(str(c) for c in range(256) if c != 2)
    rasters = {
        "dsm": grid.lidar_block_maximum(input=lid, resolution=CELL),
        "dtm": grid.lidar_tin_gridding(
            input=lid, resolution=CELL, excluded_classes=not_ground, returns_included="all"
        ),
    }
    got = {}
    for name, r in rasters.items():
        path = out / f"{name}.tif"
        env.write_raster(r, str(path))
        with rasterio.open(path) as src:
            a = src.read(1)
            got[name] = np.where(a == src.nodata, np.nan, a)
            got["transform"] = src.transform
    return got


def _grid(whitebox):
    t = whitebox["transform"]
    return {"left": t.c, "top": t.f, "cell": CELL, "shape": whitebox["dsm"].shape}


def test_dsm_identical_to_whitebox_block_maximum(points, whitebox):
    from minjiang.plugins.forestry.canopy import grid_max

    for backend in BACKENDS:
        dsm = grid_max(points["x"], points["y"], points["z"], backend=backend, **_grid(whitebox))
        np.testing.assert_array_equal(dsm, whitebox["dsm"])  # NaN where no point, both
    assert np.isnan(whitebox["dsm"]).sum() > 1000 and np.isfinite(whitebox["dsm"]).sum() > 15000


def test_dtm_matches_whitebox_tin_gridding(points, whitebox):
    from minjiang.plugins.forestry.canopy import tin_grid

    g = points["classification"] == 2
    zr = np.ptp(points["z"][g])
    ref = whitebox["dtm"]
    for backend in BACKENDS:
        dtm = tin_grid(
            points["x"][g], points["y"][g], points["z"][g], backend=backend, **_grid(whitebox)
        )
        np.testing.assert_array_equal(np.isnan(dtm), np.isnan(ref))  # the same ground hull
        inside = ~np.isnan(ref)
        assert np.abs(dtm[inside] - ref[inside]).max() <= 1e-3 * zr
        # measured: 2.3e-12 ft with coordinates relative to the grid corner
        assert np.abs(dtm[inside] - ref[inside]).max() < 1e-9
    assert inside.sum() > 20000


def test_canopy_height_backends_agree_on_autzen(points):
    """A 48 x 64-cell window with its points and a 16-cell buffer, pit-free included,
    with and without a longest TIN edge."""
    from minjiang.plugins.forestry.canopy import canopy_height

    left, top = np.floor(points["mins"][0]), np.ceil(points["maxs"][1])
    r0, c0, shape, b = 30, 90, (48, 64), 16
    row = np.floor((top - points["y"]) / CELL)
    col = np.floor((points["x"] - left) / CELL)
    k = (row >= r0 - b) & (row < r0 + shape[0] + b) & (col >= c0 - b) & (col < c0 + shape[1] + b)
    cols = [points[c][k] for c in ("x", "y", "z", "classification", "return_number")]
    kw = dict(left=left, top=top, cell=CELL, shape=shape, origin=(r0, c0), pit_free=True)
    for edge in (None, b * CELL / 2):
        ref = canopy_height(*cols, backend="reference", tin_max_edge=edge, **kw)
        cpu = canopy_height(*cols, backend="cpu", tin_max_edge=edge, **kw)
        for name in ("dsm", "dtm", "chm", "chm_pitfree"):
            np.testing.assert_array_equal(np.isnan(ref[name]), np.isnan(cpu[name]), err_msg=name)
            np.testing.assert_allclose(cpu[name], ref[name], rtol=0, atol=1e-9, err_msg=name)
        assert np.nanmax(cpu["chm"]) > 30 and np.nanmin(cpu["chm"]) == 0
        # the pit-free CHM is a TIN of first returns: defined wherever the ground is
        assert np.isfinite(cpu["chm_pitfree"]).sum() >= np.isfinite(cpu["chm"]).sum()
        assert np.nanmax(cpu["chm_pitfree"]) <= np.nanmax(cpu["dsm"] - np.nanmin(cpu["dtm"]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_tin_is_exact_on_a_plane(backend, rng):
    """Linear interpolation reproduces a plane; centres on triangle edges included."""
    from minjiang.plugins.forestry.canopy import tin_grid

    # lattice points: many cell centres fall exactly on triangle edges
    xs, ys = np.meshgrid(np.arange(0.0, 21.0, 2.0), np.arange(0.0, 21.0, 2.0))
    x, y = xs.ravel() + 1000.0, ys.ravel() + 5000.0
    z = 2.0 * x - 3.0 * y + 7.0
    out = tin_grid(x, y, z, left=1000.0, top=5020.0, cell=1.0, shape=(20, 20), backend=backend)
    yc = 5020.0 - (np.arange(20) + 0.5)
    xc = 1000.0 + np.arange(20) + 0.5
    want = 2.0 * xc[None, :] - 3.0 * yc[:, None] + 7.0
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-9)
    # scattered points: NaN exactly outside their hull (here a known square)
    x = np.r_[1000.0, 1010.0, 1000.0, 1010.0, rng.uniform(1000, 1010, 50)]
    y = np.r_[5000.0, 5000.0, 5010.0, 5010.0, rng.uniform(5000, 5010, 50)]
    out = tin_grid(x, y, x + y, left=995.0, top=5015.0, cell=1.0, shape=(20, 20), backend=backend)
    inside = np.zeros((20, 20), bool)
    inside[5:15, 5:15] = True
    np.testing.assert_array_equal(~np.isnan(out), inside)


def test_tin_cpu_owns_every_centre_once(rng):
    """Centres on shared edges get one value, the same as the reference's."""
    from minjiang.plugins.forestry.canopy import tin_grid

    x = rng.integers(0, 40, 300).astype(float)
    y = rng.integers(0, 40, 300).astype(float)
    z = rng.normal(size=300)
    kw = dict(left=0.0, top=40.0, cell=0.5, shape=(80, 80))
    ref = tin_grid(x, y, z, backend="reference", **kw)
    cpu = tin_grid(x, y, z, backend="cpu", **kw)
    np.testing.assert_array_equal(np.isnan(ref), np.isnan(cpu))
    np.testing.assert_allclose(cpu, ref, rtol=0, atol=1e-9)


def test_duplicate_ground_points_take_the_lowest(rng):
    from minjiang.plugins.forestry.canopy import tin_grid

    x = np.array([0.0, 10.0, 0.0, 10.0, 10.0])
    y = np.array([0.0, 0.0, 10.0, 10.0, 10.0])
    z = np.array([1.0, 1.0, 1.0, 5.0, 1.0])  # (10, 10) twice: 5 and 1
    for backend in BACKENDS:
        out = tin_grid(x, y, z, left=0.0, top=10.0, cell=2.5, shape=(4, 4), backend=backend)
        np.testing.assert_allclose(out, 1.0)


def test_windows_and_edge_cases():
    from minjiang.plugins.forestry.canopy import canopy_height, grid_max, tin_grid

    # points on cell edges: east and south cells own them (rasterio's floor convention)
    x = np.array([0.0, 1.0, 1.0, 0.5])
    y = np.array([2.0, 2.0, 1.0, 0.0])
    z = np.array([1.0, 2.0, 3.0, 4.0])
    for backend in BACKENDS:
        out = grid_max(x, y, z, left=0.0, top=2.0, cell=1.0, shape=(3, 2), backend=backend)
        want = np.array([[1.0, 2.0], [np.nan, 3.0], [4.0, np.nan]])
        np.testing.assert_array_equal(out, want)
        win = grid_max(
            x, y, z, left=0.0, top=2.0, cell=1.0, shape=(1, 1), origin=(1, 1), backend=backend
        )
        np.testing.assert_array_equal(win, [[3.0]])
        # fewer than three, or collinear, ground points: no triangle, all NaN
        for gx in ([0.0, 1.0], [0.0, 1.0, 2.0]):
            g = np.asarray(gx)
            assert np.isnan(
                tin_grid(g, g, g, left=0.0, top=2.0, cell=1.0, shape=(2, 2), backend=backend)
            ).all()
        empty = canopy_height(
            [], [], [], [], [], left=0, top=0, cell=1, shape=(2, 3), backend=backend
        )
        assert all(v.shape == (2, 3) and np.isnan(v).all() for v in empty.values())
    with pytest.raises(ValueError, match="NaN"):
        grid_max([np.nan], [0.0], [0.0], left=0, top=0, cell=1, shape=(1, 1))
    with pytest.raises(ValueError, match="cell size"):
        grid_max([0.0], [0.0], [0.0], left=0, top=0, cell=0, shape=(1, 1))
    with pytest.raises(ValueError, match="differ in length"):
        grid_max([0.0, 1.0], [0.0], [0.0], left=0, top=0, cell=1, shape=(1, 1))
    with pytest.raises(ValueError, match="backend"):
        grid_max([0.0], [0.0], [0.0], left=0, top=0, cell=1, shape=(1, 1), backend="gpu")
    with pytest.raises(ValueError, match="include 0"):
        canopy_height(
            [0.0],
            [0.0],
            [0.0],
            [2],
            [1],
            left=0,
            top=0,
            cell=1,
            shape=(1, 1),
            pit_free=True,
            thresholds=(2.0, 5.0),
        )
