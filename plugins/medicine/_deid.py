"""De-identification of DICOM headers: PS3.15 Annex E, Basic Application Level
Confidentiality Profile, with optional consistent date shifting.

Everything here runs on the ingest host, before anything is written. UIDs are replaced
by ``2.25.<n>`` where ``n`` is an HMAC-SHA256 of the original UID under a
per-installation secret key, so a UID maps to the same replacement in every file of a
series and in every reference to it (Referenced/Source Image Sequences, Frame of
Reference), and the mapping cannot be inverted or recomputed without the key. The key
never leaves the host: it is read from ``$MINJIANG_DEID_KEY`` (a file path) or
``~/.config/minjiang/deid.key``, created with mode 0600 on first use.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from minjiang.core.errors import ReaderError
from minjiang.plugins.medicine._annex_e import BASIC_PROFILE, EDITION, REPEATING_GROUPS

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

__all__ = [
    "DEID_METHOD_CODES",
    "KEY_ENV",
    "Deidentifier",
    "load_key",
]

KEY_ENV = "MINJIANG_DEID_KEY"
_DEFAULT_KEY = Path("~/.config/minjiang/deid.key")

#: PS3.16 CID 7050 codes recorded in DeidentificationMethodCodeSequence.
DEID_METHOD_CODES = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "shift": ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
}

_PATIENT_ID = 0x00100020
_PATIENT_BIRTH_DATE = 0x00100030
_ISSUER_OF_PATIENT_ID = 0x00100021
_REMOVE = {"X", "X/Z", "X/D", "X/Z/D"}
_DUMMY_TEXT = "ANONYMIZED"
_DUMMY = {
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "AE": "ANONYMIZED",
    "UR": "",
}
_NUMERIC_VRS = {"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "DS", "IS", "AT"}
_BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
_REPEATING = {value for _, value, _, _ in REPEATING_GROUPS}
_KEEP_META = {0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010}


def load_key(path: str | os.PathLike[str] | None = None) -> bytes:
    """The per-installation de-identification key (created on first use).

    Parameters
    ----------
    path
        Key file; default ``$MINJIANG_DEID_KEY`` or ``~/.config/minjiang/deid.key``.

    Returns
    -------
    bytes
        The key (at least 32 bytes).
    """
    p = Path(path or os.environ.get(KEY_ENV) or _DEFAULT_KEY).expanduser()
    try:
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
        key = p.read_bytes()
    except FileExistsError:  # created concurrently by another process
        key = p.read_bytes()
    except OSError as err:
        raise ReaderError(
            f"medicine.dicom: cannot read or create the de-identification key file ({err.strerror}); "
            f"set ${KEY_ENV} to a writable path"
        ) from None
    if len(key) < 32:
        raise ReaderError(
            f"medicine.dicom: the de-identification key file holds {len(key)} bytes; it needs at "
            f"least 32 (delete it to create a fresh one, or point ${KEY_ENV} elsewhere)"
        )
    return key


def _registered_uid(uid: str) -> bool:
    from pydicom.uid import UID_dictionary

    return uid in UID_dictionary


class Deidentifier:
    """Applies the basic profile to pydicom datasets with one keyed mapping.

    Parameters
    ----------
    key
        The secret key (:func:`load_key`).
    dates
        ``"remove"``: the profile's actions on dates and times (removed, emptied or
        dummy). ``"shift"`` (the Retain Longitudinal Temporal Information with Modified
        Dates option): every date (DA, and the date part of DT) is moved back by a whole
        number of days (1 to 3650) derived from the key and the patient ID, the same for
        all of a patient's files, so intervals are kept; times (TM) are kept as they are.
        The birth date is emptied in both modes.
    """

    def __init__(self, key: bytes, *, dates: Literal["remove", "shift"] = "remove") -> None:
        if dates not in ("remove", "shift"):
            raise ValueError(f"dates must be 'remove' or 'shift', got {dates!r}")
        self._key = key
        self.dates = dates

    # -- keyed mappings ---------------------------------------------------------------
    def _mac(self, domain: bytes, value: str) -> bytes:
        return hmac.new(
            self._key, domain + b"\0" + value.encode("utf-8", "surrogateescape"), hashlib.sha256
        ).digest()

    def uid(self, uid: str) -> str:
        """The replacement of ``uid`` (``2.25.`` and a 128-bit keyed integer)."""
        uid = str(uid).strip().rstrip("\0")
        if not uid:
            return uid
        return "2.25." + str(int.from_bytes(self._mac(b"uid", uid)[:16], "big"))

    def pseudonym(self, patient_id: str) -> str:
        """A keyed pseudonym for a patient ID (the dummy value of Patient ID)."""
        return "MJ" + self._mac(b"patient", patient_id).hex()[:20].upper()

    def key_id(self) -> str:
        """A fingerprint of the key, safe to record (it reveals nothing of the key)."""
        return self._mac(b"key-id", "minjiang").hex()[:16]

    def date_shift_days(self, patient: str) -> int:
        """Days every date of ``patient`` is moved back by, in ``dates="shift"`` mode."""
        return 1 + int.from_bytes(self._mac(b"date-shift", patient)[:4], "big") % 3650

    # -- the profile --------------------------------------------------------------------
    def __call__(self, ds: Dataset) -> Dataset:
        """De-identify ``ds`` in place (its file meta too) and return it."""
        from pydicom.dataset import Dataset as _Dataset
        from pydicom.sequence import Sequence

        patient = (
            str(ds.get(_PATIENT_ID, _Empty()).value or "")
            + "\\"
            + str(ds.get(_ISSUER_OF_PATIENT_ID, _Empty()).value or "")
        )
        shift = self.date_shift_days(patient) if self.dates == "shift" else 0
        self._clean(ds, shift, top=True)
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            for tag in list(meta.keys()):
                if int(tag) not in _KEEP_META:
                    del meta[tag]
            if 0x00020003 in meta:
                meta[0x00020003].value = self.uid(str(meta[0x00020003].value))
        ds.PatientIdentityRemoved = "YES"
        method = f"minjiang PS3.15 E.1 Basic Profile {EDITION}"  # LO: 64 characters at most
        codes = [DEID_METHOD_CODES["basic"]]
        if self.dates == "shift":
            method += "; dates shifted"
            codes.append(DEID_METHOD_CODES["shift"])
        ds.DeidentificationMethod = method
        items = []
        for value, meaning in codes:
            item = _Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        ds.LongitudinalTemporalInformationModified = (
            "MODIFIED" if self.dates == "shift" else "REMOVED"
        )
        return ds

    def _clean(self, ds: Dataset, shift: int, *, top: bool = False) -> None:
        for tag in list(ds.keys()):
            t = int(tag)
            group = t >> 16
            if group & 1:  # private groups (and their creators)
                del ds[tag]
                continue
            if group & 0xFF00 in _REPEATING:  # curves and overlays: whole groups, not just
                del ds[tag]  # the rows the table lists (overlay origins etc. go too)
                continue
            elem = ds[tag]
            action = BASIC_PROFILE.get(t)
            if action is None:
                self._unlisted(ds, elem, shift)
                continue
            if self.dates == "shift" and elem.VR in ("DA", "DT", "TM") and t != _PATIENT_BIRTH_DATE:
                # Retain Longitudinal Temporal Information with Modified Dates: dates move
                # by the patient's whole-day shift, so times keep their meaning as they are.
                if elem.VR != "TM":
                    self._shift(elem, shift)
                continue
            if action in _REMOVE:
                del ds[tag]
            elif action == "X/Z/U*":
                if elem.VR == "SQ":  # keep the references, with their UIDs replaced
                    self._recurse(elem, shift)
                else:
                    del ds[tag]
            elif action == "U":
                self._replace_uid(elem)
            elif action == "Z/D" and t == _PATIENT_ID:
                elem.value = self.pseudonym(str(elem.value or ""))
            elif action in ("Z", "Z/D"):
                _empty(elem)
            elif action == "D":
                if elem.VR == "SQ":
                    self._recurse(elem, shift)
                elif elem.VR == "UI":
                    self._replace_uid(elem)
                else:
                    _dummy(elem)
            else:  # an action code this module does not know: be safe
                del ds[tag]

    def _unlisted(self, ds: Dataset, elem: DataElement, shift: int) -> None:
        if elem.VR == "SQ":
            self._recurse(elem, shift)
        elif elem.VR == "UI":
            # Belt and braces: any UID that is not a registered DICOM UID (SOP classes,
            # transfer syntaxes, coding schemes) is an instance UID: replace it.
            values = _values(elem)
            if any(v and not _registered_uid(v) for v in values):
                self._replace_uid(elem, keep_registered=True)
        elif self.dates == "shift" and elem.VR in ("DA", "DT"):
            self._shift(elem, shift)

    def _recurse(self, elem: DataElement, shift: int) -> None:
        for item in elem.value or []:
            self._clean(item, shift)

    def _replace_uid(self, elem: DataElement, *, keep_registered: bool = False) -> None:
        if elem.VR == "SQ":
            self._recurse(elem, 0)
            return
        new = [
            v if (keep_registered and _registered_uid(v)) else self.uid(v) for v in _values(elem)
        ]
        elem.value = new if len(new) > 1 else (new[0] if new else "")

    def _shift(self, elem: DataElement, days: int) -> None:
        out = []
        for v in _values(elem):
            shifted = _shift_date(v, days, elem.VR)
            if shifted is None:  # unparseable or a range: cannot shift, so empty it
                _empty(elem)
                return
            out.append(shifted)
        elem.value = out if len(out) > 1 else (out[0] if out else "")


class _Empty:
    value = None


def _values(elem: DataElement) -> list[str]:
    v = elem.value
    if v is None or v == "":
        return []
    if isinstance(v, list | tuple) or type(v).__name__ == "MultiValue":
        return [str(x) for x in v]
    return [str(v)]


def _empty(elem: DataElement) -> None:
    from pydicom.sequence import Sequence

    if elem.VR == "SQ":
        elem.value = Sequence([])
    elif elem.VR in _BINARY_VRS:
        elem.value = b""
    elif elem.VR in _NUMERIC_VRS:
        elem.value = None
    else:
        elem.value = ""


def _dummy(elem: DataElement) -> None:
    vr = elem.VR
    if vr in _DUMMY:
        elem.value = _DUMMY[vr]
    elif vr in _NUMERIC_VRS:
        elem.value = "0" if vr in ("DS", "IS") else 0
    elif vr in _BINARY_VRS:
        elem.value = b"\x00\x00"
    else:  # PN, LO, SH, LT, ST, UT, UC
        elem.value = _DUMMY_TEXT


def _shift_date(value: str, days: int, vr: str) -> str | None:
    value = value.strip()
    if "-" in value[:8] or len(value) < 8:
        return None
    try:
        d = _dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None
    try:
        moved = d - _dt.timedelta(days=days)
    except OverflowError:
        return None
    rest = value[8:] if vr == "DT" else ""
    return moved.strftime("%Y%m%d") + rest
