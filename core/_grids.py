"""The grid contract: the aligned inputs of a step share one grid.

Equal sizes are not enough: a value grid at latitudes 0–9 and a label grid at
latitudes 50–59 have the same shape. Before a per-step operator's tasks are planned
(a reused step whose content id covers every input was checked when it was computed),
every array input aligned with the primary one (its dims not declared ``whole``) is
compared with the primary on what both carry:

* **coordinates** over the aligned dims (1-D ``lat``, ``time``…, 2-D curvilinear
  ``lat``/``lon``): numbers equal within a ten-thousandth of their spacing (and the
  rounding of their dtype), times exactly, with calendars of one family
  (standard/gregorian/proleptic_gregorian; noleap/365_day; all_leap/366_day; 360_day);
* **georeferencing**: the ``crs`` and affine ``transform`` attributes of rasters
  (equal CRS, transforms within 1e-9 of a cell); one input georeferenced and the
  other not is a mismatch too.

A mismatch is a :class:`ContractError` that names both inputs, their grids and what
differs, and the registered alignment operators (``*.resample``, ``*.regrid``,
``*.resample_time``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from minjiang.core.errors import ContractError

if TYPE_CHECKING:
    from minjiang.core._operator import Operator
    from minjiang.core._planner import BoundInput
    from minjiang.storage import ArrayInfo, DatasetInfo

__all__ = ["check_same_grid"]

_CALENDARS = {
    "standard": "standard",
    "gregorian": "standard",
    "proleptic_gregorian": "standard",
    "noleap": "noleap",
    "365_day": "noleap",
    "all_leap": "all_leap",
    "366_day": "all_leap",
    "360_day": "360_day",
    "julian": "julian",
}


def check_same_grid(
    step: str,
    op: Operator,
    inputs: Mapping[str, BoundInput],
    dataset: Callable[[str], DatasetInfo],
    coord_values: Callable[[ArrayInfo], Any],
    aligners: Iterable[str] = (),
) -> None:
    """Refuse a step whose aligned array inputs are on different grids.

    Raises
    ------
    ContractError
        Naming both inputs, their grids and the first difference found.
    """
    primary = inputs.get(op.primary.name)
    if primary is None or primary.array is None:
        return
    hint = _hint(aligners)
    pinfo = dataset(primary.dataset_id)
    for spec in op.inputs:
        other = inputs.get(spec.name)
        if other is None or other.array is None or spec.name == op.primary.name:
            continue
        aligned = tuple(d for d in other.array.dims if d not in spec.whole and d in primary.array.dims)
        if not aligned:
            continue
        where = f"step {step!r} ({op.name}): inputs {op.primary.name!r} and {spec.name!r}"
        why = _georef_difference(primary.array, other.array)
        if why is None:
            oinfo = dataset(other.dataset_id)
            why = _coord_difference(pinfo, oinfo, aligned, coord_values)
        if why is not None:
            raise ContractError(f"{where} are on different grids: {why}. {hint}")


def _hint(aligners: Iterable[str]) -> str:
    names = sorted(aligners)
    if names:
        return (
            "Bring one onto the other's grid first (registered alignment operators: "
            f"{', '.join(names)})"
        )
    return "Bring one onto the other's grid first (resample or regrid it)"


def _georef_difference(a: ArrayInfo, b: ArrayInfo) -> str | None:
    ta, tb = a.attrs.get("transform"), b.attrs.get("transform")
    if ta is None and tb is None:
        return None
    if ta is None or tb is None:
        geo, plain = ("first", "second") if tb is None else ("second", "first")
        return (
            f"the {geo} is georeferenced (crs/transform attributes) and the {plain} is not"
        )
    ta, tb = [float(v) for v in ta], [float(v) for v in tb]
    cell = max(min(abs(ta[0]), abs(ta[4])) if len(ta) >= 6 else 1.0, 1e-300)
    if len(ta) != len(tb) or any(abs(p - q) > 1e-9 * cell for p, q in zip(ta, tb, strict=True)):
        return f"transform {ta} against {tb}"
    ca, cb = str(a.attrs.get("crs", "") or ""), str(b.attrs.get("crs", "") or "")
    if ca != cb and not _same_crs(ca, cb):
        return f"CRS {_crs_name(ca)} against {_crs_name(cb)}"
    return None


def _same_crs(a: str, b: str) -> bool:
    if not a or not b:
        return False
    try:
        from pyproj import CRS
    except ImportError:  # without pyproj only identical strings are the same CRS
        return False
    return bool(CRS.from_user_input(a) == CRS.from_user_input(b))


def _crs_name(wkt: str) -> str:
    if not wkt:
        return "no CRS"
    try:
        from pyproj import CRS

        crs = CRS.from_user_input(wkt)
        epsg = crs.to_epsg()
        return f"EPSG:{epsg}" if epsg else str(crs.name)
    except Exception:  # an unparsable CRS is still named, by its first characters
        return repr(wkt[:40])


def _coord_difference(
    a: DatasetInfo,
    b: DatasetInfo,
    aligned: tuple[str, ...],
    coord_values: Callable[[ArrayInfo], Any],
) -> str | None:
    import numpy as np

    for name in sorted(set(a.coords) & set(b.coords)):
        ca, cb = a.coords[name], b.coords[name]
        if not ca.dims or tuple(ca.dims) != tuple(cb.dims) or not set(ca.dims) <= set(aligned):
            continue
        cal_a, cal_b = ca.attrs.get("calendar"), cb.attrs.get("calendar")
        if (cal_a or cal_b) and _CALENDARS.get(str(cal_a or "standard")) != _CALENDARS.get(
            str(cal_b or "standard")
        ):
            return f"coordinate {name!r} is on calendar {cal_a!r} against {cal_b!r}"
        if tuple(ca.shape) != tuple(cb.shape) or ca.path == cb.path:
            continue  # the size check names the first; the second is one array
        va, vb = np.asarray(coord_values(ca)), np.asarray(coord_values(cb))
        if _equal(va, vb):
            continue
        return f"coordinate {name!r} differs ({_describe(va)} against {_describe(vb)})"
    return None


def _equal(a: Any, b: Any) -> bool:
    import numpy as np

    if a.dtype.kind in "fiu" and b.dtype.kind in "fiu":
        fa, fb = a.astype(np.float64), b.astype(np.float64)
        if np.array_equal(fa, fb, equal_nan=True):
            return True
        steps = np.abs(np.diff(fa, axis=-1)) if fa.shape and fa.shape[-1] > 1 else np.array([])
        spacing = float(np.nanmedian(steps)) if steps.size else 0.0
        scale = float(np.nanmax(np.abs(fa))) if fa.size else 0.0
        rounding = 4 * max(_eps(a.dtype), _eps(b.dtype)) * scale
        tol = max(1e-4 * spacing, rounding)
        return bool(np.allclose(fa, fb, rtol=0, atol=tol, equal_nan=True))
    if a.dtype.kind == "M" and b.dtype.kind == "M":
        return bool(np.array_equal(a.astype("datetime64[ns]"), b.astype("datetime64[ns]")))
    try:
        return bool(np.all(a == b))
    except (TypeError, ValueError):  # incomparable kinds (numbers against times)
        return False


def _eps(dtype: Any) -> float:
    import numpy as np

    return float(np.finfo(dtype).eps) if np.dtype(dtype).kind == "f" else 0.0


def _describe(v: Any) -> str:
    import numpy as np

    flat = v.ravel()
    if flat.size == 0:
        return "no values"
    if flat.size == 1:
        return f"{flat[0]}"
    if v.ndim == 1 and v.dtype.kind in "fiu":
        step = np.diff(v.astype(np.float64))
        if np.allclose(step, step[0]):
            return f"{flat[0]:g} .. {flat[-1]:g} step {step[0]:g}, {flat.size} values"
    return f"{flat[0]} .. {flat[-1]}, {flat.size} values"
