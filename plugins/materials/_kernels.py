"""Task kernels of the materials operators (run on the workers)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from minjiang.core.errors import ContractError, ExecutionError
from minjiang.kernels import array_namespace, to_host


def _gpu(ctx: Any) -> bool:
    # GPU tasks receive CuPy arrays and keep the bulk on the device; small per-atom and
    # per-frame arrays (selections, cells) are copied to the host
    return getattr(ctx, "backend", "cpu") == "gpu"


# -- selections -----------------------------------------------------------------------------
def _labels(ctx: Any, name: str) -> list[str]:
    return list((ctx.attrs.get(name) or {}).get("labels") or [])


def select(sel: Any, arrays: Mapping[str, Any], ctx: Any, n_atoms: int, op: str) -> np.ndarray:
    """Atom indices matching a selection (every criterion given must hold)."""
    keep = np.ones(n_atoms, dtype=bool)
    for key, arr in (("types", "atom_type"), ("names", "atom_name")):
        wanted = getattr(sel, key)
        if wanted is None:
            continue
        labels = _labels(ctx, arr)
        missing = sorted(set(wanted) - set(labels))
        if missing:
            raise ContractError(
                f"{op}: no atom has {key} {missing!r}; the trajectory has {labels!r}"
            )
        codes = [labels.index(w) for w in wanted]
        keep &= np.isin(np.asarray(arrays[arr]), codes)
    if sel.indices is not None:
        idx = np.asarray(sel.indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= n_atoms):
            raise ContractError(f"{op}: atom indices must lie in [0, {n_atoms})")
        mask = np.zeros(n_atoms, dtype=bool)
        mask[idx] = True
        keep &= mask
    out = np.flatnonzero(keep)
    if out.size == 0:
        raise ContractError(f"{op}: a selection matches no atom; check its types, names or indices")
    return out


# -- materials.rdf --------------------------------------------------------------------------
def rdf_r_max(params: Any, cells: np.ndarray) -> float:
    """``r_max``, or half the smallest face distance over every frame's cell."""
    from minjiang.plugins.materials.rdf import face_distances

    if params.r_max is not None:
        return float(params.r_max)
    if not np.isfinite(cells).all():
        raise ContractError(
            "materials.rdf: a frame has no periodic cell; the radial distribution needs the box"
        )
    return float(min(face_distances(c).min() for c in cells) / 2)


