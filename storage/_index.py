"""The catalog's search index: one small entry per record, written when it is published.

``catalog/index/<id>.json`` holds what a search filters on, taken from the record at
commit time (never from the dataset's data):

* ``names``, ``domain``, ``kind``, ``hidden``, ``created``;
* ``operator`` (or reader) and ``plugin`` (its registered name, module, package and
  version);
* ``variables``: each array's name, CF ``standard_name``, ``long_name`` and ``units``;
* ``bbox``: ``[west, south, east, north]`` in degrees, from ``lat``/``lon``
  coordinates (by name or CF standard name) or from a raster's ``crs`` and
  ``transform`` (its corners transformed with pyproj);
* ``time``: ``[start, end]`` of the datetime coordinate, ISO strings;
* ``inputs``: the ids of the datasets it was computed from (lineage walks use them).

A record published by an older version (or by a writer killed between the record and
its entry) has no entry; :func:`entries` builds one from the record instead.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from minjiang.errors import KeyNotFoundError
from minjiang.storage._store import Store

if TYPE_CHECKING:
    from minjiang.storage._catalog import Record

__all__ = ["INDEX", "CatalogQuery", "entries", "index_entry", "index_key"]

INDEX = "catalog/index"

_LAT = ("lat", "latitude", "nav_lat")
_LON = ("lon", "longitude", "nav_lon")


def index_key(dataset_id: str) -> str:
    return f"{INDEX}/{dataset_id}.json"


def index_entry(record: Record) -> dict[str, Any]:
    """The search index entry of a record (JSON-safe)."""
    schema = record.schema_
    arrays: Mapping[str, Any] = schema.get("arrays") or {}
    coords: Mapping[str, Any] = schema.get("coords") or {}
    variables = [
        {
            "name": name,
            "standard_name": str(a.get("attrs", {}).get("standard_name", "") or ""),
            "long_name": str(a.get("attrs", {}).get("long_name", "") or ""),
            "units": str(a.get("attrs", {}).get("units", "") or ""),
        }
        for name, a in sorted(arrays.items())
    ]
    producer = record.producer
    return {
        "id": record.id,
        "names": list(record.names),
        "domain": record.domain,
        "kind": record.kind,
        "hidden": record.hidden,
        "created": record.created,
        "operator": producer.get("operator") or producer.get("reader") or "",
        "plugin": dict(producer.get("plugin") or {}),
        "variables": variables,
        "bbox": _bbox(arrays, coords),
        "time": _time_range(coords),
        "inputs": sorted(set(record.inputs.values())),
    }


def _coord_range(coords: Mapping[str, Any], names: Sequence[str], std: str) -> list[float] | None:
    for name, c in coords.items():
        attrs = c.get("attrs", {})
        if name.lower() in names or attrs.get("standard_name") == std:
            s = c.get("summary") or {}
            if isinstance(s.get("min"), int | float) and isinstance(s.get("max"), int | float):
                return [float(s["min"]), float(s["max"])]
    return None


def _bbox(arrays: Mapping[str, Any], coords: Mapping[str, Any]) -> list[float] | None:
    lat = _coord_range(coords, _LAT, "latitude")
    lon = _coord_range(coords, _LON, "longitude")
    if lat is not None and lon is not None:
        west, east = lon
        if east > 180:  # 0..360 longitudes
            west, east = (west - 360, east - 360) if west >= 180 else (-180.0, 180.0)
        return [west, lat[0], east, lat[1]]
    for a in arrays.values():
        attrs = a.get("attrs", {})
        if attrs.get("transform") and attrs.get("crs") and len(a.get("shape", ())) >= 2:
            return _raster_bbox(str(attrs["crs"]), attrs["transform"], a["shape"][-2:])
    return None


def _raster_bbox(crs: str, t: Sequence[float], shape: Sequence[int]) -> list[float] | None:
    a, b, c, d, e, f = (float(v) for v in t[:6])
    rows, cols = int(shape[0]), int(shape[1])
    corners = [(c + a * i + b * j, f + d * i + e * j) for i in (0, cols) for j in (0, rows)]
    try:
        from pyproj import CRS, Transformer

        src = CRS.from_user_input(crs)
        if src.is_geographic:
            xs, ys = zip(*corners, strict=True)
        else:
            tr = Transformer.from_crs(src, "EPSG:4326", always_xy=True)
            # edges sampled, not only corners: a projected square bulges in lon/lat
            pts = [
                (c + a * i + b * j, f + d * i + e * j)
                for i in (0, cols / 4, cols / 2, 3 * cols / 4, cols)
                for j in (0, rows / 4, rows / 2, 3 * rows / 4, rows)
            ]
            xs, ys = tr.transform([p[0] for p in pts], [p[1] for p in pts])
    except Exception:  # no pyproj, or a CRS it cannot read: no box rather than a wrong one
        return None
    return [float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))]


def _time_range(coords: Mapping[str, Any]) -> list[str] | None:
    for c in coords.values():
        s = c.get("summary") or {}
        if isinstance(s.get("min"), str) and isinstance(s.get("max"), str):
            return [s["min"], s["max"]]
    return None


def entries(
    store: Store, record_ids: Iterable[str], load: Callable[[str], Record | None]
) -> list[dict[str, Any]]:
    """The index entries of the published records ``record_ids``: read from the index
    (one small document each, never a dataset), or built from the record (``load``)
    where the index has none."""
    indexed = {
        k[len(INDEX) + 1 : -len(".json")]
        for k in store.list(INDEX)
        if k.endswith(".json") and k.count("/") == INDEX.count("/") + 1
    }
    out = []
    for rid in record_ids:
        if rid in indexed:
            try:
                out.append(json.loads(store.read_bytes(index_key(rid))))
                continue
            except (KeyNotFoundError, ValueError):  # removed meanwhile, or damaged
                pass
        record = load(rid)
        if record is not None:
            out.append(index_entry(record))
    return out


def _when(text: str) -> _dt.datetime:
    """An ISO date or time (a date alone is its midnight), naive UTC."""
    t = text.strip().replace("Z", "")
    if "." in t:  # numpy gives nanoseconds; datetime takes microseconds
        head, frac = t.split(".", 1)
        t = f"{head}.{frac[:6]}"
    when = _dt.datetime.fromisoformat(t)
    return when.replace(tzinfo=None)


@dataclasses.dataclass(frozen=True)
class CatalogQuery:
    """What a catalog search asks; every given field must match (see
    :meth:`~minjiang.storage.Catalog.search`)."""

    text: str = ""
    domain: str | None = None
    variable: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    start: str | None = None
    end: str | None = None
    operator: str | None = None
    producer: str | None = None
    include_hidden: bool = False

    def __post_init__(self) -> None:
        if self.bbox is not None:
            w, s, e, n = self.bbox
            if not (-90 <= s <= n <= 90 and w <= e):
                raise ValueError(
                    f"bbox {list(self.bbox)!r} is not [west, south, east, north] in degrees "
                    "with south <= north and west <= east"
                )
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                try:
                    _when(value)
                except ValueError:
                    raise ValueError(
                        f"{name} {value!r} is not an ISO date or time (e.g. 2020-06-01)"
                    ) from None

    def matches(self, entry: Mapping[str, Any], pointed: Sequence[str] = ()) -> bool:
        if entry.get("hidden") and not self.include_hidden:
            return False
        if self.domain is not None and entry.get("domain") != self.domain:
            return False
        if self.operator is not None and entry.get("operator") != self.operator:
            return False
        if self.producer is not None:
            plugin = entry.get("plugin") or {}
            if self.producer not in {plugin.get(k) for k in ("name", "module", "package")}:
                return False
        variables = entry.get("variables") or []
        if self.variable is not None:
            want = self.variable.lower()
            if not any(
                want in (v.get("name", "").lower(), v.get("standard_name", "").lower())
                for v in variables
            ):
                return False
        if self.bbox is not None:
            box = entry.get("bbox")
            if box is None:
                return False
            w, s, e, n = self.bbox
            if box[0] > e or box[2] < w or box[1] > n or box[3] < s:
                return False
        if self.start is not None or self.end is not None:
            span = entry.get("time")
            if span is None:
                return False
            if self.start is not None and _when(span[1]) < _when(self.start):
                return False
            if self.end is not None and _when(span[0]) > _when(self.end):
                return False
        if self.text:
            needle = self.text.lower().strip()
            hay = [
                *entry.get("names", []),
                *pointed,
                entry.get("operator", ""),
                entry.get("domain", ""),
                entry.get("id", ""),
                *(v.get("name", "") for v in variables),
                *(v.get("standard_name", "") for v in variables),
                *(v.get("long_name", "") for v in variables),
            ]
            if not any(needle in str(h).lower() for h in hay):
                return False
        return True
