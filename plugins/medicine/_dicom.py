"""DICOM series assembly: headers, de-identification, quarantine, geometry, pixels.

Nothing here writes anything. Every header is de-identified (:mod:`._deid`) as soon as
it is parsed, and only an allow-list of technical attributes (geometry, rescale,
window, modality, replaced UIDs) ever leaves this module. Files are named in messages
by their position in the sorted source list (``file #3 of 12``), never by name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from minjiang.core.errors import ReaderError

log = logging.getLogger(__name__)

__all__ = ["DicomVolume", "QuarantinedFile", "SeriesError", "read_series"]

READER = "medicine.dicom"

_BURNED_IN_RISK = {
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
    "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.6.2",  # Enhanced US Volume
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image
    "1.2.840.10008.5.1.4.1.1.77.1.1.1",  # Video Endoscopic
    "1.2.840.10008.5.1.4.1.1.77.1.2.1",  # Video Microscopic
    "1.2.840.10008.5.1.4.1.1.77.1.4.1",  # Video Photographic
    "1.2.840.10008.5.1.4.1.1.77.1.1",  # VL Endoscopic
    "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
}
# Attributes this reader relies on; a file whose VR for one of them differs from the
# data dictionary is malformed (a wrong VR silently reinterprets the bytes).
_CHECKED_VR = (
    0x00280010,
    0x00280011,
    0x00280100,
    0x00280101,
    0x00280102,
    0x00280103,
    0x00280002,
    0x00280004,
    0x00280008,
    0x00200032,
    0x00200037,
    0x00280030,
    0x00180050,
    0x00281052,
    0x00281053,
    0x00280120,
    0x00280121,
    0x00281050,
    0x00281051,
)
_NATIVE = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
}


@dataclasses.dataclass(frozen=True)
class QuarantinedFile:
    """A source file set aside, with why (the path stays on the ingest host)."""

    index: int
    path: Path
    reason: str


class SeriesError(ReaderError):
    """A DICOM source was refused; ``quarantined`` lists the files set aside.

    The message names files by position only; ``quarantined`` carries their paths for
    the person on the ingest host and is never written anywhere by minjiang.
    """

    def __init__(self, message: str, quarantined: list[QuarantinedFile] | None = None) -> None:
        super().__init__(message)
        self.quarantined = list(quarantined or [])


class _Malformed(ValueError):
    """A file problem found by this module (its message quotes no value)."""


@dataclasses.dataclass
class _Frame:
    file: int
    frame: int
    ipp: np.ndarray
    iop: np.ndarray
    pixel_spacing: tuple[float, float]
    slope: float
    intercept: float
    thickness: float | None


@dataclasses.dataclass
class _Header:
    index: int
    path: Path
    series: str
    series_number: int | None
    modality: str
    sop_class: str
    transfer_syntax: str
    rows: int
    columns: int
    n_frames: int
    frames: list[_Frame]
    attrs: dict[str, Any]
    has_modality_lut_seq: bool


@dataclasses.dataclass
class DicomVolume:
    """An assembled, de-identified series: HU (or rescaled) values and attributes."""

    values: np.ndarray  # (z, y, x) float32, NaN where padding was masked
    array_attrs: dict[str, Any]
    dataset_attrs: dict[str, Any]
    quarantined: list[QuarantinedFile]


@contextlib.contextmanager
def _quiet() -> Iterator[list[warnings.WarningMessage]]:
    """Silence pydicom while it parses PHI: its warnings and log lines may quote values.

    Yields the warnings caught, so a caller can treat parser complaints as malformation.
    """
    logger = logging.getLogger("pydicom")
    was = logger.disabled
    logger.disabled = True
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
    finally:
        logger.disabled = was


def _parser_complaints(caught: list[warnings.WarningMessage]) -> bool:
    return any(
        "pydicom" in (w.filename or "") and "valuerep" not in (w.filename or "") for w in caught
    )


def _overlong(ds: Any) -> bool:
    """True when an element's declared length runs past the end of the file."""
    from pydicom.dataelem import RawDataElement

    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.length != 0xFFFFFFFF and raw.value is not None:
            if len(raw.value) < raw.length:
                return True
    return False


