"""Shared fixtures and the operator-run check.

The ``minjiang.core.testing`` plugin provides ``runtime``, ``ray_runtime``,
``ray_session`` and ``minjiang_store``; this adds data helpers, and records what the
tests actually run:

* an operator or reader counts as run when a pipeline step naming it (a ``Runtime.run``,
  ``Runtime.ingest`` or ``Runtime.run_pipeline`` call, in-process, the CLI included)
  completes and its result was computed, not reused from the catalog;
* a pipeline counts when it is planned or run by name.

At the end of a session that ran the whole suite, every operator, reader and pipeline
the installed plugins register must have been run by some test; the session fails
with the list of those that were not (see ``tests/test_docs.py``). Set
``MINJIANG_CHECK_RUNS=1`` to apply the check to a partial run as well.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")

TESTS = Path(__file__).resolve().parent


#: what points this process's Ray client at a cluster and its token: set by attaching
#: to a cluster (minjiang cluster, job commands), so a test that attaches must not leave
#: the next test talking to that cluster's token
_RAY_CLIENT_ENV = (
    "RAY_ADDRESS",
    "RAY_AUTH_MODE",
    "RAY_AUTH_TOKEN",
    "RAY_AUTH_TOKEN_PATH",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER",
)


@pytest.fixture(autouse=True)
def _ray_client_env_restored() -> Iterable[None]:
    before = {k: os.environ.get(k) for k in _RAY_CLIENT_ENV}
    yield
    if {k: os.environ.get(k) for k in _RAY_CLIENT_ENV} == before:
        return
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    from minjiang.core._cluster import refresh_ray_auth

    refresh_ray_auth()


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator (the same numbers on every run)."""
    return np.random.default_rng(20261129)


# ---------------------------------------------------------------- what tests run
def registered_names() -> list[str]:
    """Operators, readers and pipelines of the installed plugins (entry points)."""
    from minjiang.core._plugins import Registry, make_plugin_manager

    reg = Registry(*make_plugin_manager())
    return sorted({*reg.operators, *reg.readers, *reg.pipelines})


class OperatorRuns:
    """Records what the session's tests run and, after a whole-suite run, fails the
    session when a registered operator, reader or pipeline was never run.

    Registered as the ``minjiang-operator-runs`` plugin; tests reach it through
    ``request.config.pluginmanager.get_plugin("minjiang-operator-runs")``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ran: set[str] = set()
        self.whole_suite = False
        self.deselected = 0
        self.missing: list[str] = []

    # -- recording
    def record_run(self, result: Any) -> None:
        """Record the operators and readers of a completed run (a ``PipelineResult``)."""
        for step in result.plan.pipeline.steps:
            res = result.results.get(step.id)
            if res is None or res.reused:
                continue
            self.ran.update(n for n in (step.operator, step.reader) if n)
        self.record_plan(result.plan)

    def record_plan(self, plan: Any) -> None:
        """Record the pipeline of a plan when it is a named one."""
        name = getattr(plan.pipeline, "name", None)
        if name:
            self.ran.add(name)

    def install(self) -> None:
        """Wrap ``Runtime.run_pipeline`` and ``Runtime.plan`` (which ``run`` and
        ``ingest`` go through) for the session, so every in-process run is seen."""
        from minjiang.core import Runtime

        run_pipeline, plan = Runtime.run_pipeline, Runtime.plan

        def recording_run_pipeline(rt: Any, *args: Any, **kwargs: Any) -> Any:
            result = run_pipeline(rt, *args, **kwargs)
            self.record_run(result)
            return result

        def recording_plan(rt: Any, *args: Any, **kwargs: Any) -> Any:
            result = plan(rt, *args, **kwargs)
            self.record_plan(result)
            return result

        Runtime.run_pipeline = recording_run_pipeline  # type: ignore[method-assign]
        Runtime.plan = recording_plan  # type: ignore[method-assign]
        self._restore = (Runtime, run_pipeline, plan)

    @staticmethod
    def never_run(registered: Iterable[str], ran: Iterable[str]) -> list[str]:
        """The registered names that were never run, sorted."""
        return sorted(set(registered) - set(ran))

    # -- pytest hooks
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        cfg = session.config
        whole = {self.root, self.root.parent}
        self.whole_suite = (
            all(Path(a.split("::")[0]).resolve() in whole for a in cfg.args)
            and not cfg.getoption("keyword")
            and not cfg.getoption("markexpr")
        )

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        Runtime, run_pipeline, plan = self._restore
        Runtime.run_pipeline = run_pipeline  # type: ignore[method-assign]
        Runtime.plan = plan  # type: ignore[method-assign]
        forced = os.environ.get("MINJIANG_CHECK_RUNS", "") not in ("", "0")
        whole = self.whole_suite and not self.deselected and exitstatus == 0
        if not (forced or whole) or session.shouldstop or session.shouldfail:
            return
        self.missing = self.never_run(registered_names(), self.ran)
        if self.missing:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.missing:
            terminalreporter.section("registered but never run by a test", red=True)
            for name in self.missing:
                terminalreporter.line(
                    f"{name}: no test ran it (a test must run it through a runtime; "
                    "naming it is not enough)"
                )


def pytest_configure(config: pytest.Config) -> None:
    runs = OperatorRuns(TESTS)
    runs.install()
    config.pluginmanager.register(runs, "minjiang-operator-runs")
