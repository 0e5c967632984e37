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
    label_local,
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