def _label(index: int, total: int) -> str:
    return f"file #{index + 1} of {total}"


def _dictionary_vr(tag: int) -> str | None:
    from pydicom.datadict import dictionary_VR

    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _check_vrs(ds: Any) -> str | None:
    for tag in _CHECKED_VR:
        if tag not in ds:
            continue
        elem = ds[tag]
        vr = str(elem.VR)
        expected = _dictionary_vr(tag)
        if expected is None or vr == "UN":
            continue
        if vr not in expected.replace(" ", "").split("or"):
            return f"attribute ({tag >> 16:04X},{tag & 0xFFFF:04X}) has VR {vr!r}, expected {expected!r}"
    return None


def _floats(value: Any, n: int, what: str) -> np.ndarray:
    values = [value] if isinstance(value, str) or not hasattr(value, "__len__") else list(value)
    try:
        arr = np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise _Malformed(f"{what} is not numeric") from None
    if arr.size != n or not np.all(np.isfinite(arr)):
        raise _Malformed(f"{what} needs {n} finite numbers, has {arr.size}")
    return arr


def _first(seq_owner: Any, seq: str) -> Any:
    s = seq_owner.get(seq) if seq_owner is not None else None
    return s[0] if s else None


def _group(ds: Any, i: int, seq: str) -> Any:
    """Functional-group item ``seq`` for frame ``i``: per-frame first, then shared."""
    pf = ds.get("PerFrameFunctionalGroupsSequence")
    if pf is not None and i < len(pf):
        item = _first(pf[i], seq)
        if item is not None:
            return item
    return _first(_first(ds, "SharedFunctionalGroupsSequence"), seq)


def _frames(ds: Any, index: int, n_frames: int) -> list[_Frame]:
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    frames = []
    for i in range(n_frames):
        if enhanced:
            pos = _group(ds, i, "PlanePositionSequence")
            ori = _group(ds, i, "PlaneOrientationSequence")
            meas = _group(ds, i, "PixelMeasuresSequence")
            pvt = _group(ds, i, "PixelValueTransformationSequence")
        else:
            pos = ori = meas = pvt = None
        src_pos = pos if pos is not None and "ImagePositionPatient" in pos else ds
        src_ori = ori if ori is not None and "ImageOrientationPatient" in ori else ds
        src_meas = meas if meas is not None and "PixelSpacing" in meas else ds
        if "ImagePositionPatient" not in src_pos or "ImageOrientationPatient" not in src_ori:
            raise _Malformed("no Image Position/Orientation (Patient)")
        if "PixelSpacing" not in src_meas:
            raise _Malformed("no Pixel Spacing")
        ipp = _floats(src_pos.ImagePositionPatient, 3, "Image Position (Patient)")
        iop = _floats(src_ori.ImageOrientationPatient, 6, "Image Orientation (Patient)")
        ps = _floats(src_meas.PixelSpacing, 2, "Pixel Spacing")
        if np.any(ps <= 0):
            raise _Malformed("Pixel Spacing is not positive")
        row, col = iop[:3], iop[3:]
        if (
            abs(np.linalg.norm(row) - 1) > 1e-3
            or abs(np.linalg.norm(col) - 1) > 1e-3
            or abs(row @ col) > 1e-3
        ):
            raise _Malformed("Image Orientation (Patient) is not two orthogonal unit vectors")
        # Rescale: Pixel Value Transformation of the frame's functional groups wins over
        # the top-level attributes (which enhanced objects do not carry).
        src_rs = pvt if pvt is not None and "RescaleSlope" in pvt else ds
        slope = float(src_rs.get("RescaleSlope", 1.0) or 1.0) if "RescaleSlope" in src_rs else 1.0
        intercept = (
            float(src_rs.get("RescaleIntercept", 0.0) or 0.0)
            if "RescaleIntercept" in src_rs
            else 0.0
        )
        if not (np.isfinite(slope) and np.isfinite(intercept)) or slope == 0:
            raise _Malformed("Rescale Slope/Intercept are not finite numbers with a non-zero slope")
        thick = (
            src_meas.get("SliceThickness")
            if "SliceThickness" in src_meas
            else ds.get("SliceThickness")
        )
        thickness = float(thick) if thick not in (None, "") else None
        frames.append(
            _Frame(index, i, ipp, iop, (float(ps[0]), float(ps[1])), slope, intercept, thickness)
        )
    return frames


