"""The run service: one long-lived driver per ``minjiang cluster start`` that runs
``minjiang run`` for the command line.

A Ray driver pays, in every process, for importing Ray (0.7 s on a 2-core host),
connecting, setting up serialization on its first call, finding the warm workers and
shutting down: about 1.5 s, more than a small run's work. The run service pays that
once. ``minjiang cluster start`` starts it beside the head (``python -m
minjiang.core._service SOCKET``); ``minjiang run`` with no option that asks for
another Ray (``--address``, ``RAY_ADDRESS``, ``--new-cluster``, ``--num-cpus``,
``--executor local``) sends it the run over a unix socket and prints what comes back:
the same output, the same exit status, the same typed errors.

What keeps it private and current:

* The socket is in the cluster's temp folder (0700), mode 0600, and a client of another
  user is refused (``SO_PEERCRED``).
* A client is served only when a driver it started would run the same code: the same
  interpreter, minjiang version, import path (after the script's own folder) and the
  environment read at import (:data:`IMPORT_ENV`). Otherwise it runs in its own process.
* Before each run the service checks that no module it imported changed on disk. If
  one did (a plugin was edited), it refuses that run, which the client then drives
  itself, and restarts in place (``exec``) so the next run gets the new code.
* A run gets the client's folder and environment (Ray's connection variables stay the
  service's) and runs alone: a client that comes while another runs is refused and
  drives its run itself.
* A client that goes away (Ctrl-C) interrupts its run, which stops as an interrupted
  run does in-process: chunks already written are kept and the same command resumes.

What does not come back to the client: ``print`` output of plugins in the driver and
the Ray workers' logs; they go to the service's log, ``run-service.log`` in the
cluster's state folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import struct
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["IMPORT_ENV", "RunService", "client_key", "run_on_service"]

#: Environment variables read when modules are imported: a client whose values differ
#: from the service's would run other code, so it drives its run itself.
IMPORT_ENV = ("NUMBA_", "OMP_", "MKL_", "OPENBLAS_", "PYTHON", "CUDA_", "CUPY_", "LD_")
#: Seconds a client waits to be told whether it is served.
ANSWER_S = 10.0
#: Bytes of one request, at most.
MAX_REQUEST = 1 << 20
#: What a request may set of ``cli.run_here`` (where to run is the service's choice).
RUN_ARGS = frozenset(
    {"pipeline", "inputs", "store", "executor", "memory_budget", "backend", "gpu_read", "reuse"}
)


def client_key() -> str:
    """What a driver started here shares with the service that would run for it."""
    import minjiang

    ident = {
        "python": sys.executable,
        "minjiang": minjiang.__version__,
        # sys.path[0] is the folder of the script that started the process (the
        # console script's, or the current one for ``python -m``): not the plugins'
        "path": [os.path.abspath(p) for p in sys.path[1:] if p],
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(IMPORT_ENV)},
    }
    return json.dumps(ident, sort_keys=True)


def _send(conn: socket.socket, lock: threading.Lock, **message: Any) -> None:
    data = json.dumps(message).encode() + b"\n"
    with lock:
        conn.sendall(data)


class _Stream:
    """A text file whose writes go to the client as ``{kind: text}`` messages."""

    def __init__(self, conn: socket.socket, lock: threading.Lock, kind: str, tty: bool) -> None:
        self._conn, self._lock, self._kind, self._tty = conn, lock, kind, tty

    def write(self, text: str) -> int:
        if text:
            with contextlib.suppress(OSError):  # the client left: its run is interrupted
                _send(self._conn, self._lock, **{self._kind: text})
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return self._tty


# ------------------------------------------------------------------------------- client


class _Messages:
    """The JSON lines a socket receives, until it closes. An iterator, not a generator:
    it can be read on after a KeyboardInterrupt came while it waited."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""

    def __iter__(self) -> _Messages:
        return self

    def __next__(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            data = self._sock.recv(65536)
            if not data:
                raise StopIteration
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message


def run_on_service(args: Mapping[str, Any], *, verbose: bool = False) -> int | None:
    """Run ``minjiang run`` with ``args`` on the recorded cluster's run service.

    Returns the run's exit status, or None when no service serves it (none is
    running, or it refused: the reason is printed); the caller then runs it itself.

    Raises
    ------
    ClusterError
        If the service ended during the run (the same command resumes it).
    """
    from minjiang.core._cluster import ClusterError, ClusterState

    state = ClusterState.load()
    path = state.run_socket if state is not None else ""
    if not path or not os.path.exists(path):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(ANSWER_S)
        try:
            sock.connect(path)
            request = {
                "args": dict(args),
                "key": client_key(),
                "cwd": os.getcwd(),
                "env": dict(os.environ),
                "verbose": verbose,
                "tty": {"out": sys.stdout.isatty(), "err": sys.stderr.isatty()},
                "width": _width(),
            }
            sock.sendall(json.dumps(request).encode() + b"\n")
            messages = _Messages(sock)
            answer = next(messages, None)
        except (OSError, ValueError):
            return None  # not listening (it restarts, or the cluster stopped)
        if answer is None or not answer.get("accepted"):
            why = (answer or {}).get("why", "it closed the connection")
            sys.stderr.write(f"note: this run drives Ray itself (the run service: {why})\n")
            return None
        sock.settimeout(None)
        try:
            try:
                return _relay(messages)
            except KeyboardInterrupt:
                # as in-process: the run stops, keeping what it wrote, before this exits
                sock.shutdown(socket.SHUT_WR)
                try:
                    return _relay(messages)
                except KeyboardInterrupt:  # a second Ctrl-C: do not wait for it
                    return 130
        except (OSError, ValueError, EOFError):
            pass
        raise ClusterError(
            "the run service ended during the run (its log: run-service.log in the "
            "cluster's state folder); chunks already written are kept: run the same "
            "command to resume, or add --new-cluster to drive it from this process"
        )
    finally:
        sock.close()


def _relay(messages: _Messages) -> int:
    """Print what the service sends until the run's exit status, which it returns."""
    for message in messages:
        if "out" in message:
            sys.stdout.write(message["out"])
            sys.stdout.flush()
        elif "err" in message:
            sys.stderr.write(message["err"])
            sys.stderr.flush()
        elif "exit" in message:
            return int(message["exit"])
    raise EOFError("the run service closed the connection")


def _width() -> int:
    import shutil

    return shutil.get_terminal_size((160, 24)).columns


# ------------------------------------------------------------------------------ service


class RunService:
    """Serves runs on ``path`` from the main thread of this process, which must be a
    driver connected to the cluster (``ray.init``). See the module's docstring."""

    def __init__(
        self,
        path: str,
        key: str | None = None,
        environ: Mapping[str, str] | None = None,
        restart: Any = None,
    ) -> None:
        from minjiang.core._warm import ModuleStamps

        self.path = path
        self.key = key or client_key()
        #: the environment it started with, which a restart starts with again (importing
        #: Ray sets variables of its own, PYTHONBREAKPOINT among them)
        self.environ = dict(environ if environ is not None else os.environ)
        self.modules = ModuleStamps()
        self.runs = 0  #: runs served (the number of the one in progress, while one runs)
        self._running = False
        self._interrupted = -1  #: the run a client's leaving asked to interrupt
        self._restart = restart or _exec_again
        self._busy = threading.Lock()
        self._work: queue.Queue[tuple[socket.socket, dict[str, Any]]] = queue.Queue()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self._listener.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self._listener.listen(16)

    def serve_forever(self) -> None:
        """Accept clients on a thread; run the runs on this one (the main thread, where a
        SIGINT interrupts the run in progress and nothing else)."""
        signal.signal(signal.SIGINT, self._interrupt)
        threading.Thread(target=self._accept, name="minjiang-run-service", daemon=True).start()
        while True:
            conn, request = self._work.get()
            try:
                self._run(conn, request)
            finally:
                with contextlib.suppress(OSError):  # wakes its watcher, if still reading
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
                self._busy.release()

    def _interrupt(self, signum: int, frame: Any) -> None:
        """SIGINT: a client left (or Ctrl-C'd) its run; between runs it is ignored."""
        if self._running and self._interrupted == self.runs:
            raise KeyboardInterrupt

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._admit, args=(conn,), daemon=True).start()

    def close(self) -> None:
        """Stop listening and remove the socket."""
        self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _admit(self, conn: socket.socket) -> None:
        """Read a request and queue it (holding the service busy until the run is
        over), or answer why not and close."""
        lock = threading.Lock()
        queued = False
        try:
            conn.settimeout(ANSWER_S)
            request = _request(conn)
            why = self._refusal(conn, request)
            if why is None and not self._busy.acquire(blocking=False):
                why = "busy with another run"
            if why is not None:
                _send(conn, lock, accepted=False, why=why)
                return
            try:
                stale = self.modules.changed()
                if stale:
                    _send(conn, lock, accepted=False, why=f"{stale[0]} changed; it restarts")
                else:
                    conn.settimeout(None)
                    _send(conn, lock, accepted=True)
                    self._work.put((conn, request))
                    queued = True
            finally:
                if not queued:  # a client gone before it was answered leaves it free
                    self._busy.release()
            if stale:
                conn.close()
                self._restart(self)
        except (OSError, ValueError) as err:
            with contextlib.suppress(OSError):
                _send(conn, lock, accepted=False, why=f"bad request ({type(err).__name__})")
        finally:
            if not queued:
                conn.close()

    def _refusal(self, conn: socket.socket, request: dict[str, Any]) -> str | None:
        """Why ``request`` is not served here, or None."""
        if hasattr(socket, "SO_PEERCRED"):
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            if struct.unpack("3i", creds)[1] != os.getuid():
                return "a client of another user"
        if request.get("key") != self.key:
            return (
                "it runs another interpreter, minjiang version, import path or "
                f"import-time environment ({', '.join(p + '*' for p in IMPORT_ENV)})"
            )
        return None

    def _run(self, conn: socket.socket, request: dict[str, Any]) -> None:
        """One run, in the client's folder and environment, its output sent back."""
        from minjiang.core import cli
        from minjiang.core.errors import MinjiangError
        from rich.console import Console

        lock = threading.Lock()
        tty, width = request.get("tty", {}), int(request.get("width", 160))
        out, err = (
            Console(
                file=_Stream(conn, lock, kind, bool(tty.get(kind))),  # type: ignore[arg-type]
                force_terminal=bool(tty.get(kind)),
                width=width,
            )
            for kind in ("out", "err")
        )
        self._running = True
        threading.Thread(target=self._watch, args=(conn, self.runs), daemon=True).start()
        code = 1
        try:
            with _client_context(request, err):
                code = cli.run_here(
                    **request["args"], progress=err if tty.get("err") else False, out=out, err=err
                )
        except MinjiangError as error:
            cli.report_error(error, err, verbose=bool(request.get("verbose")))
            code = 2
        except KeyboardInterrupt:  # run_here reports one; this one came as it ended
            code = 130
        except Exception:  # a bug: the client sees what an in-process run would print
            err.print(traceback.format_exc(), markup=False, highlight=False)
        finally:
            self._running = False
            self.runs += 1
        with contextlib.suppress(OSError):
            _send(conn, lock, exit=code)

    def _watch(self, conn: socket.socket, run: int) -> None:
        """Interrupt run number ``run``, as Ctrl-C does in-process, when its client
        stops sending (it was interrupted, or died); a later run is left alone."""
        with contextlib.suppress(OSError):
            while conn.recv(4096):
                pass
        if self._running and self.runs == run:
            self._interrupted = run
            os.kill(os.getpid(), signal.SIGINT)


