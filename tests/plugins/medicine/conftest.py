"""Fixtures of the medicine plugin tests.

Reference data come from installed PyPI packages only: pydicom's test files (with
pydicom-data), nibabel's test images and the Annex E table of ``dicom-anonymizer``.
A test whose reference package is missing skips.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def deid_key(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A per-test-session de-identification key (never the user's own)."""
    path = tmp_path_factory.getbasetemp() / "deid.key"
    monkeypatch.setenv("MINJIANG_DEID_KEY", str(path))
    return path


def dicom_file(name: str) -> Path:
    """A pydicom test file (offline, through pydicom-data); skip if absent."""
    pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    os.environ.setdefault("PYDICOM_DATA_NO_DOWNLOAD", "1")
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom test file {name!r} is not installed (pip install pydicom-data)")
    return Path(str(path))


def nibabel_data(name: str) -> Path:
    """A nibabel test image; skip if absent."""
    nib = pytest.importorskip("nibabel")
    path = Path(nib.__file__).parent / "tests" / "data" / name
    if not path.exists():
        pytest.skip(f"nibabel test file {name!r} is not installed")
    return path


def read_dicom(paths: list[Path] | Path, **params: Any) -> Any:
    """Open DICOM sources with the reader, as the runtime would (no store needed)."""
    from minjiang.plugins.medicine._readers import DicomReader

    reader = DicomReader()
    files = reader.source_files([paths] if isinstance(paths, Path | str) else paths)
    return reader.open(files, reader.validate_params(params))


def read_nibabel(path: Path, reader: str = "medicine.nifti", **params: Any) -> Any:
    """Open a nibabel image with one of the medicine readers."""
    from minjiang.plugins.medicine._readers import NibabelReader, NiftiReader

    r = NiftiReader() if reader == "medicine.nifti" else NibabelReader()
    return r.open(r.source_files([path]), r.validate_params(params))


@pytest.fixture
def ct_series(tmp_path: Path) -> Iterator[tuple[Path, np.ndarray]]:
    """A 14-slice synthetic CT series (shuffled instance numbers) and its HU values."""
    from minjiang.plugins.medicine import phantom_hu, write_ct_series

    hu = phantom_hu((14, 24, 26), seed=3)
    folder = tmp_path / "series"
    write_ct_series(folder, hu, seed=3)
    yield folder, hu
