"""The exception hierarchy, as ``minjiang.core.errors`` (defined in :mod:`minjiang.errors`,
which storage and core both import)."""

from __future__ import annotations

from minjiang import errors as _errors
from minjiang.errors import *  # noqa: F403  (the same classes, re-exported)

__all__ = list(_errors.__all__)
