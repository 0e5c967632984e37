"""Regrid kernels: the numba kernels against the NumPy/SciPy reference, conservative
weights against analytic integrals on the sphere, nearest and bilinear against
pyresample."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from minjiang.kernels.regrid import (
    apply_weights,
    bilinear_weights,
    cell_areas,
    conservative_weights,
    curvilinear_grid,
    latlon_grid,
    lonlat_to_xyz,
    nearest_weights,
    overlap_areas,
    polygon_areas,
    projected_grid,
    regrid_weights,
)

BACKENDS = ["cpu", "reference"]


def rotated_grid(lat0: float, lon0: float, ny: int, nx: int, h: float, angle: float = 25.0):
    """A curvilinear grid: a lat/lon-ish grid turned by ``angle`` about its centre."""
    j, i = np.meshgrid((np.arange(ny) - ny / 2) * h, (np.arange(nx) - nx / 2) * h, indexing="ij")
    a = np.radians(angle)
    u, v = i * np.cos(a) - j * np.sin(a), i * np.sin(a) + j * np.cos(a)
    lat = lat0 + v
    return lat, lon0 + u / np.cos(np.radians(lat))


def sin_lat_mean(lat_bounds: np.ndarray) -> np.ndarray:
    """Exact area mean of sin(lat) over lat bands: (sin a + sin b) / 2."""
    s = np.sin(np.radians(lat_bounds))
    return (s[:-1] + s[1:]) / 2


# ------------------------------------------------------------------ apply_weights
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("min_valid", [0.0, 0.5, 1.0])
def test_apply_weights_cpu_matches_reference(dtype, min_valid) -> None:
    rng = np.random.default_rng(3)
    n_src, n_dst, k = 50, 30, 4
    dst = rng.integers(0, n_dst - 3, 200)  # the last three target cells get nothing
    src = rng.integers(0, n_src, 200)
    w = rng.uniform(0.0, 0.4, 200)
    x = rng.normal(size=(k, n_src)).astype(dtype)
    x[:, ::7] = np.nan
    x[1] = np.nan
    got = apply_weights(x, dst, src, w, n_dst, min_valid_fraction=min_valid, backend="cpu")
    ref = apply_weights(x, dst, src, w, n_dst, min_valid_fraction=min_valid, backend="reference")
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
    assert np.isnan(got[:, -3:]).all() and np.isnan(got[1]).all()
    # by hand for one target cell
    i = int(dst[0])
    sel = (dst == i) & ~np.isnan(x[0, src])
    wv = w[sel].sum()
    want = (
        np.sum(w[sel] * x[0, src[sel]].astype(np.float64)) / wv
        if wv >= min_valid and wv > 0
        else np.nan
    )
    np.testing.assert_allclose(got[0, i], want, rtol=1e-12)


def test_apply_weights_checks_its_input() -> None:
    x = np.zeros((1, 4))
    with pytest.raises(ValueError, match="outside the grids"):
        apply_weights(x, [0], [4], [1.0], 2)
    with pytest.raises(ValueError, match="one length"):
        apply_weights(x, [0, 1], [0], [1.0], 2)
    with pytest.raises(ValueError, match=r"\(k, n_src\)"):
        apply_weights(np.zeros(4), [0], [0], [1.0], 2)
    empty = apply_weights(x, [], [], [], 3)
    assert empty.shape == (1, 3) and np.isnan(empty).all()


# ------------------------------------------------------------------ polygon areas
@pytest.mark.parametrize("backend", BACKENDS)
def test_polygon_areas_tile_the_sphere(backend) -> None:
    g = latlon_grid(np.arange(-87.5, 90, 5.0), np.arange(2.5, 360, 5.0))
    # great-circle cells through the corners of a global grid still tile the sphere
    assert abs(polygon_areas(g.corners, backend=backend).sum() - 4 * np.pi) < 1e-12
    # and one octant is a spherical triangle of pi / 2
    tri = lonlat_to_xyz([0.0, 90.0, 0.0], [0.0, 0.0, 90.0])[None]
    np.testing.assert_allclose(polygon_areas(tri, backend=backend), [np.pi / 2], rtol=1e-14)


def test_overlap_areas_cpu_matches_reference() -> None:
    lat, lon = rotated_grid(50, 20, 12, 15, 0.8)
    a = curvilinear_grid(lat, lon)
    b = latlon_grid(np.arange(40, 61, 1.3), np.arange(5, 36, 1.1))
    pd, ps = np.meshgrid(np.arange(a.size), np.arange(b.size), indexing="ij")
    pd, ps = pd.ravel(), ps.ravel()
    got = overlap_areas(a.corners, b.corners, pd, ps, backend="cpu")
    ref = overlap_areas(a.corners, b.corners, pd, ps, backend="reference")
    assert (got > 0).sum() > 300
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-17)
    # the pieces of each curvilinear cell add up to the cell (b covers a)
    total = np.bincount(pd, weights=got, minlength=a.size)
    np.testing.assert_allclose(total, polygon_areas(a.corners), rtol=1e-10)


def test_overlap_of_a_cell_with_itself_and_with_a_disjoint_one() -> None:
    g = latlon_grid(np.arange(0.5, 10, 1.0), np.arange(0.5, 10, 1.0))
    for backend in BACKENDS:
        same = overlap_areas(g.corners, g.corners, [0, 5], [0, 99], backend=backend)
        np.testing.assert_allclose(same[0], polygon_areas(g.corners[:1])[0], rtol=1e-12)
        assert same[1] == 0.0


# ------------------------------------------------------------------ conservative
def _integral(x: np.ndarray, area: np.ndarray) -> float:
    return float(np.sum(x * area))


@pytest.mark.parametrize(
    ("src_axes", "dst_axes"),
    [
        # full globe, longitudes offset, incommensurate, from 0 and from -180
        (
            (np.arange(-89.5, 90, 1.0), np.arange(0.5, 360, 1.0)),
            (np.arange(-88.5, 90, 3.0), np.arange(-178.8, 180, 2.4)),
        ),
        # regional: the target covers the same box with other cells
        (
            (np.arange(20.25, 38, 0.5), np.arange(100.25, 130, 0.5)),
            (np.arange(20.75, 38, 1.5), np.arange(101.0, 130, 2.0)),
        ),
    ],
    ids=["globe", "regional"],
)
def test_conservative_latlon_conserves_and_averages_exactly(src_axes, dst_axes) -> None:
    src, dst = latlon_grid(*src_axes), latlon_grid(*dst_axes)
    d, s, w = conservative_weights(src, dst)
    a_src, a_dst = cell_areas(src), cell_areas(dst)
    rng = np.random.default_rng(0)
    x = 280 + 10 * np.cos(np.radians(src.lat)) + rng.normal(size=src.size)
    y = apply_weights(x[None], d, s, w, dst.size, min_valid_fraction=1.0)[0]
    assert np.isfinite(y).all()
    rel = abs(_integral(y, a_dst) - _integral(x, a_src)) / abs(_integral(x, a_src))
    assert rel < 1e-10
    const = apply_weights(np.full((1, src.size), 3.25), d, s, w, dst.size)[0]
    np.testing.assert_allclose(const, 3.25, rtol=1e-13)
    # f = 2 + 3 sin(lat): the source cells hold its exact cell means, and the target's
    # latitude edges are source edges, so the target gets its exact cell means too
    _ny, nx = src.shape
    fx = np.repeat(2 + 3 * sin_lat_mean(src.lat_bounds), nx)
    fy = apply_weights(fx[None], d, s, w, dst.size)[0]
    want = np.repeat(2 + 3 * sin_lat_mean(dst.lat_bounds), dst.shape[1])
    np.testing.assert_allclose(fy, want, rtol=1e-12)


def test_conservative_latlon_weights_sum_to_the_covered_fraction() -> None:
    src = latlon_grid(np.arange(0.5, 10, 1.0), np.arange(0.5, 10, 1.0))
    dst = latlon_grid(np.arange(0.0, 11, 2.0), np.arange(0.0, 11, 2.0))
    d, _s, w = conservative_weights(src, dst)
    frac = np.bincount(d, weights=w, minlength=dst.size).reshape(dst.shape)
    # the target's first row and column hang half (in lat: by sin) outside the source
    assert np.allclose(frac[1:-1, 1:-1], 1.0)
    assert 0.49 < frac[0, 3] < 0.51 and 0.49 < frac[-1, 3] < 0.51
    np.testing.assert_allclose(frac[3, [0, -1]], 0.5, rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conservative_curvilinear_and_latlon_both_ways(backend) -> None:
    lat, lon = rotated_grid(40, 10, 16, 20, 0.6)
    curv = curvilinear_grid(lat, lon)
    box = latlon_grid(np.arange(30, 50.1, 0.7), np.arange(-5, 25.1, 0.9))
    a_curv, a_box = cell_areas(curv), cell_areas(box, edges="great_circle")
    x = 3 * np.cos(np.radians(curv.lat)) + curv.lon / 10
    # curvilinear inside the box: the box cells' integral, each weighted by the
    # fraction of it the source covers, is the source's
    d, s, w = conservative_weights(curv, box, backend=backend)
    frac = np.bincount(d, weights=w, minlength=box.size)
    y = np.nan_to_num(apply_weights(x[None], d, s, w, box.size, min_valid_fraction=0.0)[0])
    assert abs(_integral(y * frac, a_box) - _integral(x, a_curv)) / _integral(x, a_curv) < 1e-10
    # the box around the curvilinear grid: every curvilinear cell is covered whole
    d, s, w = conservative_weights(box, curv, backend=backend)
    frac = np.bincount(d, weights=w, minlength=curv.size)
    np.testing.assert_allclose(frac, 1.0, atol=1e-10)
    xb = 2 + np.sin(np.radians(box.lat))
    yc = apply_weights(xb[None], d, s, w, curv.size)[0]
    covered = np.bincount(s, weights=w * a_curv[d], minlength=box.size)
    rel = abs(_integral(yc, a_curv) - _integral(xb, covered)) / _integral(xb, covered)
    assert rel < 1e-10
    const = apply_weights(np.full((1, box.size), -1.5), d, s, w, curv.size)[0]
    np.testing.assert_allclose(const, -1.5, rtol=1e-12)


def test_conservative_projected_to_latlon() -> None:
    # a 10 km UTM 33N raster inside a 0.25-degree box
    ras = projected_grid("EPSG:32633", (10000.0, 0, 400000.0, 0, -10000.0, 5600000.0), (12, 15))
    box = latlon_grid(np.arange(49.0, 51.6, 0.25), np.arange(12.0, 17.1, 0.25))
    d, s, w = conservative_weights(ras, box)
    x = np.linspace(1, 2, ras.size)
    y = np.nan_to_num(apply_weights(x[None], d, s, w, box.size, min_valid_fraction=0.0)[0])
    frac = np.bincount(d, weights=w, minlength=box.size)
    a_ras, a_box = cell_areas(ras), cell_areas(box, edges="great_circle")
    assert abs(_integral(y * frac, a_box) - _integral(x, a_ras)) / _integral(x, a_ras) < 1e-10
    # every raster cell lies in the box, whole
    np.testing.assert_allclose(
        np.bincount(s, weights=w * a_box[d], minlength=ras.size), a_ras, rtol=1e-10
    )


def test_great_circle_cells_differ_from_lat_lon_cells_as_documented() -> None:
    # docs/sharing.md quotes these: lat/lon cells taken as great-circle polygons
    g = latlon_grid(np.arange(-89.5, 90, 1.0), np.arange(0.5, 360, 1.0))
    rel = np.abs(cell_areas(g, edges="great_circle") / cell_areas(g) - 1).reshape(g.shape)
    assert rel[:, 0].max() < 3e-3  # the cells at the poles (triangles)
    assert rel[30:150, 0].max() < 3.2e-5  # 1-degree cells within 60 degrees of the equator


# ------------------------------------------------------------------ nearest / bilinear
def _pyresample():
    return pytest.importorskip("pyresample", reason="pyresample is in the validation extra")


def _area(lat: np.ndarray, lon: np.ndarray):
    """A pyresample lon/lat AreaDefinition over regular centres (rows north to south)."""
    geometry = _pyresample().geometry
    dy, dx = lat[1] - lat[0], lon[1] - lon[0]
    extent = (lon[0] - dx / 2, lat[0] - dy / 2, lon[-1] + dx / 2, lat[-1] + dy / 2)
    return geometry.AreaDefinition(
        "ll", "ll", "ll", {"proj": "longlat", "datum": "WGS84"}, lon.size, lat.size, extent
    )


def _unambiguous(src_xyz: np.ndarray, dst_xyz: np.ndarray) -> np.ndarray:
    """Target points whose nearest source centre is not tied with the second."""
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(src_xyz).query(dst_xyz, k=2)
    return (dist[:, 1] - dist[:, 0]) > 1e-9 * dist[:, 1]


def test_nearest_matches_pyresample_on_a_curvilinear_source() -> None:
    pr = _pyresample()
    lat, lon = rotated_grid(10, 30, 40, 50, 0.5)
    src = curvilinear_grid(lat, lon)
    x = np.random.default_rng(1).normal(size=src.size)
    tlat, tlon = np.arange(2.1, 18, 0.37), np.arange(20.05, 40, 0.41)
    dst = latlon_grid(tlat, tlon)
    d, s, w = nearest_weights(src, dst)
    got = apply_weights(x[None], d, s, w, dst.size)[0].reshape(dst.shape)
    sw = pr.geometry.SwathDefinition(lons=lon, lats=lat)
    want = pr.kd_tree.resample_nearest(
        sw, x.reshape(lat.shape), _area(tlat, tlon), radius_of_influence=50e3, fill_value=np.nan
    )[::-1]
    ok = _unambiguous(src.centres, dst.centres).reshape(dst.shape)
    both = ok & np.isfinite(got) & np.isfinite(want)
    assert both.sum() > 0.5 * got.size
    np.testing.assert_array_equal(got[both], want[both])
    # outside the source: NaN here; pyresample's radius leaves some of them filled
    assert np.isnan(got[np.isnan(want) & ok]).all()


def test_bilinear_on_a_latlon_source_matches_scipy() -> None:
    from scipy.interpolate import RegularGridInterpolator

    la, lo = np.arange(38.0, 52.1, 0.5), np.arange(8.0, 21.1, 0.5)
    src = latlon_grid(la[::-1], lo)  # north to south, as many files store it
    dst = latlon_grid(np.arange(41.0, 49.01, 0.2), np.arange(11.0, 18.01, 0.25))
    f = 10 + np.sin(np.radians(3 * src.lat)) * np.cos(np.radians(2 * src.lon))
    d, s, w = bilinear_weights(src, dst)
    got = apply_weights(f[None], d, s, w, dst.size)[0]
    rgi = RegularGridInterpolator((la, lo), f.reshape(src.shape)[::-1])
    np.testing.assert_allclose(got, rgi(np.stack([dst.lat, dst.lon], -1)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["curvilinear", "projected"])
def test_bilinear_matches_pyresample(kind) -> None:
    pr = _pyresample()
    from pyresample.bilinear import NumpyBilinearResampler

    tlat, tlon = np.arange(41.0, 49.01, 0.2), np.arange(11.0, 18.01, 0.25)
    dst = latlon_grid(tlat, tlon)
    if kind == "curvilinear":
        src = curvilinear_grid(*rotated_grid(45, 14.5, 50, 60, 0.25, angle=15.0))
    else:
        src = projected_grid("EPSG:32633", (5000.0, 0, 50000.0, 0, -5000.0, 5600000.0), (240, 180))
    f = 10 + np.sin(np.radians(3 * src.lat)) * np.cos(np.radians(2 * src.lon))
    d, s, w = bilinear_weights(src, dst)
    got = apply_weights(f[None], d, s, w, dst.size)[0].reshape(dst.shape)
    sw = pr.geometry.SwathDefinition(
        lons=src.lon.reshape(src.shape), lats=src.lat.reshape(src.shape)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = NumpyBilinearResampler(sw, _area(tlat, tlon), 60e3).resample(
            f.reshape(src.shape), fill_value=np.nan
        )[::-1]
    assert np.isfinite(got).all()
    # pyresample leaves a few targets unfilled (those on a line of source centres)
    ok = np.isfinite(want)
    assert ok.mean() > 0.6
    # bilinear in another plane (pyresample: the target's): O(h^2) apart
    np.testing.assert_allclose(got[ok], want[ok], rtol=0, atol=2e-4)
    truth = 10 + np.sin(np.radians(3 * dst.lat)) * np.cos(np.radians(2 * dst.lon))
    assert np.abs(got.ravel() - truth).max() < 1e-3


def test_nearest_and_bilinear_leave_targets_outside_the_source_nan() -> None:
    src = latlon_grid(np.arange(0.5, 10, 1.0), np.arange(0.5, 10, 1.0))
    dst = latlon_grid(np.arange(-4.5, 15, 1.0), np.arange(-4.5, 15, 1.0))
    x = np.arange(src.size, dtype=np.float64)[None]
    lat, lon = dst.lat.reshape(dst.shape), dst.lon.reshape(dst.shape)
    for method in ("nearest", "bilinear", "conservative"):
        d, s, w = regrid_weights(src, dst, method)
        y = apply_weights(x, d, s, w, dst.size)[0].reshape(dst.shape)
        inside = (lat > 0) & (lat < 10) & (lon > 0) & (lon < 10)
        assert np.isnan(y[~inside]).all(), method
        core = (lat > 1) & (lat < 9) & (lon > 1) & (lon < 9)
        assert np.isfinite(y[core]).all(), method


def test_bilinear_wraps_round_a_global_grid() -> None:
    src = latlon_grid(np.arange(-80.0, 81, 10.0), np.arange(0.0, 360, 10.0))
    dst = latlon_grid(np.array([0.0, 10.0]), np.array([-5.0, 175.0]))
    f = np.cos(np.radians(src.lon))
    d, s, w = bilinear_weights(src, dst)
    y = apply_weights(f[None], d, s, w, dst.size)[0].reshape(dst.shape)
    # halfway between 350 and 0: the mean of cos(350) and cos(0)
    np.testing.assert_allclose(y[:, 0], (np.cos(np.radians(350)) + 1) / 2, rtol=1e-12)


def test_grids_refuse_what_they_cannot_be() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        latlon_grid([0.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="monotonic"):
        latlon_grid([0.0, 2.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="over 360"):
        latlon_grid([0.0, 1.0], np.arange(0, 400, 10.0))
    with pytest.raises(ValueError, match="2-D of one shape"):
        curvilinear_grid(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="unknown regrid method"):
        regrid_weights(
            latlon_grid([0.0, 1.0], [0.0, 1.0]), latlon_grid([0.0, 1.0], [0.0, 1.0]), "cubic"
        )


def test_weights_split_by_rows_join_to_the_whole() -> None:
    src = curvilinear_grid(*rotated_grid(0, 0, 10, 12, 1.0))
    dst = latlon_grid(np.arange(-6.0, 6.1, 0.8), np.arange(-7.0, 7.1, 0.9))
    for method in ("nearest", "bilinear", "conservative"):
        whole = regrid_weights(src, dst, method)
        half = dst.size // 2
        parts = [
            regrid_weights(src, dst, method, slice(0, half)),
            regrid_weights(src, dst, method, slice(half, None)),
        ]
        for a, b in zip(
            whole, (np.concatenate([p[i] for p in parts]) for i in range(3)), strict=True
        ):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conservative_with_cells_of_metres(backend) -> None:
    # 10 m raster cells (1e-12 sr): areas from the gnomonic cross product keep their
    # precision where triple products of unit vectors would cancel
    ras = projected_grid("EPSG:32633", (10.0, 0, 500000.0, 0, -10.0, 5500000.0), (30, 40))
    lo, la = ras.lon, ras.lat
    box = latlon_grid(
        np.arange(la.min() - 0.0002, la.max() + 0.0003, 0.0001),
        np.arange(lo.min() - 0.0002, lo.max() + 0.0003, 0.00015),
    )
    d, s, w = conservative_weights(ras, box, backend=backend)
    a_ras, a_box = cell_areas(ras), cell_areas(box, edges="great_circle")
    np.testing.assert_allclose(
        np.bincount(s, weights=w * a_box[d], minlength=ras.size), a_ras, rtol=1e-9
    )
    x = np.linspace(1, 2, ras.size)
    y = np.nan_to_num(apply_weights(x[None], d, s, w, box.size, min_valid_fraction=0.0)[0])
    frac = np.bincount(d, weights=w, minlength=box.size)
    assert abs(_integral(y * frac, a_box) - _integral(x, a_ras)) / _integral(x, a_ras) < 1e-10
