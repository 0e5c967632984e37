"""minjiang: distributed compute plugins for research data.

Chunked Zarr v3 arrays, numba (CPU) and CuPy (GPU) kernels run as storage-to-storage
tasks on Ray, and one shared catalog with lineage.

>>> import minjiang as mj
>>> rt = mj.Runtime(store="./minjiang-store")          # doctest: +SKIP
>>> res = rt.run("array.gaussian", inputs={"x": "demo/cube"}, params={"sigma": 2})  # doctest: +SKIP

``import minjiang`` stays light: numba, Ray, CuPy, zarr codecs and the plugins are
imported only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from minjiang.core.errors import (
    BackendFallbackWarning,
    ChecksumMismatchError,
    ContractError,
    DatasetNotFoundError,
    MemoryBudgetError,
    MinjiangError,
    ParameterError,
    PipelineError,
    PlanError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from minjiang.core import (
        Aggregate,
        ArrayOutput,
        Composite,
        FullAxis,
        Input,
        Map,
        Operator,
        Pipeline,
        Reduce,
        Runtime,
        Step,
        SubStep,
        TableOutput,
        hookimpl,
        open,
    )

__all__ = [
    "Aggregate",
    "ArrayOutput",
    "BackendFallbackWarning",
    "ChecksumMismatchError",
    "Composite",
    "ContractError",
    "DatasetNotFoundError",
    "FullAxis",
    "Input",
    "Map",
    "MemoryBudgetError",
    "MinjiangError",
    "Operator",
    "ParameterError",
    "Pipeline",
    "PipelineError",
    "PlanError",
    "Reduce",
    "Runtime",
    "Step",
    "SubStep",
    "TableOutput",
    "__version__",
    "hookimpl",
    "open",
]

_LAZY = {
    "Aggregate": "minjiang.core._operator",
    "ArrayOutput": "minjiang.core._operator",
    "Composite": "minjiang.core._operator",
    "FullAxis": "minjiang.core._operator",
    "Input": "minjiang.core._operator",
    "Map": "minjiang.core._operator",
    "Operator": "minjiang.core._operator",
    "Reduce": "minjiang.core._operator",
    "SubStep": "minjiang.core._operator",
    "TableOutput": "minjiang.core._operator",
    "Pipeline": "minjiang.core._pipeline",
    "Step": "minjiang.core._pipeline",
    "Runtime": "minjiang.core._runtime",
    "open": "minjiang.core._runtime",
    "hookimpl": "minjiang.core.hookspecs",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'minjiang' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
