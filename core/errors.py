"""The one exception hierarchy of minjiang.

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
    "ContractError",
    "DatasetNotFoundError",
    "ExecutionError",
    "InvalidNameError",
    "KeyNotFoundError",
    "MemoryBudgetError",
    "MinjiangError",
    "OperatorNotFoundError",
    "ParameterError",
    "PipelineError",
    "PlanError",
    "PluginError",
    "ReaderError",
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


class ExecutionError(MinjiangError, RuntimeError):
    """A task failed for a reason that retrying will not fix."""


class StoreError(MinjiangError, OSError):
    """The store cannot be read or written as required."""


class KeyNotFoundError(StoreError, FileNotFoundError):
    """A key (file or object) is not in the store."""


class InvalidNameError(MinjiangError, ValueError):
    """A dataset, array or table name is not allowed (it could escape the store)."""


class DatasetNotFoundError(MinjiangError, FileNotFoundError):
    """No committed dataset has that name or id."""


class ChecksumMismatchError(MinjiangError, OSError):
    """A stored chunk does not match the checksum recorded when it was written."""


class ReaderError(MinjiangError, ValueError):
    """A source file cannot be ingested (malformed, unsupported, or quarantined)."""


class BackendFallbackWarning(UserWarning):
    """A step asked for ``auto`` ran on a slower backend than it could have used."""
