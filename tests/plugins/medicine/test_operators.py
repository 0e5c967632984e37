"""Medicine operators against independent references, on real images shipped in
PyPI packages, with chunks that do not divide the volume.

Each operator runs twice: block by block through :mod:`.blockrun` (an executor of the
chunk patterns written for these tests) and end to end through a ``Runtime`` with a
memory budget small enough to force many tasks.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from minjiang.core._units import parse_memory_budget
from minjiang.plugins.medicine import _operators as ops
from minjiang.plugins.medicine.window import voi_window

from .blockrun import run
from .conftest import dicom_file, nibabel_data

pydicom = pytest.importorskip("pydicom")
from pydicom.pixels import apply_modality_lut, apply_voi_lut  # noqa: E402

CHUNKS = {"z": 7, "y": 10, "x": 9}  # divides none of anatomical.nii's (25, 41, 33)
BLOCK = (7, 10, 9)


@pytest.fixture
def small_runtime(tmp_path):
    import minjiang as mj

    rt = mj.Runtime(store=tmp_path / "store", executor="local", memory_budget="160KiB")
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def anatomical():
    nib = pytest.importorskip("nibabel")
    img = nib.load(nibabel_data("anatomical.nii"))
    x = np.asarray(img.dataobj).transpose(2, 1, 0).astype(np.float64)
    z = img.header.get_zooms()
    return x, {"spacing": [float(z[2]), float(z[1]), float(z[0])]}


def _pydicom_range(ds):
    if ds.PixelRepresentation == 0:
        lo, hi = 0, 2**ds.BitsStored - 1
    else:
        lo, hi = -(2 ** (ds.BitsStored - 1)), 2 ** (ds.BitsStored - 1) - 1
    if "RescaleSlope" in ds:
        lo, hi = (
            lo * float(ds.RescaleSlope) + float(ds.RescaleIntercept),
            hi * float(ds.RescaleSlope) + float(ds.RescaleIntercept),
        )
    return lo, hi


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")
@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_window_matches_pydicom(name, function, backend):
    ds = pydicom.dcmread(dicom_file(name))
    arr = ds.pixel_array
    valid = arr != ds.get("PixelPaddingValue", np.iinfo(np.int32).min)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    for center, width in [
        (40.0, 400.0),
        (float(ds.get("WindowCenter", 600)), float(ds.get("WindowWidth", 1600))),
        (0.5, 1.0),
    ]:
        ds.VOILUTFunction, ds.WindowCenter, ds.WindowWidth = function, center, width
        ref = apply_voi_lut(apply_modality_lut(arr, ds), ds)
        lo, hi = _pydicom_range(ds)
        got = voi_window(
            arr,
            center,
            width,
            function,
            y_min=lo,
            y_max=hi,
            slope=slope,
            intercept=intercept,
            dtype="float64",
            backend=backend,
        )
        if function == "SIGMOID" and backend == "cpu":  # libm exp vs NumPy's exp: last bit
            np.testing.assert_allclose(
                got[valid], ref[valid], rtol=4e-16, atol=2 * np.spacing(hi - lo)
            )
        else:
            np.testing.assert_array_equal(got[valid], ref[valid])


def test_hu_window_end_to_end_on_ct(runtime):
    path = dicom_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    vol = runtime.ingest("medicine.dicom", [path])
    ds.WindowCenter, ds.WindowWidth = 40, 400
    lo, hi = _pydicom_range(ds)
    res = runtime.run(
        "medicine.hu_window",
        inputs={"image": vol},
        params={"center": 40, "width": 400, "y_min": lo, "y_max": hi, "dtype": "float64"},
    )
    got = res.to_xarray()["image"].values[0]
    ref = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    pad = ds.pixel_array == ds.PixelPaddingValue
    np.testing.assert_array_equal(got[~pad], ref[~pad])
    assert np.isnan(got[pad]).all()


def test_hu_window_needs_a_window():
    with pytest.raises(Exception, match="no DICOM window"):
        run(ops.HU_WINDOW, {"image": np.zeros((2, 3, 4))}, {}, {"spacing": [1, 1, 1]}, (2, 3, 4))


@pytest.mark.parametrize("sigma_mm", [3.0, [2.0, 5.0, 3.0]])
def test_gaussian_matches_scipy_blockwise(anatomical, sigma_mm):
    x, attrs = anatomical
    out = run(ops.GAUSSIAN, {"image": x}, {"sigma_mm": sigma_mm, "dtype": "float64"}, attrs, BLOCK)[
        "image"
    ]
    sig = np.asarray(sigma_mm if isinstance(sigma_mm, list) else [sigma_mm] * 3) / np.asarray(
        attrs["spacing"]
    )
    ref = ndi.gaussian_filter(x, sig, mode="reflect", truncate=4.0)
    assert np.abs(out - ref).max() <= 1e-5


def test_gaussian_and_median_end_to_end(small_runtime, anatomical):
    x, _ = anatomical
    vol = small_runtime.ingest(
        "medicine.nifti", [nibabel_data("anatomical.nii")], params={"chunks": CHUNKS}
    )
    g = small_runtime.run(
        "medicine.gaussian",
        inputs={"image": vol},
        params={"sigma_mm": 3.0, "dtype": "float64", "mode": "nearest"},
    )
    assert g.record.timings["tasks"] > 1
    ref = ndi.gaussian_filter(x, 1.5, mode="nearest")
    assert np.abs(g.to_xarray()["image"].values - ref).max() <= 1e-5
    g32 = small_runtime.run("medicine.gaussian", inputs={"image": vol}, params={"sigma_mm": 3.0})
    got32 = g32.to_xarray()["image"].values
    assert got32.dtype == np.float32
    assert np.abs(got32 - ndi.gaussian_filter(x, 1.5)).max() <= 1e-6 * np.abs(x).max()
    m = small_runtime.run(
        "medicine.median", inputs={"image": vol}, params={"size_mm": [6.0, 2.0, 6.0]}
    )
    assert m.record.timings["tasks"] > 1
    np.testing.assert_array_equal(
        m.to_xarray()["image"].values,
        ndi.median_filter(x.astype(np.int16), size=(3, 1, 3), mode="reflect"),
    )


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "constant"])
def test_median_matches_scipy_blockwise(anatomical, mode):
    x, attrs = anatomical
    out = run(
        ops.MEDIAN, {"image": x.astype(np.float32)}, {"size_mm": 6.0, "mode": mode}, attrs, BLOCK
    )["image"]
    np.testing.assert_array_equal(out, ndi.median_filter(x.astype(np.float32), size=3, mode=mode))


def test_median_window_from_millimetres():
    from minjiang.plugins.medicine._geometry import median_size

    assert median_size([3.0, 4.0, 0.3], [1.0, 1.0, 1.0]) == (3, 5, 1)
    assert median_size([5.0, 5.0, 5.0], [2.5, 0.8, 5.0]) == (3, 7, 1)


def _otsu_ref(x):
    from skimage.filters import threshold_otsu

    return threshold_otsu(x[np.isfinite(x)].astype(np.float64), nbins=256)


def test_threshold_otsu_blockwise_matches_skimage(anatomical):
    x, attrs = anatomical
    x = x.copy()
    x[0, 0, :5] = np.nan
    out = run(ops.THRESHOLD, {"image": x}, {"method": "otsu"}, attrs, BLOCK)["mask"]
    t = _otsu_ref(x)
    np.testing.assert_array_equal(out, ((x > t) & ~np.isnan(x)).astype(np.uint8))
    fixed = run(
        ops.THRESHOLD,
        {"image": x},
        {"method": "fixed", "value": 100.0, "direction": "below"},
        attrs,
        BLOCK,
    )
    np.testing.assert_array_equal(fixed["mask"], (x <= 100).astype(np.uint8))


def test_threshold_end_to_end(small_runtime, anatomical):
    x, _ = anatomical
    vol = small_runtime.ingest(
        "medicine.nifti", [nibabel_data("anatomical.nii")], params={"chunks": CHUNKS}
    )
    m = small_runtime.run("medicine.threshold", inputs={"image": vol}, params={"method": "otsu"})
    np.testing.assert_array_equal(m.to_xarray()["mask"].values, (x > _otsu_ref(x)).astype(np.uint8))


def _same_partition(a, b):
    if not np.array_equal(a == 0, b == 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]], axis=1), axis=0)
    return len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1]))


@pytest.mark.parametrize("whole", [False, True], ids=["blocks", "whole-volume"])
@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_label_blockwise_matches_scipy_and_skimage(anatomical, connectivity, whole):
    from skimage.measure import label as sk_label

    x, attrs = anatomical
    mask = (x > np.percentile(x, 70)).astype(np.uint8)
    params = {"connectivity": connectivity}
    out = run(ops.LABEL, {"mask": mask}, params, attrs, BLOCK, fits=whole)["labels"]
    order = {6: 1, 18: 2, 26: 3}[connectivity]
    ref, n = ndi.label(mask, ndi.generate_binary_structure(3, order))
    assert n > 5
    assert _same_partition(out, ref)
    np.testing.assert_array_equal(out, ref)  # numbered by first voxel, as SciPy does
    if connectivity != 18:
        assert _same_partition(out, sk_label(mask, connectivity=order))


@pytest.mark.parametrize(
    ("connectivity", "budget", "tasks"),
    [(6, "160KiB", "blocks"), (26, "160KiB", "blocks"), (6, "64MiB", "one"), (26, "64MiB", "one")],
)
def test_label_end_to_end(small_runtime, anatomical, connectivity, budget, tasks):
    # a budget the volume's one task fits labels it in one task; a smaller one
    # labels blocks, joins them across faces and relabels: the same labels
    from skimage.measure import label as sk_label

    x, _ = anatomical
    small_runtime.memory_budget = parse_memory_budget(budget)
    vol = small_runtime.ingest(
        "medicine.nifti", [nibabel_data("anatomical.nii")], params={"chunks": CHUNKS}
    )
    m = small_runtime.run(
        "medicine.threshold",
        inputs={"image": vol},
        params={"method": "fixed", "value": float(np.percentile(x, 70))},
    )
    lab = small_runtime.run(
        "medicine.label", inputs={"mask": m}, params={"connectivity": connectivity}
    )
    steps = [s["operator"] for s in lab.record.producer["steps"]]
    if tasks == "one":
        assert steps == ["medicine.label_volume"] and lab.record.timings["tasks"] == 1
    else:
        assert steps[0] == "medicine.label_blocks" and lab.record.timings["tasks"] > 1
    got = lab.to_xarray()["labels"].values
    mask = x > np.percentile(x, 70)
    order = {6: 1, 26: 3}[connectivity]
    assert _same_partition(got, sk_label(mask, connectivity=order))
    # numbered by first voxel, as SciPy does, on both paths
    np.testing.assert_array_equal(got, ndi.label(mask, ndi.generate_binary_structure(3, order))[0])


def test_label_requires_connectivity():
    with pytest.raises(Exception, match="connectivity"):
        ops.LABEL.validate_params({})
    with pytest.raises(Exception, match="connectivity"):
        ops.LABEL.validate_params({"connectivity": 8})


def _regionprops_check(table, labels, image, spacing, affine):
    from skimage.measure import regionprops

    props = {p.label: p for p in regionprops(labels, intensity_image=image, spacing=spacing)}
    assert list(table["label"]) == sorted(props)
    for i, lab in enumerate(table["label"]):
        p = props[lab]
        assert table["voxel_count"][i] == p.num_pixels
        assert table["volume_ml"][i] == pytest.approx(p.area / 1000.0, rel=1e-12)
        cen = np.array([table["centroid_z"][i], table["centroid_y"][i], table["centroid_x"][i]])
        np.testing.assert_allclose(cen * spacing, p.centroid, rtol=1e-10, atol=1e-9)
        world = np.array(
            [table["centroid_x_mm"][i], table["centroid_y_mm"][i], table["centroid_z_mm"][i]]
        )
        np.testing.assert_allclose(world, (affine @ [*cen, 1.0])[:3], rtol=1e-10, atol=1e-9)
        box = tuple(
            int(table[k][i])
            for k in ("bbox_z0", "bbox_y0", "bbox_x0", "bbox_z1", "bbox_y1", "bbox_x1")
        )
        assert box == p.bbox
        assert table["mean"][i] == pytest.approx(p.intensity_mean, rel=1e-12)
        assert table["min"][i] == p.intensity_min and table["max"][i] == p.intensity_max


def test_volumetrics_blockwise_matches_regionprops(anatomical):
    x, attrs = anatomical
    labels, _ = ndi.label(x > np.percentile(x, 80), np.ones((3, 3, 3)))
    affine = np.array([[0, 0, 2.0, -5], [0, 2.0, 0, 7], [2.0, 0, 0, 1], [0, 0, 0, 1]])
    out = run(
        ops.VOLUMETRICS,
        {"labels": labels, "image": x},
        {},
        {**attrs, "affine": affine.tolist()},
        BLOCK,
    )
    table = out["volumes"].to_pydict()
    _regionprops_check(table, labels, x, attrs["spacing"], affine)


def test_volumetrics_end_to_end_on_nifti(small_runtime, tmp_path, anatomical):
    nib = pytest.importorskip("nibabel")
    x, _ = anatomical
    labels, _ = ndi.label(x > np.percentile(x, 80), np.ones((3, 3, 3)))
    src = nib.load(nibabel_data("anatomical.nii"))
    nib.save(
        nib.Nifti1Image(labels.transpose(2, 1, 0).astype(np.int32), src.affine),
        tmp_path / "labels.nii",
    )
    img = small_runtime.ingest(
        "medicine.nifti", [nibabel_data("anatomical.nii")], params={"chunks": CHUNKS}
    )
    lab = small_runtime.ingest(
        "medicine.nifti", [tmp_path / "labels.nii"], params={"chunks": CHUNKS}
    )
    res = small_runtime.run("medicine.volumetrics", inputs={"labels": lab, "image": img})
    assert res.record.timings["tasks"] > 1
    attrs = img.to_xarray()["image"].attrs
    _regionprops_check(
        res.table("volumes").to_pydict(), labels, x, attrs["spacing"], np.asarray(attrs["affine"])
    )


def test_volumetrics_without_image_and_with_nan(anatomical):
    x, attrs = anatomical
    labels = np.zeros(x.shape, np.int64)
    labels[2:5, 3:6, 4:8] = 3
    xn = x.copy()
    xn[2:5, 3:6, 4:8] = np.nan
    t = run(ops.VOLUMETRICS, {"labels": labels, "image": xn}, {}, attrs, BLOCK)[
        "volumes"
    ].to_pydict()
    assert t["voxel_count"] == [36] and np.isnan(t["mean"][0]) and np.isnan(t["min"][0])
    t = run(ops.VOLUMETRICS, {"labels": labels}, {}, attrs, BLOCK)["volumes"].to_pydict()
    assert t["volume_ml"] == [pytest.approx(36 * 8 / 1000)]


def test_volumetrics_is_exact_and_independent_of_the_chunking(anatomical):
    """Counts and index sums combine as integers; volumes and world centroids are derived
    once from them, so every chunking gives the same bits, and a volume is exactly
    ``count × voxel volume``."""
    x, attrs = anatomical
    labels, _ = ndi.label(x > np.percentile(x, 75), np.ones((3, 3, 3)))
    affine = np.array([[0, 0, 0.7, -5.1], [0, 1.3, 0, 7.3], [0.9, 0, 0, 1.7], [0, 0, 0, 1]])
    geo = {**attrs, "spacing": [0.9, 1.3, 0.7], "affine": affine.tolist()}
    tables = [
        run(ops.VOLUMETRICS, {"labels": labels, "image": x}, {}, geo, block)["volumes"].to_pydict()
        for block in [(25, 41, 33), BLOCK, (3, 5, 4), (1, 41, 33)]
    ]
    voxel_ml = 0.9 * 1.3 * 0.7 / 1000.0
    first = tables[0]
    assert len(first["label"]) > 3
    assert first["volume_ml"] == [n * voxel_ml for n in first["voxel_count"]]
    for other in tables[1:]:
        for column in (
            "voxel_count",
            "volume_ml",
            "centroid_x_mm",
            "centroid_y_mm",
            "centroid_z_mm",
        ):
            assert other[column] == first[column], column


def test_operators_refuse_inputs_without_spacing():
    from minjiang.core.errors import ContractError

    with pytest.raises(ContractError, match="spacing"):
        run(ops.GAUSSIAN, {"image": np.zeros((4, 4, 4))}, {"sigma_mm": 1.0}, {}, (4, 4, 4))
    out = run(
        ops.GAUSSIAN,
        {"image": np.ones((4, 4, 4))},
        {"sigma_mm": 1.0, "spacing": [1, 1, 1]},
        {},
        (4, 4, 4),
    )
    np.testing.assert_allclose(out["image"], 1.0)


def test_gpu_capable_operators_are_declared():
    """The operators whose kernels have a GPU path declare it; labelling and
    volumetrics stay on the CPU (see docs/gpu.md)."""
    every = (*ops.OPERATORS, ops._VALUE_RANGE, ops._OTSU, ops._APPLY)  # with sub-steps
    declared = {op.name for op in every if "gpu" in op.backends}
    assert declared == {
        "medicine.hu_window",
        "medicine.gaussian",
        "medicine.median",
        "medicine.value_range",
        "medicine.otsu",
        "medicine.threshold_apply",
        "medicine.threshold",
    }


@pytest.mark.gpu
def test_gpu_operators_equal_the_cpu(tmp_path, anatomical):
    """Each GPU-capable medicine operator, run on the GPU through the runtime (several
    tasks, halos), against the same operator on the CPU."""
    import minjiang as mj

    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CuPy without a usable device
        pytest.skip(f"no usable CUDA device ({type(err).__name__})")
    steps = [
        ("medicine.hu_window", {"center": 40.0, "width": 400.0}, 1e-5),
        ("medicine.gaussian", {"sigma_mm": 3.0, "dtype": "float64"}, 1e-10),
        ("medicine.median", {"size_mm": [6.0, 2.0, 6.0]}, 0.0),
        ("medicine.threshold", {"method": "otsu"}, 0.0),
    ]
    got: dict[str, dict[str, np.ndarray]] = {}
    for backend in ("cpu", "gpu"):  # one store each: the same content would be reused
        with mj.Runtime(
            store=tmp_path / backend, executor="local", memory_budget="128KiB", backend=backend
        ) as rt:
            vol = rt.ingest(
                "medicine.nifti", [nibabel_data("anatomical.nii")], params={"chunks": CHUNKS}
            )
            for name, params, _ in steps:
                res = rt.run(name, inputs={"image": vol}, params=params)
                assert res.record.producer["backend"] == backend, name
                ds = res.to_xarray()
                got.setdefault(name, {})[backend] = ds[next(iter(ds.data_vars))].values
    for name, _, tol in steps:
        cpu, gpu = got[name]["cpu"], got[name]["gpu"]
        if tol:
            scale = max(1.0, float(np.nanmax(np.abs(cpu))))
            np.testing.assert_allclose(gpu, cpu, rtol=tol, atol=tol * scale, equal_nan=True)
        else:
            np.testing.assert_array_equal(gpu, cpu)
