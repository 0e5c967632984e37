"""Shared fixtures: the ``minjiang.core.testing`` plugin provides ``runtime``,
``ray_runtime``, ``ray_session`` and ``minjiang_store``; this adds data helpers."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator (the same numbers on every run)."""
    return np.random.default_rng(20261129)
