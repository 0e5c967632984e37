"""A fault-injecting HTTP proxy for the object-store tests.

:class:`FaultProxy` listens on 127.0.0.1 and sits between an S3 client (s3fs,
botocore) and an S3 server (moto on loopback): the client's ``endpoint_url`` is the
proxy's, and every request it sends travels through here. Each request is read whole,
checked against the active :class:`Fault` rules, then either answered by the proxy
(an error status, a reset connection) or forwarded to the server on a fresh
connection, whose response is relayed (possibly truncated or delayed).

One request per client connection: the proxy answers with ``Connection: close``, so a
client reconnects for its next request and a reset never takes other requests with it.
Every request is logged (:attr:`FaultProxy.requests`) with the fault applied to it, so
tests count the attempts a client made.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
from dataclasses import dataclass, field

__all__ = ["Fault", "FaultProxy", "ProxiedRequest"]

KINDS = ("status", "reset", "reset_after", "truncate", "slow")


@dataclass
class Fault:
    """A rule: which requests it hits and what happens to them.

    Attributes
    ----------
    kind : str
        ``status``: answer ``status`` without forwarding (the server never sees it);
        ``reset``: reset the connection (TCP RST) without forwarding; ``reset_after``:
        forward (the server applies the request) and reset instead of answering, so the
        client never learns it succeeded; ``truncate``: forward and relay the response's
        headers with only ``keep`` bytes of its body, then close; ``slow``: forward and
        hold the response ``delay`` seconds before relaying it.
    method, path : str, optional
        Only requests with this HTTP method and whose path matches this regular
        expression (``re.search``) count.
    skip : int
        Let this many matching requests through untouched first.
    times : int or None
        Hit this many matching requests after the skipped ones; None: every one.
    """

    kind: str
    method: str | None = None
    path: str | None = None
    skip: int = 0
    times: int | None = 1
    status: int = 503
    keep: int = 0
    delay: float = 0.0
    seen: int = field(default=0, init=False)
    hits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        return self.path is None or re.search(self.path, path) is not None

    def take(self, method: str, path: str) -> bool:
        """Whether this request is hit (counts it)."""
        if not self.matches(method, path):
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


@dataclass(frozen=True)
class ProxiedRequest:
    """One request the proxy received: method, path (query included), the fault applied."""

    method: str
    path: str
    fault: str | None
    status: int | None


_REASONS = {500: "Internal Server Error", 503: "Service Unavailable", 502: "Bad Gateway"}
_CODES = {500: "InternalError", 503: "SlowDown", 502: "BadGateway"}


def _error_response(status: int) -> bytes:
    code = _CODES.get(status, "InternalError")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>injected by the test proxy</Message>"
        "<RequestId>proxy</RequestId></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head + body


class _Closed(Exception):
    pass


def _read_until(sock: socket.socket, buf: bytearray, marker: bytes) -> int:
    while True:
        at = buf.find(marker)
        if at >= 0:
            return at
        data = sock.recv(65536)
        if not data:
            raise _Closed
        buf += data


def _read_exact(sock: socket.socket, buf: bytearray, n: int) -> bytes:
    while len(buf) < n:
        data = sock.recv(65536)
        if not data:
            raise _Closed
        buf += data
    out = bytes(buf[:n])
    del buf[:n]
    return out


def _read_chunked(sock: socket.socket, buf: bytearray) -> bytes:
    """A chunked body, raw (as it is to be forwarded)."""
    out = bytearray()
    while True:
        end = _read_until(sock, buf, b"\r\n")
        line = _read_exact(sock, buf, end + 2)
        out += line
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # trailers, up to an empty line
            while True:
                end = _read_until(sock, buf, b"\r\n")
                line = _read_exact(sock, buf, end + 2)
                out += line
                if line == b"\r\n":
                    return bytes(out)
        out += _read_exact(sock, buf, size + 2)


def _reset(sock: socket.socket) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream`` (``host``, ``port``).

    Use it as a context manager or call :meth:`start` / :meth:`stop`. Add rules with
    :meth:`add` (or :meth:`faults` as a context manager that removes them afterwards).
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.rules: list[Fault] = []
        self.requests: list[ProxiedRequest] = []
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(128)
        self.port = int(self._server.getsockname()[1])
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="s3-fault-proxy", daemon=True)
        self._held: set[socket.socket] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        try:
            self._server.close()
        finally:
            with self._lock:
                held = list(self._held)
            for sock in held:
                try:
                    sock.close()
                except OSError:
                    pass
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- rules
    def add(self, *faults: Fault) -> None:
        with self._lock:
            self.rules.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.requests.clear()

    def faulted(self) -> list[ProxiedRequest]:
        with self._lock:
            return [r for r in self.requests if r.fault is not None]

    def matching(self, method: str | None = None, path: str | None = None) -> list[ProxiedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method)
                and (path is None or re.search(path, r.path))
            ]

    def _choose(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for rule in self.rules:
                if rule.take(method, path):
                    return rule
        return None

    def _log(self, method: str, path: str, fault: Fault | None, status: int | None) -> None:
        with self._lock:
            self.requests.append(
                ProxiedRequest(method, path, fault.kind if fault else None, status)
            )

    # ---------------------------------------------------------------- serving
    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            self._held.add(client)
        try:
            self._serve_one(client)
        except (_Closed, OSError):
            pass
        finally:
            with self._lock:
                self._held.discard(client)
            try:
                client.close()
            except OSError:
                pass

    def _serve_one(self, client: socket.socket) -> None:
        buf = bytearray()
        end = _read_until(client, buf, b"\r\n\r\n")
        head = _read_exact(client, buf, end + 4).decode("latin-1")
        request_line, *header_lines = head[:-4].split("\r\n")
        method, path, _version = request_line.split(" ", 2)
        headers: list[tuple[str, str]] = []
        for line in header_lines:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        lower = {k.lower(): v for k, v in headers}
        if lower.get("expect", "").lower() == "100-continue":
            client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in lower.get("transfer-encoding", "").lower():
            body = _read_chunked(client, buf)
        else:
            body = _read_exact(client, buf, int(lower.get("content-length", "0") or 0))

        fault = self._choose(method, path)
        if fault is not None and fault.kind == "status":
            self._log(method, path, fault, fault.status)
            client.sendall(_error_response(fault.status))
            return
        if fault is not None and fault.kind == "reset":
            self._log(method, path, fault, None)
            _reset(client)
            return

        forwarded = [
            (k, v)
            for k, v in headers
            if k.lower() not in {"connection", "keep-alive", "expect", "proxy-connection"}
        ]
        upstream_request = (
            f"{method} {path} HTTP/1.1\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in forwarded)
            + "Connection: close\r\n\r\n"
        ).encode("latin-1") + body
        with socket.create_connection(self.upstream, timeout=60) as up:
            up.sendall(upstream_request)
            chunks = []
            while True:
                data = up.recv(65536)
                if not data:
                    break
                chunks.append(data)
        response = b"".join(chunks)
        status_line = response.split(b"\r\n", 1)[0].split(b" ")
        status = int(status_line[1]) if len(status_line) > 1 else None
        self._log(method, path, fault, status)
        if fault is not None and fault.kind == "reset_after":
            _reset(client)
            return
        if fault is not None and fault.kind == "slow":
            # hold the response; stop() closes the connection early
            if self._stopping.wait(fault.delay):
                return
        if fault is not None and fault.kind == "truncate":
            split = response.find(b"\r\n\r\n")
            if split >= 0:
                response = response[: split + 4 + fault.keep]
            client.sendall(response)  # then a clean close: the body ends early
            return
        client.sendall(_relay(response))


def _relay(response: bytes) -> bytes:
    """The response with its Connection header set to close (one request per connection)."""
    split = response.find(b"\r\n\r\n")
    if split < 0:
        return response
    head, body = response[:split].decode("latin-1"), response[split + 4 :]
    lines = head.split("\r\n")
    kept = [lines[0]] + [
        line for line in lines[1:] if line.split(":", 1)[0].strip().lower() != "connection"
    ]
    return ("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1") + body
