"""What the web catalog shows and serves, without the web framework: search filters,
dataset pages, the lineage graph, quicklooks, table and array-subset downloads.

Every name that reaches the store (dataset ids, array, table, pipeline and file names)
is checked with the storage name rules first, and every key is built from checked
segments under a fixed folder, so no request can read outside the store. Nothing here
writes to the store.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import tempfile
import zipfile
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape
from minjiang.errors import DatasetNotFoundError, KeyNotFoundError, ParameterError
from minjiang.storage import validate_segment

if TYPE_CHECKING:
    import pyarrow as pa
    import xarray as xr
    from minjiang.storage import Catalog, Record

__all__ = [
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "DownloadTooLargeError",
    "SearchForm",
    "array_subset",
    "dataset_detail",
    "dataset_row",
    "lineage_json",
    "lineage_svg",
    "parse_region",
    "quicklooks",
    "read_quicklook",
    "size_text",
    "table_download",
]

MiB = 1 << 20
DEFAULT_MAX_DOWNLOAD_BYTES = 256 * MiB
REPORTS = "reports"
LINEAGE_DEPTH = 3  # hops drawn each way from a dataset on its page
LINEAGE_COLUMN = 20  # boxes drawn per column of the graph; the rest are counted


class DownloadTooLargeError(ParameterError):
    """A download asks for more values than the server's download limit allows."""


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


@dataclasses.dataclass(frozen=True)
class SearchForm:
    """The search filters of the catalog page and ``/api/datasets`` (empty means unset).

    ``bbox`` is ``"west,south,east,north"`` in degrees; ``ancestor`` / ``descendant``
    are dataset ids or names (only what that dataset was computed from / what was
    derived from it); ``hidden`` includes hidden intermediates.
    """

    text: str = ""
    domain: str | None = None
    variable: str | None = None
    bbox: str | None = None
    start: str | None = None
    end: str | None = None
    operator: str | None = None
    producer: str | None = None
    ancestor: str | None = None
    descendant: str | None = None
    hidden: bool = False

    @classmethod
    def of(cls, **given: Any) -> SearchForm:
        """A form from request values, blanks dropped and every value length-checked."""
        clean: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            value = given.get(field.name)
            if field.name == "hidden":
                clean["hidden"] = bool(value)
                continue
            if value is not None and len(str(value)) > 200:
                raise ParameterError(
                    f"search field {field.name!r} is {len(str(value))} characters long; "
                    "the limit is 200"
                )
            text = _blank(value)
            clean[field.name] = (text or "") if field.name == "text" else text
        return cls(**clean)

    def bbox_tuple(self) -> tuple[float, float, float, float] | None:
        if self.bbox is None:
            return None
        try:
            box = tuple(float(v) for v in self.bbox.split(","))
        except ValueError:
            box = ()
        if len(box) != 4 or not all(math.isfinite(v) for v in box):
            raise ParameterError(
                f"bbox {self.bbox!r} must be four numbers west,south,east,north in degrees, "
                "e.g. 105,5,125,25"
            )
        return box

    def search(self, catalog: Catalog) -> list[Record]:
        """Run :meth:`~minjiang.storage.Catalog.search` with these filters.

        Raises
        ------
        ParameterError
            For a malformed bbox, start or end.
        DatasetNotFoundError
            When ``ancestor`` or ``descendant`` names no dataset.
        """
        try:
            return catalog.search(
                self.text,
                domain=self.domain,
                variable=self.variable,
                bbox=self.bbox_tuple(),
                start=self.start,
                end=self.end,
                operator=self.operator,
                producer=self.producer,
                ancestor_of=self.ancestor,
                descendant_of=self.descendant,
                include_hidden=self.hidden,
            )
        except (DatasetNotFoundError, ParameterError):
            raise
        except ValueError as err:  # the catalog's own bbox/start/end checks
            raise ParameterError(str(err)) from None

    def is_filtered(self) -> bool:
        return any(getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "hidden")


