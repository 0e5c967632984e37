from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minjiang.kernels.labelstats import (
    STATE_COLUMNS,
    TABLE_COLUMNS,
    label_stats_combine,
    label_stats_finalize,
    label_stats_partial,
)


def _pandas_table(values: np.ndarray, labels: np.ndarray, ignore: int | None) -> pd.DataFrame:
    """The independent reference: a pandas groupby over the flattened voxels."""
    df = pd.DataFrame(
        {
            "value": values.reshape(-1).astype(np.float64),
            "label": labels.reshape(-1).astype(np.int64),
        }
    )
    if ignore is not None:
        df = df[df["label"] != ignore]
    g = df.groupby("label", sort=True)["value"]
    return pd.DataFrame(
        {
            "count": g.count(),
            "sum": g.sum(min_count=1),
            "mean": g.mean(),
            "std": g.std(ddof=0),
            "min": g.min(),
            "max": g.max(),
        }
    )


def _check_table(table: dict[str, np.ndarray], expected: pd.DataFrame, close) -> None:
    assert list(table) == list(TABLE_COLUMNS)
    assert table["label"].dtype == np.int64 and table["count"].dtype == np.int64
    np.testing.assert_array_equal(table["label"], expected.index.to_numpy())
    np.testing.assert_array_equal(table["count"], expected["count"].to_numpy())
    scale = max(1.0, float(np.nanmax(np.abs(expected["sum"].to_numpy()), initial=0.0)))
    for column in ("sum", "mean", "std", "min", "max"):
        assert table[column].dtype == np.float64
        close(table[column], expected[column].to_numpy(), np.float64, scale=scale)


def _data(rng, shape, dtype, n_labels=6, nan_fraction=0.2):
    values = (rng.standard_normal(shape) * 10 + 5).astype(dtype)
    values[rng.random(shape) < nan_fraction] = np.nan
    labels = rng.integers(0, n_labels, shape)
    return values, labels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label_dtype", [np.int8, np.uint16, np.int32, np.int64, np.uint64])
def test_partial_then_finalize_matches_pandas(call, close, rng, dtype, label_dtype):
    values, labels = _data(rng, (9, 11), dtype)
    labels = labels.astype(label_dtype)
    values[labels == 3] = np.nan  # a label with no valid value keeps its row
    state = call(label_stats_partial, values, labels)
    assert list(state) == list(STATE_COLUMNS)
    assert state["count"][state["label"] == 3] == 0
    assert np.isnan(state["min"][state["label"] == 3]).all()
    _check_table(label_stats_finalize(state), _pandas_table(values, labels, 0), close)


@pytest.mark.parametrize("ignore", [None, 0, -1, 4, 10**9])
def test_ignore_and_negative_labels(call, close, rng, ignore):
    values, labels = _data(rng, (6, 7, 3), np.float64)
    labels = labels - 2  # -2 .. 3
    state = call(label_stats_partial, values, labels, ignore=ignore)
    if ignore is not None:
        assert ignore not in state["label"]
    _check_table(label_stats_finalize(state), _pandas_table(values, labels, ignore), close)


def test_sparse_labels_take_the_sorting_path(call, close, rng):
    values = rng.standard_normal(500)
    labels = rng.choice(np.array([-(2**40), 7, 2**41, 2**62 + 3]), size=500)
    labels[:100] = 0
    state = call(label_stats_partial, values, labels)
    np.testing.assert_array_equal(state["label"], [-(2**40), 7, 2**41, 2**62 + 3])
    _check_table(label_stats_finalize(state), _pandas_table(values, labels, 0), close)


def test_infinite_values_are_data(call):
    values = np.array([1.0, np.inf, 3.0, -np.inf, np.nan])
    labels = np.array([1, 1, 2, 2, 2])
    table = label_stats_finalize(call(label_stats_partial, values, labels))
    np.testing.assert_array_equal(table["count"], [2, 2])
    np.testing.assert_array_equal(table["max"], [np.inf, 3.0])
    np.testing.assert_array_equal(table["min"], [1.0, -np.inf])
    np.testing.assert_array_equal(table["sum"], [np.inf, -np.inf])


@pytest.mark.parametrize("shape", [(0,), (0, 4), (1,), (1, 1)])
def test_empty_and_size_one(call, shape):
    values = np.full(shape, 2.0, np.float32)
    labels = np.full(shape, 5, np.int32)
    state = call(label_stats_partial, values, labels)
    assert all(state[c].shape == (values.size,) for c in STATE_COLUMNS)
    if values.size:
        np.testing.assert_array_equal(state["label"], [5])
        np.testing.assert_array_equal(state["sumsq"], [4.0])
    all_ignored = call(label_stats_partial, values, np.zeros(shape, np.int32))
    assert all(v.size == 0 for v in all_ignored.values())
    assert all(v.size == 0 for v in label_stats_finalize(all_ignored).values())


