"""minjiang: distributed compute plugins for research data.

Chunked Zarr v3 arrays, numba (CPU) and CuPy (GPU) kernels run as storage-to-storage
tasks on Ray, and one shared catalog with lineage.

>>> import minjiang as mj
>>> rt = mj.Runtime(store="./minjiang-store")          # doctest: +SKIP
>>> res = rt.run("array.gaussian", inputs={"x": "demo/cube"}, params={"sigma": 2})  # doctest: +SKIP

This module is the public API, in four groups:

* running: :class:`Runtime`, :func:`open`, :class:`Result`, :class:`PipelineResult`,
  :class:`Plan`, :class:`RunEvent`;
* writing plugins: :data:`hookimpl`, :class:`Operator` with its inputs, outputs and chunk
  patterns (:class:`Map`, :class:`Reduce`, :class:`FullAxis`, :class:`Aggregate`,
  :class:`Composite`, :class:`SubStep`, :class:`ExpandContext`), what kernels receive
  (:class:`BlockContext`, :class:`TaskSize`), :class:`Reader`, :class:`Pipeline`,
  :class:`Step`, :class:`Report`;
* kernel dispatch (from :mod:`minjiang.kernels`): :func:`is_gpu_array`,
  :func:`array_namespace`, :func:`to_host`, :func:`resolve_backend`;
* errors: the :class:`MinjiangError` hierarchy (all of it in :mod:`minjiang.core.errors`).

``import minjiang`` stays light: numba, Ray, CuPy, zarr codecs and the plugins are
imported only when first used. Type checkers see every name with its real type: the
lazy names are imported under ``TYPE_CHECKING`` as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from minjiang.errors import (
    BackendFallbackWarning,
    ChecksumMismatchError,
    ContractError,
    DatasetNotFoundError,
    ExecutionError,
    MemoryBudgetError,
    MinjiangError,
    ParameterError,
    PipelineError,
    PlanError,
    PluginError,
    ReaderError,
)

__version__ = "0.1.0"
#: The plugin API version (MAJOR.MINOR): the major number changes when a hook, a contract
#: class or a kernel signature changes incompatibly, the minor one when something is
#: added. A plugin declares the range it supports as ``MINJIANG_API = ">=1.0,<2"``
#: (docs/plugins.md, "Compatibility"); outside that range it is not loaded.
API_VERSION = "1.0"

if TYPE_CHECKING:
    from minjiang.core import (
        Aggregate,
        ArrayOutput,
        BlockContext,
        Composite,
        ExpandContext,
        FullAxis,
        Input,
        Map,
        Operator,
        Pipeline,
        PipelineResult,
        Plan,
        PlanInput,
        Reader,
        Reduce,
        Report,
        Result,
        RunEvent,
        Runtime,
        Step,
        SubStep,
        TableOutput,
        TaskSize,
        hookimpl,
        open,
    )
    from minjiang.kernels import array_namespace, is_gpu_array, resolve_backend, to_host

__all__ = [
    "API_VERSION",
    "Aggregate",
    "ArrayOutput",
    "BackendFallbackWarning",
    "BlockContext",
    "ChecksumMismatchError",
    "Composite",
    "ContractError",
    "DatasetNotFoundError",
    "ExecutionError",
    "ExpandContext",
    "FullAxis",
    "Input",
    "Map",
    "MemoryBudgetError",
    "MinjiangError",
    "Operator",
    "ParameterError",
    "Pipeline",
    "PipelineError",
    "PipelineResult",
    "Plan",
    "PlanError",
    "PlanInput",
    "PluginError",
    "Reader",
    "ReaderError",
    "Reduce",
    "Report",
    "Result",
    "RunEvent",
    "Runtime",
    "Step",
    "SubStep",
    "TableOutput",
    "TaskSize",
    "__version__",
    "array_namespace",
    "hookimpl",
    "is_gpu_array",
    "open",
    "resolve_backend",
    "to_host",
]

#: lazy name -> the public module it comes from (the same as the TYPE_CHECKING imports)
_LAZY = {
    "Aggregate": "minjiang.core",
    "ArrayOutput": "minjiang.core",
    "BlockContext": "minjiang.core",
    "Composite": "minjiang.core",
    "ExpandContext": "minjiang.core",
    "FullAxis": "minjiang.core",
    "Input": "minjiang.core",
    "Map": "minjiang.core",
    "Operator": "minjiang.core",
    "PlanInput": "minjiang.core",
    "Pipeline": "minjiang.core",
    "PipelineResult": "minjiang.core",
    "Plan": "minjiang.core",
    "Reader": "minjiang.core",
    "Reduce": "minjiang.core",
    "Report": "minjiang.core",
    "Result": "minjiang.core",
    "RunEvent": "minjiang.core",
    "Runtime": "minjiang.core",
    "Step": "minjiang.core",
    "SubStep": "minjiang.core",
    "TableOutput": "minjiang.core",
    "TaskSize": "minjiang.core",
    "hookimpl": "minjiang.core",
    "open": "minjiang.core",
    "array_namespace": "minjiang.kernels",
    "is_gpu_array": "minjiang.kernels",
    "resolve_backend": "minjiang.kernels",
    "to_host": "minjiang.kernels",
}

if not TYPE_CHECKING:  # to a type checker an unknown name is an error, not Any

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'minjiang' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(__all__)
