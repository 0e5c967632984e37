"""De-identification against an independent transcription of PS3.15 Table E.1-1."""

from __future__ import annotations

import copy
import importlib
import warnings

import pytest
from minjiang.plugins.medicine._annex_e import BASIC_PROFILE, EDITION, REPEATING_GROUPS
from minjiang.plugins.medicine._deid import Deidentifier, load_key

pydicom = pytest.importorskip("pydicom")
from pydicom.datadict import dictionary_VR  # noqa: E402
from pydicom.dataelem import DataElement  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402

REMOVE = {"X", "X/Z", "X/D", "X/Z/D"}
KEY = b"k" * 32
CANARY = "QZXCANARY"


def _reference_table() -> dict[int, str]:
    """dicom-anonymizer's table of the same edition (2024b), tag -> action code."""
    pytest.importorskip("dicomanonymizer")
    mod = importlib.import_module(
        f"dicomanonymizer.dicom_anonymization_databases.dicomfields_{EDITION}"
    )
    table: dict[int, str] = {}
    for name in dir(mod):
        if not name.endswith("_TAGS") or name == "ALL_TAGS":
            continue
        code = name[: -len("_TAGS")].replace("_STAR", "*").replace("_", "/")
        for tag in getattr(mod, name):
            if len(tag) == 2:  # repeating groups are 4-tuples (group, element, masks)
                table[(tag[0] << 16) | tag[1]] = code
    return table


def test_table_matches_the_independent_annex_e_table():
    ref = _reference_table()
    assert set(BASIC_PROFILE) == set(ref)
    differ = {t: (BASIC_PROFILE[t], ref[t]) for t in ref if BASIC_PROFILE[t] != ref[t]}
    assert differ == {}
    # and so the removed / emptied / replaced sets match
    for kind in (REMOVE, {"Z"}, {"D", "Z/D", "U", "X/Z/U*"}):
        assert {t for t, a in BASIC_PROFILE.items() if a in kind} == {
            t for t, a in ref.items() if a in kind
        }
    assert {(v, e) for _, v, e, _ in REPEATING_GROUPS} == {
        (0x5000, None),
        (0x6000, 0x3000),
        (0x6000, 0x4000),
    }


def _value(vr: str, tag: int) -> object:
    return {
        "DA": "20010203",
        "TM": "101112",
        "DT": "20010203101112",
        "UI": f"1.2.826.0.1.3680043.99.{tag}",
        "US": 7,
        "SS": 7,
        "UL": 7,
        "SL": 7,
        "FL": 7.0,
        "FD": 7.0,
        "DS": "7",
        "IS": "7",
        "AT": 0x00100010,
        "OB": CANARY.encode(),
        "OW": CANARY.encode(),
        "UN": CANARY.encode(),
        "AS": "042Y",
        "SQ": Sequence([_item()]),
    }.get(vr, f"{CANARY}{tag:08X}"[:16] if vr in ("CS", "AE", "SH") else f"{CANARY}{tag:08X}")


def _item() -> Dataset:
    item = Dataset()
    item.PatientName = CANARY + "NESTED"
    item.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.99.5"
    item.add_new(0x00091010, "LO", CANARY + "PRIVATE")
    return item


def _full_dataset() -> Dataset:
    ds = Dataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tag in sorted(BASIC_PROFILE):
            if tag >> 16 == 0x0002:
                continue
            try:
                vr = str(dictionary_VR(tag)).split(" ")[0]
            except KeyError:
                continue
            ds.add(DataElement(tag, vr, _value(vr, tag)))
        ds.add_new(0x00091010, "LO", CANARY + "PRIV")
        ds.add_new(0x60003000, "OW", b"\x00\x01")
        ds.add_new(0x60000010, "US", 4)
        ds.add_new(0x50003000, "OW", b"\x00\x01")
        ds.Rows = 4
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.99.8"
    ds.file_meta.SourceApplicationEntityTitle = CANARY[:16]
    return ds