def rdf_partial(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """Integer pair counts of one block of frames, with the per-frame constants."""
    from minjiang.plugins.materials.rdf import eligible_pairs, pair_histogram

    op = "materials.rdf"
    gpu = _gpu(ctx)
    pos = arrays["positions"] if gpu else np.asarray(arrays["positions"])
    all_cells = np.asarray(to_host(arrays["cell"]), dtype=np.float64)
    cells = all_cells[ctx.region["frame"]]
    r_max = rdf_r_max(params, all_cells)
    n = pos.shape[1]
    if n != ctx.sizes["atom"]:
        raise ExecutionError(f"{op}: a task got {n} of {ctx.sizes['atom']} atoms per frame")
    atoms = {
        k: to_host(arrays[k])
        for k in ("atom_type", "atom_name", "molecule")
        if arrays.get(k) is not None
    }
    ia = select(params.a, atoms, ctx, n, op)
    ib = select(params.b or params.a, atoms, ctx, n, op)
    mol = atoms["molecule"] if params.exclude_same_molecule else None
    try:
        counts = pair_histogram(
            pos,
            cells,
            ia,
            ib,
            r_min=params.r_min,
            r_max=r_max,
            nbins=params.bins,
            molecule=mol,
            backend="gpu" if gpu else None,
        )
    except ValueError as err:
        first = ctx.region["frame"].start
        raise ContractError(f"{op}: frames from {first}: {err}") from None
    volume = math.fsum(abs(float(np.linalg.det(c))) for c in cells)
    nb = params.bins
    return {
        "bin": np.arange(nb, dtype=np.int64),
        "count": counts,
        "frames": np.full(nb, pos.shape[0], dtype=np.int64),
        "pairs": np.full(nb, eligible_pairs(ia, ib, mol), dtype=np.int64),
        "n_a": np.full(nb, ia.size, dtype=np.int64),
        "n_b": np.full(nb, ib.size, dtype=np.int64),
        "volume_sum": np.full(nb, volume, dtype=np.float64),
        "r_max": np.full(nb, r_max, dtype=np.float64),
    }


def rdf_combine(parts: Sequence[Mapping[str, Any]], params: Any) -> dict[str, np.ndarray]:
    """Counts and frame numbers add as integers; the volume sums add once (fsum)."""
    parts = [{k: np.asarray(v) for k, v in p.items()} for p in parts]
    first = parts[0]
    for p in parts[1:]:
        for k in ("bin", "pairs", "n_a", "n_b", "r_max"):
            if not np.array_equal(p[k], first[k]):
                raise ExecutionError(f"materials.rdf: partial states disagree on {k!r}")
    nb = first["bin"].size
    return {
        "bin": first["bin"],
        "count": np.sum([p["count"] for p in parts], axis=0, dtype=np.int64),
        "frames": np.full(nb, sum(int(p["frames"][0]) for p in parts), dtype=np.int64),
        "pairs": first["pairs"],
        "n_a": first["n_a"],
        "n_b": first["n_b"],
        "volume_sum": np.full(nb, math.fsum(float(p["volume_sum"][0]) for p in parts)),
        "r_max": first["r_max"],
    }


def rdf_finalize(state: Mapping[str, Any], params: Any) -> dict[str, Any]:
    """The ``rdf`` table: g(r), n(r) and the numbers that normalise them."""
    from minjiang.plugins.materials.rdf import rdf_from_counts

    s = {k: np.asarray(v) for k, v in state.items()}
    edges = np.linspace(params.r_min, float(s["r_max"][0]), params.bins + 1)
    frames, pairs, n_a = int(s["frames"][0]), int(s["pairs"][0]), int(s["n_a"][0])
    volume_sum = float(s["volume_sum"][0])
    g, n = rdf_from_counts(
        s["count"], edges, frames=frames, pairs=pairs, volume_sum=volume_sum, n_a=n_a
    )
    nb = params.bins
    return {
        "rdf": {
            "r": 0.5 * (edges[1:] + edges[:-1]),
            "r_lo": edges[:-1],
            "r_hi": edges[1:],
            "count": s["count"].astype(np.int64),
            "g": g,
            "coordination": n,
            "frames": np.full(nb, frames, dtype=np.int64),
            "pairs": np.full(nb, pairs, dtype=np.int64),
            "n_a": np.full(nb, n_a, dtype=np.int64),
            "n_b": s["n_b"].astype(np.int64),
            "mean_volume": np.full(nb, volume_sum / frames),
        }
    }


# -- materials.msd --------------------------------------------------------------------------
def msd_atoms(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """FullAxis(frame) kernel: per-atom, per-component MSD of an atom block."""
    from minjiang.plugins.materials.msd import msd_per_atom, unwrap

    gpu = _gpu(ctx)
    x = arrays["positions"] if gpu else np.asarray(arrays["positions"], dtype=np.float64)
    wrapped = (ctx.attrs.get("positions") or {}).get("unwrapped") is not True
    if params.unwrap is True or (params.unwrap == "auto" and wrapped):
        x = unwrap(x, to_host(arrays["cell"]))
    # on the GPU the result stays a CuPy array; the runtime copies it back to write it
    return {"msd": msd_per_atom(x, backend="gpu" if gpu else None)}


def msd_species_partial(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """Sums over the block's atoms, per species and lag."""
    xp = array_namespace(arrays["msd"])  # CuPy in a GPU task: sums on the device
    m = xp.asarray(arrays["msd"], dtype=xp.float64).sum(axis=2)  # (lag, atom)
    lag0 = ctx.region["lag"].start
    lags = np.arange(lag0, lag0 + m.shape[0], dtype=np.int64)
    lag_time = np.asarray(ctx.coords["lag"], dtype=np.float64)
    first_component = ctx.region["xyz"].start == 0
    if "atom_type" in arrays and arrays["atom_type"] is not None:
        codes = to_host(arrays["atom_type"])
        labels = _labels(ctx, "atom_type")
    else:
        codes = np.zeros(m.shape[1], dtype=np.int64)
        labels = ["all"]
    rows: dict[str, list[Any]] = {k: [] for k in ("species", "lag", "lag_time", "sum", "atoms")}
    for code in np.unique(codes):
        cols = codes == code
        rows["species"] += [labels[int(code)]] * lags.size
        rows["lag"].append(lags)
        rows["lag_time"].append(lag_time)
        rows["sum"].append(to_host(m[:, xp.asarray(cols)].sum(axis=1)))
        rows["atoms"].append(np.full(lags.size, int(cols.sum()) if first_component else 0))
    return {
        "species": np.array(rows["species"], dtype=object),
        "lag": np.concatenate(rows["lag"]),
        "lag_time": np.concatenate(rows["lag_time"]),
        "sum": np.concatenate(rows["sum"]),
        "atoms": np.concatenate(rows["atoms"]).astype(np.int64),
    }


def msd_species_combine(parts: Sequence[Mapping[str, Any]], params: Any) -> dict[str, np.ndarray]:
    """Sums and atom counts per (species, lag); atom counts add as integers."""
    import pandas as pd

    df = pd.concat([pd.DataFrame({k: np.asarray(v) for k, v in p.items()}) for p in parts])
    out = (
        df.groupby(["species", "lag"], sort=True)
        .agg(lag_time=("lag_time", "first"), sum=("sum", "sum"), atoms=("atoms", "sum"))
        .reset_index()
    )
    return {
        "species": out["species"].to_numpy(dtype=object),
        "lag": out["lag"].to_numpy(np.int64),
        "lag_time": out["lag_time"].to_numpy(np.float64),
        "sum": out["sum"].to_numpy(np.float64),
        "atoms": out["atoms"].to_numpy(np.int64),
    }


def msd_species_finalize(state: Mapping[str, Any], params: Any) -> dict[str, Any]:
    """The ``msd`` table (and ``diffusion`` when a fit window is given)."""
    from minjiang.plugins.materials.msd import diffusion_fit

    s = {k: np.asarray(v) for k, v in state.items()}
    order = np.lexsort((s["lag"], s["species"].astype(str)))
    s = {k: v[order] for k, v in s.items()}
    msd = s["sum"] / np.maximum(s["atoms"], 1)
    out: dict[str, Any] = {
        "msd": {
            "species": s["species"].astype(str),
            "lag": s["lag"],
            "lag_time": s["lag_time"],
            "msd": msd,
            "atoms": s["atoms"],
        }
    }
    if params.fit is not None:
        rows: dict[str, list[Any]] = {
            k: [] for k in ("species", "D", "slope", "intercept", "fit_t0", "fit_t1", "points")
        }
        for sp in sorted(set(s["species"].astype(str))):
            sel = s["species"].astype(str) == sp
            window = params.fit
            if window == "auto":
                longest = float(s["lag_time"][sel].max())
                window = (0.1 * longest, 0.5 * longest)
            try:
                fit = diffusion_fit(s["lag_time"][sel], msd[sel], window)
            except ValueError as err:
                raise ContractError(f"materials.msd: {err}") from None
            rows["species"].append(sp)
            rows["D"].append(fit["D"])
            rows["slope"].append(fit["slope"])
            rows["intercept"].append(fit["intercept"])
            rows["fit_t0"].append(float(window[0]))
            rows["fit_t1"].append(float(window[1]))
            rows["points"].append(fit["points"])
        out["diffusion"] = {k: np.asarray(v) for k, v in rows.items()}
    return out


# -- materials.two_point ----------------------------------------------------------------------
def _indicator(x: Any, phase: int | None) -> Any:
    xp = array_namespace(x)
    if phase is None:
        return xp.isfinite(x) & (x != 0) if x.dtype.kind == "f" else x != 0
    return x == phase


def two_point_partial(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """Pair counts per lag vector within one block (int64), and the block's phase voxels."""
    from minjiang.plugins.materials._operators import two_point_spacing
    from minjiang.plugins.materials.twopoint import lag_box, pair_counts

    gpu = _gpu(ctx)
    x = arrays["image"] if gpu else np.asarray(arrays["image"])
    spacing = two_point_spacing(params, dict(ctx.attrs.get("image") or {}), x.ndim)
    shape = tuple(int(ctx.sizes[d]) for d in ctx.dims)
    lags = lag_box(shape, spacing, params.r_max, params.periodic)
    ind = _indicator(x, params.phase)
    # pairs are counted within each storage chunk (a tile), whatever blocks the planner
    # gives a task: the estimate does not depend on how tasks are sized
    origin = [ctx.region[d].start for d in ctx.dims]
    if any(origin[i] % params.tile[i] for i in range(ind.ndim)):
        raise ExecutionError("materials.two_point: a task block is not aligned to the chunks")
    starts = [range(0, ind.shape[i], params.tile[i]) for i in range(ind.ndim)]
    num = overlap = None
    import itertools

    for corner in itertools.product(*starts):
        tile = ind[tuple(slice(c, c + t) for c, t in zip(corner, params.tile, strict=True))]
        a, b = pair_counts(tile, lags, periodic=params.periodic, backend="gpu" if gpu else None)
        num = a if num is None else num + a
        overlap = b if overlap is None else overlap + b
    assert num is not None and overlap is not None
    n = num.size
    lag3 = list(lags) + [0] * (3 - len(lags))
    sp3 = list(spacing) + [0.0] * (3 - len(spacing))
    return {
        "lag": np.arange(n, dtype=np.int64),
        "num": num.ravel(),
        "overlap": overlap.ravel(),
        "phase_voxels": np.full(n, int(ind.sum()), dtype=np.int64),
        "voxels": np.full(n, int(ind.size), dtype=np.int64),
        "ndim": np.full(n, x.ndim, dtype=np.int64),
        **{f"lag{i}": np.full(n, lag3[i], dtype=np.int64) for i in range(3)},
        **{f"spacing{i}": np.full(n, sp3[i], dtype=np.float64) for i in range(3)},
    }


def two_point_combine(parts: Sequence[Mapping[str, Any]], params: Any) -> dict[str, np.ndarray]:
    """Pair counts and voxel counts add as integers."""
    parts = [{k: np.asarray(v) for k, v in p.items()} for p in parts]
    first = parts[0]
    out = dict(first)
    for k in ("num", "overlap", "phase_voxels", "voxels"):
        out[k] = np.sum([p[k] for p in parts], axis=0, dtype=np.int64)
    return out


def two_point_finalize(state: Mapping[str, Any], params: Any) -> dict[str, Any]:
    """The ``s2`` table: S2 per distance bin, averaged over the lag vectors in it."""
    from minjiang.plugins.materials.twopoint import radial_average

    s = {k: np.asarray(v) for k, v in state.items()}
    nd = int(s["ndim"][0])
    lags = [int(s[f"lag{i}"][0]) for i in range(nd)]
    spacing = [float(s[f"spacing{i}"][0]) for i in range(nd)]
    shape = tuple(2 * m + 1 for m in lags)
    order = np.argsort(s["lag"])
    num = s["num"][order].reshape(shape)
    overlap = s["overlap"][order].reshape(shape)
    edges = np.linspace(0.0, params.r_max, params.bins + 1)
    s2, vectors = radial_average(num, overlap, spacing, edges)
    nb = params.bins
    return {
        "s2": {
            "r": 0.5 * (edges[1:] + edges[:-1]),
            "r_lo": edges[:-1],
            "r_hi": edges[1:],
            "s2": s2,
            "vectors": vectors,
            "phase_fraction": np.full(nb, s["phase_voxels"][0] / s["voxels"][0]),
        }
    }


# -- materials.local_thickness / materials.pore_sizes -------------------------------------------
def local_thickness(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """Map kernel: the block's local thickness from the block and its halo."""
    from minjiang.plugins.materials._operators import thickness_halo_voxels
    from minjiang.plugins.materials.thickness import local_thickness_block

    x = np.asarray(arrays["image"])
    m, _ = thickness_halo_voxels(params, dict(ctx.attrs.get("image") or {}), x.ndim)
    voxel = float(
        (params.spacing if params.spacing is not None else ctx.attrs["image"]["spacing"])[0]
    )
    halo = tuple(tuple(ctx.halo.get(d, (0, 0))) for d in ctx.dims)
    real = np.ones(x.shape, dtype=bool)
    for ax, d in enumerate(ctx.dims):
        lo = ctx.region[d].start - halo[ax][0]
        idx = np.arange(lo, lo + x.shape[ax])
        shape = [1] * x.ndim
        shape[ax] = x.shape[ax]
        real &= ((idx >= 0) & (idx < ctx.sizes[d])).reshape(shape)
    try:
        lt = local_thickness_block(_indicator(x, params.phase), real, halo, m)
    except ValueError as err:
        raise ContractError(
            f"materials.local_thickness: block at {ctx.origin}: {err} (max_radius in the units "
            "of the voxel size)"
        ) from None
    return {"local_thickness": (lt * voxel).astype(np.float32)}


def _radius_counts(lt: np.ndarray, voxel: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer local-thickness radii (voxels) present in ``lt`` and their voxel counts."""
    k = np.rint(lt / voxel).astype(np.int64).ravel()
    counts = np.bincount(k[k > 0])
    radius = np.flatnonzero(counts)
    return radius.astype(np.int64), counts[radius].astype(np.int64)


def pore_sizes_partial(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """Voxel counts per local-thickness radius (integer radii in voxels) in one block."""
    lt = np.asarray(arrays["local_thickness"], dtype=np.float64)
    voxel = float((ctx.attrs.get("local_thickness") or {}).get("spacing", [1.0])[0])
    radius, counts = _radius_counts(lt, voxel)
    n = radius.size + 1  # row 0 carries the block's voxel count
    return {
        "radius_voxels": np.concatenate([[0], radius]).astype(np.int64),
        "count": np.concatenate([[lt.size], counts]).astype(np.int64),
        "voxel": np.full(n, voxel),
    }


def pore_sizes_combine(parts: Sequence[Mapping[str, Any]], params: Any) -> dict[str, np.ndarray]:
    """Counts per radius add as integers."""
    r = np.concatenate([np.asarray(p["radius_voxels"]) for p in parts])
    c = np.concatenate([np.asarray(p["count"]) for p in parts])
    voxel = float(np.asarray(parts[0]["voxel"])[0])
    uniq, inv = np.unique(r, return_inverse=True)
    total = np.zeros(uniq.size, dtype=np.int64)
    np.add.at(total, inv, c)
    return {"radius_voxels": uniq, "count": total, "voxel": np.full(uniq.size, voxel)}


def _pore_size_tables(
    radius_voxels: np.ndarray, counts: np.ndarray, voxels: int, voxel: float
) -> dict[str, Any]:
    # radius_voxels > 0, ascending, with their voxel counts
    pores = np.asarray(counts, dtype=np.int64)
    pore_voxels = int(pores.sum())
    radius = np.asarray(radius_voxels, dtype=np.int64) * voxel
    frac = pores / pore_voxels if pore_voxels else np.zeros(pores.size)
    return {
        "porosity": {
            "porosity": np.array([pore_voxels / voxels if voxels else np.nan]),
            "pore_voxels": np.array([pore_voxels], dtype=np.int64),
            "voxels": np.array([voxels], dtype=np.int64),
        },
        "pore_sizes": {
            "radius": radius,
            "diameter": 2 * radius,
            "voxels": pores,
            "volume_fraction": frac,
            # fraction of the pore volume in pores at least this large
            "cumulative_fraction": np.cumsum(frac[::-1])[::-1],
        },
    }


def pore_sizes_finalize(state: Mapping[str, Any], params: Any) -> dict[str, Any]:
    """The ``porosity`` table (one row) and the ``pore_sizes`` table (one row per radius)."""
    r = np.asarray(state["radius_voxels"], dtype=np.int64)
    c = np.asarray(state["count"], dtype=np.int64)
    voxel = float(np.asarray(state["voxel"])[0])
    return _pore_size_tables(r[r > 0], c[r > 0], int(c[r == 0].sum()), voxel)


# -- materials.percolation ------------------------------------------------------------------------
def pore_labels(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, Any]:
    """Label one block's pores; each label is 1 + the global C-order index of its first voxel."""
    from minjiang.kernels.label import label_local

    ind = _indicator(np.asarray(arrays["image"]), params.phase)
    labels, n = label_local(ind, _connectivity(params, ind.ndim))
    out = np.zeros(labels.shape, dtype=np.int64)
    if n:
        flat = labels.ravel()
        idx = np.flatnonzero(flat)
        lab = flat[idx]
        # labels are numbered by first appearance in C order
        new = np.concatenate([[True], lab[1:] > np.maximum.accumulate(lab)[:-1]])
        first = np.full(n + 1, -1, dtype=np.int64)
        first[lab[new]] = idx[new]
        local = np.unravel_index(first[1:], labels.shape)
        shape = tuple(int(ctx.sizes[d]) for d in ctx.dims)
        glob = np.ravel_multi_index(
            tuple(a + o for a, o in zip(local, ctx.origin, strict=True)), shape
        )
        lut = np.zeros(n + 1, dtype=np.int64)
        lut[1:] = glob + 1
        out = lut[labels]
    return {"labels": out}


def _connectivity(params: Any, ndim: int) -> int:
    if params.connectivity is not None:
        return int(params.connectivity)
    return 4 if ndim == 2 else 6


# row kinds of a percolation (and porosity) state (one table: equal-length columns);
# _RADIUS rows (porosity only) hold a local-thickness radius in voxels and its voxel count
_PAIR, _COUNT, _INLET, _OUTLET, _VOXELS, _RADIUS = 0, 1, 2, 3, 4, 5


def _crop(padded: np.ndarray, halo: tuple[tuple[int, int], ...]) -> np.ndarray:
    return padded[tuple(slice(lo, padded.shape[i] - hi) for i, (lo, hi) in enumerate(halo))]


def percolation_partial(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """Face pairs, voxels per label, labels on the inlet and outlet faces, the block's voxels."""
    return _percolation_rows(np.asarray(arrays["labels"]), params, ctx)


def _percolation_rows(padded: np.ndarray, params: Any, ctx: Any) -> dict[str, np.ndarray]:
    from minjiang.kernels.label import face_equivalences

    halo = tuple(tuple(ctx.halo.get(d, (0, 0))) for d in ctx.dims)
    pairs = face_equivalences(padded, _connectivity(params, padded.ndim), halo)
    inner = _crop(padded, halo)
    labels, counts = np.unique(inner[inner > 0], return_counts=True)
    ax = ctx.dims.index(params.axis)
    region = ctx.region[params.axis]
    rows = [
        (np.full(len(pairs), _PAIR), pairs[:, 0], pairs[:, 1]),
        (np.full(labels.size, _COUNT), labels, counts),
    ]
    if region.start == 0:
        face = np.unique(np.take(inner, 0, axis=ax))
        face = face[face > 0]
        rows.append((np.full(face.size, _INLET), face, np.zeros(face.size)))
    if region.stop == ctx.sizes[params.axis]:
        face = np.unique(np.take(inner, inner.shape[ax] - 1, axis=ax))
        face = face[face > 0]
        rows.append((np.full(face.size, _OUTLET), face, np.zeros(face.size)))
    rows.append((np.array([_VOXELS]), np.array([0]), np.array([inner.size])))
    return {
        "kind": np.concatenate([r[0] for r in rows]).astype(np.int64),
        "a": np.concatenate([r[1] for r in rows]).astype(np.int64),
        "b": np.concatenate([r[2] for r in rows]).astype(np.int64),
    }


def percolation_combine(parts: Sequence[Mapping[str, Any]], params: Any) -> dict[str, np.ndarray]:
    """Rows of all parts; counts per label and voxels summed as integers, pairs kept unique."""
    kind = np.concatenate([np.asarray(p["kind"], dtype=np.int64) for p in parts])
    a = np.concatenate([np.asarray(p["a"], dtype=np.int64) for p in parts])
    b = np.concatenate([np.asarray(p["b"], dtype=np.int64) for p in parts])
    out_k, out_a, out_b = [], [], []
    for k in (_PAIR, _INLET, _OUTLET):
        sel = kind == k
        uniq = (
            np.unique(np.stack([a[sel], b[sel]], axis=1), axis=0)
            if sel.any()
            else np.zeros((0, 2), np.int64)
        )
        out_k.append(np.full(len(uniq), k))
        out_a.append(uniq[:, 0])
        out_b.append(uniq[:, 1])
    for k in (_COUNT, _RADIUS):
        sel = kind == k
        lab, inv = np.unique(a[sel], return_inverse=True)
        tot = np.zeros(lab.size, dtype=np.int64)
        np.add.at(tot, inv, b[sel])
        out_k.append(np.full(lab.size, k))
        out_a.append(lab)
        out_b.append(tot)
    out_k.append(np.array([_VOXELS]))
    out_a.append(np.array([0]))
    out_b.append(np.array([int(b[kind == _VOXELS].sum())]))
    return {
        "kind": np.concatenate(out_k).astype(np.int64),
        "a": np.concatenate(out_a).astype(np.int64),
        "b": np.concatenate(out_b).astype(np.int64),
    }


def percolation_finalize(state: Mapping[str, Any], params: Any) -> dict[str, Any]:
    """Join clusters across blocks (union-find) and keep those on both faces."""
    s = percolation_combine([state], params)
    return {"percolation": _percolation_table(s["kind"], s["a"], s["b"], params.axis)}


def _percolation_table(kind: np.ndarray, a: np.ndarray, b: np.ndarray, axis: str) -> dict[str, Any]:
    from minjiang.kernels.label import union_find_roots

    cnt = kind == _COUNT
    labels, roots = union_find_roots(np.stack([a[kind == _PAIR], b[kind == _PAIR]], axis=1), a[cnt])
    root_of = dict(zip(labels.tolist(), roots.tolist(), strict=True))
    inlet = {root_of[x] for x in a[kind == _INLET].tolist()}
    outlet = {root_of[x] for x in a[kind == _OUTLET].tolist()}
    through = inlet & outlet
    lab_cnt = dict(zip(a[cnt].tolist(), b[cnt].tolist(), strict=True))
    pore = int(sum(lab_cnt.values()))
    perc = int(sum(c for lab, c in lab_cnt.items() if root_of[lab] in through))
    voxels = int(b[kind == _VOXELS].sum())
    return {
        "axis": np.array([axis], dtype=object),
        "porosity": np.array([pore / voxels if voxels else np.nan]),
        "percolating_porosity": np.array([perc / voxels if voxels else np.nan]),
        "clusters": np.array([len(set(root_of.values()))], dtype=np.int64),
        "percolating_clusters": np.array([len(through)], dtype=np.int64),
        "pore_voxels": np.array([pore], dtype=np.int64),
        "percolating_voxels": np.array([perc], dtype=np.int64),
        "voxels": np.array([voxels], dtype=np.int64),
    }


# -- materials.porosity ------------------------------------------------------------------------
def porosity_partial(arrays: Mapping[str, Any], params: Any, ctx: Any) -> dict[str, np.ndarray]:
    """One block's percolation rows (labels with a halo of 1) and its voxels per
    local-thickness radius (``_RADIUS`` rows), in one state."""
    rows = _percolation_rows(np.asarray(arrays["labels"]), params, ctx)
    halo = tuple(tuple(ctx.halo.get(d, (0, 0))) for d in ctx.dims)
    lt = _crop(np.asarray(arrays["local_thickness"], dtype=np.float64), halo)
    radius, counts = _radius_counts(lt, params.voxel)
    return {
        "kind": np.concatenate([rows["kind"], np.full(radius.size, _RADIUS)]).astype(np.int64),
        "a": np.concatenate([rows["a"], radius]).astype(np.int64),
        "b": np.concatenate([rows["b"], counts]).astype(np.int64),
    }


def porosity_finalize(state: Mapping[str, Any], params: Any) -> dict[str, Any]:
    """The ``porosity``, ``pore_sizes`` and ``percolation`` tables from one merged state."""
    s = percolation_combine([state], params)
    kind, a, b = s["kind"], s["a"], s["b"]
    voxels = int(b[kind == _VOXELS].sum())
    rad = kind == _RADIUS
    out = _pore_size_tables(a[rad], b[rad], voxels, params.voxel)
    perc = _percolation_table(kind, a, b, params.axis)
    if int(perc["pore_voxels"][0]) != int(out["porosity"]["pore_voxels"][0]):
        raise ExecutionError(
            "materials.porosity: the labelled pores and the local thickness disagree on the "
            f"pore voxels ({int(perc['pore_voxels'][0])} and "
            f"{int(out['porosity']['pore_voxels'][0])})"
        )
    out["percolation"] = perc
    return out
