"""Ingest readers of the medicine plugin: DICOM series and the formats nibabel reads.

Arrays are written as ``image`` with dims ``("z", "y", "x")`` (``("t", "z", "y", "x")``
for 4-D NIfTI), and these array attributes, which every medicine operator reads:

``spacing``  voxel size in mm along (z, y, x);
``affine``   4x4 matrix from the index (z, y, x, 1) to patient coordinates in mm;
``space``    ``"LPS"`` (DICOM patient coordinates; NIfTI RAS is converted);
``units``    ``"HU"`` for CT, else what the source says (often empty).

Source files are handed to the runtime under neutral names (``src000001.dcm``), so
that no original file name reaches the catalog, a log or a message.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from minjiang.core import Reader
from minjiang.core.errors import ReaderError
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["DicomParams", "DicomReader", "NibabelReader", "NiftiParams", "NiftiReader"]

_LINK_DIRS: list[str] = []


def _cleanup_links() -> None:
    for d in _LINK_DIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup_links)


def _neutral_links(groups: list[list[Path]], suffixes: list[list[str]]) -> list[Path]:
    """Symlinks named ``src000001<suffix>`` (companions share the stem) to ``groups``."""
    d = tempfile.mkdtemp(prefix="minjiang-src-")
    _LINK_DIRS.append(d)
    out = []
    for i, (group, sfx) in enumerate(zip(groups, suffixes, strict=True)):
        for path, s in zip(group, sfx, strict=True):
            link = Path(d) / f"src{i:06d}{s}"
            os.symlink(path.resolve(), link)
            out.append(link)
    return out


class DicomParams(BaseModel):
    """Parameters of ``medicine.dicom``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    series: int | None = Field(
        default=None,
        ge=0,
        description="Which series to read when the sources hold several (0-based).",
    )
    dates: Literal["remove", "shift"] = Field(
        default="remove",
        description="Dates removed per the basic profile, or shifted back consistently per patient.",
    )
    allow_burned_in: bool = Field(
        default=False,
        description="Read images that may carry burned-in text (only after checking the pixels).",
    )
    on_quarantine: Literal["error", "skip"] = Field(
        default="error", description="Fail when a file is quarantined, or ingest the others."
    )
    mask_padding: bool = Field(default=True, description="Pixel Padding Value voxels become NaN.")
    max_voxels: int = Field(default=1 << 30, gt=0, description="Refuse series larger than this.")
    chunks: dict[str, int] | None = Field(
        default=None, description="Chunk length per dim (z, y, x)."
    )


