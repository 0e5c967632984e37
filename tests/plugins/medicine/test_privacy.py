"""No patient identifier leaves ingest: unique canary strings are planted everywhere
PHI can hide in DICOM (top level, nested sequences, private blocks, overlays, UIDs,
file and folder names); then every byte minjiang wrote is searched."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from minjiang.core.errors import ReaderError

from .conftest import read_dicom

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402

CANARIES = {
    "PatientName": "ZQXNAMECANARY^JOHN",
    "PatientID": "ZQXIDCANARY77",
    "OtherPatientIDs": "ZQXOTHERIDCANARY",
    "PatientAddress": "ZQXADDRESSCANARY STREET",
    "InstitutionName": "ZQXINSTCANARY HOSPITAL",
    "ReferringPhysicianName": "ZQXDOCTORCANARY",
    "StudyDescription": "ZQXSTUDYCANARY",
    "SeriesDescription": "ZQXSERIESCANARY",
    "AccessionNumber": "ZQXACCCANARY",
    "ImageComments": "ZQXCOMMENTCANARY",
    "OperatorsName": "ZQXOPERATORCANARY",
    "StationName": "ZQXSTATIONCANARY",
}
NESTED = "ZQXNESTEDCANARY"
PRIVATE = "ZQXPRIVATECANARY"
PRIVATE_NESTED = "ZQXPRIVNESTCANARY"
OVERLAY = b"ZQXOVERLAYCANARY"
UID_CANARY = "8675309867530986753"  # digits: UIDs are numbers
DATE_CANARY = "19870605"
NAME_CANARY = "ZQXFILENAMECANARY"


def _plant(ds: Dataset, k: int) -> None:
    for kw, v in CANARIES.items():
        setattr(ds, kw, v)
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = DATE_CANARY
    ds.PatientBirthDate = DATE_CANARY
    ds.StudyInstanceUID = f"1.2.826.0.1.{UID_CANARY}.1"
    ds.SeriesInstanceUID = f"1.2.826.0.1.{UID_CANARY}.2"
    ds.FrameOfReferenceUID = f"1.2.826.0.1.{UID_CANARY}.3"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.{UID_CANARY}.10{k}"
    item = Dataset()
    item.RequestedProcedureDescription = NESTED
    item.PatientName = NESTED
    item.add_new(0x00290010, "LO", PRIVATE_NESTED)
    item.add_new(0x00291001, "LO", PRIVATE_NESTED)
    ds.RequestAttributesSequence = Sequence([item])
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref.ReferencedSOPInstanceUID = f"1.2.826.0.1.{UID_CANARY}.9{k}"
    ds.ReferencedImageSequence = Sequence([ref])
    ds.add_new(0x00090010, "LO", PRIVATE)
    ds.add_new(0x00091001, "LO", PRIVATE)
    ds.add_new(0x00091002, "UN", PRIVATE.encode())
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60000011, "US", 4)
    ds.add_new(0x60003000, "OW", OVERLAY)
    ds.add_new(0x60004000, "LT", OVERLAY.decode())
    ds.file_meta.SourceApplicationEntityTitle = "ZQXAETITLE"


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, np.ndarray]:
    from minjiang.plugins.medicine import phantom_hu, write_ct_series

    hu = phantom_hu((10, 24, 24), seed=5)
    folder = tmp_path / f"{NAME_CANARY}_DOE_JOHN"
    names = [f"{NAME_CANARY}_{k:02d}.dcm" for k in range(10)]
    write_ct_series(folder, hu, names=names, edit=_plant, seed=5)
    return folder, hu


def _all_strings() -> list[bytes]:
    out = [v.encode() for v in CANARIES.values()]
    out += [
        s.encode()
        for s in (
            NESTED,
            PRIVATE,
            PRIVATE_NESTED,
            UID_CANARY,
            DATE_CANARY,
            NAME_CANARY,
            "ZQXAETITLE",
        )
    ]
    out += [OVERLAY, b"ZQX"]
    return out


def _hits(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for f in root.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            hits += [
                f"{f.relative_to(root)}: {n!r}"
                for n in needles
                if n in data or n.lower() in data.lower()
            ]
        hits += [
            f"name {f.relative_to(root)}: {n!r}"
            for n in needles
            if n.lower() in str(f.relative_to(root)).encode().lower()
        ]
    return hits


def test_the_planted_files_really_carry_the_canaries(planted):
    folder, _ = planted
    raw = b"".join(f.read_bytes() for f in folder.iterdir())
    assert all(n in raw for n in _all_strings() if n != NAME_CANARY.encode())


def test_reader_output_has_no_canary(planted, caplog):
    folder, hu = planted
    caplog.set_level(logging.DEBUG)
    ds = read_dicom(folder)
    np.testing.assert_array_equal(ds["image"].values, hu.astype(np.float32))
    text = json.dumps(
        {
            "attrs": ds.attrs,
            "var": ds["image"].attrs,
            "coords": list(ds.coords),
            "names": list(ds.data_vars),
        },
        default=str,
    )
    assert not [n for n in _all_strings() if n.decode("latin-1").lower() in text.lower()]
    assert "ZQX" not in caplog.text


def test_quarantine_messages_have_no_canary(planted, caplog):
    folder, _ = planted
    caplog.set_level(logging.DEBUG)
    files = sorted(folder.iterdir())
    raw = files[3].read_bytes()
    files[3].write_bytes(raw[: len(raw) // 2])
    ds = pydicom.dcmread(files[4])
    ds.BurnedInAnnotation = "YES"
    ds.save_as(files[4])
    with pytest.raises(ReaderError) as info:
        read_dicom(folder)
    message = str(info.value) + repr(info.value.args)
    assert "2 of 10" in message and "ZQX" not in message and str(folder) not in message
    assert "ZQX" not in caplog.text


def test_store_has_no_canary_after_ingest_and_processing(planted, runtime, caplog, deid_key):
    folder, hu = planted
    caplog.set_level(logging.DEBUG)
    vol = runtime.ingest("medicine.dicom", [folder], name="medicine/canary-ct")
    smooth = runtime.run("medicine.gaussian", inputs={"image": vol}, params={"sigma_mm": 1.0})
    runtime.run("medicine.hu_window", inputs={"image": smooth}, params={"center": 40, "width": 400})
    runtime.run("medicine.median", inputs={"image": vol}, params={"size_mm": 2.0})
    np.testing.assert_array_equal(vol.to_xarray()["image"].values, hu.astype(np.float32))
    root = Path(runtime.store.local_path(""))
    assert root.is_dir() and any(root.rglob("*.json"))
    assert _hits(root, _all_strings()) == []
    key = deid_key.read_bytes()
    assert _hits(root, [key, key.hex().encode()]) == []  # the key never leaves the host
    record = json.dumps(vol.record.model_dump(mode="json"))
    assert "ZQX" not in record and "IM0" not in record
    assert "ZQX" not in caplog.text


def test_lesion_volumetry_pipeline_store_and_report_have_no_canary(planted, runtime):
    folder, _ = planted
    out = runtime.run_pipeline("medicine.lesion_volumetry", inputs={"images": [folder]})
    table = out.results["volumes"].table("volumes")
    assert table.num_rows >= 1
    assert [p.suffix for p in out.reports] == [".png"]
    root = Path(runtime.store.local_path(""))
    assert _hits(root, _all_strings()) == []
