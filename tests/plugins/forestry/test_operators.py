"""Forestry operators against independent references on real data shipped in PyPI
packages: spectral indices (xarray-spatial, spyndex) on the Sentinel-2 bands of
xarray-spatial, terrain (xarray-spatial) on lidar's 1 m DEM; burn severity against
its published class edges. Each kernel's numba version is checked against its NumPy
reference."""

from __future__ import annotations

import re

import numpy as np
import pytest
from minjiang.core.errors import ContractError, ParameterError

from .conftest import lidar_dem, sentinel2, write_geotiff

rasterio = pytest.importorskip("rasterio")


def _bands(rt, *names):
    return {n: rt.ingest("forestry.raster", sentinel2(n), params={"bands": [n]}) for n in names}


def _values(res, name):
    return res.to_xarray()[name].values


@pytest.mark.parametrize(
    ("index", "xrs", "symbols"),
    [
        ("NDVI", "ndvi", {"N": "nir", "R": "red"}),
        ("EVI", "evi", {"N": "nir", "R": "red", "B": "blue"}),
        ("SAVI", None, {"N": "nir", "R": "red"}),
        ("GNDVI", None, {"N": "nir", "G": "green"}),
    ],
)
def test_index_matches_xrspatial_and_spyndex(rt, index, xrs, symbols):
    spyndex = pytest.importorskip("spyndex")
    xr = pytest.importorskip("xarray")
    bands = _bands(rt, *symbols.values())
    res = rt.run(
        "forestry.spectral_index",
        inputs={s: bands[b] for s, b in symbols.items()},
        params={"index": index, "dtype": "float64"},
    )
    got = _values(res, index)
    arrays = {b: bands[b].to_xarray()[b].values.astype(np.float64) for b in symbols.values()}
    params = {s: arrays[b] for s, b in symbols.items()}
    formula = spyndex.indices[index].formula
    for c, const in spyndex.constants.items():
        if c in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", formula):
            params[c] = const.default
    if index == "SAVI":
        params["L"] = 0.5
    want = np.asarray(spyndex.computeIndex(index, params=params), dtype=np.float64)
    if index == "SAVI":  # L = 0.5, the soil factor of Huete (1988), given explicitly
        res = rt.run(
            "forestry.spectral_index",
            inputs={s: bands[b] for s, b in symbols.items()},
            params={"index": index, "dtype": "float64", "constants": {"L": 0.5}},
        )
        got = _values(res, index)
    # a zero denominator: spyndex (NumPy) gives an infinity, this operator NaN
    want = np.where(np.isinf(want), np.nan, want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, equal_nan=True)
    if xrs is not None:
        from xrspatial import multispectral as ms

        da = {b: xr.DataArray(v, dims=("y", "x")) for b, v in arrays.items()}
        if xrs == "ndvi":
            ref = ms.ndvi(da["nir"], da["red"]).values
        else:
            ref = ms.evi(da["nir"], da["red"], da["blue"]).values
        ref = np.where(np.isinf(ref), np.nan, ref)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(
            got, ref, rtol=1e-6, atol=1e-6, equal_nan=True
        )  # xrspatial: float32


def test_integers_cast_first_and_zero_denominators_nan(rt, tmp_path):
    from rasterio.transform import from_origin

    nir = np.array([[60000, 0, 100], [5, 7, 65535]], dtype=np.uint16)
    red = np.array([[1000, 0, 100], [5, 9, 0]], dtype=np.uint16)
    paths = {}
    for name, v in {"nir": nir, "red": red}.items():
        paths[name] = write_geotiff(tmp_path / f"{name}.tif", v, from_origin(0, 0, 10, 10))
    ing = {n: rt.ingest("forestry.raster", p, params={"bands": [n]}) for n, p in paths.items()}
    res = rt.run(
        "forestry.spectral_index",
        inputs={"N": ing["nir"], "R": ing["red"]},
        params={"formula": "(N - R) / (N + R)", "output": "ndvi"},
    )
    got = _values(res, "ndvi")
    assert got.dtype == np.float32
    n, r = nir.astype(np.float32), red.astype(np.float32)
    with np.errstate(invalid="ignore"):
        want = (n - r) / (n + r)
    np.testing.assert_array_equal(np.isnan(got), [[False, True, False], [False, False, False]])
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)
    # a zero denominator is NaN, never an infinity
    res = rt.run(
        "forestry.spectral_index",
        inputs={"N": ing["nir"], "R": ing["red"]},
        params={"formula": "N / R", "output": "ratio"},
    )
    ratio = _values(res, "ratio")
    assert np.isnan(ratio[1, 2]) and np.isnan(ratio[0, 1]) and not np.isinf(ratio).any()


