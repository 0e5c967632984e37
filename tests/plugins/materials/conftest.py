"""Fixtures of the materials plugin tests: trajectories shipped in MDAnalysisTests.

A test whose reference package (MDAnalysis, MDAnalysisTests, freud, tidynamics, the
``validation`` extra) is missing skips.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest


def datafiles() -> Any:
    pytest.importorskip("MDAnalysis")
    return pytest.importorskip("MDAnalysisTests.datafiles")


def universe(*files: str, **kwargs: Any) -> Any:
    import MDAnalysis as mda

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mda.Universe(*files, **kwargs)


@pytest.fixture(autouse=True)
def _quiet_readers() -> Any:
    # MDAnalysis's DCD reader warns about a 3.0 behaviour change on every open
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="MDAnalysis.*")
        yield
