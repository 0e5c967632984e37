"""Fixtures of the forestry plugin tests.

Reference data come from PyPI packages only: the Sentinel-2 bands of xarray-spatial
(``xrspatial/datasets/sentinel-2``), the 1 m LiDAR DEM of ``lidar`` (``lidar/data/dem.tif``)
and the aerial LiDAR ``autzen_trim.laz`` of laspy's source distribution, which
``make install`` extracts into ``<venv>/share/minjiang-data/``. A test whose reference
is missing skips; nothing is downloaded at test time.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest


def package_file(package: str, *parts: str) -> Path:
    """A data file shipped inside an installed package; skip if absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{package} is not installed")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.exists():
        pytest.skip(f"{package} does not ship {'/'.join(parts)}")
    return path


def write_geotiff(
    path: Path, values: Any, transform: Any, crs: str = "EPSG:32633", **profile: Any
) -> Path:
    """Write ``values`` (2-D, or bands x rows x cols) as a GeoTIFF; ``transform`` a
    rasterio Affine or its 6 numbers."""
    import numpy as np
    import rasterio

    data = np.asarray(values)
    data = data[None] if data.ndim == 2 else data
    t = transform if isinstance(transform, rasterio.Affine) else rasterio.Affine(*transform[:6])
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype.name,
        crs=crs,
        transform=t,
        **profile,
    ) as dst:
        dst.write(data)
    return path


def gdal_reproject(x: Any, t: Any, dt: Any, shape: tuple[int, int], method: str) -> Any:
    """GDAL's resampling of ``x`` (transform ``t``) onto ``dt``/``shape`` in one UTM
    zone through ``rasterio.warp.reproject``, NaN as nodata: the reference of
    ``forestry.resample``."""
    import numpy as np
    import rasterio
    from rasterio.warp import Resampling, reproject

    want = np.full(shape, np.nan)
    reproject(
        np.asarray(x, dtype=np.float64),
        want,
        src_transform=rasterio.Affine(*t[:6]),
        dst_transform=rasterio.Affine(*dt[:6]),
        src_crs="EPSG:32719",
        dst_crs="EPSG:32719",
        resampling=getattr(Resampling, method),
        src_nodata=np.nan,
        dst_nodata=np.nan,
    )
    return want


def sentinel2(band: str) -> Path:
    """One 10 m Sentinel-2 band of xarray-spatial (blue, green, red, nir)."""
    return package_file("xrspatial", "datasets", "sentinel-2", f"{band}_band.nc")


def lidar_dem() -> Path:
    return package_file("lidar", "data", "dem.tif")


def autzen_path() -> Path:
    """laspy's ``tests/data/autzen_trim.laz`` (110,000 points, feet), as ``make`` puts it."""
    path = Path(sys.prefix, "share", "minjiang-data", "autzen_trim.laz")
    if not path.exists():
        pytest.skip(
            f"{path} is absent: `make install` extracts it from laspy's source distribution "
            "(pip download --no-binary :all: laspy)"
        )
    return path


@pytest.fixture(scope="session")
def autzen() -> Path:
    """Path of ``autzen_trim.laz`` (skips when ``make install`` has not extracted it)."""
    return autzen_path()


@pytest.fixture
def rt(tmp_path):
    import minjiang as mj

    pytest.importorskip("rasterio")
    runtime = mj.Runtime(store=tmp_path / "store", executor="local", memory_budget="16MiB")
    yield runtime
    runtime.close()
