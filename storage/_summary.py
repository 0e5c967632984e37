"""Data-quality summaries: what an array holds, gathered block by block as it is
written and kept in the catalog record (``schema.arrays.<name>.summary``).

A block's partial summary (:func:`block_summary`) is mergeable
(:func:`merge_summaries`), so tasks and ingest report one per block written and the
commit folds them; :func:`finish_summary` gives the recorded form: cells, valid cells,
NaN (missing: fill values are decoded to NaN when stored) and the valid fraction, the
value range and the mean of the valid values. Times are summarised as ISO strings
(range only).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "block_summary",
    "finish_summary",
    "merge_summaries",
    "values_summary",
    "with_summaries",
]

#: cells summarised at a time (bounds the temporaries of a block's summary)
_SLAB = 1 << 20
#: floating slabs up to this many cells are summarised with NumPy, not the kernel
_SMALL = 1 << 16


def block_summary(data: Any) -> dict[str, Any]:
    """The mergeable summary of one block of values (host array)."""
    a = np.asarray(data)
    n = int(a.size)
    if a.dtype.kind == "M":
        ok = ~np.isnat(a)
        k = int(ok.sum())
        if k == 0:
            return {"cells": n, "nan": n}
        v = a[ok]
        lo, hi = np.datetime_as_string(np.stack([v.min(), v.max()]), unit="auto")
        return {"cells": n, "nan": n - k, "tmin": str(lo), "tmax": str(hi)}
    if a.dtype.kind == "O" and n:  # cftime dates of a non-standard calendar
        try:
            return {"cells": n, "nan": 0, "tmin": str(a.min()), "tmax": str(a.max())}
        except TypeError:  # not orderable: counted only
            return {"cells": n, "nan": 0}
    if a.dtype.kind not in "fiub" or n == 0:
        return {"cells": n, "nan": 0}
    # slab by slab along the first axis, so that the temporaries stay near _SLAB cells
    # whatever the block's size (a task's memory is what its operator's formula says);
    # floating slabs take one numba pass (NaN count, min, max, float64 sum: NumPy's
    # NaN-skipping reductions make four passes and a copy), copying only a slab that is
    # not contiguous; integers of up to 32 bits take one vectorised numba pass, wider
    # ones and booleans NumPy's own reductions
    if a.ndim == 0:
        a = a.reshape(1)
    step = max(1, _SLAB // max(1, n // a.shape[0]))
    nan, lo, hi, total = 0, math.inf, -math.inf, 0.0
    for i in range(0, a.shape[0], step):
        slab = a[i : i + step]
        if slab.dtype.kind == "f" and slab.size <= _SMALL:
            # a coordinate, say: NumPy's passes cost less than loading the kernel
            # (importing numba and its cached code: over a second in a fresh driver)
            ok = slab[~np.isnan(slab)]
            nan += slab.size - ok.size
            if ok.size:
                lo, hi = min(lo, float(ok.min())), max(hi, float(ok.max()))
                total += float(np.add.reduce(ok.astype(np.float64).reshape(-1)))
        elif slab.dtype.kind == "f":
            from minjiang.storage._summary_kernel import summarise

            if slab.dtype.itemsize < 4:  # float16: numba has no half type
                slab = slab.astype(np.float32)
            k, slo, shi, ssum = summarise(np.ascontiguousarray(slab).reshape(-1))
            nan += k
            lo, hi, total = min(lo, slo), max(hi, shi), total + ssum
        elif slab.dtype.kind in "iu" and slab.dtype.itemsize <= 4 and slab.size > _SMALL:
            # one vectorised pass with an exact int64 sum (no block of 32-bit values
            # is large enough to overflow it), which NumPy's float64 sum equals while
            # the sum is below 2**53
            from minjiang.storage._summary_kernel import summarise_small_ints

            ilo, ihi, isum = summarise_small_ints(np.ascontiguousarray(slab).reshape(-1))
            lo, hi, total = min(lo, float(ilo)), max(hi, float(ihi)), total + float(isum)
        else:
            lo = min(lo, float(slab.min()))
            hi = max(hi, float(slab.max()))
            total += float(slab.sum(dtype=np.float64))
    if nan == n:
        return {"cells": n, "nan": n}
    return {"cells": n, "nan": nan, "min": lo, "max": hi, "sum": total}


def merge_summaries(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Fold block summaries into one (still mergeable)."""
    out: dict[str, Any] = {"cells": 0, "nan": 0}
    for p in parts:
        out["cells"] += int(p.get("cells", 0))
        out["nan"] += int(p.get("nan", 0))
        for key, pick in (("min", min), ("max", max), ("tmin", min), ("tmax", max)):
            if key in p:
                out[key] = pick(out[key], p[key]) if key in out else p[key]
        if "sum" in p:
            out["sum"] = out.get("sum", 0.0) + float(p["sum"])
    return out


def finish_summary(s: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded summary: cells, valid, nan, valid_fraction, min, max, mean."""
    cells, nan = int(s.get("cells", 0)), int(s.get("nan", 0))
    valid = cells - nan
    out: dict[str, Any] = {
        "cells": cells,
        "valid": valid,
        "nan": nan,
        "valid_fraction": round(valid / cells, 6) if cells else None,
    }
    if "tmin" in s:
        out.update(min=s["tmin"], max=s["tmax"])
    elif "min" in s:
        out.update(min=_finite(s["min"]), max=_finite(s["max"]))
        out["mean"] = _finite(s["sum"] / valid) if valid else None
    return out


def values_summary(values: Any) -> dict[str, Any]:
    """The recorded summary of values held whole (a coordinate)."""
    return finish_summary(block_summary(values))


def _finite(x: float) -> float | str:
    # JSON has no infinities: an infinite value in the data is named, not dropped
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def with_summaries(schema: Mapping[str, Any], summaries: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` (:func:`~minjiang.storage.dataset_schema`) with each array's and
    coordinate's recorded summary (``summaries``: name -> :func:`finish_summary` form)
    under its ``summary`` key."""
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in schema.items()}
    for section in ("arrays", "coords"):
        entries = {n: dict(e) for n, e in (schema.get(section) or {}).items()}
        for name, entry in entries.items():
            if name in summaries:
                entry["summary"] = dict(summaries[name])
        out[section] = entries
    return out
