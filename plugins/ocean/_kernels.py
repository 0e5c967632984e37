"""Task entry points of the ocean operators (named by dotted path in the operators).

Each function adapts one chunk task (``arrays``, ``params``, ``ctx``; see
:mod:`minjiang.core._operator`) to the validated array functions of the
``climatology``, ``mhw``, ``regional`` and ``eof`` packages. The backend follows
``ctx.backend`` (``"cpu"`` = numba); ``"reference"`` runs the NumPy specification and
``"gpu"`` (operators declaring it) the GPU code on the task's CuPy arrays: the
``numba.cuda`` kernels of the climatology and heatwaves, and array code (element-wise
operations, sums and matrix products that run on NumPy and CuPy alike) for the anomaly,
the running mean, the regional sums and the EOF steps. Tables, the time axis and small
per-task geometry (weights, region masks, modes) are kept on the host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from minjiang.core.errors import ContractError

__all__ = [
    "anomaly",
    "climatology",
    "eof_combine",
    "eof_finalize",
    "eof_partial",
    "eof_project",
    "marine_heatwaves",
    "regional_combine",
    "regional_finalize",
    "regional_partial",
    "running_mean",
]


def _backend(ctx: Any) -> str:
    backend = getattr(ctx, "backend", "cpu")
    return backend if backend in ("reference", "gpu") else "cpu"


def _array(x: Any, backend: str) -> Any:
    # GPU tasks receive CuPy arrays and keep them there; CPU tasks get NumPy arrays
    if backend == "gpu":
        from minjiang.kernels import array_namespace as array_module

        return array_module(x).asarray(x)
    return np.asarray(x)


def _module(x: Any) -> Any:
    from minjiang.kernels import array_namespace as array_module

    return array_module(x)


def _host(x: Any) -> np.ndarray:
    from minjiang.kernels import to_host

    return to_host(x)


def _time(ctx: Any, what: str) -> Any:
    from minjiang.plugins.ocean._time import decode_time

    values = ctx.coords.get("time")
    if values is None:
        raise ContractError(
            f"{what}: the input has no 'time' coordinate values; ingest it with ocean.netcdf so that "
            "time is a decoded coordinate"
        )
    return decode_time(values, ctx.attrs.get("time"), what=what)


def year_range(params: Any, attrs: Mapping[str, Any], what: str) -> tuple[int, int]:
    """Years of the yearly summaries: ``params.years`` or the input's ACDD time coverage."""
    if params.years is not None:
        y0, y1 = int(params.years[0]), int(params.years[1])
    else:
        start, end = attrs.get("time_coverage_start"), attrs.get("time_coverage_end")
        try:
            y0, y1 = int(str(start)[:4]), int(str(end)[:4])
        except (TypeError, ValueError):
            raise ContractError(
                f"{what}: cannot tell the years of the input (no time_coverage_start/end attributes); "
                "pass params.years = [first, last]"
            ) from None
    if y1 < y0:
        raise ContractError(f"{what}: years {[y0, y1]!r} end before they start")
    return y0, y1


