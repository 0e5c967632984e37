"""The exception hierarchy, as ``minjiang.core.errors`` (defined in :mod:`minjiang.errors`)."""

from __future__ import annotations

from minjiang.errors import (
    BackendFallbackWarning,
    BackendUnavailableError,
    ChecksumMismatchError,
    ContractError,
    DatasetNotFoundError,
    ExecutionError,
    IntegrityError,
    InvalidNameError,
    KeyNotFoundError,
    MemoryBudgetError,
    MinjiangError,
    MissingChunkError,
    OperatorNotFoundError,
    ParameterError,
    PipelineError,
    PlanError,
    PluginError,
    ReaderError,
    RecordIntegrityError,
    StoreError,
)

__all__ = [
    "BackendFallbackWarning",
    "BackendUnavailableError",
    "ChecksumMismatchError",
    "ContractError",
    "DatasetNotFoundError",
    "ExecutionError",
    "IntegrityError",
    "InvalidNameError",
    "KeyNotFoundError",
    "MemoryBudgetError",
    "MinjiangError",
    "MissingChunkError",
    "OperatorNotFoundError",
    "ParameterError",
    "PipelineError",
    "PlanError",
    "PluginError",
    "ReaderError",
    "RecordIntegrityError",
    "StoreError",
]
