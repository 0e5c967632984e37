"""The web catalog application (FastAPI + Jinja2) and :func:`serve` (uvicorn).

HTML pages: ``/`` (browse and search), ``/datasets/{ref}`` (one dataset),
``/names/{name}`` (a name's dataset). JSON API under ``/api`` (described at
``/openapi.json``, browsable at ``/docs``). Every route only reads the store.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlparse

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from minjiang.errors import (
    DatasetNotFoundError,
    IntegrityError,
    InvalidNameError,
    KeyNotFoundError,
    MinjiangError,
    ParameterError,
    StoreError,
)
from minjiang.storage import Catalog, Store, open_store, validate_name, validate_segment
from minjiang.web._data import (
    DEFAULT_MAX_DOWNLOAD_BYTES,
    MiB,
    SearchForm,
    array_subset,
    dataset_detail,
    dataset_row,
    lineage_json,
    lineage_svg,
    quicklooks,
    read_quicklook,
    resolve,
    size_text,
    table_download,
)
from pydantic import BaseModel

__all__ = ["create_app", "is_loopback", "serve"]

HERE = Path(__file__).resolve().parent
LISTING_LIMIT = 1000


class DatasetRow(BaseModel):
    """One dataset in a listing."""

    id: str
    names: list[str]
    domain: str
    kind: str
    hidden: bool
    operator: str
    plugin: str
    variables: list[str]
    tables: list[str]
    created: str
    inputs: dict[str, str]


class DatasetList(BaseModel):
    """The datasets matching a search, newest first."""

    count: int
    truncated: bool
    datasets: list[DatasetRow]


class LineageNode(BaseModel):
    id: str
    names: list[str]
    operator: str
    domain: str
    kind: str


class LineageEdge(BaseModel):
    parent: str
    child: str
    input: str


class Lineage(BaseModel):
    """A piece of the lineage graph around one dataset."""

    root: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    missing: list[str]


_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (DatasetNotFoundError, 404),
    (KeyNotFoundError, 404),
    (InvalidNameError, 400),
    (ParameterError, 400),
    (IntegrityError, 500),
)


def _status(err: BaseException) -> int:
    for kind, code in _STATUS:
        if isinstance(err, kind):
            return code
    return 500


def _download(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def create_app(
    store: Store | str | os.PathLike[str] | None = None,
    *,
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
) -> FastAPI:
    """The read-only web catalog of a store as an ASGI application.

    Parameters
    ----------
    store : Store, str, path-like or None
        The store (anything :func:`~minjiang.storage.open_store` accepts).
    max_download_bytes : int, optional
        The most decoded bytes one table or array-subset download may hold (default
        256 MiB); larger requests get a 400 naming the limit and the fix.

    Returns
    -------
    fastapi.FastAPI
    """
    if not isinstance(max_download_bytes, int) or max_download_bytes < 1:
        raise ParameterError(
            f"max_download_bytes {max_download_bytes!r} must be a positive whole number of bytes"
        )
    catalog = Catalog(store)
    limit = max_download_bytes
    app = FastAPI(
        title="minjiang catalog",
        version=_version(),
        description=(
            "Read-only catalog of a minjiang store: datasets of every domain, their "
            "schema, data-quality summaries, lineage (STAC, PROV-JSON), tables and "
            "array subsets. Store: " + catalog.store.url
        ),
    )
    app.state.catalog = catalog
    app.state.max_download_bytes = limit
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["num"] = _num
    templates.env.filters["size"] = size_text
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("store_url", catalog.store.url)
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    @app.exception_handler(MinjiangError)
    async def _typed_error(request: Request, err: MinjiangError) -> Response:
        status = _status(err)
        message = " ".join(str(err).split()) or type(err).__name__
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message, "error": type(err).__name__}, status)
        return page(request, "error.html", status, status=status, message=message)

    # ------------------------------------------------------------ HTML pages
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(
        request: Request,
        text: str = "",
        domain: str | None = None,
        variable: str | None = None,
        bbox: str | None = None,
        start: str | None = None,
        end: str | None = None,
        operator: str | None = None,
        producer: str | None = None,
        ancestor: str | None = None,
        descendant: str | None = None,
        hidden: bool = False,
    ) -> HTMLResponse:
        form = SearchForm.of(**{k: v for k, v in locals().items() if k != "request"})
        found = form.search(catalog)
        domains = sorted({r.domain for r in catalog.search(include_hidden=True)})
        pointers = catalog.names_by_dataset()
        return page(
            request,
            "index.html",
            form=form,
            rows=[dataset_row(r, catalog, pointers) for r in found[:LISTING_LIMIT]],
            count=len(found),
            truncated=len(found) > LISTING_LIMIT,
            domains=domains,
        )

    @app.get("/datasets/{ref}", response_class=HTMLResponse, include_in_schema=False)
    def dataset_page(request: Request, ref: str) -> HTMLResponse:
        record = resolve(catalog, ref)
        detail = dataset_detail(catalog, record)
        return page(
            request,
            "dataset.html",
            d=detail,
            lineage=lineage_svg(catalog, record),
            limit=limit,
        )

    @app.get("/datasets/{ref}/subset", include_in_schema=False)
    def subset_form(
        request: Request, ref: str, array: str, format: str = "netcdf"
    ) -> RedirectResponse:
        """The subset form of a dataset page: ``<dim>=START:STOP`` fields become the
        API's ``region``."""
        record = resolve(catalog, ref)
        validate_segment(array, kind="array name")
        spec = (record.schema_.get("arrays") or {}).get(array)
        if spec is None:
            raise KeyNotFoundError(
                f"dataset {record.id!r} has no array {array!r}; its arrays: "
                f"{sorted(record.schema_.get('arrays') or {})}"
            )
        region = ",".join(
            f"{dim}={request.query_params[dim].strip()}"
            for dim in spec["dims"]
            if request.query_params.get(dim, "").strip()
        )
        query = urlencode({"format": format, "region": region})
        return RedirectResponse(
            f"/api/datasets/{record.id}/arrays/{quote(array)}/subset?{query}", status_code=303
        )

    @app.get("/names/{name:path}", include_in_schema=False)
    def by_name(name: str) -> RedirectResponse:
        record = resolve(catalog, validate_name(name))
        return RedirectResponse(f"/datasets/{record.id}", status_code=307)

    # ------------------------------------------------------------ JSON API
    @app.get("/api/datasets", response_model=DatasetList, tags=["datasets"])
    def api_datasets(
        text: str = Query("", description="Substring of a name, operator, domain, id or variable."),
        domain: str | None = Query(None, description="Exact domain (ocean, forestry, ...)."),
        variable: str | None = Query(None, description="Array name or CF standard_name."),
        bbox: str | None = Query(None, description="west,south,east,north in degrees."),
        start: str | None = Query(None, description="ISO date: time ranges ending on or after it."),
        end: str | None = Query(
            None, description="ISO date: time ranges starting on or before it."
        ),
        operator: str | None = Query(None, description="Producing operator or reader."),
        producer: str | None = Query(None, description="Producing plugin: name, module, package."),
        ancestor: str | None = Query(None, description="Only what this dataset was computed from."),
        descendant: str | None = Query(None, description="Only what was derived from it."),
        hidden: bool = Query(False, description="Include hidden intermediates."),
        limit: int = Query(LISTING_LIMIT, ge=1, le=100_000, description="Most rows returned."),
    ) -> dict[str, Any]:
        """Datasets matching every given filter, newest first (the catalog search index)."""
        given = {k: v for k, v in locals().items() if k != "limit"}
        found = SearchForm.of(**given).search(catalog)
        pointers = catalog.names_by_dataset()
        return {
            "count": len(found),
            "truncated": len(found) > limit,
            "datasets": [dataset_row(r, catalog, pointers) for r in found[:limit]],
        }

    @app.get("/api/datasets/{ref}", tags=["datasets"])
    def api_dataset(
        ref: str,
        checksums: bool = Query(False, description="Include every chunk digest."),
    ) -> dict[str, Any]:
        """One dataset's catalog record, its data-quality rows and quicklook URLs."""
        record = resolve(catalog, ref)
        data = record.model_dump(mode="json", by_alias=True)
        data["names"] = catalog.names_of(record)  # those given when it was reused too
        if not checksums:
            data["checksums"] = {k: len(v) for k, v in data["checksums"].items()}
        data["quicklooks"] = [
            f"/api/datasets/{record.id}/quicklooks/{q['pipeline']}/{q['file']}"
            for q in quicklooks(catalog, record.id)
        ]
        return data

    @app.get(
        "/api/names/{name:path}",
        tags=["datasets"],
        response_class=RedirectResponse,
        status_code=307,
        responses={
            307: {"description": "To /api/datasets/{id}."},
            404: {"description": "No such name."},
        },
    )
    def api_name(name: str) -> RedirectResponse:
        """The dataset a name (``ocean/oisst``, with '/') points at: a redirect to its record."""
        record = resolve(catalog, validate_name(name))
        return RedirectResponse(f"/api/datasets/{record.id}", status_code=307)

    @app.get("/api/datasets/{ref}/lineage", response_model=Lineage, tags=["lineage"])
    def api_lineage(
        ref: str,
        direction: Literal["up", "down", "both"] = Query(
            "up", description="up: ancestors; down: descendants; both."
        ),
        depth: int | None = Query(None, ge=0, le=1000, description="Most hops (none: all)."),
    ) -> dict[str, Any]:
        """The lineage graph around a dataset: nodes, edges (with input names), and
        input ids with no record in this store."""
        return lineage_json(catalog, resolve(catalog, ref), direction, depth)

    @app.get("/api/datasets/{ref}/stac", tags=["lineage"])
    def api_stac(ref: str) -> JSONResponse:
        """The dataset as a STAC 1.0 Item with the processing extension."""
        item = catalog.to_stac(resolve(catalog, ref).id)
        return JSONResponse(item, media_type="application/geo+json")

    @app.get("/api/datasets/{ref}/prov", tags=["lineage"])
    def api_prov(ref: str) -> dict[str, Any]:
        """The dataset's upstream lineage as a W3C PROV-JSON document."""
        return catalog.to_prov(resolve(catalog, ref).id)

    @app.get(
        "/api/datasets/{ref}/tables/{table}",
        tags=["downloads"],
        response_class=Response,
        responses={
            200: {"content": {"application/vnd.apache.parquet": {}, "text/csv": {}}},
            400: {"description": "Bad format, or the table is over the download limit."},
            404: {"description": "No such dataset or table."},
        },
    )
    def api_table(
        ref: str,
        table: str,
        format: Literal["parquet", "csv"] = Query("parquet", description="parquet or csv."),
    ) -> Response:
        """A table of the dataset, whole, as Parquet (zstd) or CSV."""
        record = resolve(catalog, ref)
        return _download(*table_download(catalog, record, table, format, limit))

    @app.get(
        "/api/datasets/{ref}/arrays/{array}/subset",
        tags=["downloads"],
        response_class=Response,
        responses={
            200: {"content": {"application/x-netcdf": {}, "application/zip": {}}},
            400: {"description": "Bad region or format, or the subset is over the limit."},
            404: {"description": "No such dataset or array."},
        },
    )
    def api_subset(
        ref: str,
        array: str,
        region: str = Query(
            "",
            description="Index ranges per dim, half-open and 0-based: 'time=0:10,y=5:20' "
            "(dims left out are taken whole).",
        ),
        format: Literal["netcdf", "zarr"] = Query(
            "netcdf", description="netcdf (NetCDF-4) or zarr (a Zarr v3 group, zipped)."
        ),
    ) -> Response:
        """An index-range subset of one array with its coordinates."""
        record = resolve(catalog, ref)
        return _download(*array_subset(catalog, record, array, region, format, limit))

    @app.get(
        "/api/datasets/{ref}/quicklooks/{pipeline}/{file}",
        tags=["datasets"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, 404: {"description": "No such image."}},
    )
    def api_quicklook(ref: str, pipeline: str, file: str) -> Response:
        """A report image written by a pipeline whose last dataset this is."""
        record = resolve(catalog, ref)
        return Response(read_quicklook(catalog, record.id, pipeline, file), media_type="image/png")

    return app


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return ""
    return str(value)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("minjiang")
    except PackageNotFoundError:  # a source tree that is not installed
        return "0"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    store: str | os.PathLike[str] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    max_download_mib: int = DEFAULT_MAX_DOWNLOAD_BYTES // MiB,
    log_level: str = "info",
) -> None:
    """Serve the web catalog of a store with uvicorn until interrupted.

    A host other than a loopback address must be asked for explicitly and prints a
    warning: the catalog has no authentication, so anyone who can reach the port can
    read every dataset in the store.

    Raises
    ------
    ParameterError
        For a port outside 1-65535 or a download limit below 1 MiB.
    StoreError
        When a local store folder does not exist (the server never creates one).
    """
    import uvicorn

    if not 1 <= port <= 65535:
        raise ParameterError(f"--port {port} must be between 1 and 65535")
    if not 1 <= max_download_mib <= 1 << 20:
        raise ParameterError(f"--max-download-mib {max_download_mib} must be 1 to 1048576")
    where = store if store is not None else os.environ.get("MINJIANG_STORE") or "./minjiang-store"
    text = os.fspath(where)
    local = urlparse(text).path if text.startswith("file://") else text
    if ("://" not in text or text.startswith("file://")) and not Path(local).is_dir():
        raise StoreError(
            f"no store at {text!r}: the catalog serves an existing store; give its folder "
            "with --store (or $MINJIANG_STORE)"
        )
    app = create_app(open_store(text), max_download_bytes=max_download_mib * MiB)
    if not is_loopback(host):
        print(
            f"warning: serving on {host}:{port}, reachable from other machines; the catalog "
            "has no authentication: anyone who can reach this port can read every dataset "
            "in the store",
            file=sys.stderr,
        )
    print(f"minjiang catalog of {app.state.catalog.store.url} on http://{host}:{port}/")
    uvicorn.run(app, host=host, port=port, log_level=log_level)
