"""The run service without Ray: who it serves, what it refuses and why, and a run's
output, exit status and errors streamed back (on a real cluster, with Ctrl-C and a
restart for edited code: tests/core/test_cluster_ray.py)."""

from __future__ import annotations

import importlib
import os
import socket
import stat
import sys
import threading
import time

import pytest
from minjiang.core._cluster import ClusterState
from minjiang.core._service import RunService, _Messages, client_key, run_on_service

ARGS = {"pipeline": "p.yaml", "inputs": [], "store": None}


def test_the_key_is_what_a_driver_started_here_would_run(monkeypatch, tmp_path) -> None:
    key = client_key()
    # the script's own folder is not the plugins' (console script or `python -m`)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path[1:]])
    assert client_key() == key
    monkeypatch.setattr(sys, "path", [sys.path[0], str(tmp_path), *sys.path[1:]])
    assert client_key() != key
    monkeypatch.undo()
    monkeypatch.setenv("NUMBA_BOUNDSCHECK", "1")  # read when numba is imported
    assert client_key() != key
    monkeypatch.delenv("NUMBA_BOUNDSCHECK")
    monkeypatch.setenv("MINJIANG_STORE", str(tmp_path))  # the run's: it travels with it
    assert client_key() == key


@pytest.fixture
def service(tmp_path, monkeypatch):
    """A run service on a socket recorded as the cluster's, accepting on a thread."""
    state_dir = tmp_path / "state"
    monkeypatch.setenv("MINJIANG_CLUSTER_DIR", str(state_dir))
    sock = tmp_path / "run.sock"
    ClusterState(
        address="127.0.0.1:1",
        dashboard="http://127.0.0.1:2",
        token_path="",
        temp_dir=str(tmp_path),
        node_ip="127.0.0.1",
        num_cpus=1,
        num_gpus=0,
        started=time.time(),
        run_socket=str(sock),
    ).save(state_dir)
    restarts: list[RunService] = []
    svc = RunService(str(sock), restart=restarts.append)
    svc.restarts = restarts  # type: ignore[attr-defined]
    threading.Thread(target=svc._accept, daemon=True).start()
    yield svc
    svc.close()


def test_no_recorded_service_means_the_command_runs_itself(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MINJIANG_CLUSTER_DIR", str(tmp_path))
    assert run_on_service(ARGS) is None


def test_the_socket_is_for_its_user_only(service) -> None:
    assert stat.S_IMODE(os.stat(service.path).st_mode) == 0o600


def test_a_client_of_another_environment_is_refused(service, capsys) -> None:
    service.key = "another interpreter"
    assert run_on_service(ARGS) is None
    err = capsys.readouterr().err
    assert "note: this run drives Ray itself" in err and "import-time environment" in err


def test_a_client_that_comes_while_a_run_runs_is_refused(service, capsys) -> None:
    service._busy.acquire()
    try:
        assert run_on_service(ARGS) is None
    finally:
        service._busy.release()
    assert "busy with another run" in capsys.readouterr().err


def test_a_client_gone_before_its_answer_leaves_the_service_free(service, monkeypatch) -> None:
    import minjiang.core._service as svc_module

    send = svc_module._send

    def gone(conn, lock, **message):
        if message.get("accepted"):
            raise BrokenPipeError("the client closed its end")
        send(conn, lock, **message)

    monkeypatch.setattr(svc_module, "_send", gone)
    service.key = client_key()
    assert run_on_service(ARGS) is None
    deadline = time.monotonic() + 30
    while service._busy.locked() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not service._busy.locked() and service._work.empty()


def test_edited_code_is_refused_and_the_service_restarts(
    service, tmp_path, monkeypatch, capsys
) -> None:
    module = tmp_path / "service_probe_mod.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    service.key = client_key()
    importlib.import_module("service_probe_mod")
    try:
        service.modules.note()
        module.write_text("VALUE = 22\n")
        later = time.time() + 5
        os.utime(module, (later, later))
        assert run_on_service(ARGS) is None
        assert "service_probe_mod.py changed; it restarts" in capsys.readouterr().err
        deadline = time.monotonic() + 30  # the refusal is sent, then it restarts
        while not service.restarts and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.restarts == [service]
        assert service._busy.acquire(blocking=False)  # it holds no run for the restart
        service._busy.release()
    finally:
        sys.modules.pop("service_probe_mod", None)


@pytest.mark.parametrize(
    "request_line",
    [b'{"args": "rm -rf /"}\n', b'{"args": {"pipeline": "p.yaml", "out": null}}\n', b"[1,\n"],
)
def test_a_request_that_is_not_a_run_is_answered_and_closed(service, request_line) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(service.path)
        sock.sendall(request_line)
        answer = next(_Messages(sock))
    assert answer["accepted"] is False and answer["why"].startswith("bad request (")


def _serve_one(svc: RunService, request: dict) -> tuple[str, str, int]:
    """``request`` run by ``svc`` over a socket pair: (stdout, stderr, exit status)."""
    server, client = socket.socketpair()
    out: list[dict] = []

    def read() -> None:
        for message in _Messages(client):
            out.append(message)
            if "exit" in message:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        svc._run(server, request)
    finally:
        reader.join(60)
        client.close()
        server.close()
    stdout = "".join(m["out"] for m in out if "out" in m)
    stderr = "".join(m["err"] for m in out if "err" in m)
    (code,) = [m["exit"] for m in out if "exit" in m]
    return stdout, stderr, code


def test_a_run_comes_back_as_the_command_would_print_it(tmp_path, monkeypatch) -> None:
    from minjiang.core._demo import DEMO_PIPELINE, make_demo_inputs

    cube, regions = make_demo_inputs(tmp_path / "data", years=1, ny=4, nx=4)
    ingest = DEMO_PIPELINE.split("  - id: smooth")[0]
    (tmp_path / "ingest.yaml").write_text(ingest)
    svc = RunService(str(tmp_path / "run.sock"))
    svc.close()
    request = {
        "args": {
            "pipeline": "ingest.yaml",  # relative: the client's folder
            "inputs": [f"cube={cube}", f"regions={regions}"],
            "store": None,  # $MINJIANG_STORE of the client's environment
            "executor": "local",
        },
        "cwd": str(tmp_path),
        "env": {**os.environ, "MINJIANG_STORE": str(tmp_path / "store")},
        "tty": {"out": False, "err": False},
        "width": 200,
    }
    cwd, env = os.getcwd(), dict(os.environ)
    stdout, stderr, code = _serve_one(svc, request)
    assert code == 0, stdout + stderr
    assert "computed" in stdout and f"store: file://{tmp_path / 'store'}" in stdout
    assert (os.getcwd(), dict(os.environ)) == (cwd, env)  # its own context is back
    again, _, code = _serve_one(svc, request)
    assert code == 0 and "all 2 steps reused" in again
    # a typed error: the one red line, exit status 2; with --verbose its traceback
    request["args"]["inputs"] = [f"cube={tmp_path / 'nothing'}", f"regions={regions}"]
    stdout, stderr, code = _serve_one(svc, request)
    assert code == 2 and stderr.startswith("error: array.zarr:") and "does not exist" in stderr
    assert "Traceback" not in stderr
    _, stderr, code = _serve_one(svc, {**request, "verbose": True})
    assert code == 2 and "Traceback" in stderr and "error: array.zarr:" in stderr