def _request(conn: socket.socket) -> dict[str, Any]:
    buf = b""
    while b"\n" not in buf:
        data = conn.recv(65536)
        if not data:
            raise ValueError("the client sent no request")
        buf += data
        if len(buf) > MAX_REQUEST:
            raise ValueError("the request is too long")
    request = json.loads(buf.split(b"\n", 1)[0])
    if not isinstance(request, dict) or not isinstance(request.get("args"), dict):
        raise ValueError("the request is not a run")
    if not set(request["args"]) <= RUN_ARGS:
        raise ValueError(f"a run takes only {sorted(RUN_ARGS)}")
    return request


@contextlib.contextmanager
def _client_context(request: dict[str, Any], err: Any) -> Iterator[None]:
    """The client's folder, environment (Ray's variables stay ours) and warnings."""
    import logging

    env_before = dict(os.environ)
    cwd_before = os.getcwd()
    handler = logging.StreamHandler(err.file)
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("minjiang")
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update({k: v for k, v in request["env"].items() if not k.startswith("RAY_")})
        os.environ.update({k: v for k, v in env_before.items() if k.startswith("RAY_")})
        logger.addHandler(handler)
        yield
    finally:
        logger.removeHandler(handler)
        os.environ.clear()
        os.environ.update(env_before)
        os.chdir(cwd_before)


