"""The reliability suite: chaos (killed workers and drivers), corruption, concurrency,
fuzzing and memory. Each test asserts its promise and writes one JSON line of figures
to the reliability report, so ``docs/reliability.md`` quotes measured numbers.

The report goes to ``$MINJIANG_RELIABILITY_REPORT`` when set, else to
``reliability-report.jsonl`` in the pytest base temporary folder (its path is printed
at the end of the session).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

_REPORT: list[Path] = []


def _report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _REPORT:
        env = os.environ.get("MINJIANG_RELIABILITY_REPORT")
        path = Path(env) if env else tmp_path_factory.getbasetemp() / "reliability-report.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        _REPORT.append(path)
    return _REPORT[0]


@pytest.fixture
def reliability_report(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., dict[str, Any]]:
    """``reliability_report(**figures)`` appends one JSON line for the calling test."""
    path = _report_path(tmp_path_factory)

    def write(**figures: Any) -> dict[str, Any]:
        line = {
            "test": request.node.nodeid,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": platform.node(),
            **figures,
        }
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True, default=str) + "\n")
        return line

    return write


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPORT and _REPORT[0].exists():
        terminalreporter.write_line(f"reliability report: {_REPORT[0]}")