class DicomReader(Reader):
    """DICOM series (single-frame files or enhanced multi-frame), de-identified on read.

    Series are assembled from the files and folders given: files are grouped by
    Series Instance UID, frames are ordered by their position along the normal of
    the image plane (never by Instance Number), rescale slope and intercept come from
    each frame's functional groups when present, compressed transfer syntaxes are
    decoded by the pylibjpeg plugins, and Pixel Padding Value voxels become NaN.
    Every header is de-identified per DICOM PS3.15 Annex E before anything else is
    done with it; only technical attributes reach the dataset.
    """

    name: ClassVar[str] = "medicine.dicom"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "DICOM series (CT, MR, PET...), de-identified, values in HU for CT"
    extensions: ClassVar[tuple[str, ...]] = (".dcm", ".dicom", ".ima")
    params: ClassVar[type[BaseModel] | None] = DicomParams
    supports_directories: ClassVar[bool] = True
    supports_multiple: ClassVar[bool] = True

    def source_files(self, paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
        # In folders, files that are not DICOM Part 10 (no "DICM" after the preamble:
        # notes, thumbnails, OS metadata) and the DICOMDIR index are not part of the
        # series; a file named explicitly is always taken, and quarantined if bad.
        files = [
            f
            for raw in paths
            for f in (
                [p for p in _existing_files(self.name, [raw]) if _is_part10(p)]
                if Path(raw).is_dir()
                else _existing_files(self.name, [raw])
            )
        ]
        if not files:
            raise ReaderError(f"{self.name}: the folders hold no DICOM file")
        return _neutral_links([[f] for f in files], [[".dcm"] for _ in files])

    def identity(self, params: Any) -> dict[str, Any]:
        from minjiang.plugins.medicine._deid import Deidentifier, load_key

        out = super().identity(params)
        out["deid_key_id"] = Deidentifier(load_key()).key_id()  # outputs depend on the key
        return out

    def open(self, files: list[Path], params: Any) -> xr.Dataset:
        import xarray as xr
        from minjiang.plugins.medicine._annex_e import EDITION
        from minjiang.plugins.medicine._deid import DEID_METHOD_CODES, Deidentifier, load_key
        from minjiang.plugins.medicine._dicom import read_series

        params = params or DicomParams()
        deid = Deidentifier(load_key(), dates=params.dates)
        vol = read_series(
            list(files),
            deid=deid,
            series=params.series,
            allow_burned_in=params.allow_burned_in,
            on_quarantine=params.on_quarantine,
            max_voxels=params.max_voxels,
            mask_padding=params.mask_padding,
        )
        codes = [DEID_METHOD_CODES["basic"][0]] + (
            [DEID_METHOD_CODES["shift"][0]] if params.dates == "shift" else []
        )
        attrs = {
            **vol.dataset_attrs,
            "patient_identity_removed": "YES",
            "deidentification_method": f"DICOM PS3.15 Annex E basic profile ({EDITION})",
            "deidentification_method_codes": codes,
            "deid_key_id": deid.key_id(),
            "source_format": "DICOM",
        }
        return xr.Dataset({"image": (("z", "y", "x"), vol.values, vol.array_attrs)}, attrs=attrs)

    def chunks(self, ds: xr.Dataset, params: Any) -> Mapping[str, int] | None:
        return _chunks(ds, getattr(params, "chunks", None))


class NiftiParams(BaseModel):
    """Parameters of ``medicine.nifti`` and ``medicine.nibabel``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    volume: int | None = Field(
        default=None, ge=0, description="Pick one volume of a 4-D image (0-based)."
    )
    affine: Literal["auto", "sform", "qform"] = Field(
        default="auto",
        description="NIfTI only: 'auto' takes the sform when its code is set, else the qform "
        "(nibabel's precedence); 'sform'/'qform' insist on one.",
    )
    chunks: dict[str, int] | None = Field(default=None, description="Chunk length per dim.")


class NiftiReader(Reader):
    """NIfTI-1/2 images through nibabel, read lazily (``dataobj``), scaling applied.

    ``scl_slope``/``scl_inter`` are applied as the standard says (a zero or absent slope
    means no scaling); scaled data become float32 (float64 if stored so), unscaled data
    keep their type. The affine follows the sform/qform precedence (see
    :class:`NiftiParams`) and is converted from RAS to LPS and to (z, y, x) indexing.
    """

    name: ClassVar[str] = "medicine.nifti"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = "NIfTI-1/2 volumes (nibabel), lazily read"
    extensions: ClassVar[tuple[str, ...]] = (".nii", ".nii.gz")
    params: ClassVar[type[BaseModel] | None] = NiftiParams
    supports_directories: ClassVar[bool] = False
    supports_multiple: ClassVar[bool] = False

    def source_files(self, paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
        files = _existing_files(self.name, paths)
        if len(files) != 1:
            raise ReaderError(f"{self.name}: takes one image, got {len(files)} files")
        group, sfx = _with_companions(self.name, files[0])
        return _neutral_links([group], [sfx])

    def open(self, files: list[Path], params: Any) -> xr.Dataset:
        from minjiang.plugins.medicine._nifti import open_nibabel

        return open_nibabel(self.name, files[0], params or NiftiParams())

    def chunks(self, ds: xr.Dataset, params: Any) -> Mapping[str, int] | None:
        return _chunks(ds, getattr(params, "chunks", None))


class NibabelReader(NiftiReader):
    """The other formats nibabel reads: Analyze, MGH/MGZ, MINC 1, PAR/REC, AFNI BRIK/HEAD, ECAT."""

    name: ClassVar[str] = "medicine.nibabel"
    description: ClassVar[str] = "Analyze, MGH/MGZ, MINC, PAR/REC, AFNI, ECAT volumes (nibabel)"
    extensions: ClassVar[tuple[str, ...]] = (
        ".hdr",
        ".img",
        ".mgh",
        ".mgz",
        ".mnc",
        ".par",
        ".head",
        ".v",
    )


_COMPANIONS = {
    ".hdr": (".img",),
    ".img": (".hdr",),
    ".par": (".rec",),
    ".rec": (".par",),
    ".head": (".brik", ".brik.gz"),
}
_KNOWN = (
    ".nii.gz",
    ".nii",
    ".hdr",
    ".img",
    ".mgh",
    ".mgz",
    ".mnc",
    ".par",
    ".rec",
    ".head",
    ".brik.gz",
    ".brik",
    ".v",
)


def _suffix(path: Path) -> str:
    low = path.name.lower()
    for ext in _KNOWN:
        if low.endswith(ext):
            return path.name[len(path.name) - len(ext) :]
    return ""


def _with_companions(reader: str, path: Path) -> tuple[list[Path], list[str]]:
    sfx = _suffix(path)
    if not sfx:
        raise ReaderError(
            f"{reader}: the source does not have a known image extension ({', '.join(_KNOWN)})"
        )
    stem = path.name[: len(path.name) - len(sfx)]
    group, sfxs = [path], [sfx]
    for comp in _COMPANIONS.get(sfx.lower(), ()):
        for cand in (comp, comp.upper(), comp.replace("brik", "BRIK")):
            p = path.with_name(stem + cand)
            if p.is_file() and p not in group:
                group.append(p)
                sfxs.append(cand)
                break
    if sfx.lower() in (".hdr", ".img", ".par", ".rec", ".head") and len(group) == 1:
        raise ReaderError(
            f"{reader}: the source's companion file (image data or header) is missing beside it"
        )
    return group, sfxs


def _is_part10(path: Path) -> bool:
    if path.name.upper() == "DICOMDIR":
        return False
    try:
        with path.open("rb") as f:
            return f.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _existing_files(reader: str, paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise ReaderError(
                f"{reader}: a source path does not exist (source #{len(files) + 1}); check the paths"
            )
    if not files:
        raise ReaderError(f"{reader}: no source files given (the folders are empty)")
    return files


def _chunks(ds: xr.Dataset, chunks: Mapping[str, int] | None) -> dict[str, int]:
    default = {"t": 1, "z": 64, "y": 128, "x": 128}
    out = {}
    for dim, n in ds.sizes.items():
        want = (chunks or {}).get(str(dim), default.get(str(dim), n))
        out[str(dim)] = max(1, min(int(want), int(n)))
    return out
