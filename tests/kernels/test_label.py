from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from minjiang.kernels.label import (
    connectivity_order,
    face_equivalences,
    label_global,
    label_local,
    labels_present,
    relabel,
    union_find_relabel,
)
from skimage.measure import label as sk_label

CONN3 = {6: 1, 18: 2, 26: 3}


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal background and a one-to-one correspondence between labels."""
    if not np.array_equal(a == 0, b == 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]], axis=1), axis=0)
    return len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1]))


def blockwise_labels(mask, connectivity, block, call):
    """The three passes of the chunked algorithm, blocks not dividing the array."""
    shape = mask.shape
    glob = np.zeros(shape, np.int64)
    regions = [
        tuple(slice(i * b, min((i + 1) * b, n)) for i, b, n in zip(r, block, shape, strict=True))
        for r in np.ndindex(*[-(-n // b) for n, b in zip(shape, block, strict=True)])
    ]
    for sl in regions:
        lab, n = call(label_local, mask[sl], connectivity)
        if n:
            u, first = np.unique(lab.ravel(), return_index=True)
            u, first = u[u > 0], first[u > 0]
            loc = np.unravel_index(first, lab.shape)
            g = (
                np.ravel_multi_index(
                    tuple(a + s.start for a, s in zip(loc, sl, strict=True)), shape
                )
                + 1
            )
            lut = np.zeros(n + 1, np.int64)
            lut[u] = g
            glob[sl] = lut[lab]
    padded = np.pad(glob, 1)
    pairs = [
        call(
            face_equivalences,
            padded[tuple(slice(s.start, s.stop + 2) for s in sl)],
            connectivity,
            1,
        )
        for sl in regions
    ]
    old, new = call(union_find_relabel, np.concatenate(pairs), np.unique(glob[glob > 0]))
    return relabel(glob, old, new)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_label_local_matches_scipy_and_skimage(call, rng, connectivity):
    mask = rng.random((15, 16, 17)) < 0.3
    ref, n = ndi.label(mask, ndi.generate_binary_structure(3, CONN3[connectivity]))
    got, k = call(label_local, mask, connectivity)
    assert k == n
    np.testing.assert_array_equal(got, ref)  # numbered by first appearance, like SciPy
    if connectivity in (6, 26):
        assert same_partition(got, sk_label(mask, connectivity=CONN3[connectivity]))


@pytest.mark.parametrize(("connectivity", "order"), [(2, 1), (4, 1), (8, 2)])
def test_lower_ranks(call, rng, connectivity, order):
    mask = rng.random((40,) if connectivity == 2 else (19, 23)) < 0.4
    ref, n = ndi.label(mask, ndi.generate_binary_structure(mask.ndim, order))
    got, k = call(label_local, mask, connectivity)
    assert k == n
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_blockwise_equals_whole_array(call, rng, connectivity):
    mask = rng.random((19, 17, 23)) < 0.33
    ref, _ = ndi.label(mask, ndi.generate_binary_structure(3, CONN3[connectivity]))
    got = blockwise_labels(mask, connectivity, (6, 5, 7), call)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint32, np.int64])
def test_label_local_dtypes_and_mask_forms(call, rng, dtype):
    # int32 and smaller labels take int32 run tables, uint32 int64 ones; a contiguous
    # 1-byte mask is read in place, a strided or wider one compared with 0 first
    fg = rng.random((13, 14, 30)) < 0.4
    ref, n = ndi.label(fg, ndi.generate_binary_structure(3, 2))
    for mask in (
        fg,
        fg.astype(np.uint8) * 7,
        fg.astype(np.int8),
        np.repeat(fg.astype(np.uint8), 2, axis=2)[:, :, ::2],  # not contiguous
        fg.astype(np.float32),
    ):
        got, k = call(label_local, mask, 18, dtype=dtype)
        assert got.dtype == dtype and k == n
        np.testing.assert_array_equal(got, ref)


def test_label_dtype_must_hold_the_cells():
    with pytest.raises(ValueError, match="cannot hold labels up to 300; use int64"):
        label_local(np.ones((300,), bool), 2, dtype=np.uint8)


def test_corner_only_contact_joins_only_at_26(call):
    mask = np.zeros((4, 4, 4), bool)
    mask[1, 1, 1] = mask[2, 2, 2] = True  # touch at a corner, across a block corner
    for conn, expect in ((6, 2), (18, 2), (26, 1)):
        got = blockwise_labels(mask, conn, (2, 2, 2), call)
        assert got.max() == expect


def test_edge_only_contact_joins_at_18(call):
    mask = np.zeros((4, 4, 4), bool)
    mask[1, 1, 2] = mask[2, 2, 2] = True  # an edge neighbour across two block faces
    assert blockwise_labels(mask, 6, (2, 2, 2), call).max() == 2
    assert blockwise_labels(mask, 18, (2, 2, 2), call).max() == 1


def test_nan_is_background(call):
    m = np.array([[1.0, np.nan, 1.0], [0.0, 0.0, 2.5]])
    lab, n = call(label_local, m, 4)
    assert n == 2 and lab[0, 1] == 0


def test_empty_and_size_one(call):
    lab, n = call(label_local, np.zeros((3, 4, 5), bool), 26)
    assert n == 0 and not lab.any()
    lab, n = call(label_local, np.ones((1, 1, 1), bool), 6)
    assert n == 1 and lab[0, 0, 0] == 1
    pairs = call(face_equivalences, np.zeros((3, 3, 3), np.int64), 26, 1)
    assert pairs.shape == (0, 2)
    old, new = call(union_find_relabel, np.zeros((0, 2), np.int64), np.array([5, 9]))
    np.testing.assert_array_equal(old, [5, 9])
    np.testing.assert_array_equal(new, [1, 2])


def test_errors():
    with pytest.raises(ValueError, match="use one of"):
        connectivity_order(3, 8)
    with pytest.raises(ValueError, match="missing from the table"):
        relabel(np.array([1, 2]), np.array([1]), np.array([1]))
    with pytest.raises(TypeError, match="integer labels"):
        face_equivalences(np.zeros((3, 3)), 4)


@settings(max_examples=40, deadline=None)
@given(
    mask=hnp.arrays(np.bool_, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9)),
    connectivity=st.sampled_from([6, 18, 26]),
    block=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
)
def test_property_blockwise_cpu_matches_scipy(mask, connectivity, block):
    ref, _ = ndi.label(mask, ndi.generate_binary_structure(3, CONN3[connectivity]))

    def cpu(kernel, *a, **k):
        return kernel(*a, backend="cpu", **k)

    np.testing.assert_array_equal(blockwise_labels(mask, connectivity, block, cpu), ref)
    ref_local = label_local(mask, connectivity, backend="reference")
    np.testing.assert_array_equal(label_local(mask, connectivity, backend="cpu")[0], ref_local[0])


def global_blockwise(mask, connectivity, block, backend, dtype):
    """The chunked algorithm with :func:`label_global` and labels of ``dtype`` throughout."""
    shape = mask.shape
    glob = np.zeros(shape, dtype)
    regions = [
        tuple(slice(i * b, min((i + 1) * b, n)) for i, b, n in zip(r, block, shape, strict=True))
        for r in np.ndindex(*[-(-n // b) for n, b in zip(shape, block, strict=True)])
    ]
    for sl in regions:
        origin = tuple(s.start for s in sl)
        lab, _ = label_global(mask[sl], connectivity, origin, shape, dtype=dtype, backend=backend)
        assert lab.dtype == dtype
        glob[sl] = lab
    padded = np.pad(glob, 1)
    pairs = np.concatenate(
        [
            face_equivalences(
                padded[tuple(slice(s.start, s.stop + 2) for s in sl)],
                connectivity,
                1,
                backend=backend,
            )
            for sl in regions
        ]
    )
    old, new = union_find_relabel(pairs, np.unique(glob[glob > 0]), backend=backend)
    return relabel(glob, old, new, dtype=dtype)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_label_global_blockwise_matches_scipy_and_cc3d(rng, connectivity, dtype):
    cc3d = pytest.importorskip("cc3d")
    mask = rng.random((21, 18, 25)) < 0.35
    ref, _ = ndi.label(mask, ndi.generate_binary_structure(3, CONN3[connectivity]))
    for backend in ("cpu", "reference"):
        got = global_blockwise(mask, connectivity, (8, 5, 7), backend, dtype)  # not dividing
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, ref)
    assert same_partition(got, cc3d.connected_components(mask, connectivity=connectivity))


def test_label_global_numbers_by_first_cell(rng):
    mask = rng.random((6, 7, 8)) < 0.5
    origin, shape = (3, 2, 5), (20, 30, 40)
    for connectivity in (6, 18, 26):
        got, n = label_global(mask, connectivity, origin, shape, dtype=np.int32)
        local, k = label_local(mask, connectivity, backend="reference")
        assert n == k
        for lab in range(1, n + 1):
            first = np.argwhere(local == lab)[0]  # C order: the component's first cell
            expect = np.ravel_multi_index(tuple(first + np.array(origin)), shape) + 1
            assert (got[local == lab] == expect).all()
        ref, _ = label_global(mask, connectivity, origin, shape, backend="reference")
        np.testing.assert_array_equal(got, ref)


def test_label_global_lower_ranks(rng):
    mask = rng.random((13, 11)) < 0.45
    for connectivity, order in ((4, 1), (8, 2)):
        got, _ = label_global(mask, connectivity, (4, 2), (20, 20))
        ref, _ = label_global(mask, connectivity, (4, 2), (20, 20), backend="reference")
        np.testing.assert_array_equal(got, ref)
        assert same_partition(got, ndi.label(mask, ndi.generate_binary_structure(2, order))[0])


def test_label_global_errors():
    with pytest.raises(ValueError, match="does not fit"):
        label_global(np.ones((4, 4, 4)), 6, (1, 0, 0), (4, 4, 4))
    with pytest.raises(ValueError, match="one value per dim"):
        label_global(np.ones((4, 4, 4)), 6, (0, 0), (4, 4, 4))
    with pytest.raises(ValueError, match="cannot hold"):
        label_global(np.ones((4, 4, 4)), 6, (0, 0, 0), (2000, 2000, 2000), dtype=np.int32)


def test_relabel_dtypes_and_runs():
    lab = np.array([[0, 7, 7, 9, 0, 7], [9, 9, 0, 12, 12, 7]], dtype=np.int32)
    old = np.array([7, 9, 12])
    new = np.array([2, 1, 3])
    for dtype in (np.int32, np.int64):
        got = relabel(lab, old, new, dtype=dtype)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, [[0, 2, 2, 1, 0, 2], [1, 1, 0, 3, 3, 2]])
    with pytest.raises(ValueError, match="2 cells carry labels missing"):
        relabel(np.array([5, 5, 7]), old, new)


def test_labels_present_equals_unique(rng):
    for dtype in (np.int32, np.int64, np.uint16):
        lab = (rng.integers(0, 6, (9, 8, 7)) * (rng.random((9, 8, 7)) < 0.6)).astype(dtype)
        lab[2:5, :, :] = 4  # long runs of one label
        got = labels_present(lab)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.unique(lab[lab > 0]))
    assert labels_present(np.zeros((3, 4), np.int32)).size == 0
    with pytest.raises(TypeError, match="integer labels"):
        labels_present(np.zeros(3))
