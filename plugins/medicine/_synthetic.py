"""Small synthetic DICOM series for examples and tests, built on a shipped CT header.

The header of pydicom's ``CT_small.dcm`` (a real CT file) is reused for every slice;
the pixels, geometry and instance UIDs are replaced. Nothing is downloaded.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["phantom_hu", "write_ct_series"]


def phantom_hu(shape: tuple[int, int, int] = (24, 40, 40), seed: int = 0) -> np.ndarray:
    """A CT-like phantom in HU: soft tissue, a few dense spheres ("lesions"), air outside.

    Parameters
    ----------
    shape
        (z, y, x) voxels.
    seed
        Seed of the noise and sphere placement.

    Returns
    -------
    numpy.ndarray
        int16 HU values.
    """
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape, dtype=np.float64)
    c = [(s - 1) / 2 for s in shape]
    body = ((y - c[1]) / (0.45 * shape[1])) ** 2 + ((x - c[2]) / (0.45 * shape[2])) ** 2 <= 1
    hu = np.where(body, 40.0, -1000.0)
    r = max(2.0, min(shape) / 7)
    for _ in range(4):
        p = [
            rng.uniform(min(r + 1, (s - 1) / 2), max(min(r + 1, (s - 1) / 2), s - r - 2))
            for s in shape
        ]
        rr = rng.uniform(0.6, 1.0) * r
        inside = ((z - p[0]) ** 2 + (y - p[1]) ** 2 + (x - p[2]) ** 2) <= rr**2
        hu = np.where(inside & body, 220.0, hu)
    hu += rng.normal(0, 8, shape)
    return np.round(hu).astype(np.int16)


def write_ct_series(
    folder: str | Path,
    hu: np.ndarray,
    *,
    spacing: Sequence[float] = (2.0, 0.8, 0.8),
    origin: Sequence[float] = (-20.0, -30.0, -40.0),
    orientation: Sequence[float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    shuffle_instance_numbers: bool = True,
    names: Sequence[str] | None = None,
    edit: Any = None,
    seed: int = 0,
) -> list[Path]:
    """Write ``hu`` (z, y, x) as single-frame CT files, one per slice.

    Parameters
    ----------
    folder
        Created if needed.
    hu
        int16 HU values; stored as ``HU + 1024`` with intercept -1024.
    spacing
        (slice step, row spacing, column spacing) in mm.
    origin
        Image Position (Patient) of the first slice.
    orientation
        Image Orientation (Patient): row then column direction cosines.
    shuffle_instance_numbers
        Give Instance Numbers in a random order (slice order must come from positions).
    names
        File names, one per slice (default ``IM0000.dcm``...).
    edit
        Optional ``edit(ds, k)`` called on each slice before it is written.
    seed
        Seed of the UIDs and the shuffle.

    Returns
    -------
    list of pathlib.Path
        The files, in slice order.
    """
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ct_small: Any = get_testdata_file("CT_small.dcm")  # a path: the file ships with pydicom
    template = pydicom.dcmread(ct_small)
    rng = np.random.default_rng(seed)
    nz, ny, nx = hu.shape
    iop = np.asarray(orientation, dtype=np.float64)
    normal = np.cross(iop[:3], iop[3:])
    numbers = rng.permutation(nz) + 1 if shuffle_instance_numbers else np.arange(nz) + 1
    study, series, frame = (
        generate_uid(entropy_srcs=[f"{seed}-{k}"]) for k in ("study", "series", "frame")
    )
    paths = []
    for k in range(nz):
        ds = copy.deepcopy(template)
        ds.Rows, ds.Columns = ny, nx
        ds.PixelRepresentation = 1
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = (hu[k].astype(np.int32) + 1024).astype("<i2").tobytes()
        ds.ImagePositionPatient = [float(v) for v in np.asarray(origin) + k * spacing[0] * normal]
        ds.ImageOrientationPatient = [float(v) for v in iop]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[2])]
        ds.SliceThickness = float(spacing[0])
        ds.InstanceNumber = int(numbers[k])
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"{seed}-sop-{k}"])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for kw in ("WindowCenter", "WindowWidth"):
            if kw in ds:
                del ds[kw]
        ds.WindowCenter, ds.WindowWidth = 40, 400
        if edit is not None:
            edit(ds, k)
        path = folder / (names[k] if names is not None else f"IM{k:04d}.dcm")
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
