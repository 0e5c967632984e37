"""The nibabel-based readers on nibabel's shipped images and on files written here."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ReaderError

from .conftest import nibabel_data, read_nibabel

nib = pytest.importorskip("nibabel")

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _world_from_reader(affine_zyx, z, y, x):
    return (np.asarray(affine_zyx) @ [z, y, x, 1.0])[:3]


def _world_from_nibabel(img, i, j, k):
    return (LPS @ img.affine @ [i, j, k, 1.0])[:3]


@pytest.mark.parametrize("name", ["anatomical.nii", "standard.nii.gz", "example_nifti2.nii.gz"])
def test_values_spacing_and_affine(name):
    path = nibabel_data(name)
    img = nib.load(path)
    ds = read_nibabel(path, volume=0 if len(img.shape) == 4 else None)
    got = ds["image"]
    assert got.dims == ("z", "y", "x")
    assert type(got.data).__module__.startswith("dask")  # lazy until written
    ref = np.asarray(img.dataobj)
    ref = ref[..., 0] if ref.ndim == 4 else ref
    np.testing.assert_array_equal(got.values, ref.transpose(2, 1, 0))
    zooms = img.header.get_zooms()[:3]
    assert got.attrs["spacing"] == pytest.approx([zooms[2], zooms[1], zooms[0]])
    for i, j, k in [(0, 0, 0), (3, 1, 2), (ref.shape[0] - 1, ref.shape[1] - 1, ref.shape[2] - 1)]:
        np.testing.assert_allclose(
            _world_from_reader(got.attrs["affine"], k, j, i),
            _world_from_nibabel(img, i, j, k),
            atol=1e-6,
        )


def test_4d_keeps_time_or_picks_a_volume():
    path = nibabel_data("example4d.nii.gz")
    full = read_nibabel(path)["image"]
    assert full.dims == ("t", "z", "y", "x") and full.shape == (2, 24, 96, 128)
    one = read_nibabel(path, volume=1)["image"]
    np.testing.assert_array_equal(one.values, full.values[1])
    with pytest.raises(ReaderError, match="volume=5"):
        read_nibabel(path, volume=5)


def _write(tmp_path, data, *, slope=None, inter=None, sform_code=0, qform_code=0, name="img.nii"):
    aff_s = np.diag([2.0, 3.0, 4.0, 1.0])
    aff_s[:3, 3] = [10, 20, 30]
    aff_q = np.diag([2.0, 3.0, 4.0, 1.0])
    aff_q[:3, 3] = [-1, -2, -3]
    img = nib.Nifti1Image(data, aff_s)
    img.set_sform(aff_s, code=sform_code)
    img.set_qform(aff_q, code=qform_code)
    if slope == 0:  # nibabel refuses to set it, the standard says "no scaling"
        img.header["scl_slope"], img.header["scl_inter"] = 0.0, 0.0
    elif slope is not None:
        img.header.set_slope_inter(slope, inter)
    path = tmp_path / name
    nib.save(img, path)
    return path


def test_scl_slope_and_inter_are_applied(tmp_path):
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    path = _write(tmp_path, raw, slope=2.5, inter=-10.0, sform_code=1)
    got = read_nibabel(path)["image"]
    assert got.dtype == np.float32 and got.attrs["scaled"] is True
    np.testing.assert_array_equal(
        got.values, (raw * 2.5 - 10.0).astype(np.float32).transpose(2, 1, 0)
    )
    path = _write(
        tmp_path, raw, slope=0.0, inter=0.0, sform_code=1, name="zero.nii"
    )  # 0: no scaling
    got = read_nibabel(path)["image"]
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got.values, raw.transpose(2, 1, 0))


def test_sform_qform_precedence(tmp_path):
    raw = np.zeros((2, 3, 4), np.float32)
    both = read_nibabel(_write(tmp_path, raw, sform_code=2, qform_code=1, name="b.nii"))[
        "image"
    ].attrs
    assert both["affine_source"] == "sform"
    assert _world_from_reader(both["affine"], 0, 0, 0) == pytest.approx([-10, -20, 30])
    q = read_nibabel(_write(tmp_path, raw, sform_code=0, qform_code=1, name="q.nii"))["image"].attrs
    assert q["affine_source"] == "qform"
    assert _world_from_reader(q["affine"], 0, 0, 0) == pytest.approx([1, 2, -3])
    asked = read_nibabel(tmp_path / "b.nii", affine="qform")["image"].attrs
    assert _world_from_reader(asked["affine"], 0, 0, 0) == pytest.approx([1, 2, -3])
    with pytest.raises(ReaderError, match="sform_code is 0"):
        read_nibabel(tmp_path / "q.nii", affine="sform")
    neither = read_nibabel(_write(tmp_path, raw, name="n.nii"))["image"].attrs
    assert neither["affine_source"] == "pixdim"


@pytest.mark.parametrize(
    "name", ["test.mgz", "tiny.mnc", "phantom_EPI_asc_CLEAR_2_1.PAR", "scaled+tlrc.HEAD"]
)
def test_other_nibabel_formats(name):
    path = nibabel_data(name)
    img = nib.load(path)
    got = read_nibabel(path, reader="medicine.nibabel")["image"]
    ref = np.asarray(img.dataobj)
    axes = (3, 2, 1, 0) if ref.ndim == 4 else (2, 1, 0)
    np.testing.assert_allclose(got.values, ref.transpose(axes), rtol=1e-6)


def test_analyze_pair_and_missing_companion(tmp_path):
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    nib.save(nib.AnalyzeImage(data, np.diag([1.0, 2.0, 3.0, 1.0])), tmp_path / "scan.hdr")
    got = read_nibabel(tmp_path / "scan.hdr", reader="medicine.nibabel")["image"]
    np.testing.assert_array_equal(got.values, data.transpose(2, 1, 0))
    (tmp_path / "scan.img").unlink()
    with pytest.raises(ReaderError, match="companion"):
        read_nibabel(tmp_path / "scan.hdr", reader="medicine.nibabel")


def test_corrupt_file_is_a_reader_error_without_its_name(tmp_path):
    bad = tmp_path / "JOHNDOE.nii"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ReaderError) as info:
        read_nibabel(bad)
    assert "JOHNDOE" not in str(info.value)
    path = _write(tmp_path, np.ones((8, 8, 8), np.float32), sform_code=1, name="trunc.nii")
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(ReaderError):
        read_nibabel(path)
