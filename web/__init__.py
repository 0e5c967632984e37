"""minjiang.web: ``minjiang serve``, a read-only web catalog of a store.

Browse and search the datasets of every domain, read each one's schema, attributes,
data-quality summary, quicklook images and lineage, and download tables (Parquet,
CSV) and array subsets (NetCDF, Zarr zip); a JSON API under ``/api`` with its OpenAPI
description at ``/openapi.json``. Nothing here writes to the store.

Needs the ``web`` extra (FastAPI, uvicorn, Jinja2); ``import minjiang.web`` itself is
light and the framework is imported by :func:`create_app`.
"""

from __future__ import annotations

if __name__ != "minjiang.web":  # this folder is only importable as minjiang.web
    raise ImportError(
        f"'{__name__}' is minjiang.web: install minjiang (`make demo` or `pip install -e .`) and `import minjiang.web`"
    )

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minjiang.web._app import create_app as create_app
    from minjiang.web._app import serve as serve

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from minjiang.web import _app

        value = getattr(_app, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'minjiang.web' has no attribute {name!r}")
