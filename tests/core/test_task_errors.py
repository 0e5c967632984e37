"""A kernel that raises: the driver's error names the operator, the task and its block,
and keeps the original's type, its traceback and the original as its cause, on the
local executor and on Ray; `minjiang --verbose` prints the task's traceback."""

from __future__ import annotations

import numpy as np
import pytest
from minjiang.core.errors import ExecutionError

from tests._data import ingest_array
from tests.core import _slowops


def _failing_run(rt, tmp_path):
    rt.register(_slowops, name="slowops")
    x = np.arange(4000.0).reshape(4, 1000)
    src = ingest_array(rt, tmp_path, "t/x", x, ("y", "x"), (4, 100))
    pipe = {
        "steps": [
            {"id": "f", "operator": "testlab.fails", "inputs": {"x": src.id}, "params": {"task": 1}}
        ]
    }
    tasks = [t for s in rt.plan(pipe).steps[-1].stages for t in s.tasks]
    assert len(tasks) > 1
    with pytest.raises(ExecutionError) as info:
        rt.run_pipeline(pipe)
    return info.value, tasks[1].region


def _check(err, region):
    (y0, y1), (x0, x1) = ((s.start, s.stop) for s in region)
    assert "of testlab.fails" in str(err) and "task map/000001" in str(err)
    assert f"block y={y0}:{y1}, x={x0}:{x1}" in str(err)
    assert f"ZeroDivisionError: no way to divide block slice({x0}, {x1}, None)" in str(err)
    assert err.cause_type == "builtins.ZeroDivisionError"
    assert (err.task, err.operator) == ("map/000001", "testlab.fails")
    assert err.region == {"y": (y0, y1), "x": (x0, x1)}
    assert "fail_in_one_task" in err.details and "raise ZeroDivisionError" in err.details


def test_a_kernel_error_on_the_local_executor(tmp_path, minjiang_store):
    from minjiang.core import Runtime

    with Runtime(store=minjiang_store, executor="local", memory_budget="64KiB") as rt:
        err, region = _failing_run(rt, tmp_path)
    _check(err, region)
    assert isinstance(err.__cause__, ZeroDivisionError)


@pytest.mark.ray
def test_a_kernel_error_on_ray_keeps_the_workers_traceback(tmp_path, ray_session, minjiang_store):
    from minjiang.core import Runtime

    with Runtime(store=minjiang_store, executor="ray", memory_budget="64KiB") as rt:
        err, region = _failing_run(rt, tmp_path)
    _check(err, region)
    assert isinstance(err.__cause__, ZeroDivisionError)


def test_verbose_prints_the_tasks_traceback(tmp_path, capsys):
    from minjiang.core import cli
    from minjiang.core._runtime import Runtime

    store = tmp_path / "store"
    with Runtime(store=store, executor="local") as rt:
        src = ingest_array(rt, tmp_path, "t/x", np.arange(40.0).reshape(4, 10), ("y", "x"), (4, 5))
    pipe = tmp_path / "p.yaml"
    pipe.write_text(
        "steps:\n  - id: f\n    operator: testlab.fails\n"
        f"    inputs: {{x: {src.id}}}\n    params: {{task: 0}}\n"
    )
    args = ["run", str(pipe), "--store", str(store), "--executor", "local"]
    # the plugin reaches the CLI's runtime through an entry-point-free registration
    import minjiang.core._plugins as plugins

    real = plugins.make_plugin_manager

    def with_slowops(extra=(), **kw):
        return real([*extra, _slowops], **kw)

    plugins_mp = pytest.MonkeyPatch()
    plugins_mp.setattr(plugins, "make_plugin_manager", with_slowops)
    import minjiang.core._runtime as runtime_mod

    plugins_mp.setattr(runtime_mod, "make_plugin_manager", with_slowops)
    try:
        for verbose in (False, True):
            with pytest.raises(SystemExit) as code:
                cli.main((["--verbose"] if verbose else []) + args)
            assert code.value.code == 2
            err = capsys.readouterr().err
            assert "testlab.fails" in err and "block y=0:4, x=0:" in err
            assert ("raise ZeroDivisionError" in err) == verbose
    finally:
        plugins_mp.undo()
        cli._VERBOSE = False