def _window(ds: Any) -> dict[str, Any]:
    src = ds if "WindowCenter" in ds else _group(ds, 0, "FrameVOILUTSequence")
    if src is None or "WindowCenter" not in src or "WindowWidth" not in src:
        return {}
    try:
        c, w = src.WindowCenter, src.WindowWidth
        c = float(c[0] if hasattr(c, "__len__") and not isinstance(c, str) else c)
        w = float(w[0] if hasattr(w, "__len__") and not isinstance(w, str) else w)
    except (TypeError, ValueError, IndexError):
        return {}
    out: dict[str, Any] = {"window_center": c, "window_width": w}
    func = str(src.get("VOILUTFunction", "") or ds.get("VOILUTFunction", "") or "LINEAR").upper()
    out["voi_lut_function"] = func if func in ("LINEAR", "LINEAR_EXACT", "SIGMOID") else "LINEAR"
    return out


def _read_header(path: Path, index: int, deid: Any, allow_burned_in: bool) -> _Header | str:
    """A de-identified header, or the reason to quarantine the file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    with _quiet() as caught:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except InvalidDicomError:
            return "not a DICOM file (no 'DICM' marker after the preamble)"
        except (MemoryError, RecursionError):
            return "malformed: absurd element lengths or nesting"
        except Exception as err:
            return f"malformed: the header cannot be parsed ({type(err).__name__})"
        if _parser_complaints(caught) or _overlong(ds):
            return (
                "malformed: the header does not follow its transfer syntax (truncated, wrong VR, "
                "absurd length or wrong transfer syntax)"
            )
        try:
            deid(ds)
        except Exception as err:
            return f"malformed: de-identification failed on an unreadable element ({type(err).__name__})"
        try:
            return _header_fields(ds, path, index, allow_burned_in)
        except Exception as err:  # pydicom's conversion errors may quote the value
            return f"malformed: an attribute cannot be read ({type(err).__name__})"


def _header_fields(ds: Any, path: Path, index: int, allow_burned_in: bool) -> _Header | str:
    problem = _check_vrs(ds)
    if problem:
        return f"malformed: {problem}"
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if "Rows" not in ds or "Columns" not in ds:
        return "not an image, or truncated before the image attributes (no Rows/Columns)"
    burned = str(ds.get("BurnedInAnnotation", "") or "").upper()
    if not allow_burned_in and (
        burned == "YES" or (sop_class in _BURNED_IN_RISK and burned != "NO")
    ):
        return (
            "may carry burned-in text (Burned In Annotation is YES, or an image type that often "
            "does and no explicit NO)"
        )
    photometric = str(ds.get("PhotometricInterpretation", "") or "")
    if (
        photometric not in ("MONOCHROME1", "MONOCHROME2")
        or int(ds.get("SamplesPerPixel", 1) or 1) != 1
    ):
        return "unsupported: only greyscale (MONOCHROME1/2, one sample per pixel) images are read"
    if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        return "unsupported: float pixel data"
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
        bits = int(ds.BitsAllocated)
        if rows <= 0 or cols <= 0 or n_frames <= 0 or bits not in (1, 8, 16, 32):
            raise ValueError("image size")
    except (TypeError, ValueError, AttributeError):
        return "malformed: Rows, Columns, Number of Frames or Bits Allocated are not valid"
    try:
        frames = _frames(ds, index, n_frames)
    except _Malformed as err:
        return f"no usable patient geometry: {err}"
    except Exception as err:  # pydicom's conversion errors may quote the value
        return f"no usable patient geometry: an attribute cannot be read ({type(err).__name__})"
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "") if meta is not None else "") or "1.2.840.10008.1.2"
    attrs: dict[str, Any] = {"photometric_interpretation": photometric}
    attrs.update(_window(ds))
    rtype = str(ds.get("RescaleType", "") or "")
    pvt = _group(ds, 0, "PixelValueTransformationSequence")
    if pvt is not None and pvt.get("RescaleType"):
        rtype = str(pvt.RescaleType)
    attrs["rescale_type"] = rtype
    for kw in ("PixelPaddingValue", "PixelPaddingRangeLimit"):
        if kw in ds and ds[kw].value is not None:
            v = ds[kw].value
            attrs[kw] = (
                int(v[0] if isinstance(v, list | tuple) else v)
                if not isinstance(v, bytes)
                else None
            )
    try:
        series_number = int(ds.SeriesNumber) if ds.get("SeriesNumber") not in (None, "") else None
    except (TypeError, ValueError):
        series_number = None
    attrs["study_uid"] = str(ds.get("StudyInstanceUID", "") or "")
    attrs["series_uid"] = str(ds.get("SeriesInstanceUID", "") or "")
    attrs["frame_of_reference_uid"] = str(ds.get("FrameOfReferenceUID", "") or "")
    attrs["bits_stored"] = int(ds.get("BitsStored", bits) or bits)
    attrs["pixel_representation"] = int(ds.get("PixelRepresentation", 0) or 0)
    return _Header(
        index=index,
        path=path,
        series=attrs["series_uid"],
        series_number=series_number,
        modality=str(ds.get("Modality", "") or ""),
        sop_class=sop_class,
        transfer_syntax=ts,
        rows=rows,
        columns=cols,
        n_frames=n_frames,
        frames=frames,
        attrs=attrs,
        has_modality_lut_seq="ModalityLUTSequence" in ds,
    )


def _summary(quarantined: list[QuarantinedFile], total: int) -> str:
    by_reason: dict[str, list[int]] = {}
    for q in quarantined:
        by_reason.setdefault(q.reason, []).append(q.index)
    parts = []
    for reason, idx in sorted(by_reason.items()):
        shown = ", ".join(f"#{i + 1}" for i in idx[:8]) + (", ..." if len(idx) > 8 else "")
        parts.append(f"{len(idx)} file(s) {reason} ({shown})")
    return f"{len(quarantined)} of {total} source files quarantined: " + "; ".join(parts)


def _geometry(frames: list[_Frame]) -> tuple[np.ndarray, np.ndarray, list[float], list[_Frame]]:
    iop0 = frames[0].iop
    for f in frames[1:]:
        if np.max(np.abs(f.iop - iop0)) > 1e-4:
            raise _Malformed("the frames do not share one Image Orientation (Patient)")
        if (
            abs(f.pixel_spacing[0] - frames[0].pixel_spacing[0]) > 1e-4 * frames[0].pixel_spacing[0]
            or abs(f.pixel_spacing[1] - frames[0].pixel_spacing[1])
            > 1e-4 * frames[0].pixel_spacing[1]
        ):
            raise _Malformed("the frames do not share one Pixel Spacing")
    row, col = iop0[:3], iop0[3:]
    normal = np.cross(row, col)
    # Slice order: position along the normal of the image plane (never Instance Number).
    d = np.array([f.ipp @ normal for f in frames])
    order = np.argsort(d, kind="stable")
    frames = [frames[i] for i in order]
    d = d[order]
    dr, dc = frames[0].pixel_spacing
    if len(frames) > 1:
        gaps = np.diff(d)
        if np.any(gaps < 1e-3):
            raise _Malformed(
                f"{int(np.sum(gaps < 1e-3))} frame(s) share a slice position: the series holds several "
                "volumes (echoes, phases or time points); split it before ingest"
            )
        mean = float(np.mean(gaps))
        if float(np.max(np.abs(gaps - mean))) > max(0.01 * mean, 1e-3):
            raise _Malformed(
                f"the slice spacing is not uniform (from {float(gaps.min()):.4g} to {float(gaps.max()):.4g} mm); "
                "resample the series to uniform spacing before ingest"
            )
        step = (frames[-1].ipp - frames[0].ipp) / (len(frames) - 1)
        dz = float(np.linalg.norm(step))
    else:
        dz = float(frames[0].thickness or 1.0)
        step = normal * dz
    affine = np.eye(4)
    affine[:3, 0] = step
    affine[:3, 1] = col * dr
    affine[:3, 2] = row * dc
    affine[:3, 3] = frames[0].ipp
    orientation = np.stack([step / np.linalg.norm(step), col, row])
    return affine, orientation, [dz, dr, dc], frames


def _decode(path: Path, header: _Header, max_voxels: int) -> np.ndarray:
    """Stored values of every frame of one file, shape (frames, rows, cols)."""
    import pydicom

    n = header.n_frames * header.rows * header.columns
    if n > max_voxels:
        raise _Malformed(f"decodes to {n} voxels, over the max_voxels limit of {max_voxels}")
    with _quiet() as caught:
        ds = pydicom.dcmread(path)
        if _parser_complaints(caught) or _overlong(ds):
            raise _Malformed(
                "malformed: the file does not follow its transfer syntax (truncated or absurd length)"
            )
        if "PixelData" not in ds:
            raise _Malformed("not an image (no Pixel Data)")
        if header.transfer_syntax in _NATIVE:
            expected = n * int(ds.BitsAllocated) // 8
            if len(ds.PixelData) < expected:
                raise _Malformed(
                    "malformed: Pixel Data is shorter than Rows x Columns x Frames (truncated)"
                )
        arr = np.asarray(ds.pixel_array).reshape(header.n_frames, header.rows, header.columns)
        if header.has_modality_lut_seq:
            from pydicom.pixels import apply_modality_lut

            lut = apply_modality_lut(arr if header.n_frames > 1 else arr[0], ds)
            return np.asarray(lut, dtype=np.float64).reshape(arr.shape)
    return arr


def _padding_mask(stored: np.ndarray, attrs: dict[str, Any]) -> np.ndarray | None:
    pad = attrs.get("PixelPaddingValue")
    if pad is None:
        return None
    limit = attrs.get("PixelPaddingRangeLimit")
    if limit is None:
        return stored == pad
    lo, hi = min(pad, limit), max(pad, limit)
    return (stored >= lo) & (stored <= hi)


def read_series(
    files: list[Path],
    *,
    deid: Any,
    series: int | None,
    allow_burned_in: bool,
    on_quarantine: str,
    max_voxels: int,
    mask_padding: bool,
) -> DicomVolume:
    """Assemble one de-identified series from ``files``.

    Raises
    ------
    SeriesError
        When files are quarantined (and ``on_quarantine="error"``), no usable series is
        left, several series are present and none is chosen, or the geometry is not a
        regular volume.
    """
    total = len(files)
    headers: list[_Header] = []
    quarantined: list[QuarantinedFile] = []
    for i, path in enumerate(files):
        got = _read_header(path, i, deid, allow_burned_in)
        if isinstance(got, str):
            quarantined.append(QuarantinedFile(i, path, got))
        else:
            headers.append(got)
    if quarantined and on_quarantine == "error":
        raise SeriesError(
            f"{READER}: {_summary(quarantined, total)}. Remove or fix them, pass "
            "params={'on_quarantine': 'skip'} to ingest the rest"
            + (
                ", or params={'allow_burned_in': True} if you have checked the pixels"
                if any("burned-in" in q.reason for q in quarantined)
                else ""
            ),
            quarantined,
        )
    if not headers:
        raise SeriesError(
            f"{READER}: no usable image among {total} source files; "
            + _summary(quarantined, total),
            quarantined,
        )
    groups: dict[str, list[_Header]] = {}
    for h in headers:
        groups.setdefault(h.series, []).append(h)
    ordered = sorted(
        groups.values(),
        key=lambda g: (g[0].series_number if g[0].series_number is not None else -1, g[0].series),
    )
    if len(ordered) > 1 and series is None:
        listing = "; ".join(
            f"{i}: {g[0].modality or '?'} series number {g[0].series_number}, {len(g)} file(s)"
            for i, g in enumerate(ordered)
        )
        raise SeriesError(
            f"{READER}: the sources hold {len(ordered)} series ({listing}); choose one with params={{'series': i}}"
        )
    if series is not None and not 0 <= series < len(ordered):
        raise SeriesError(
            f"{READER}: series={series} but the sources hold {len(ordered)} series (0..{len(ordered) - 1})"
        )
    chosen = ordered[series or 0]
    first = chosen[0]
    for h in chosen[1:]:
        if (h.rows, h.columns) != (first.rows, first.columns):
            raise SeriesError(
                f"{READER}: {_label(h.index, total)} has a different image size from the rest of the series"
            )
    while True:
        frames = [f for h in chosen for f in h.frames]
        try:
            affine, orientation, spacing, frames = _geometry(frames)
        except _Malformed as err:
            raise SeriesError(f"{READER}: cannot assemble a volume: {err}") from None
        n_vox = len(frames) * first.rows * first.columns
        if n_vox > max_voxels:
            raise SeriesError(
                f"{READER}: the series has {n_vox} voxels, over the max_voxels limit of {max_voxels}"
            )
        stored: dict[int, np.ndarray] = {}
        failed = []
        for h in chosen:
            try:
                stored[h.index] = _decode(h.path, h, max_voxels)
            except _Malformed as err:  # our own, value-free message
                failed.append(QuarantinedFile(h.index, h.path, str(err)))
            except Exception as err:  # any decoder failure; its message may quote values
                reason = f"malformed: the pixel data cannot be decoded ({type(err).__name__})"
                failed.append(QuarantinedFile(h.index, h.path, reason))
        if not failed:
            break
        quarantined.extend(failed)
        if on_quarantine == "error":
            raise SeriesError(
                f"{READER}: {_summary(failed, total)}. Remove or fix them, or pass "
                "params={'on_quarantine': 'skip'} to ingest the rest",
                quarantined,
            )
        bad = {q.index for q in failed}
        chosen = [h for h in chosen if h.index not in bad]
        if not chosen:
            raise SeriesError(
                f"{READER}: no decodable image left; " + _summary(quarantined, total), quarantined
            )
    by_file = {h.index: h for h in chosen}
    values = np.empty((len(frames), first.rows, first.columns), dtype=np.float32)
    any_masked = False
    for z, f in enumerate(frames):
        raw = stored[f.file][f.frame]
        plane = (
            raw.astype(np.float64) * f.slope + f.intercept
            if not by_file[f.file].has_modality_lut_seq
            else raw
        )
        if mask_padding:
            m = _padding_mask(raw, by_file[f.file].attrs)
            if m is not None and m.any():
                plane = np.where(m, np.nan, plane)
                any_masked = True
        values[z] = plane
    a0 = first.attrs
    ct = first.modality == "CT"
    units = "HU" if ct and a0.get("rescale_type", "") in ("", "HU") else a0.get("rescale_type", "")
    array_attrs: dict[str, Any] = {
        "long_name": f"{first.modality or 'image'} values"
        + (" (Hounsfield units)" if units == "HU" else ""),
        "units": units,
        "spacing": [float(s) for s in spacing],
        "affine": affine.tolist(),
        "orientation": orientation.tolist(),
        "space": "LPS",
        "modality": first.modality,
        "photometric_interpretation": a0["photometric_interpretation"],
        "padding_masked": bool(any_masked),
        "slice_thickness": frames[0].thickness,
    }
    for k in ("window_center", "window_width", "voi_lut_function"):
        if k in a0:
            array_attrs[k] = a0[k]
    if len(frames) == 1:
        array_attrs["note"] = (
            "single slice: the z spacing is the slice thickness (or 1 mm when absent)"
        )
    dataset_attrs = {
        "modality": first.modality,
        "sop_class_uid": first.sop_class,
        "study_uid": a0["study_uid"],
        "series_uid": a0["series_uid"],
        "frame_of_reference_uid": a0["frame_of_reference_uid"],
        "n_source_files": len(chosen),
        "n_quarantined_files": len(quarantined),
    }
    log.info(
        "%s: assembled %d frames from %d files (%d quarantined)",
        READER,
        len(frames),
        len(chosen),
        len(quarantined),
    )
    return DicomVolume(values, array_attrs, dataset_attrs, quarantined)