def test_non_contiguous_views(call, close, rng):
    values, labels = _data(rng, (10, 12), np.float64)
    v, lab = values[::3, ::-2], labels.T[::-2, ::3].T
    assert v.shape == lab.shape and not v.flags.c_contiguous and not lab.flags.c_contiguous
    _check_table(
        label_stats_finalize(call(label_stats_partial, v, lab)), _pandas_table(v, lab, 0), close
    )


@st.composite
def _blocked_cases(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 7), min_size=ndim, max_size=ndim)))
    cuts = []
    for n in shape:
        inner = draw(st.sets(st.integers(1, n - 1), max_size=2)) if n > 1 else set()
        cuts.append([0, *sorted(inner), n])
    n_labels = draw(st.integers(1, 8))
    nan_fraction = draw(st.sampled_from([0.0, 0.3, 1.0]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    ignore = draw(st.sampled_from([None, 0, 2]))
    order = draw(st.randoms(use_true_random=False))
    seed = draw(st.integers(0, 2**32 - 1))
    return shape, cuts, n_labels, nan_fraction, dtype, ignore, order, seed


@settings(max_examples=50, deadline=None)
@given(case=_blocked_cases())
def test_blocks_combine_to_the_whole(call, close, case):
    shape, cuts, n_labels, nan_fraction, dtype, ignore, order, seed = case
    rng = np.random.default_rng(seed)
    values, labels = _data(rng, shape, dtype, n_labels, nan_fraction)
    states = []
    for index in np.ndindex(*(len(c) - 1 for c in cuts)):
        block = tuple(slice(c[i], c[i + 1]) for c, i in zip(cuts, index, strict=True))
        states.append(call(label_stats_partial, values[block], labels[block], ignore=ignore))
    order.shuffle(states)
    while len(states) > 2:  # merge a random run of states, then the rest all at once
        k = order.randint(2, len(states))
        states = [call(label_stats_combine, states[:k]), *states[k:]]
    merged = call(label_stats_combine, states)
    _check_table(label_stats_finalize(merged), _pandas_table(values, labels, ignore), close)


def test_combine_backends_agree_exactly(rng):
    states = [label_stats_partial(*_data(rng, (40,), np.float64, n_labels=30)) for _ in range(5)]
    cpu = label_stats_combine(states, backend="cpu")
    ref = label_stats_combine(states, backend="reference")
    for column in STATE_COLUMNS:
        np.testing.assert_allclose(cpu[column], ref[column], rtol=1e-15, equal_nan=True)


def test_combine_edge_cases(call):
    state = label_stats_partial(np.array([1.0, 2.0, np.nan]), np.array([3, 1, 9]))
    assert all(v.size == 0 for v in call(label_stats_combine, []).values())
    single = call(label_stats_combine, [state])
    for column in STATE_COLUMNS:
        np.testing.assert_array_equal(single[column], state[column])
    doubled = call(label_stats_combine, [state, state])
    np.testing.assert_array_equal(doubled["count"], 2 * state["count"])
    np.testing.assert_array_equal(doubled["min"], state["min"])  # NaN for label 9


def test_bad_input_is_rejected():
    good = label_stats_partial(np.ones(3), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="same block"):
        label_stats_partial(np.ones(3), np.ones(4, np.int64))
    with pytest.raises(TypeError, match="labels have dtype 'float64'"):
        label_stats_partial(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="above 2\\*\\*63 - 1"):
        label_stats_partial(np.ones(1), np.array([2**63], np.uint64))
    with pytest.raises(TypeError, match=r"ignore=1\.5"):
        label_stats_partial(np.ones(3), np.array([1, 2, 3]), ignore=1.5)
    with pytest.raises(ValueError, match="state 1 lacks the columns \\['sumsq'\\]"):
        label_stats_combine([good, {k: v for k, v in good.items() if k != "sumsq"}])
    with pytest.raises(ValueError, match="not sorted and unique"):
        label_stats_combine([{k: v[::-1] for k, v in good.items()}])
    with pytest.raises(TypeError, match="sequence of states"):
        label_stats_combine(good)
    with pytest.raises(TypeError, match=r"has no GPU implementation|needs CuPy"):
        label_stats_combine([good], backend="gpu")
