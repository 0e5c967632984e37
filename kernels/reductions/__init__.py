"""NaN-skipping reductions: mergeable moments and quantiles along an axis.

Moments follow the ``reduce`` chunk pattern: :func:`moments_partial` of each block,
:func:`moments_combine` of any two states in any order or tree (Chan et al.'s pairwise
update, exact in real arithmetic), and :func:`moments_finalize` for the statistic
wanted. NaN values are skipped; where every value is NaN the result is NaN and the
count 0 (``sum`` included, unlike ``numpy.nansum``'s 0).

A state holds only what its statistics need (:data:`STAT_KEYS`): a mean is a count and
a mean (16 bytes per cell, one pass over the block), a variance adds the sum of squared
deviations (a second pass), a minimum is the minimum alone. Smaller states are cheaper
to compute, to write as partials and to combine; every state's arrays are equal to the
same arrays of the full state, bit for bit.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from minjiang.kernels._dispatch import is_gpu_array, resolve_backend

__all__ = [
    "MOMENT_KEYS",
    "MOMENT_STATS",
    "STAT_KEYS",
    "moment_keys",
    "moments_combine",
    "moments_finalize",
    "moments_partial",
    "nanquantile",
]

#: the arrays of the full moments state, in order
MOMENT_KEYS: tuple[str, ...] = ("count", "mean", "m2", "min", "max")
#: the statistics :func:`moments_finalize` computes
MOMENT_STATS: tuple[str, ...] = ("mean", "std", "var", "min", "max", "count", "sum")
#: the state arrays each statistic is finalized from
STAT_KEYS: dict[str, tuple[str, ...]] = {
    "count": ("count",),
    "sum": ("count", "mean"),
    "mean": ("count", "mean"),
    "var": ("count", "mean", "m2"),
    "std": ("count", "mean", "m2"),
    "min": ("min",),
    "max": ("max",),
}


def moment_keys(stats: str | Sequence[str] | None = None) -> tuple[str, ...]:
    """The arrays of the smallest state that finalizes every statistic in ``stats``
    (all of :data:`MOMENT_STATS` when None), in :data:`MOMENT_KEYS` order."""
    if stats is None:
        return MOMENT_KEYS
    wanted = (stats,) if isinstance(stats, str) else tuple(stats)
    unknown = [s for s in wanted if s not in STAT_KEYS]
    if unknown or not wanted:
        raise ValueError(
            f"moments: stats={stats!r} must name at least one of {list(MOMENT_STATS)!r}"
            + (f"; unknown: {unknown!r}" if unknown else "")
        )
    need = {k for s in wanted for k in STAT_KEYS[s]}
    return tuple(k for k in MOMENT_KEYS if k in need)


def _real_array(x: Any, kernel: str, name: str = "x") -> np.ndarray:
    x = x if is_gpu_array(x) else np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(
            f"{kernel}: {name} has dtype {x.dtype.name!r}; expected a real number type "
            "(float32 or float64; integers and booleans are read as float64)"
        )
    if x.dtype not in (np.float32, np.float64):  # keeps numba to two compiled variants
        x = x.astype(np.float64)
    return x


def _normalise_axes(axes: Any, ndim: int, kernel: str) -> tuple[int, ...]:
    if isinstance(axes, numbers.Integral) and not isinstance(axes, bool):
        axes = (axes,)
    try:
        items = tuple(axes)
    except TypeError:
        raise TypeError(f"{kernel}: axes={axes!r} must be an int or a tuple of ints") from None
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise TypeError(f"{kernel}: axes={axes!r} must contain ints, got {a!r}")
        if not -ndim <= int(a) < ndim:
            raise ValueError(
                f"{kernel}: axis {a} is out of range for an array with {ndim} dimensions "
                f"(valid: {-ndim} to {ndim - 1})"
            )
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{kernel}: axes={axes!r} names the same axis twice")
    return tuple(sorted(out))


def moments_partial(
    x: Any,
    axes: int | tuple[int, ...],
    *,
    stats: str | Sequence[str] | None = None,
    backend: str | None = None,
) -> dict[str, np.ndarray]:
    """Mergeable moments of one block over ``axes``, NaNs skipped.

    Parameters
    ----------
    x : ndarray
        The block (any real dtype; values are read as float64).
    axes : int or tuple of int
        The axes reduced; the state is shaped like ``x`` without them.
    stats : str or sequence of str, optional
        The statistics the state will be finalized to; the state holds only the arrays
        they need (:func:`moment_keys`). Default: all of :data:`MOMENT_STATS`.
    backend : {"reference", "cpu", "gpu"}, optional
        Defaults to the input's array type (NumPy -> ``"cpu"``).

    Returns
    -------
    dict of str to ndarray
        Of the full state's ``count`` (int64, non-NaN values), ``mean`` and ``m2``
        (float64: the mean and the sum of squared deviations from it), ``min`` and
        ``max`` (float64), those ``stats`` need. Where no value was counted the float
        arrays are NaN.
    """
    keys = moment_keys(stats)
    chosen = resolve_backend(backend, x, kernel="moments_partial", has_gpu=True)
    x = _real_array(x, "moments_partial")
    axes = _normalise_axes(axes, x.ndim, "moments_partial")
    if chosen == "reference":
        from minjiang.kernels.reductions import _reference

        return _reference.moments_partial(x, axes, keys)
    if chosen == "gpu":
        from minjiang.kernels.reductions import _gpu

        return _gpu.moments_partial(x, axes, keys)
    from minjiang.kernels.reductions import _cpu

    return _cpu.moments_partial(x, axes, keys)


def _check_state(state: Any, kernel: str, name: str) -> dict[str, np.ndarray]:
    if not isinstance(state, Mapping):
        raise TypeError(
            f"{kernel}: {name} must be a moments state (a dict from moments_partial), "
            f"got {type(state).__name__}"
        )
    keys = [k for k in MOMENT_KEYS if k in state]
    lacking = [
        need for k, need in (("mean", "count"), ("m2", "mean")) if k in keys and need not in keys
    ]
    if not keys or lacking:
        raise ValueError(
            f"{kernel}: {name} holds {sorted(map(str, state))!r}, not a moments state"
            + (f" ({lacking!r} missing)" if lacking else "")
            + f"; its arrays are those of {list(MOMENT_KEYS)!r} some statistics need "
            "(build it with moments_partial)"
        )
    out = {k: np.asarray(state[k], dtype=np.int64 if k == "count" else np.float64) for k in keys}
    shapes = {k: v.shape for k, v in out.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"{kernel}: the arrays of {name} differ in shape: {shapes!r}")
    return out


def moments_combine(
    a: Mapping[str, Any], b: Mapping[str, Any], *, backend: str = "cpu"
) -> dict[str, np.ndarray]:
    """Merge two moments states (Chan, Golub & LeVeque's pairwise formula).

    Parameters
    ----------
    a, b : dict of str to ndarray
        States of the same arrays and shape, from :func:`moments_partial` or this
        function (host arrays, whichever backend made them).
    backend : {"cpu", "reference"}
        ``cpu``: one fused numba pass over the cells; ``reference``: NumPy, array by
        array. Both give the same values bit for bit.

    Returns
    -------
    dict of str to ndarray
        The state of the union of both blocks, with the same arrays. An empty side
        (count 0) returns the other side unchanged, so merging with empty blocks is exact.
    """
    if backend not in ("cpu", "reference"):
        raise ValueError(
            f"moments_combine: backend={backend!r}; states are host arrays, merged on "
            "'cpu' or 'reference'"
        )
    a = _check_state(a, "moments_combine", "a")
    b = _check_state(b, "moments_combine", "b")
    if list(a) != list(b):
        raise ValueError(
            f"moments_combine: the states hold different arrays ({list(a)!r} and "
            f"{list(b)!r}); build both with the same stats"
        )
    first = next(iter(a))
    if a[first].shape != b[first].shape:
        raise ValueError(
            f"moments_combine: states have shapes {a[first].shape} and "
            f"{b[first].shape}; combine partials of the same output block"
        )
    if backend == "reference":
        from minjiang.kernels.reductions import _reference

        return _reference.moments_combine(a, b)
    from minjiang.kernels.reductions import _cpu

    return _cpu.moments_combine(a, b)


def moments_finalize(state: Mapping[str, Any], stat: str, ddof: int = 0) -> np.ndarray:
    """One statistic from a moments state.

    Parameters
    ----------
    state : dict of str to ndarray
        From :func:`moments_partial` / :func:`moments_combine`.
    stat : {"mean", "std", "var", "min", "max", "count", "sum"}
        The statistic.
    ddof : int
        Delta degrees of freedom of ``var`` and ``std`` (divide by ``count - ddof``).

    Returns
    -------
    ndarray
        float64 (``count``: int64). NaN where no value was counted, and for ``var`` /
        ``std`` where ``count <= ddof``.
    """
    if stat not in MOMENT_STATS:
        raise ValueError(
            f"moments_finalize: unknown stat {stat!r}; expected one of {list(MOMENT_STATS)!r}"
        )
    if isinstance(ddof, bool) or not isinstance(ddof, numbers.Integral) or ddof < 0:
        raise ValueError(f"moments_finalize: ddof={ddof!r} must be a non-negative integer")
    state = _check_state(state, "moments_finalize", "state")
    missing = [k for k in STAT_KEYS[stat] if k not in state]
    if missing:
        raise ValueError(
            f"moments_finalize: the state lacks {missing!r}, which {stat!r} needs; build it "
            f"with moments_partial(..., stats=[{stat!r}, ...])"
        )
    if stat in ("min", "max"):
        return state[stat].copy()  # NaN where no value was counted
    count = state["count"]
    if stat == "count":
        return count.copy()
    if stat == "mean":
        return np.where(count > 0, state[stat], np.nan)
    if stat == "sum":
        return np.where(count > 0, state["mean"] * count, np.nan)
    dof = count - ddof
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(dof > 0, state["m2"] / dof, np.nan)
    return var if stat == "var" else np.sqrt(var)


def _quantiles(q: Any) -> tuple[np.ndarray, bool]:
    scalar = np.ndim(q) == 0
    try:
        values = np.asarray(q, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(
            f"nanquantile: q={q!r} must be a number or a sequence of numbers in [0, 1]"
        ) from None
    if np.ndim(q) > 1 or not np.all((values >= 0) & (values <= 1)):
        raise ValueError(
            f"nanquantile: q={q!r} must be a number or a 1-D sequence of numbers in [0, 1] "
            "(quantiles, not percentiles: use 0.9, not 90)"
        )
    return values, scalar


def nanquantile(
    x: Any, q: float | Sequence[float], axis: int, backend: str | None = None
) -> np.ndarray:
    """Quantiles along one axis, NaNs skipped, as ``numpy.nanquantile(method="linear")``.

    Parameters
    ----------
    x : ndarray
        The data (any real dtype).
    q : float or sequence of float
        Quantile(s) in ``[0, 1]``.
    axis : int
        The axis reduced.
    backend : {"reference", "cpu", "gpu"}, optional
        Defaults to the input's array type (NumPy -> ``"cpu"``).

    Returns
    -------
    ndarray
        ``x``'s shape without ``axis``, with a leading axis of ``len(q)`` when ``q``
        is a sequence. Computed in float64 and returned as float32 for float32 input,
        float64 otherwise. An all-NaN (or empty) line gives NaN. Interpolation uses
        NumPy's formula term for term, so infinite values behave as in NumPy (an
        interpolation that touches ``inf`` can give NaN).
    """
    chosen = resolve_backend(backend, x, kernel="nanquantile", has_gpu=True)
    x = _real_array(x, "nanquantile")
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"nanquantile: axis={axis!r} must be one int")
    (axis,) = _normalise_axes(axis, x.ndim, "nanquantile")
    qs, scalar = _quantiles(q)
    out_dtype = np.float32 if x.dtype == np.float32 else np.float64
    if chosen == "reference":
        from minjiang.kernels.reductions import _reference

        result = _reference.nanquantile(x, qs, axis)
    elif chosen == "gpu":
        from minjiang.kernels.reductions import _gpu

        result = _gpu.nanquantile(x, qs, axis)
    else:
        from minjiang.kernels.reductions import _cpu

        result = _cpu.nanquantile(x, qs, axis)
    result = result.astype(out_dtype, copy=False)
    return result[0, ...] if scalar else result