# --------------------------------------------------------------------- climatology
def climatology(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """FullAxis(time) kernel of ``ocean.climatology``."""
    from minjiang.plugins.ocean.climatology import climatology as clim

    backend = _backend(ctx)
    seas, thresh = clim(
        _array(arrays["sst"], backend),
        _time(ctx, "ocean.climatology"),
        frequency=params.frequency,
        period=params.climatology_period,
        window_half_width=params.window_half_width,
        percentile=params.percentile,
        smooth=params.smooth_percentile,
        smooth_width=params.smooth_percentile_width,
        convention=params.convention,
        max_pad_length=params.max_pad_length,
        backend=backend,
    )
    return {"seas": seas, "thresh": thresh}


# --------------------------------------------------------------------- anomaly
def anomaly(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """Map kernel of ``ocean.anomaly``: x − climatology joined on day-of-year or month."""
    backend = _backend(ctx)
    x = _array(arrays["sst"], backend)
    ref = _array(arrays[params.reference], backend)
    xp = _module(x)
    cal = _time(ctx, "ocean.anomaly")
    if ref.shape[0] == 366:
        index = cal.doy - 1
    elif ref.shape[0] == 12:
        index = cal.month - 1
    else:
        raise ContractError(
            f"ocean.anomaly: the climatology has {ref.shape[0]} steps; expected 366 (daily) or 12 (monthly) "
            "from ocean.climatology"
        )
    # one gather and subtraction, on the device of the block (the index is host metadata)
    out = x - ref[xp.asarray(index)].astype(np.float64)
    return {"anomaly": out.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)}


# --------------------------------------------------------------------- heatwaves
EVENT_COLUMNS: dict[str, str] = {
    "y": "int32",
    "x": "int32",
    "lat": "double",
    "lon": "double",
    "event_no": "int32",
    "date_start": "string",
    "date_peak": "string",
    "date_end": "string",
    "duration": "int32",
    "category": "int32",
    "duration_moderate": "int32",
    "duration_strong": "int32",
    "duration_severe": "int32",
    "duration_extreme": "int32",
}


def event_columns() -> dict[str, str]:
    """Column name -> Arrow type of the events table."""
    from minjiang.plugins.ocean.mhw import FLOAT_METRICS

    return {**EVENT_COLUMNS, **{m: "double" for m in FLOAT_METRICS}}


def _pixel_latlon(
    arrays: Mapping[str, Any], ctx: Any, dims: tuple[str, str], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    if "lat" in arrays and "lon" in arrays:
        return (
            _host(arrays["lat"]).astype(np.float64, copy=False),
            _host(arrays["lon"]).astype(np.float64, copy=False),
        )
    lat = ctx.coords.get(dims[0]) if dims[0] in ("lat", "latitude") else None
    lon = ctx.coords.get(dims[1]) if dims[1] in ("lon", "longitude") else None
    lat2 = (
        np.full(shape, np.nan)
        if lat is None
        else np.broadcast_to(np.asarray(lat, np.float64)[:, None], shape)
    )
    lon2 = (
        np.full(shape, np.nan)
        if lon is None
        else np.broadcast_to(np.asarray(lon, np.float64)[None, :], shape)
    )
    return lat2, lon2


def marine_heatwaves(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """FullAxis(time) kernel of ``ocean.marine_heatwaves``: events table + yearly grids."""
    from minjiang.plugins.ocean.mhw import FLOAT_METRICS, detect_events, yearly_summary

    backend = _backend(ctx)
    sst = _array(arrays["sst"], backend)
    if sst.ndim != 3:
        raise ContractError(
            f"ocean.marine_heatwaves: expected a (time, y, x) block, got shape {sst.shape!r}"
        )
    ev = detect_events(
        sst,
        _time(ctx, "ocean.marine_heatwaves"),
        _array(arrays["seas"], backend),
        _array(arrays["thresh"], backend),
        min_duration=params.min_duration,
        join_gaps=params.join_across_gaps,
        max_gap=params.max_gap,
        max_pad_length=params.max_pad_length,
        cold_spells=params.cold_spells,
        backend=backend,
    )
    space = sst.shape[1:]
    dims = tuple(d for d in ctx.dims if d != "time")
    y0, y1 = year_range(params, ctx.attrs.get("sst", {}), "ocean.marine_heatwaves")
    # the events and their yearly grids are host data; only this mask comes over
    valid = _host(_module(sst).isfinite(sst).any(axis=0)).reshape(-1)
    grids = yearly_summary(ev, np.arange(y0, y1 + 1), valid)
    out: dict[str, Any] = {k: v.reshape((y1 - y0 + 1, *space)) for k, v in grids.items()}

    iy, ix = np.divmod(ev.pixel, space[1])
    lat, lon = _pixel_latlon(arrays, ctx, dims, space)
    oy, ox = ctx.region[dims[0]].start, ctx.region[dims[1]].start
    event_no = np.ones(len(ev), dtype=np.int32)
    if len(ev):
        first = np.r_[True, ev.pixel[1:] != ev.pixel[:-1]]
        run_start = np.maximum.accumulate(np.where(first, np.arange(len(ev)), 0))
        event_no = (np.arange(len(ev)) - run_start + 1).astype(np.int32)
    cal = ev.calendar
    table: dict[str, Any] = {
        "y": (iy + oy).astype(np.int32),
        "x": (ix + ox).astype(np.int32),
        "lat": lat[iy, ix].astype(np.float64),
        "lon": lon[iy, ix].astype(np.float64),
        "event_no": event_no,
        "date_start": np.array([cal.iso(i) for i in ev.column("index_start")], dtype=object),
        "date_peak": np.array([cal.iso(i) for i in ev.column("index_peak")], dtype=object),
        "date_end": np.array([cal.iso(i) for i in ev.column("index_end")], dtype=object),
    }
    for name in (
        "duration",
        "category",
        "duration_moderate",
        "duration_strong",
        "duration_severe",
        "duration_extreme",
    ):
        table[name] = ev.column(name).astype(np.int32)
    for name in FLOAT_METRICS:
        table[name] = ev.column(name).astype(np.float64)
    if not len(ev):
        table["date_start"] = table["date_peak"] = table["date_end"] = np.array([], dtype=object)
    import pyarrow as pa

    out["events"] = pa.table(
        {k: pa.array(v, type=pa.type_for_alias(event_columns()[k])) for k, v in table.items()}
    )
    return out


# --------------------------------------------------------------------- regional means
def _cell_geometry(
    arrays: Mapping[str, Any], ctx: Any, shape: tuple[int, int], what: str
) -> tuple[np.ndarray, np.ndarray]:
    dims = tuple(d for d in ctx.dims if d != "time")
    if "lat" in arrays and "lon" in arrays:
        # 2-D geometry inputs reach GPU tasks on the device; it is small: use it on the host
        return (
            _host(arrays["lat"]).astype(np.float64, copy=False),
            _host(arrays["lon"]).astype(np.float64, copy=False),
        )
    if dims[0] in ctx.coords and dims[1] in ctx.coords:
        lat = np.asarray(ctx.coords[dims[0]], np.float64)
        lon = np.asarray(ctx.coords[dims[1]], np.float64)
        return np.broadcast_to(lat[:, None], shape), np.broadcast_to(lon[None, :], shape)
    raise ContractError(
        f"{what}: no latitude/longitude for the grid dims {dims!r}; give the 'lat' and 'lon' inputs "
        "(2-D arrays of a curvilinear grid, as ocean.netcdf ingests them)"
    )


def _region_weights(
    arrays: Mapping[str, Any], params: Any, ctx: Any, shape: tuple[int, int]
) -> np.ndarray:
    """Host weights of every region of the block: (regions, y, x), 0 outside a region."""
    from minjiang.plugins.ocean.regional import box_mask, grid_weights

    lat, lon = _cell_geometry(arrays, ctx, shape, "ocean.regional_mean")
    area = _host(arrays["cell_area"]).astype(np.float64) if "cell_area" in arrays else None
    w = grid_weights(params.weights, lat, area)
    if "mask" in arrays:
        w = np.where(_host(arrays["mask"]) != 0, w, 0.0)
    boxes = params.boxes()
    out = np.zeros((len(boxes), *shape))
    for r, box in enumerate(boxes):
        m = box_mask(lat, lon, box.lat_min, box.lat_max, box.lon_min, box.lon_max)
        out[r] = np.where(m, w, 0.0)
    return out


def regional_partial(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Reduce partial of ``ocean.regional_mean``: per time step and region, Σw·x
    (``sum``) and Σw (``weight``), each shaped (time, region).

    GPU tasks sum all regions in two matrix products on the device
    (:func:`minjiang.plugins.ocean.regional._gpu.weighted_sums_regions`) and return
    device arrays, which the runtime copies back.
    """
    from minjiang.plugins.ocean.regional import weighted_sums

    backend = _backend(ctx)
    x = _array(arrays["sst"], backend)
    shape = x.shape[1:]
    weights = _region_weights(arrays, params, ctx, shape)
    if backend == "gpu":
        from minjiang.plugins.ocean.regional._gpu import weighted_sums_regions

        total, wsum = weighted_sums_regions(x, weights.reshape(len(weights), -1))
        return {"sum": total.T, "weight": wsum.T}
    sums = [weighted_sums(x, wr, backend=backend) for wr in weights]
    return {
        "sum": np.stack([total for total, _ in sums], axis=-1),
        "weight": np.stack([wsum for _, wsum in sums], axis=-1),
    }


def regional_combine(states: Sequence[Mapping[str, Any]], params: Any) -> dict[str, Any]:
    """Reduce combine: the sums add, in order (host or device arrays alike)."""
    acc = dict(states[0])
    for state in states[1:]:
        acc = {k: acc[k] + state[k] for k in acc}
    return acc


def regional_finalize(state: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Reduce finalize: mean = Σw·x / Σw (NaN where no valid cell).

    Runs in the array module of the state: device arrays when a GPU task reduces its
    block whole (partial and finalize in one task), host arrays read back otherwise.
    """
    xp = _module(state["sum"])
    total = xp.moveaxis(xp.asarray(state["sum"]), -1, 0)  # (region, time)
    wsum = xp.moveaxis(xp.asarray(state["weight"]), -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = xp.where(wsum > 0, total / xp.where(wsum > 0, wsum, 1.0), xp.nan)
    return {"mean": mean, "weight": wsum}


# --------------------------------------------------------------------- running mean
def running_mean_1d(x: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean along the last axis; NaN where the window is incomplete
    (at the ends, or when a value in it is missing)."""
    x = np.asarray(x, dtype=np.float64)
    h = window // 2
    out = np.full(x.shape, np.nan)
    n = x.shape[-1]
    if n < window:
        return out
    windows = np.lib.stride_tricks.sliding_window_view(x, window, axis=-1)
    out[..., h : n - h] = windows.sum(axis=-1) / window
    return out


def running_mean_array(x: Any, window: int, axis: int) -> Any:
    """Centred running mean along ``axis`` as array code (NumPy or CuPy, the module of ``x``).

    The window's values are added in window order from its first value, one shifted
    slice at a time (``window`` element-wise passes over the block): for windows of
    fewer than 8 values this is the order of :func:`running_mean_1d`'s NumPy sum, so the
    results are equal bit for bit; longer windows differ from NumPy's pairwise sum by
    rounding only. NaN and incomplete windows give NaN, as there.

    Parameters
    ----------
    x : array
        NumPy or CuPy array of any float dtype.
    window : int
        Odd number of steps.
    axis : int
        The time axis.

    Returns
    -------
    array
        float64, the shape of ``x``, in the array module of ``x``.
    """
    xp = _module(x)
    moved = xp.moveaxis(xp.asarray(x).astype(xp.float64, copy=False), axis, -1)
    n = moved.shape[-1]
    h = window // 2
    out = xp.full(moved.shape, xp.nan, dtype=xp.float64)
    if n >= window:
        m = n - window + 1
        acc = moved[..., 0:m].copy()
        for j in range(1, window):
            acc += moved[..., j : j + m]
        out[..., h : n - h] = acc / window
    return xp.moveaxis(out, -1, axis)


def running_mean(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """FullAxis(time) kernel of ``ocean.running_mean`` (e.g. the ONI from a Niño3.4 anomaly).

    GPU tasks run :func:`running_mean_array` on their device block.
    """
    axis = list(ctx.dims).index("time")
    if _backend(ctx) == "gpu":
        return {"running_mean": running_mean_array(_array(arrays["x"], "gpu"), params.window, axis)}
    x = np.asarray(arrays["x"])
    moved = np.moveaxis(x, axis, -1)
    out = np.moveaxis(running_mean_1d(moved, params.window), -1, axis)
    return {"running_mean": out}


# --------------------------------------------------------------------- EOF
def _eof_weights(
    arrays: Mapping[str, Any], params: Any, ctx: Any, shape: tuple[int, ...]
) -> np.ndarray | None:
    # per-cell inputs reach GPU tasks on the device; weights are small: host data
    if "weights" in arrays:
        return _host(arrays["weights"]).astype(np.float64, copy=False)
    if params.weights == "none":
        return None
    if params.weights == "sqrt_area" and "cell_area" in arrays:
        area = _host(arrays["cell_area"]).astype(np.float64, copy=False)
        return np.sqrt(area / np.nanmax(area))
    lat, _ = _cell_geometry(arrays, ctx, shape, "ocean.eof")  # type: ignore[arg-type]
    return np.sqrt(np.clip(np.cos(np.deg2rad(lat)), 0.0, None))


MAX_EOF_TIME = 5000


def eof_partial(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Aggregate partial of the EOF Gram step: this block's ``A_b A_bᵀ``, flattened.

    Every task reads the whole time axis; when the planner also splits time, only the
    task whose block starts at time 0 contributes, so each cell is counted once. GPU
    tasks form the product on the device (:func:`minjiang.plugins.ocean.eof._gpu.gram`);
    the runtime copies it back for the combine, which runs on the host.
    """
    from minjiang.plugins.ocean.eof import gram_partial

    backend = _backend(ctx)
    x = _array(arrays["x"], backend)
    n = x.shape[0]
    if n > MAX_EOF_TIME:
        raise ContractError(
            f"ocean.eof: {n} time steps; the Gram matrix would be {n}×{n}. Use at most {MAX_EOF_TIME} steps "
            "(e.g. monthly means of daily data)"
        )
    if ctx.region.get("time", slice(0, n)).start != 0:
        return {"gram": np.zeros(n * n)}
    w = _eof_weights(arrays, params, ctx, x.shape[1:])
    if backend == "gpu":
        from minjiang.plugins.ocean.eof._gpu import gram

        return {"gram": gram(x, w, center=params.center).ravel()}
    return {"gram": gram_partial(x, w, center=params.center, backend=backend).ravel()}


def eof_combine(states: list[Mapping[str, np.ndarray]], params: Any) -> dict[str, np.ndarray]:
    """Aggregate combine: the Gram partials add (in part order: deterministic)."""
    total = np.zeros_like(np.asarray(states[0]["gram"], dtype=np.float64))
    for s in states:
        total += np.asarray(s["gram"], dtype=np.float64)
    return {"gram": total}


def eof_finalize(state: Mapping[str, np.ndarray], params: Any) -> dict[str, Any]:
    """Aggregate finalize: eigen-decomposition, as a long table (mode, time_index, ...)."""
    from minjiang.plugins.ocean.eof import solve

    g = np.asarray(state["gram"], dtype=np.float64)
    n = round(float(np.sqrt(g.size)))
    sol = solve(g.reshape(n, n), min(params.n_modes, n))
    k = sol["u"].shape[1]
    return {
        "modes": {
            "mode": np.repeat(np.arange(1, k + 1, dtype=np.int32), n),
            "time_index": np.tile(np.arange(n, dtype=np.int32), k),
            "u": sol["u"].T.reshape(-1),
            "sigma": np.repeat(sol["sigma"], n),
            "eigenvalue": np.repeat(sol["eigenvalues"], n),
            "variance_fraction": np.repeat(sol["variance_fraction"], n),
        }
    }


def _modes(table: Any, n_modes: int, n_time: int) -> dict[str, np.ndarray]:
    cols = {c: np.asarray(table.column(c).to_numpy()) for c in table.column_names}
    order = np.lexsort((cols["time_index"], cols["mode"]))
    cols = {c: v[order] for c, v in cols.items()}
    k = int(cols["mode"].max()) if cols["mode"].size else 0
    if k * n_time != cols["mode"].size:
        raise ContractError(
            f"ocean.eof: the modes table has {cols['mode'].size} rows, expected {k} modes × {n_time} times"
        )
    u = cols["u"].reshape(k, n_time).T
    first = np.arange(k) * n_time
    out = {
        "u": u,
        "sigma": cols["sigma"][first],
        "eigenvalues": cols["eigenvalue"][first],
        "variance_fraction": cols["variance_fraction"][first],
    }
    pad = n_modes - k  # fewer time steps than modes asked: pad with NaN
    if pad > 0:
        out = {
            name: np.concatenate([v, np.full((*v.shape[:-1], pad), np.nan)], axis=-1)
            for name, v in out.items()
        }
    return out


def eof_project(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """FullAxis(time) kernel of the EOF projection: EOFs of this block, and the modes.

    GPU tasks project on the device (:func:`minjiang.plugins.ocean.eof._gpu.project`);
    the modes table, and the PCs and spectra derived from it, stay on the host.
    """
    from minjiang.plugins.ocean.eof import project

    backend = _backend(ctx)
    x = _array(arrays["x"], backend)
    n = x.shape[0]
    m = _modes(arrays["modes"], params.n_modes, n)
    k = int(np.isfinite(m["sigma"]).sum())
    w = _eof_weights(arrays, params, ctx, x.shape[1:])
    if backend == "gpu":
        from minjiang.plugins.ocean.eof._gpu import project as project_array

        xp = _module(x)
        eofs = xp.full((params.n_modes, *x.shape[1:]), xp.nan, dtype=xp.float64)
        if k:
            eofs[:k] = project_array(x, w, m["u"][:, :k], m["sigma"][:k], center=params.center)
    else:
        eofs = np.full((params.n_modes, *x.shape[1:]), np.nan)
        eofs[:k] = project(x, w, m["u"][:, :k], m["sigma"][:k], center=params.center)
    return {
        "eofs": eofs,
        "pcs": (m["u"] * m["sigma"][None, :]).T,
        "variance_fraction": m["variance_fraction"],
        "eigenvalues": m["eigenvalues"],
    }