def resolve(catalog: Catalog, ref: str) -> Record:
    """The record of ``ref`` (id, name or unique id prefix).

    Raises
    ------
    InvalidNameError
        If ``ref`` is neither a valid id nor a valid name.
    DatasetNotFoundError
        If nothing matches (the message suggests close names).
    """
    if len(ref) > 200:
        raise ParameterError(f"dataset reference is {len(ref)} characters long; the limit is 200")
    return catalog.get(ref)


# ------------------------------------------------------------------ listing rows
def dataset_row(
    record: Record, catalog: Catalog, pointers: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    """The summary of one dataset in a listing (JSON-safe). ``names`` are every name of
    the dataset, those given to it when it was reused too (``pointers``: what
    :meth:`Catalog.names_by_dataset` returned, read once per listing)."""
    arrays = record.schema_.get("arrays") or {}
    plugin = record.producer.get("plugin") or {}
    return {
        "id": record.id,
        "names": catalog.names_of(record, pointers=pointers),
        "domain": record.domain,
        "kind": record.kind,
        "hidden": record.hidden,
        "operator": record.operator or "",
        "plugin": str(plugin.get("package") or plugin.get("name") or ""),
        "variables": sorted(arrays),
        "tables": sorted(record.tables),
        "created": record.created,
        "inputs": dict(record.inputs),
    }


# ------------------------------------------------------------------ dataset page
def _quality_rows(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for section in ("arrays", "coords"):
        for name, entry in sorted((schema.get(section) or {}).items()):
            summary = entry.get("summary")
            if not summary:
                continue
            rows.append(
                {
                    "name": name,
                    "section": section[:-1],
                    "units": str((entry.get("attrs") or {}).get("units", "")),
                    **{
                        k: summary.get(k)
                        for k in ("cells", "valid", "nan", "valid_fraction", "min", "max", "mean")
                    },
                }
            )
    return rows


def _group_attrs(catalog: Catalog, record: Record) -> dict[str, Any]:
    """The dataset's own (group) attributes, read from its checked Zarr metadata."""
    if not (record.schema_.get("arrays") or record.schema_.get("coords")):
        return {}
    from minjiang.storage import open_xarray

    ds = open_xarray(catalog.store, record)
    attrs = {k: v for k, v in ds.attrs.items() if k != "minjiang_id"}
    ds.close()
    return attrs


def dataset_detail(catalog: Catalog, record: Record) -> dict[str, Any]:
    """Everything a dataset page shows: the record and its listing row, schema,
    attributes, quality table, quicklooks, direct parents (with the input names they
    fill) and children, and the producer."""
    schema = record.schema_
    parents = catalog.parents(record.id)
    children = catalog.children(record.id)
    by_parent: dict[str, list[str]] = {}
    for input_name, pid in sorted(record.inputs.items()):
        by_parent.setdefault(pid, []).append(input_name)
    return {
        "record": record,
        "row": dataset_row(record, catalog),
        "arrays": schema.get("arrays") or {},
        "coords": schema.get("coords") or {},
        "tables": {
            t: (schema.get("tables") or {}).get(t, {"columns": {}, "rows": None})
            for t in sorted(record.tables)
        },
        "attrs": _group_attrs(catalog, record),
        "quality": _quality_rows(schema),
        "quicklooks": quicklooks(catalog, record.id),
        "parents": [(p, by_parent.get(p.id, [])) for p in parents],
        "missing_parents": sorted(
            pid for pid in set(record.inputs.values()) if pid not in {p.id for p in parents}
        ),
        "children": children,
        "producer": {
            "operator": record.operator or record.kind,
            "version": record.producer.get("version"),
            "backend": record.producer.get("backend"),
            "plugin": record.producer.get("plugin") or {},
            "params": record.producer.get("params") or {},
        },
    }


# ------------------------------------------------------------------ quicklooks
def quicklooks(catalog: Catalog, dataset_id: str) -> list[dict[str, str]]:
    """The report images of a dataset: ``reports/<pipeline>/<dataset id>/*.png``, the
    quicklooks a pipeline wrote after a run whose last dataset this is."""
    store = catalog.store
    validate_segment(dataset_id, kind="dataset id")
    out = []
    for pipeline in store.list_dir(REPORTS):
        try:
            validate_segment(pipeline, kind="pipeline folder")
        except ValueError:  # not a folder the runtime writes
            continue
        folder = f"{REPORTS}/{pipeline}/{dataset_id}"
        for key in store.list(folder):
            name = key[len(folder) + 1 :]
            if "/" in name or not name.lower().endswith(".png"):
                continue
            try:
                validate_segment(name, kind="quicklook file name")
            except ValueError:
                continue
            out.append({"pipeline": pipeline, "file": name})
    return out


def read_quicklook(catalog: Catalog, dataset_id: str, pipeline: str, file: str) -> bytes:
    """The bytes of one report image of a dataset.

    Raises
    ------
    InvalidNameError
        If a name breaks the storage name rules.
    KeyNotFoundError
        If there is no such image (only ``.png`` files are served).
    """
    validate_segment(dataset_id, kind="dataset id")
    validate_segment(pipeline, kind="pipeline folder")
    validate_segment(file, kind="quicklook file name")
    if not file.lower().endswith(".png"):
        raise KeyNotFoundError(
            f"quicklook {file!r} is not a PNG image; the catalog serves only the .png files "
            f"of reports/{pipeline}/{dataset_id}/"
        )
    key = f"{REPORTS}/{pipeline}/{dataset_id}/{file}"
    try:
        return catalog.store.read_bytes(key)
    except KeyNotFoundError:
        raise KeyNotFoundError(
            f"dataset {dataset_id!r} has no quicklook {pipeline}/{file}; its page lists the "
            "quicklooks it has"
        ) from None


# ------------------------------------------------------------------ lineage
def _levels(
    catalog: Catalog, root: str
) -> tuple[dict[str, int], dict[str, Record], set[tuple[str, str, str]]]:
    """Nodes within ``LINEAGE_DEPTH`` hops of ``root``, each with its column (negative:
    ancestors, positive: descendants), the records, and the edges among them."""
    levels: dict[str, int] = {root: 0}
    nodes: dict[str, Record] = {}
    edges: set[tuple[str, str, str]] = set()
    for direction, sign in (("up", -1), ("down", 1)):
        graph = catalog.lineage(root, direction=direction, depth=LINEAGE_DEPTH)  # type: ignore[arg-type]
        nodes.update(graph.nodes)
        edges.update(graph.edges)
        step = graph.parents_of if direction == "up" else graph.children_of
        todo: deque[str] = deque([root])
        seen = {root}
        dist = {root: 0}
        while todo:
            node = todo.popleft()
            for nxt in step(node):
                if nxt not in seen and nxt in graph.nodes:
                    seen.add(nxt)
                    dist[nxt] = dist[node] + 1
                    todo.append(nxt)
        for node, d in dist.items():
            if node != root:
                levels.setdefault(node, sign * d)
    edges = {e for e in edges if e[0] in levels and e[1] in levels}
    return levels, nodes, edges


def lineage_json(catalog: Catalog, record: Record, direction: str, depth: int | None) -> dict:
    """The lineage graph around a dataset as JSON: nodes (id, names, operator,
    domain), edges (parent, child, input name) and ids with no record."""
    if direction not in ("up", "down", "both"):
        raise ParameterError(f"direction {direction!r} must be 'up', 'down' or 'both'")
    if depth is not None and not 0 <= depth <= 1000:
        raise ParameterError(f"depth {depth} must be between 0 and 1000 (or omitted: no limit)")
    graph = catalog.lineage(record.id, direction=direction, depth=depth)  # type: ignore[arg-type]
    pointers = catalog.names_by_dataset()
    return {
        "root": graph.root,
        "nodes": [
            {
                "id": r.id,
                "names": catalog.names_of(r, pointers=pointers),
                "operator": r.operator or r.kind,
                "domain": r.domain,
                "kind": r.kind,
            }
            for _, r in sorted(graph.nodes.items())
        ],
        "edges": [{"parent": p, "child": c, "input": n} for p, c, n in graph.edges],
        "missing": list(graph.missing),
    }


def _label(record: Record) -> str:
    text = record.names[0] if record.names else record.id[:12]
    return text if len(text) <= 28 else "…" + text[-27:]


def lineage_svg(catalog: Catalog, record: Record, href: str = "/datasets/") -> Markup:
    """A small server-rendered SVG of the lineage around a dataset: ancestors on the
    left, descendants on the right (up to three hops each way), every box a link to
    that dataset's page, every edge labelled with the input name."""
    levels, nodes, edges = _levels(catalog, record.id)
    ordered: dict[int, list[str]] = {}
    for node, level in sorted(levels.items(), key=lambda kv: (kv[1], _label(nodes[kv[0]]))):
        ordered.setdefault(level, []).append(node)
    columns, more = cap_columns(ordered, LINEAGE_COLUMN)
    lo, hi = min(columns), max(columns)
    box_w, box_h, gap_x, gap_y, pad = 200, 44, 80, 18, 12
    rows = max(len(c) + (1 if more.get(level) else 0) for level, c in columns.items())
    width = (hi - lo + 1) * (box_w + gap_x) - gap_x + 2 * pad
    height = rows * (box_h + gap_y) - gap_y + 2 * pad
    where: dict[str, tuple[float, float]] = {}
    extra: list[str] = []
    for level, ids in columns.items():
        x = pad + (level - lo) * (box_w + gap_x)
        offset = (height - 2 * pad - (len(ids) * (box_h + gap_y) - gap_y)) / 2
        for i, node in enumerate(ids):
            where[node] = (x, pad + offset + i * (box_h + gap_y))
        if more.get(level):
            y = pad + offset + len(ids) * (box_h + gap_y) + 16
            extra.append(
                f'<text class="more" x="{x + 8:.0f}" y="{y:.0f}">and {more[level]} more '
                "(lineage JSON lists them)</text>"
            )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="lineage of {escape(record.id)}">'
    ]
    for parent, child, input_name in sorted(edges):
        if parent not in where or child not in where:
            continue
        x1, y1 = where[parent]
        x2, y2 = where[child]
        ax, ay, bx, by = x1 + box_w, y1 + box_h / 2, x2, y2 + box_h / 2
        parts.append(
            f'<path class="edge" d="M{ax:.0f},{ay:.0f} C{ax + gap_x / 2:.0f},{ay:.0f} '
            f'{bx - gap_x / 2:.0f},{by:.0f} {bx:.0f},{by:.0f}"/>'
            f'<text class="edge-label" x="{(ax + bx) / 2:.0f}" y="{(ay + by) / 2 - 4:.0f}">'
            f"{escape(input_name)}</text>"
        )
    for node, (bx0, by0) in where.items():
        rec = nodes[node]
        cls = "node root" if node == record.id else "node"
        parts.append(
            f'<a href="{escape(href + node)}" class="{cls}" data-id="{escape(node)}">'
            f"<title>{escape(', '.join(rec.names) or rec.id)} ({escape(rec.id)})</title>"
            f'<rect x="{bx0:.0f}" y="{by0:.0f}" width="{box_w}" height="{box_h}" rx="6"/>'
            f'<text x="{bx0 + 8:.0f}" y="{by0 + 18:.0f}">{escape(_label(rec))}</text>'
            f'<text class="sub" x="{bx0 + 8:.0f}" y="{by0 + 34:.0f}">'
            f"{escape((rec.operator or rec.kind)[:30])}</text></a>"
        )
    parts.extend(extra)
    parts.append("</svg>")
    return Markup("".join(parts))


def cap_columns(
    columns: Mapping[int, Sequence[str]], limit: int
) -> tuple[dict[int, list[str]], dict[int, int]]:
    """The first ``limit`` ids of each column of the lineage graph (column 0, the
    dataset itself, always whole) and how many were left out of each."""
    kept = {level: list(ids if level == 0 else ids[:limit]) for level, ids in columns.items()}
    left = {level: len(ids) - len(kept[level]) for level, ids in columns.items()}
    return kept, {level: n for level, n in left.items() if n}


# ------------------------------------------------------------------ downloads
def size_text(nbytes: int) -> str:
    """``nbytes`` for people: bytes, KiB or MiB."""
    if nbytes < 1024:
        return f"{nbytes} bytes"
    if nbytes < MiB:
        return f"{nbytes / 1024:.1f} KiB"
    return f"{nbytes / MiB:.1f} MiB"


def _too_large(what: str, nbytes: int, limit: int, fix: str) -> DownloadTooLargeError:
    return DownloadTooLargeError(
        f"{what} is {size_text(nbytes)}, over this server's download limit of "
        f"{size_text(limit)}; {fix}, or start the server with a larger --max-download-mib"
    )


def table_download(
    catalog: Catalog, record: Record, table: str, fmt: str, limit: int
) -> tuple[bytes, str, str]:
    """A table of a dataset as Parquet or CSV: ``(content, media type, file name)``.

    Raises
    ------
    InvalidNameError
        If ``table`` breaks the storage name rules.
    KeyNotFoundError
        If the dataset has no such table (the message lists those it has).
    ParameterError
        For a format other than ``parquet`` or ``csv``.
    DownloadTooLargeError
        If the table's values exceed ``limit`` bytes.
    """
    validate_segment(table, kind="table name")
    if fmt not in ("parquet", "csv"):
        raise ParameterError(f"table format {fmt!r} must be 'parquet' or 'csv'")
    if table not in record.tables:
        raise KeyNotFoundError(
            f"dataset {record.id!r} has no table {table!r}; its tables: {sorted(record.tables)}"
        )
    from minjiang.storage import read_table

    data: pa.Table = read_table(catalog.store, record.id, table)
    if data.nbytes > limit:
        raise _too_large(
            f"table {table!r} of dataset {record.id!r}",
            data.nbytes,
            limit,
            "read it in Python with `minjiang.Runtime().result(ID).table(NAME)`",
        )
    stem = f"{record.id[:16]}-{table}"
    if fmt == "parquet":
        import pyarrow.parquet as pq

        sink = io.BytesIO()
        pq.write_table(data, sink, compression="zstd")
        return sink.getvalue(), "application/vnd.apache.parquet", f"{stem}.parquet"
    text = data.to_pandas().to_csv(index=False)
    return text.encode(), "text/csv; charset=utf-8", f"{stem}.csv"


def parse_region(text: str | None, dims: Sequence[str], shape: Sequence[int]) -> dict[str, slice]:
    """``"time=0:10,y=5:20"`` as index slices per dim (half-open, 0-based); dims not
    named are taken whole, ``start:`` runs to the end and ``:stop`` from 0.

    Raises
    ------
    ParameterError
        For an unknown or repeated dim, a malformed range, or one outside the dim.
    """
    sizes = dict(zip(dims, shape, strict=True))
    out = {d: slice(0, n) for d, n in sizes.items()}
    if not text or not text.strip():
        return out
    if len(text) > 2000:
        raise ParameterError(f"region is {len(text)} characters long; the limit is 2000")
    seen: set[str] = set()
    for item in text.split(","):
        dim, eq, rng = item.strip().partition("=")
        dim = dim.strip()
        if not eq or dim not in sizes:
            raise ParameterError(
                f"region part {item.strip()[:80]!r} must be DIM=START:STOP with DIM one of "
                f"{list(dims)}, e.g. {dims[0]}=0:{min(10, shape[0])}"
            )
        if dim in seen:
            raise ParameterError(f"region names dim {dim!r} twice; give each dim once")
        seen.add(dim)
        first, colon, last = rng.partition(":")
        try:
            start = int(first) if first.strip() else 0
            stop = int(last) if colon and last.strip() else sizes[dim] if colon else None
        except ValueError:
            start, stop = -1, None
        if stop is None or not 0 <= start < stop <= sizes[dim]:
            raise ParameterError(
                f"region range {dim}={rng.strip()[:40]!r} must be START:STOP with "
                f"0 <= START < STOP <= {sizes[dim]} (the size of {dim!r})"
            )
        out[dim] = slice(start, stop)
    return out


def _netcdf_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes NetCDF can hold: numbers, strings and number lists; the rest as JSON."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, bool):
            out[k] = int(v)
        elif isinstance(v, str | int | float):
            out[k] = v
        elif (
            isinstance(v, list | tuple)
            and v
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
        ):
            out[k] = list(v)
        elif v is not None:
            out[k] = json.dumps(v, default=str)
    return out


def array_subset(
    catalog: Catalog,
    record: Record,
    array: str,
    region: str | None,
    fmt: str,
    limit: int,
) -> tuple[bytes, str, str]:
    """An index-range subset of one array (with its coordinates) as NetCDF-4 or as a
    zipped Zarr v3 group: ``(content, media type, file name)``.

    Values are read through the store's checks (each chunk against the record's
    digest) and only after the subset's size is known to be within ``limit``.

    Raises
    ------
    InvalidNameError
        If ``array`` breaks the storage name rules.
    KeyNotFoundError
        If the dataset has no such array (the message lists those it has).
    ParameterError
        For a format other than ``netcdf`` or ``zarr``, or a bad region.
    DownloadTooLargeError
        If the subset (values and coordinates) exceeds ``limit`` bytes.
    """
    validate_segment(array, kind="array name")
    if fmt not in ("netcdf", "zarr"):
        raise ParameterError(f"subset format {fmt!r} must be 'netcdf' or 'zarr'")
    arrays = record.schema_.get("arrays") or {}
    if array not in arrays:
        raise KeyNotFoundError(
            f"dataset {record.id!r} has no array {array!r}; its arrays: {sorted(arrays)}"
        )
    spec = arrays[array]
    sel = parse_region(region, spec["dims"], spec["shape"])
    from minjiang.storage import open_xarray

    ds = open_xarray(catalog.store, record)
    sub = ds[[array]].isel(sel)
    nbytes = sum(int(v.size) * v.dtype.itemsize for v in sub.variables.values())
    if nbytes > limit:
        ds.close()
        shape = "x".join(str(s.stop - s.start) for s in sel.values())
        raise _too_large(
            f"the subset of array {array!r} ({shape} values and their coordinates)",
            nbytes,
            limit,
            "select fewer indices (smaller START:STOP ranges per dim)",
        )
    sub = sub.load()
    ds.close()
    sub.attrs = {k: v for k, v in ds.attrs.items()}
    sub.attrs["minjiang_region"] = ",".join(f"{d}={s.start}:{s.stop}" for d, s in sel.items())
    for var in sub.variables.values():
        var.encoding = {}
    stem = f"{record.id[:16]}-{array}"
    with tempfile.TemporaryDirectory(prefix="minjiang-web-") as tmp:
        if fmt == "netcdf":
            sub.attrs = _netcdf_attrs(sub.attrs)
            for var in sub.variables.values():
                var.attrs = _netcdf_attrs(var.attrs)
            path = Path(tmp) / "subset.nc"
            sub.to_netcdf(path, engine="netcdf4")
            return path.read_bytes(), "application/x-netcdf", f"{stem}.nc"
        return _zarr_zip(sub, Path(tmp)), "application/zip", f"{stem}.zarr.zip"


def _zarr_zip(sub: xr.Dataset, tmp: Path) -> bytes:
    """``sub`` as a Zarr v3 group, zipped with the group at the root of the archive
    (``zarr.storage.ZipStore`` opens it as it is)."""
    folder = tmp / "subset.zarr"
    sub.to_zarr(folder, mode="w", zarr_format=3, consolidated=False)
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return sink.getvalue()
