"""A seeded, fault-injecting HTTP reverse proxy for S3, put between botocore and the moto server.

Why: moto never fails, so retry and idempotency paths (lost answers, resets, 5xx, slow answers, a
dead endpoint) would stay untested. The proxy forwards real traffic to moto and injects faults
picked by rules, so a test can say "the 2nd UploadPart is stored but its answer is lost"::

    with start_proxy(s3.endpoint, seed=7) as proxy:
        proxy.add_rule("error_after", "UploadPart", nth=2)
        proxy.add_rule("error_before", "PutObject", probability=0.3, status=503, code="SlowDown")
        ...  # point the client or the connector config at proxy.endpoint
        assert proxy.stats.fired("error_after", "UploadPart"), proxy.stats.summary()

* Requests are named by method, query and headers (path-style addressing, which botocore uses
  for IP endpoints; see :func:`classify`). ``/moto-api/...`` passes untouched and is never faulted.
* Bodies are read in full (Content-Length or ``Transfer-Encoding: chunked``) and forwarded with a
  Content-Length. Only hop-by-hop headers (Connection, Expect, Transfer-Encoding...) are dropped;
  Host, Authorization, ``x-amz-*``, Content-MD5 and If-None-Match are kept as sent, so SigV4
  signatures still verify under moto's IAM enforcement (botocore signs none of the dropped ones).
* Decisions are taken under one lock with ``random.Random(seed)``: the same sequence of requests
  gets the same faults. Concurrent clients make the order, and so the pattern, racy.
* Resets are real TCP RSTs (SO_LINGER 0). stop() closes every socket and joins every thread.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import random
import socket
import struct
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from integration_tests.fault_rules import (
    FaultKind,
    FaultRule,
    ProxyStats,
    S3Request,
    classify,
)

logger = logging.getLogger(__name__)

__all__ = ["DeadMode", "FaultProxy", "start_proxy"]

DeadMode = Literal["503", "refuse"]

_HOP_BY_HOP = frozenset(  # content-length is recomputed, never copied
    "connection keep-alive proxy-connection te trailer transfer-encoding upgrade "  # noqa: SIM905
    "expect content-length".split()
)
MAX_BODY_BYTES = 256 * 1024 * 1024
_MAX_LINE = 65536


def _error_xml(code: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>injected by'
        " FaultProxy</Message><RequestId>FAULTPROXY</RequestId><HostId>proxy</HostId></Error>"
    ).encode()


_DEAD = {
    "503": FaultRule("error_before", status=503, code="SlowDown"),
    "refuse": FaultRule("reset_before"),
}


class _Handler(BaseHTTPRequestHandler):
    """One client connection; BaseHTTPRequestHandler gives keep-alive and ``100 Continue``."""

    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection dies eventually even without stop()
    disable_nagle_algorithm = True  # headers and body are two writes: avoid delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        """Every method lands here; faults act where the real failure would happen."""
        proxy = cast("FaultProxy", self.server)
        rule = proxy._decide(classify(self.command, self.path, self.headers.keys()))
        fault = rule.kind if rule else None
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if rule and fault == "error_early":
            # As S3 does with a request it refuses on its headers (a NoSuchUpload, say): the
            # answer goes out while the client is still sending the body, and the socket is
            # closed with that body unread.
            self.close_connection = True
            return self._answer_error(rule.status, rule.code)
        if fault == "reset_mid_request":
            if chunked:
                self.rfile.read1(4096)  # whatever part of the body has arrived
            else:
                self.rfile.read(int(self.headers.get("Content-Length") or 0) // 2)
            return self._reset()
        try:
            body, trailers = self._read_chunked() if chunked else self._read_sized()
        except ValueError as exc:  # malformed framing: answer and drop the connection
            proxy.stats._error(f"{self.command} {self.path}: {exc}")
            self.close_connection = True
            return self._answer_error(400, "IncompleteBody")
        if fault == "reset_before":
            return self._reset()
        if rule and fault == "error_before":
            return self._answer_error(rule.status, rule.code)
        if rule and fault == "delay" and proxy._stopping.wait(rule.delay_s):
            return self._reset()  # stop() during the delay: do not reach moto afterwards
        try:
            status, reason, headers, payload = self._forward(body, trailers)
        except OSError as exc:
            if not proxy._stopping.is_set():
                proxy.stats._error(f"upstream {self.command} {self.path}: {exc!r}")
            return self._answer_error(502, "FaultProxyUpstreamError")
        if fault == "reset_after":
            return self._reset()
        if rule and fault in ("error_after", "ok_with_error_body"):
            ok = fault == "ok_with_error_body"  # status 200, S3's way on Complete/Copy
            return self._answer_error(200 if ok else rule.status, rule.code)
        self._answer(status, reason, headers, payload)

    do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_GET

    def _read_sized(self) -> tuple[bytes, list[tuple[str, str]]]:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ValueError(f"Content-Length {length} out of range")
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionResetError("client closed mid-body")
        return body, []

    def _read_chunked(self) -> tuple[bytes, list[tuple[str, str]]]:
        """De-chunk the body; trailer fields become headers of the forwarded request."""
        parts: list[bytes] = []
        total = 0
        while size := int(self.rfile.readline(_MAX_LINE).split(b";", 1)[0].strip() or b"-", 16):
            total += size
            if total > MAX_BODY_BYTES or size < 0:
                raise ValueError(f"bad chunk size {size}")
            chunk = self.rfile.read(size + 2)
            if len(chunk) < size + 2:
                raise ConnectionResetError("client closed mid-chunk")
            parts.append(chunk[:size])
        trailers = []
        while (line := self.rfile.readline(_MAX_LINE)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            trailers.append((name.strip(), value.strip()))
        return b"".join(parts), trailers

    def _forward(
        self, body: bytes, trailers: list[tuple[str, str]]
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send the request to moto on a fresh connection and read the whole answer."""
        proxy = cast("FaultProxy", self.server)
        upstream = http.client.HTTPConnection(*proxy.upstream, timeout=proxy.upstream_timeout)
        try:
            upstream.connect()
            proxy._track(upstream.sock)
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in [*self.headers.items(), *trailers]:
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            if body or "Content-Length" in self.headers or self.command in ("PUT", "POST"):
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            payload = response.read()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            length = response.getheader("Content-Length")
            if self.command == "HEAD" and length is not None:  # HEAD: the object's size
                headers.append(("Content-Length", length))
            return response.status, response.reason, headers, payload
        finally:
            proxy._track(upstream.sock, add=False)
            upstream.close()

    def _answer(
        self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        if self.command != "HEAD" and status >= 200 and status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _answer_error(self, status: int, code: str) -> None:
        """An S3 error document (no body for HEAD, where botocore reads only the status)."""
        head = self.command == "HEAD"
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", "FAULTPROXY")]
        headers += [("Content-Length", "0")] if head else []
        body = b"" if head else _error_xml(code)
        self._answer(status, http.client.responses.get(status, "Error"), headers, body)

    def _reset(self) -> None:
        self.close_connection = True
        cast("FaultProxy", self.server)._reset_socket(self.connection)


class FaultProxy:
    """The proxy: rules (:meth:`add_rule`), :meth:`go_dead`/:meth:`revive`, :attr:`stats`."""

    def __init__(
        self, upstream: str, seed: int = 0, *, max_connections: int = 64, timeout: float = 60.0
    ) -> None:
        parsed = urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
            raise ValueError(f"upstream must be http://HOST:PORT, got {upstream!r}")
        self.upstream: tuple[str, int] = (parsed.hostname, parsed.port)
        self.upstream_timeout = timeout
        self.port = 0
        self.stats = ProxyStats()
        self._rng = random.Random(seed)
        self._rules: list[FaultRule] = []
        self._dead: DeadMode | None = None
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)  # at most that many threads
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._placeholder: socket.socket | None = None  # bound, not listening: keeps the port
        self._accept: tuple[threading.Thread, threading.Event] | None = None
        self._clients: set[socket.socket] = set()
        self._upstreams: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()

    @property
    def endpoint(self) -> str:
        if not self.port:
            raise RuntimeError("proxy not started")
        return f"http://127.0.0.1:{self.port}"

    def add_rule(
        self,
        kind: FaultKind,
        operations: str | Iterable[str] | None = None,
        *,
        probability: float = 1.0,
        nth: int | None = None,
        first: int | None = None,
        times: int | None = None,
        conditional: bool | None = None,
        status: int = 500,
        code: str = "InternalError",
        delay_s: float = 0.0,
    ) -> FaultRule:
        """Add a :class:`FaultRule` (same fields); when several fire, the earliest added wins."""
        ops = frozenset([operations] if isinstance(operations, str) else operations or ())
        rule = FaultRule(
            kind, ops or None, probability, nth, first, times, conditional, status, code, delay_s
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def reset(self, seed: int = 0) -> None:
        """Back to a fresh state (no rules, new stats, reseeded, alive): reuse across tests."""
        self.revive()
        with self._lock:
            self._rules.clear()
            self._rng.seed(seed)
            self.stats = ProxyStats()

    def _decide(self, request: S3Request) -> FaultRule | None:
        """Count the request and pick its fault, under the lock so draws follow arrival order."""
        if request.operation == "MotoApi":
            self.stats._record(request.operation, None)
            return None
        with self._lock:
            chosen = _DEAD[self._dead] if self._dead else None
            for rule in self._rules:
                if rule.matches(request):
                    rule.seen += 1
                    if chosen is None and rule.due() and self._draw(rule.probability):
                        rule.fired += 1
                        chosen = rule
            label = f"dead_{self._dead}" if self._dead else chosen.kind if chosen else None
            self.stats._record(request.operation, label)
            return chosen

    def _draw(self, probability: float) -> bool:
        return probability >= 1.0 or self._rng.random() < probability

    def go_dead(self, mode: DeadMode = "503") -> None:
        """``"503"``: answer every S3 request 503 SlowDown. ``"refuse"``: refuse connections.

        Refusing closes the listener and the open client connections (so pooled connections are
        not reused) and keeps the port bound, not listening, so :meth:`revive` gets it back.
        """
        with self._lock:
            self._dead = mode
        if mode == "refuse" and self._listener is not None:
            self._close_listener()
            with contextlib.suppress(OSError):  # port taken meanwhile: revive() tries again
                self._placeholder = _bound_socket(self.port)
            self._shutdown_all(upstreams=False)

    def revive(self) -> None:
        """Serve normally again, listening on the same port after ``go_dead("refuse")``."""
        with self._lock:
            self._dead = None
        if self._listener is None and self.port and not self._stopping.is_set():
            self._listen()

    def start(self) -> FaultProxy:
        if self._listener is None:
            self._listen()
        return self

    def stop(self) -> None:
        """Close every socket and join every thread (idempotent)."""
        self._stopping.set()
        self._close_listener()
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        self._shutdown_all(upstreams=True)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _listen(self) -> None:
        sock = self._placeholder or _bound_socket(self.port)
        self._placeholder = None
        sock.listen(64)
        sock.settimeout(0.1)  # the accept loop polls its stop flag
        self._listener, self.port = sock, sock.getsockname()[1]
        stop = threading.Event()
        thread = threading.Thread(target=self._accept_loop, args=(sock, stop), daemon=True)
        self._accept = (thread, stop)
        thread.start()

    def _close_listener(self) -> None:
        if self._accept is not None:
            self._accept[1].set()
            self._accept[0].join()
            self._accept = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept_loop(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self._slots.acquire(timeout=0.1):
                continue
            try:
                conn, address = listener.accept()
            except OSError:  # timeout (poll the flag again) or listener closed
                self._slots.release()
                continue
            conn.settimeout(None)
            thread = threading.Thread(target=self._serve, args=(conn, address), daemon=True)
            with self._lock:
                self._clients.add(conn)
                self._threads.add(thread)
            thread.start()

    def _serve(self, conn: socket.socket, address: Any) -> None:
        try:
            _Handler(conn, address, cast(Any, self))
        except OSError as exc:  # client went away, reset injected, or stop() shut the socket
            logger.debug("connection %s ended: %r", address, exc)
        except Exception as exc:
            self.stats._error(f"handler crashed: {exc!r}")
            logger.exception("fault proxy handler crashed")
        finally:
            with self._lock:
                if conn in self._clients:  # not detached by a reset
                    self._clients.discard(conn)
                    conn.close()
                self._threads.discard(threading.current_thread())
            self._slots.release()

    def _track(self, sock: socket.socket | None, add: bool = True) -> None:
        with self._lock:
            if sock is not None:
                (self._upstreams.add if add else self._upstreams.discard)(sock)

    def _reset_socket(self, conn: socket.socket) -> None:
        """Close with a TCP RST now (detach: the handler's file objects keep no fd alive)."""
        with self._lock:
            self._clients.discard(conn)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(conn.detach())

    def _shutdown_all(self, upstreams: bool) -> None:
        with self._lock:  # the lock of _reset_socket: never shut a detached (reused) fd
            for sock in [*self._clients, *(self._upstreams if upstreams else ())]:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _bound_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


def start_proxy(upstream: str, seed: int = 0) -> FaultProxy:
    """A started proxy in front of ``upstream``; stop() it or use it as a context manager."""
    return FaultProxy(upstream, seed).start()
