"""The DICOM reader on pydicom's shipped files and on series built from them."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import pytest
from minjiang.core.errors import ReaderError

from .conftest import dicom_file, read_dicom

pydicom = pytest.importorskip("pydicom")
from pydicom.pixels import apply_modality_lut  # noqa: E402


def test_ct_values_are_hu_exactly_on_valid_pixels():
    path = dicom_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    out = read_dicom(path)
    img = out["image"]
    assert img.dims == ("z", "y", "x") and img.dtype == np.float32
    hu = apply_modality_lut(ds.pixel_array, ds)
    pad = ds.pixel_array == ds.PixelPaddingValue
    got = img.values[0]
    np.testing.assert_array_equal(got[~pad], hu[~pad].astype(np.float32))
    assert np.isnan(got[pad]).all()
    assert img.attrs["units"] == "HU" and img.attrs["space"] == "LPS"
    assert img.attrs["spacing"][1:] == pytest.approx([float(v) for v in ds.PixelSpacing])
    a = np.asarray(img.attrs["affine"])
    np.testing.assert_allclose(a[:3, 3], [float(v) for v in ds.ImagePositionPatient])
    assert out.attrs["patient_identity_removed"] == "YES"
    assert out.attrs["deidentification_method_codes"] == ["113100"]


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_jp2klossless.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_expb.dcm",
    ],
)
def test_compressed_and_other_transfer_syntaxes_read_identically(name):
    ref = read_dicom(dicom_file("MR_small.dcm"))["image"].values
    np.testing.assert_array_equal(read_dicom(dicom_file(name))["image"].values, ref)


def test_enhanced_ct_rescale_comes_from_the_functional_groups():
    path = dicom_file("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array.astype(np.float64)
    pvt = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    slope, intercept = float(pvt.RescaleSlope), float(pvt.RescaleIntercept)
    assert intercept == -1024
    # a reader that looks only at the top level gets this wrong:
    assert np.array_equal(apply_modality_lut(ds.pixel_array, ds), ds.pixel_array)
    img = read_dicom(path)["image"]
    pos = [
        float(f.PlanePositionSequence[0].ImagePositionPatient[2])
        for f in ds.PerFrameFunctionalGroupsSequence
    ]
    iop = np.asarray(
        ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient,
        float,
    )
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort(np.asarray(pos) * normal[2])  # position along the plane's normal
    np.testing.assert_array_equal(
        img.values, (stored[order] * slope + intercept).astype(np.float32)
    )
    assert img.attrs["spacing"][0] == pytest.approx(10.0)
    assert img.attrs["window_center"] == 49.0 and img.attrs["window_width"] == 102.0


def test_slices_are_ordered_by_position_not_instance_number(ct_series):
    folder, hu = ct_series
    img = read_dicom(folder)["image"]
    np.testing.assert_array_equal(img.values, hu.astype(np.float32))
    assert img.attrs["spacing"] == pytest.approx([2.0, 0.8, 0.8])


def test_oblique_reversed_series(tmp_path):
    from minjiang.plugins.medicine import phantom_hu, write_ct_series

    hu = phantom_hu((6, 10, 12), seed=1)
    c, s = np.cos(0.4), np.sin(0.4)
    iop = (c, s, 0.0, -s * 0.0, 0.0, -1.0)  # sagittal-ish rows, columns along -z
    normal = np.cross(iop[:3], iop[3:])
    names = [f"IM{9 - k}.dcm" for k in range(6)]  # names in reverse slice order
    write_ct_series(tmp_path, hu, orientation=iop, names=names, spacing=(1.5, 0.7, 0.9))
    img = read_dicom(tmp_path)["image"]
    np.testing.assert_array_equal(img.values, hu.astype(np.float32))
    a = np.asarray(img.attrs["affine"])
    np.testing.assert_allclose(a[:3, 0], 1.5 * normal, atol=1e-9)
    np.testing.assert_allclose(a[:3, 2], 0.9 * np.asarray(iop[:3]), atol=1e-9)


def test_padding_values_become_nan(tmp_path):
    from minjiang.plugins.medicine import phantom_hu, write_ct_series

    hu = phantom_hu((3, 8, 8))
    hu[:, 0, :] = -2024  # stored 0 + intercept -1024... padding stored value is -1000 below

    def pad(ds, k):
        ds.PixelPaddingValue = -1000  # stored value of HU -2024

    write_ct_series(tmp_path, hu, edit=pad)
    img = read_dicom(tmp_path)["image"]
    assert np.isnan(img.values[:, 0, :]).all()
    assert not np.isnan(img.values[:, 1:, :]).any()
    assert img.attrs["padding_masked"] is True
    kept = read_dicom(tmp_path, mask_padding=False)["image"].values
    assert (kept[:, 0, :] == -2024).all()


def _mutants(raw: bytes) -> dict[str, bytes]:
    i_rows = raw.index(b"\x28\x00\x10\x00US")
    i_pn = raw.index(b"\x10\x00\x10\x00PN")
    i_px = raw.index(b"\xe0\x7f\x10\x00OW")
    ts = b"1.2.840.10008.1.2.1\x00"
    j = raw.index(ts)
    return {
        "truncated header": raw[:900],
        "truncated pixels": raw[:-5000],
        "wrong VR": raw[: i_rows + 4] + b"UL" + raw[i_rows + 6 :],
        "absurd length": raw[: i_pn + 6] + b"\xf0\xff" + raw[i_pn + 8 :],
        "absurd pixel length": raw[: i_px + 8] + struct.pack("<I", 0xFFFFFFF0) + raw[i_px + 12 :],
        "wrong syntax (RLE)": raw[:j] + b"1.2.840.10008.1.2.5\x00" + raw[j + len(ts) :],
        "wrong syntax (implicit)": raw[:j] + b"1.2.840.10008.1.2\x00\x00\x00" + raw[j + len(ts) :],
        "wrong syntax (big endian)": raw[:j] + b"1.2.840.10008.1.2.2\x00" + raw[j + len(ts) :],
        "random bytes": b"\x00" * 128
        + b"DICM"
        + bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8)),
        "not DICOM": b"hello",
    }


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "case",
    list(
        _mutants(b"\x28\x00\x10\x00US\x10\x00\x10\x00PN\xe0\x7f\x10\x00OW1.2.840.10008.1.2.1\x00")
    ),
)
def test_malformed_files_are_quarantined_quickly_without_names(tmp_path, case):
    raw = dicom_file("CT_small.dcm").read_bytes()
    bad = tmp_path / "PATIENTNAMECANARY.dcm"
    bad.write_bytes(_mutants(raw)[case])
    t0 = time.perf_counter()
    with pytest.raises(ReaderError) as info:
        read_dicom(bad)
    assert time.perf_counter() - t0 < 10
    msg = str(info.value)
    assert "quarantined" in msg and "#1" in msg
    assert "CANARY" not in msg and str(tmp_path) not in msg
    assert [q.index for q in info.value.quarantined] == [0]


def test_skip_mode_ingests_the_rest(ct_series):
    folder, hu = ct_series
    files = sorted(folder.iterdir())
    files[5].write_bytes(files[5].read_bytes()[:-3000])  # truncate a middle slice's pixels
    with pytest.raises(ReaderError, match="1 of 14 source files quarantined"):
        read_dicom(folder)
    # the slice is gone, so the series has a gap: not a regular volume any more
    with pytest.raises(ReaderError, match="not uniform"):
        read_dicom(folder, on_quarantine="skip")
    raw0 = files[0].read_bytes()
    files[0].write_bytes(raw0[:132] + raw0[132:600])  # a DICOM file cut inside its header
    with pytest.raises(ReaderError, match="2 of 14"):
        read_dicom(folder)
    for f in files[1:6]:  # keep the broken file and a contiguous run of slices
        f.unlink()
    out = read_dicom(folder, on_quarantine="skip")
    np.testing.assert_array_equal(out["image"].values, hu[6:].astype(np.float32))
    assert out.attrs["n_quarantined_files"] == 1


def test_folders_skip_files_that_are_not_dicom(ct_series):
    folder, hu = ct_series
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "README.txt").write_text("scanned on a Tuesday")
    (folder / "DICOMDIR").write_bytes(b"\x00" * 128 + b"DICM")
    np.testing.assert_array_equal(read_dicom(folder)["image"].values, hu.astype(np.float32))
    with pytest.raises(ReaderError, match="not a DICOM file"):  # named explicitly: quarantined
        read_dicom([folder, folder / "README.txt"])
    empty = folder.parent / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(ReaderError, match="no DICOM file"):
        read_dicom(empty)


def test_burned_in_annotation_is_quarantined_unless_allowed(tmp_path):
    from minjiang.plugins.medicine import phantom_hu, write_ct_series

    def burn(ds, k):
        ds.BurnedInAnnotation = "YES"

    write_ct_series(tmp_path, phantom_hu((3, 8, 8)), edit=burn)
    with pytest.raises(ReaderError, match="burned-in"):
        read_dicom(tmp_path)
    assert read_dicom(tmp_path, allow_burned_in=True)["image"].shape == (3, 8, 8)


def test_secondary_capture_and_ultrasound_need_an_explicit_no(tmp_path):
    with pytest.raises(ReaderError, match="burned-in"):
        read_dicom(dicom_file("OBXXXX1A_2frame.dcm"))
    from minjiang.plugins.medicine import phantom_hu, write_ct_series

    def sc(no: bool):
        def edit(ds, k):
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
            if no:
                ds.BurnedInAnnotation = "NO"

        return edit

    write_ct_series(tmp_path / "a", phantom_hu((2, 6, 6)), edit=sc(False))
    with pytest.raises(ReaderError, match="burned-in"):
        read_dicom(tmp_path / "a")
    write_ct_series(tmp_path / "b", phantom_hu((2, 6, 6)), edit=sc(True))
    assert read_dicom(tmp_path / "b")["image"].shape == (2, 6, 6)


def test_several_series_need_a_choice(tmp_path):
    from minjiang.plugins.medicine import phantom_hu, write_ct_series

    a, b = phantom_hu((3, 6, 6), seed=1), phantom_hu((4, 6, 6), seed=2)
    write_ct_series(tmp_path / "a", a, seed=1, edit=lambda ds, k: setattr(ds, "SeriesNumber", 1))
    write_ct_series(tmp_path / "b", b, seed=2, edit=lambda ds, k: setattr(ds, "SeriesNumber", 2))
    with pytest.raises(ReaderError, match="2 series"):
        read_dicom(tmp_path)
    np.testing.assert_array_equal(
        read_dicom(tmp_path, series=1)["image"].values, b.astype(np.float32)
    )


def test_duplicate_positions_and_uneven_spacing_are_refused(tmp_path):
    from minjiang.plugins.medicine import phantom_hu, write_ct_series

    def dup(ds, k):
        if k == 2:
            ds.ImagePositionPatient = [-20.0, -30.0, -38.0]  # same as slice 1

    write_ct_series(tmp_path / "d", phantom_hu((4, 6, 6)), edit=dup)
    with pytest.raises(ReaderError, match="share a slice position"):
        read_dicom(tmp_path / "d")


def test_max_voxels_guard(ct_series):
    folder, _ = ct_series
    with pytest.raises(ReaderError, match="max_voxels"):
        read_dicom(folder, max_voxels=100)


def test_missing_path_message_has_no_name(tmp_path):
    with pytest.raises(ReaderError) as info:
        read_dicom(tmp_path / "SECRETNAME")
    assert "SECRETNAME" not in str(info.value)


def test_reader_is_registered_and_light():
    from minjiang.plugins.medicine import minjiang_register_readers

    names = [r.name for r in minjiang_register_readers()]
    assert names == ["medicine.dicom", "medicine.nifti", "medicine.nibabel"]


def test_source_files_hide_original_names(ct_series):
    from minjiang.plugins.medicine._readers import DicomReader

    folder, _ = ct_series
    files = DicomReader().source_files([folder])
    assert len(files) == 14
    assert all(f.name.startswith("src") and "IM" not in f.name for f in files)
    assert sorted(Path(f).resolve() for f in files) == sorted(p.resolve() for p in folder.iterdir())
