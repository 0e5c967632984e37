"""Per-label statistics of values over a label image (the ``aggregate`` chunk pattern).

:func:`label_stats_partial` turns one block of (values, labels) into a small state:
one row per label present, sorted by label. :func:`label_stats_combine` merges any
number of states (associative and commutative), and :func:`label_stats_finalize`
derives the table: count, sum, mean, population std, min and max per label.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from minjiang.kernels._dispatch import resolve_backend

__all__ = [
    "STATE_COLUMNS",
    "TABLE_COLUMNS",
    "label_stats_combine",
    "label_stats_finalize",
    "label_stats_partial",
]

#: the columns of a partial state
STATE_COLUMNS: tuple[str, ...] = ("label", "count", "sum", "sumsq", "min", "max")
#: the columns of the finalized table
TABLE_COLUMNS: tuple[str, ...] = ("label", "count", "sum", "mean", "std", "min", "max")
_INT_COLUMNS = ("label", "count")
_INT64_MAX = np.iinfo(np.int64).max


def label_stats_partial(
    values: Any, labels: Any, *, ignore: int | None = 0, backend: str | None = None
) -> dict[str, np.ndarray]:
    """Per-label partial statistics of one block.

    Parameters
    ----------
    values : ndarray
        The measured values (any real dtype; read as float64).
    labels : ndarray of int
        One label per value, same shape as ``values`` (any integer dtype; unsigned
        labels must fit in int64).
    ignore : int or None
        Voxels with this label are skipped (the background, 0 by default); ``None``
        keeps every label.
    backend : {"reference", "cpu", "gpu"}, optional
        Defaults to the inputs' array type (NumPy -> ``"cpu"``).

    Returns
    -------
    dict of str to ndarray
        1-D columns, one row per label present, sorted: ``label`` (int64), ``count``
        (int64, non-NaN values), ``sum`` and ``sumsq`` (float64), ``min`` and ``max``
        (float64). A label whose values are all NaN still has a row: count 0, sums 0,
        min and max NaN.
    """
    chosen = resolve_backend(backend, values, labels, kernel="label_stats_partial", has_gpu=True)
    if chosen != "gpu":
        values = np.asarray(values)
        labels = np.asarray(labels)
    if values.dtype.kind not in "biuf":
        raise TypeError(
            f"label_stats_partial: values have dtype {values.dtype.name!r}; expected a real "
            "number type (float32, float64 or an integer type)"
        )
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"label_stats_partial: labels have dtype {labels.dtype.name!r}; expected an "
            "integer type (cast a float label image with .astype('int64') first)"
        )
    if values.dtype not in (np.float32, np.float64):  # keeps numba to two value types
        values = values.astype(np.float64)
    if values.shape != labels.shape:
        raise ValueError(
            f"label_stats_partial: values have shape {values.shape} and labels "
            f"{labels.shape}; they must be the same block"
        )
    if labels.dtype == np.uint64 and labels.size and int(labels.max()) > _INT64_MAX:
        raise ValueError(
            "label_stats_partial: uint64 labels above 2**63 - 1 do not fit the int64 "
            "label column; renumber the labels"
        )
    if ignore is not None and (
        isinstance(ignore, bool) or not isinstance(ignore, numbers.Integral)
    ):
        raise TypeError(f"label_stats_partial: ignore={ignore!r} must be an int or None")
    if ignore is not None and not -(2**63) <= int(ignore) <= _INT64_MAX:
        raise ValueError(f"label_stats_partial: ignore={ignore!r} does not fit in int64")
    ignore = None if ignore is None else int(ignore)
    if chosen == "reference":
        from minjiang.kernels.labelstats import _reference

        return _reference.label_stats_partial(values, labels, ignore)
    if chosen == "gpu":
        from minjiang.kernels.labelstats import _gpu

        return _gpu.label_stats_partial(values, labels, ignore)
    from minjiang.kernels.labelstats import _cpu

    return _cpu.label_stats_partial(
        np.ascontiguousarray(values).reshape(-1), np.ascontiguousarray(labels).reshape(-1), ignore
    )


def _check_state(state: Any, where: str) -> dict[str, np.ndarray]:
    try:
        missing = [c for c in STATE_COLUMNS if c not in state]
    except TypeError:
        raise TypeError(
            f"{where} is a {type(state).__name__}; expected a dict of columns from "
            "label_stats_partial"
        ) from None
    if missing:
        raise ValueError(
            f"{where} lacks the columns {missing!r}; a state has {list(STATE_COLUMNS)!r} "
            "(build it with label_stats_partial)"
        )
    cols = {
        c: np.ascontiguousarray(state[c], dtype=np.int64 if c in _INT_COLUMNS else np.float64)
        for c in STATE_COLUMNS
    }
    lengths = {c: v.shape for c, v in cols.items()}
    if any(v.ndim != 1 for v in cols.values()) or len(set(lengths.values())) > 1:
        raise ValueError(f"{where}: columns must be 1-D and of one length, got shapes {lengths!r}")
    if cols["label"].size > 1 and not np.all(cols["label"][1:] > cols["label"][:-1]):
        raise ValueError(
            f"{where}: labels are not sorted and unique; states from label_stats_partial "
            "and label_stats_combine always are"
        )
    return cols


def label_stats_combine(
    states: Sequence[Mapping[str, Any]], *, backend: str | None = None
) -> dict[str, np.ndarray]:
    """Merge per-label states by label.

    Parameters
    ----------
    states : sequence of dict
        States from :func:`label_stats_partial` or this function, in any order.
    backend : {"reference", "cpu", "gpu"}, optional
        ``"cpu"`` (default) merges the sorted states pairwise with numba in linear
        time; ``"reference"`` concatenates and groups with NumPy; ``"gpu"`` (the
        default for states of CuPy columns) merges on the device.

    Returns
    -------
    dict of str to ndarray
        One row per label in any state, sorted: counts and sums added, min and max over
        the non-NaN ones. No states give an empty state.
    """
    if isinstance(states, Mapping) or not isinstance(states, Sequence):
        raise TypeError(
            "label_stats_combine: states must be a sequence of states "
            f"(e.g. [state_a, state_b]), got {type(states).__name__}"
        )
    # States are host data (NumPy columns) whatever produced them; states of CuPy
    # columns are merged on the device (and give a NumPy state too).
    columns = [
        v for s in states if isinstance(s, Mapping) for c, v in s.items() if c in STATE_COLUMNS
    ]
    chosen = resolve_backend(
        None if backend == "gpu" and not columns else backend,  # no states: nothing to place
        *columns,
        kernel="label_stats_combine",
        has_gpu=True,
    )
    if chosen == "gpu":
        from minjiang.kernels.labelstats import _gpu

        return _gpu.label_stats_combine(states)
    checked = [_check_state(s, f"label_stats_combine: state {i}") for i, s in enumerate(states)]
    if not checked:
        return {
            c: np.empty(0, dtype=np.int64 if c in _INT_COLUMNS else np.float64)
            for c in STATE_COLUMNS
        }
    if chosen == "reference":
        from minjiang.kernels.labelstats import _reference

        return _reference.label_stats_combine(checked)
    from minjiang.kernels.labelstats import _cpu

    return _cpu.label_stats_combine(checked)


def label_stats_finalize(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The per-label table of a state.

    Parameters
    ----------
    state : dict
        From :func:`label_stats_partial` or :func:`label_stats_combine`.

    Returns
    -------
    dict of str to ndarray
        Columns ``label``, ``count`` (int64), ``sum``, ``mean``, ``std`` (population,
        ddof 0), ``min``, ``max`` (float64). A label with no non-NaN value has count 0
        and NaN elsewhere (``sum`` included). ``std`` comes from the sum of squares,
        ``sqrt(max(sumsq / n - mean**2, 0))``: its absolute error grows with
        ``|mean| / std``, about ``1e-16 * mean**2 / std`` (negligible unless the values
        carry a large offset, e.g. temperatures in kelvin with a std below 0.01).
    """
    cols = _check_state(state, "label_stats_finalize: state")
    count = cols["count"]
    empty = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = cols["sum"] / count
        var = np.maximum(cols["sumsq"] / count - mean * mean, 0.0)
    return {
        "label": cols["label"],
        "count": count,
        "sum": np.where(empty, np.nan, cols["sum"]),
        "mean": np.where(empty, np.nan, mean),
        "std": np.where(empty, np.nan, np.sqrt(var)),
        "min": cols["min"],
        "max": cols["max"],
    }