def test_index_refusals(rt):
    bands = _bands(rt, "nir", "red")
    with pytest.raises(ParameterError, match="did you mean"):
        rt.run("forestry.spectral_index", inputs={"N": bands["nir"]}, params={"index": "NDVX"})
    with pytest.raises(ContractError, match=r"\['B'\] not given"):
        rt.run(
            "forestry.spectral_index",
            inputs={"N": bands["nir"], "R": bands["red"]},
            params={"index": "EVI"},
        )
    with pytest.raises(ParameterError, match="exactly one"):
        rt.run("forestry.spectral_index", inputs={"N": bands["nir"]}, params={})
    with pytest.raises(ParameterError, match="kernel index"):
        rt.run("forestry.spectral_index", inputs={"N": bands["nir"]}, params={"index": "kNDVI"})


def test_every_catalogue_formula_compiles():
    spyndex = pytest.importorskip("spyndex")
    from minjiang.plugins.forestry._spectral import resolve_formula

    done = 0
    for name, idx in spyndex.indices.items():
        if idx.application_domain == "kernel":
            continue
        needs = {"PAR", "lambdaG", "lambdaN", "lambdaN2", "lambdaR", "lambdaS1", "lambdaS2"}
        f = resolve_formula(name, None, dict.fromkeys(needs, 1.0), "t")
        assert f.bands
        done += 1
    assert done > 250


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_burn_severity_kernel_and_edges(dtype):
    from minjiang.plugins.forestry.severity import burn_severity

    d = np.array([-0.6, -0.25, -0.2500001, -0.1, 0.0999, 0.1, 0.27, 0.4399, 0.44, 0.66, 1.5])
    pre = np.full(d.shape, 0.5, dtype)
    post = (pre.astype(np.float64) - d).astype(dtype)
    pre[-1], post[-1] = np.nan, 0.1
    ref = burn_severity(pre, post, backend="reference")
    cpu = burn_severity(pre, post, backend="cpu")
    for k in ref:  # the ratios may differ by one rounding of the stored type
        np.testing.assert_allclose(ref[k], cpu[k], rtol=2e-7, atol=0)
        np.testing.assert_array_equal(
            np.isnan(ref[k].astype(float)), np.isnan(cpu[k].astype(float))
        )
    dn = ref["dnbr"].astype(np.float64)
    want = np.select(
        [np.isnan(dn), dn < -0.25, dn < -0.1, dn < 0.1, dn < 0.27, dn < 0.44, dn < 0.66],
        [0, 1, 2, 3, 4, 5, 6],
        7,
    )
    np.testing.assert_array_equal(ref["severity"], want)
    # exactly on an edge belongs to the class above (lower edge inclusive)
    exact = burn_severity(np.array([0.27, 0.0]), np.array([0.0, 0.1]))
    assert exact["severity"].tolist() == [5, 3]
    zero = burn_severity(np.array([0.0, -1.001]), np.array([0.1, 0.1]))
    assert np.isnan(zero["rdnbr"][0]) and np.isnan(zero["rbr"][1])


def test_dnbr_end_to_end(rt):
    bands = _bands(rt, "nir", "red", "green")
    pre = rt.run(
        "forestry.spectral_index",
        inputs={"N": bands["nir"], "R": bands["red"]},
        params={"index": "NDVI", "output": "pre"},
    )
    post = rt.run(
        "forestry.spectral_index",
        inputs={"N": bands["nir"], "G": bands["green"]},
        params={"index": "GNDVI", "output": "post"},
    )
    res = rt.run("forestry.dnbr", inputs={"pre": pre, "post": post})
    ds = res.to_xarray()
    from minjiang.plugins.forestry.severity import burn_severity

    want = burn_severity(_values(pre, "pre"), _values(post, "post"), backend="reference")
    for k, v in want.items():
        np.testing.assert_allclose(ds[k].values, v, rtol=2e-7, atol=0)
    assert ds["severity"].attrs["class_lower_edges_dnbr"] == [-0.25, -0.1, 0.1, 0.27, 0.44, 0.66]
    pytest.importorskip("rioxarray")
    assert ds["dnbr"].rio.crs.to_epsg() == 32719


def _dem():
    with rasterio.open(lidar_dem()) as src:
        return src.read(1).astype(np.float64), src.transform


def test_terrain_kernel_cpu_matches_reference():
    from minjiang.plugins.forestry.terrain import horn_terrain

    z, _ = _dem()
    z = z[:60, :70].copy()
    z[10, 10] = np.nan
    zp = np.pad(z, 1, constant_values=np.nan)
    ew = np.linspace(0.9, 1.1, 60)
    a = horn_terrain(zp, ew, 1.0, z_factor=2.0, backend="reference")
    b = horn_terrain(zp, ew, 1.0, z_factor=2.0, backend="cpu")
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-12, equal_nan=True)
        np.testing.assert_array_equal(np.isnan(a[k]), np.isnan(b[k]))
    # flat: slope 0, aspect NaN, hillshade 1 + 254 sin(altitude)
    flat = horn_terrain(np.ones((5, 5)), 1.0, 1.0)
    assert (flat["slope"] == 0).all() and np.isnan(flat["aspect"]).all()
    np.testing.assert_allclose(flat["hillshade"], 1 + 254 * np.sin(np.radians(45)))


