"""NIfTI and the other nibabel formats as lazy (z, y, x) datasets in LPS millimetres."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from minjiang.core.errors import ReaderError

__all__ = ["index_affine", "open_nibabel"]

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_UNIT_MM = {"mm": 1.0, "unknown": 1.0, "meter": 1000.0, "micron": 1e-3}


class _Scaled:
    """Array-like over a nibabel proxy: slices read lazily, scaled, in native byte order."""

    def __init__(self, proxy: Any, dtype: np.dtype) -> None:
        self._proxy = proxy
        self.shape = tuple(int(s) for s in proxy.shape)
        self.dtype = dtype
        self.ndim = len(self.shape)

    def __getitem__(self, idx: Any) -> np.ndarray:
        return np.asarray(self._proxy[idx]).astype(self.dtype, copy=False)


def index_affine(affine_ijk_ras: np.ndarray, spatial_unit: float = 1.0) -> np.ndarray:
    """Convert an (i, j, k) -> RAS affine into the (z, y, x) = (k, j, i) -> LPS mm one.

    Parameters
    ----------
    affine_ijk_ras
        nibabel's 4x4 affine.
    spatial_unit
        Millimetres per file unit.

    Returns
    -------
    numpy.ndarray
        4x4 float64 matrix.
    """
    a = np.asarray(affine_ijk_ras, dtype=np.float64).copy()
    a[:3, :] *= spatial_unit
    out = _RAS_TO_LPS @ a
    return out[:, [2, 1, 0, 3]]


def _nifti_affine(img: Any, mode: str, reader: str) -> tuple[np.ndarray, str]:
    hdr = img.header
    if not hasattr(hdr, "get_sform"):
        return np.asarray(img.affine), "header"
    sform, scode = hdr.get_sform(coded=True)
    qform, qcode = hdr.get_qform(coded=True)
    if mode == "sform":
        if not scode:
            raise ReaderError(
                f"{reader}: affine='sform' but the file's sform_code is 0; use affine='auto' or 'qform'"
            )
        return np.asarray(sform), "sform"
    if mode == "qform":
        if not qcode:
            raise ReaderError(
                f"{reader}: affine='qform' but the file's qform_code is 0; use affine='auto' or 'sform'"
            )
        return np.asarray(qform), "qform"
    if scode:
        return np.asarray(sform), "sform"
    if qcode:
        return np.asarray(qform), "qform"
    return np.asarray(hdr.get_base_affine()), "pixdim"


def open_nibabel(reader: str, path: Path, params: Any) -> Any:
    """Open one image lazily as an ``xarray.Dataset`` with an ``image`` variable."""
    import dask.array as da
    import nibabel as nib
    import xarray as xr

    try:
        img: Any = nib.load(str(path))  # an analyze-family image: dataobj, affine, header
        proxy = img.dataobj
        shape = tuple(int(s) for s in proxy.shape)
        raw_dtype = np.dtype(img.get_data_dtype())
    except Exception as err:
        raise ReaderError(
            f"{reader}: the source cannot be read as an image ({type(err).__name__}); check that it is "
            "a complete NIfTI/Analyze/MGH/MINC/PAR file"
        ) from None
    if not 2 <= len(shape) <= 4 or any(s <= 0 for s in shape):
        raise ReaderError(f"{reader}: expected a 2-D to 4-D image, got shape {shape}")
    if raw_dtype.kind not in "biuf":
        raise ReaderError(f"{reader}: unsupported voxel type {raw_dtype.name!r} (complex or RGB)")
    try:
        probe = np.asarray(proxy[(slice(0, 1),) * len(shape)]).dtype  # what slicing returns
    except Exception as err:
        raise ReaderError(
            f"{reader}: the image data cannot be read ({type(err).__name__}); the file may be truncated "
            "or its data file missing"
        ) from None
    # Scaling (NIfTI scl_slope/scl_inter, MINC, PAR/REC, AFNI) makes floats: float32
    # unless the file itself holds float64.
    scaled = probe.kind == "f" and raw_dtype.kind != "f"
    if probe.kind == "f":
        dtype = np.dtype(np.float64 if raw_dtype == np.float64 else np.float32)
    else:
        dtype = probe.newbyteorder("=")
    if dtype == np.bool_:
        dtype = np.dtype(np.uint8)

    if hasattr(img.header, "get_xyzt_units"):
        unit_name = img.header.get_xyzt_units()[0] or "unknown"
    else:
        unit_name = "mm"
    unit = _UNIT_MM.get(unit_name, 1.0)
    affine, source = (
        _nifti_affine(img, params.affine, reader)
        if reader == "medicine.nifti"
        else (np.asarray(img.affine), "header")
    )
    zooms = [float(z) * unit for z in img.header.get_zooms()[:3]]
    zooms += [1.0] * (3 - len(zooms))
    # lock=True: nibabel's array proxies seek and read one shared file handle, so
    # concurrent dask threads reading blocks of one image race (seen on PAR/REC).
    arr = da.from_array(
        _Scaled(proxy, dtype), chunks=_io_chunks(shape, dtype.itemsize), asarray=False, lock=True
    )
    if len(shape) == 2:
        arr = arr[:, :, None]
    if arr.ndim == 4:
        if params.volume is not None:
            if params.volume >= arr.shape[3]:
                raise ReaderError(
                    f"{reader}: volume={params.volume} but the image has {arr.shape[3]} volumes"
                )
            arr = arr[..., params.volume]
    elif params.volume not in (None, 0):
        raise ReaderError(f"{reader}: volume={params.volume} but the image is 3-D")
    attrs: dict[str, Any] = {
        "long_name": "image values",
        "units": "",
        "spacing": [zooms[2], zooms[1], zooms[0]],
        "affine": index_affine(affine, unit).tolist(),
        "space": "LPS",
        "affine_source": source,
        "scaled": bool(scaled),
    }
    if arr.ndim == 4:
        data = arr.transpose(3, 2, 1, 0)
        dims: tuple[str, ...] = ("t", "z", "y", "x")
    else:
        data = arr.transpose(2, 1, 0)
        dims = ("z", "y", "x")
    fmt = type(img).__name__.replace("Image", "") or "nibabel"
    return xr.Dataset({"image": (dims, data, attrs)}, attrs={"source_format": fmt})


def _io_chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    # Read whole planes along the last file axis: nibabel proxies slice cheaply there.
    target = max(1, (64 << 20) // max(1, itemsize * int(np.prod(shape[:2]))))
    out = list(shape)
    if len(shape) >= 3:
        out[2] = min(shape[2], target)
    if len(shape) == 4:
        out[2] = shape[2]
        out[3] = 1
    return tuple(out)
