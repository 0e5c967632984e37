"""The one exception hierarchy of minjiang (``minjiang.errors``).

It lives in the top-level package so that every layer imports it without importing
another: ``minjiang.storage`` and ``minjiang.core`` both depend on this module, never
on each other for their errors (``minjiang.core.errors`` re-exports it).

Every leaf also inherits the builtin exception that users already catch, so
``except FileNotFoundError`` keeps working around ``minjiang.open``. Messages say
what failed, the offending value, what was expected and how to fix it; they never
carry data values or DICOM tag values (shapes, dtypes, ids and chunk keys only).
"""

from __future__ import annotations

__all__ = [
    "BackendFallbackWarning",
    "BackendUnavailableError",
    "ChecksumMismatchError",
    "ClusterError",
    "ContractError",
    "DatasetNotFoundError",
    "ExecutionError",
    "InfeasibleTaskError",
    "IntegrityError",
    "InvalidNameError",
    "KeyNotFoundError",
    "MemoryBudgetError",
    "MinjiangError",
    "MissingChunkError",
    "OperatorNotFoundError",
    "OutputChangedError",
    "ParameterError",
    "PipelineError",
    "PlanError",
    "PluginError",
    "ReaderError",
    "RecordIntegrityError",
    "StoreError",
]


class MinjiangError(Exception):
    """Base class of every error minjiang raises on purpose."""


class PluginError(MinjiangError, RuntimeError):
    """A plugin could not be loaded or broke its hook contract."""


class OperatorNotFoundError(MinjiangError, KeyError):
    """No registered operator (or reader) has that name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ParameterError(MinjiangError, ValueError):
    """Operator or reader parameters failed validation."""


class ContractError(MinjiangError, ValueError):
    """An input does not satisfy an operator's contract (dims, dtypes, shapes)."""


class PipelineError(MinjiangError, ValueError):
    """A pipeline document or object is malformed (unknown keys, cycles, bad refs)."""


class PlanError(MinjiangError, ValueError):
    """A plan cannot be built or would not be feasible."""


class MemoryBudgetError(PlanError):
    """A task of the plan would need more memory than the budget allows."""


class BackendUnavailableError(PlanError):
    """A backend (for example ``gpu``) was asked of a cluster that cannot provide it."""


class InfeasibleTaskError(PlanError):
    """A task asks for resources that no node of the cluster has (Ray would leave it
    pending forever)."""


class ClusterError(MinjiangError, RuntimeError):
    """A cluster cannot be started, found, attached to or stopped."""


class ExecutionError(MinjiangError, RuntimeError):
    """A task failed for a reason that retrying will not fix.

    When a kernel raised, the error names the operator, the task and its block, and
    carries ``cause_type`` (the original exception's qualified type name), ``task``,
    ``operator``, ``region`` (dim -> (start, stop)) and ``details`` (the task's
    traceback, from the worker on Ray); the original exception is its ``__cause__``.
    """

    cause_type: str = ""
    task: str = ""
    operator: str = ""
    region: dict[str, tuple[int, int]] | None = None
    details: str = ""


class OutputChangedError(ExecutionError):
    """An operator recomputed a committed dataset and got different bytes: its output
    changed without a version bump. The committed dataset is left untouched."""


class StoreError(MinjiangError, OSError):
    """The store cannot be read or written as required."""


class KeyNotFoundError(StoreError, FileNotFoundError):
    """A key (file or object) is not in the store."""


class InvalidNameError(MinjiangError, ValueError):
    """A dataset, array or table name is not allowed (it could escape the store)."""


class DatasetNotFoundError(MinjiangError, FileNotFoundError):
    """No committed dataset has that name or id."""


class IntegrityError(MinjiangError, OSError):
    """A stored dataset is not what its catalog record says it is.

    The base of :class:`ChecksumMismatchError`, :class:`MissingChunkError` and
    :class:`RecordIntegrityError`: ``except IntegrityError`` catches every way stored
    bytes can differ from their record. It is deliberately not a ``FileNotFoundError``:
    code that treats "not found" as "not produced yet" must never take a damaged
    dataset for an absent one.
    """


class ChecksumMismatchError(IntegrityError):
    """A stored chunk, table part or metadata document does not match the digest
    recorded when it was written (damaged, truncated, swapped or stale)."""


class MissingChunkError(IntegrityError):
    """A chunk the dataset should have is not in the store (a read never fills it in)."""


class RecordIntegrityError(IntegrityError):
    """A catalog record is not the one that was published: its own digest does not
    match its content, or its ``id`` differs from the key it is stored under."""


class ReaderError(MinjiangError, ValueError):
    """A source file cannot be ingested (malformed, unsupported, or quarantined)."""


class BackendFallbackWarning(UserWarning):
    """A step asked for ``auto`` ran on a slower backend than it could have used."""