def test_every_listed_attribute_is_removed_emptied_or_replaced():
    ds = _full_dataset()
    before = copy.deepcopy(ds)
    d = Deidentifier(KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d(ds)
    checked = 0
    for tag, action in BASIC_PROFILE.items():
        if tag not in before:
            continue
        checked += 1
        old = before[tag]
        if action in REMOVE:
            assert tag not in ds, f"{tag:08X} {action} kept"
        elif action == "Z":
            assert ds[tag].value in ("", None, b"", []) or len(ds[tag].value) == 0, (
                f"{tag:08X} not emptied"
            )
        elif action == "U":
            assert ds[tag].value == d.uid(old.value), f"{tag:08X} UID not replaced"
        elif action == "X/Z/U*":  # kept as a sequence, contents cleaned
            assert tag not in ds or all(CANARY not in str(item) for item in ds[tag].value)
        else:  # D, Z/D: a dummy, or (dates/sequences) cleaned
            assert tag not in ds or CANARY not in str(ds[tag].value), f"{tag:08X} not replaced"
    assert checked > 550
    text = str(ds) + str(ds.file_meta)
    assert CANARY not in text
    assert not any(int(t) >> 16 & 1 for t in ds.keys())
    assert 0x60003000 not in ds and 0x60000010 not in ds and 0x50003000 not in ds
    assert ds.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert codes == ["113100"]
    assert ds.DeidentificationMethodCodeSequence[0].CodingSchemeDesignator == "DCM"


def test_uids_are_replaced_consistently_and_depend_on_the_key():
    a, b = Deidentifier(KEY), Deidentifier(b"q" * 32)
    uid = "1.2.840.113619.2.55.3.1234"
    assert a.uid(uid) == a.uid(uid) != b.uid(uid)
    new = a.uid(uid)
    assert new.startswith("2.25.") and len(new) <= 64 and new.replace(".", "").isdigit()
    # a series and the references to it map to the same replacements
    s1, s2 = Dataset(), Dataset()
    s1.SeriesInstanceUID = s2.SeriesInstanceUID = uid
    s1.SOPInstanceUID = "1.2.3.4.5"
    ref = Dataset()
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # a registered UID: kept
    s2.ReferencedImageSequence = Sequence([ref])
    a(s1), a(s2)
    assert s1.SeriesInstanceUID == s2.SeriesInstanceUID == a.uid(uid)
    assert s2.ReferencedImageSequence[0].ReferencedSOPInstanceUID == s1.SOPInstanceUID
    assert s2.ReferencedImageSequence[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"


def test_dates_shift_consistently_per_patient():
    d = Deidentifier(KEY, dates="shift")

    def make(pid: str, study: str, acq: str) -> Dataset:
        ds = Dataset()
        ds.PatientID, ds.StudyDate, ds.AcquisitionDate, ds.PatientBirthDate = (
            pid,
            study,
            acq,
            "19500101",
        )
        return ds

    a, b, c = (
        make("P1", "20200110", "20200111"),
        make("P1", "20210301", "20210301"),
        make("P2", "20200110", "20200110"),
    )
    for ds in (a, b, c):
        d(ds)
    import datetime as dt

    def day(s: str) -> dt.date:
        return dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))

    shift = day("20200110") - day(a.StudyDate)
    assert 1 <= shift.days <= 3650
    assert day("20210301") - day(b.StudyDate) == shift  # same patient, same shift
    assert day(a.AcquisitionDate) - day(a.StudyDate) == dt.timedelta(days=1)  # intervals kept
    assert a.PatientBirthDate == ""
    assert a.PatientID == b.PatientID != c.PatientID and "P1" not in a.PatientID
    assert [i.CodeValue for i in a.DeidentificationMethodCodeSequence] == ["113100", "113107"]
    assert a.LongitudinalTemporalInformationModified == "MODIFIED"


def test_remove_mode_drops_dates():
    ds = Dataset()
    ds.StudyDate, ds.ContentDate, ds.AcquisitionDate = "20200110", "20200110", "20200110"
    Deidentifier(KEY)(ds)
    assert ds.StudyDate == "" and ds.ContentDate == "" and "AcquisitionDate" not in ds


def test_key_file_is_created_private_and_reused(tmp_path):
    path = tmp_path / "sub" / "k.key"
    key = load_key(path)
    assert len(key) == 32 and load_key(path) == key
    assert (path.stat().st_mode & 0o777) == 0o600
    path.write_bytes(b"short")
    with pytest.raises(Exception, match="at least 32"):
        load_key(path)