def _exec_again(service: RunService) -> None:
    """Restart this process in place, so that it imports the code now on disk."""
    sys.stdout.flush()
    sys.stderr.flush()
    service.close()
    argv = [sys.executable, "-m", "minjiang.core._service", service.path]
    os.execve(sys.executable, argv, service.environ)


def main(argv: list[str] | None = None) -> None:
    """``python -m minjiang.core._service SOCKET``: connect to the recorded cluster and
    serve runs on ``SOCKET`` until the process is ended (``minjiang cluster stop``)."""
    (path,) = argv if argv is not None else sys.argv[1:]
    # before Ray's import puts its folders on the import path and sets variables
    key, environ = client_key(), dict(os.environ)
    from minjiang.core._cluster import ClusterState
    from minjiang.core._executors import RayExecutor

    state = ClusterState.load()
    if state is None:
        raise SystemExit("no minjiang cluster is recorded: nothing to serve")
    # connected as any run's driver would be (token, loopback), for the service's life
    executor = RayExecutor(address=state.address)
    executor.connect()
    # what a run imports, paid now: the planner, the storage layer, the command line,
    # and the warm workers, gathered (or started) before the first run asks
    import minjiang.core._execution
    import minjiang.core.cli
    import minjiang.storage  # noqa: F401

    executor.warm_pool()  # kept for the process's life (WarmPool.shared)
    service = RunService(path, key, environ)
    print(f"run service: serving on {path}, pid {os.getpid()}", flush=True)
    service.serve_forever()


if __name__ == "__main__":
    main()