def test_terrain_matches_xrspatial(rt):
    xr = pytest.importorskip("xarray")
    xrspatial = pytest.importorskip("xrspatial")
    z, t = _dem()
    dem = rt.ingest("forestry.raster", lidar_dem(), params={"chunks": {"y": 128, "x": 128}})
    ds = rt.run("forestry.terrain", inputs={"dem": dem}).to_xarray()
    H, W = z.shape
    da = xr.DataArray(
        z,
        dims=("y", "x"),
        coords={"y": t.f + t.e * (np.arange(H) + 0.5), "x": t.c + t.a * (np.arange(W) + 0.5)},
    )
    slope = xrspatial.slope(da).values
    aspect = xrspatial.aspect(da).values
    aspect = np.where(aspect < 0, np.nan, aspect)  # xrspatial marks flat cells -1
    got_s, got_a = ds["slope"].values, ds["aspect"].values
    np.testing.assert_array_equal(np.isnan(got_s), np.isnan(slope))
    np.testing.assert_array_equal(np.isnan(got_a), np.isnan(aspect))
    assert np.nanmax(np.abs(got_s - slope)) < 1e-4  # degrees; xrspatial computes in float32
    diff = np.abs(got_a - aspect)
    assert np.nanmax(np.minimum(diff, 360 - diff)) < 1e-3
    # the chunked run equals one whole-array kernel call
    from minjiang.plugins.forestry.terrain import horn_terrain

    whole = horn_terrain(np.pad(z, 1, constant_values=np.nan), 1.0, 1.0)
    np.testing.assert_array_equal(ds["hillshade"].values, whole["hillshade"].astype(np.float32))


def test_geographic_dem_in_metres_per_degree(rt, tmp_path):
    from minjiang.plugins.forestry._grid import geographic_spacing
    from rasterio.transform import from_origin

    # a plane rising 1 m per metre eastwards, on a 1/3600 degree grid at 60 N
    d = 1 / 3600
    lat = 60.0 + d * 20 - d * (np.arange(40) + 0.5)
    ew, _ = geographic_spacing(lat, d, d)
    z = np.cumsum(np.broadcast_to(ew[:, None], (40, 30)), axis=1).astype(np.float32)
    p = write_geotiff(tmp_path / "geo.tif", z, from_origin(10.0, 60.0 + d * 20, d, d), "EPSG:4326")
    dem = rt.ingest("forestry.raster", p)
    ds = rt.run("forestry.terrain", inputs={"dem": dem}).to_xarray()
    inner = ds["slope"].values[1:-1, 1:-1]
    np.testing.assert_allclose(inner, 45.0, atol=1e-3)
    # z also varies by row (the metres per degree change with latitude): aspect ~ west
    np.testing.assert_allclose(ds["aspect"].values[1:-1, 1:-1], 270.0, atol=1e-2)
    assert np.isnan(ds["slope"].values[0]).all() and np.isnan(ds["slope"].values[:, -1]).all()
    # 1/3600 degree is about 15.5 m of longitude at 60 N, 30.9 m of latitude
    assert 15.4 < ew.mean() < 15.6


@pytest.mark.gpu
def test_spectral_index_kernel_on_the_gpu_matches_the_cpu():
    cp = pytest.importorskip("cupy")
    from minjiang.plugins.forestry._operators import _BandMathParams, band_math_kernel
    from minjiang.plugins.forestry._spectral import resolve_formula

    rng = np.random.default_rng(2)
    bands = {
        "N": rng.integers(0, 10000, (64, 70)).astype(np.uint16),
        "R": rng.integers(0, 10000, (64, 70)).astype(np.uint16),
        "B": rng.integers(0, 10000, (64, 70)).astype(np.uint16),
    }
    bands["N"][0, :5] = bands["R"][0, :5] = bands["B"][0, :5] = 0
    f = resolve_formula("EVI", None, {}, "t")
    p = _BandMathParams(
        expression=f.expression, output="EVI", dtype="float32", index="EVI", formula=f.source
    )
    cpu = band_math_kernel(bands, p, None)["EVI"]  # type: ignore[arg-type]
    gpu = band_math_kernel({k: cp.asarray(v) for k, v in bands.items()}, p, None)["EVI"]  # type: ignore[arg-type]
    np.testing.assert_allclose(cp.asnumpy(gpu), cpu, rtol=1e-6, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(np.isnan(cp.asnumpy(gpu)), np.isnan(cpu))
