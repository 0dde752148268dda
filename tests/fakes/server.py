"""A loopback HTTP server for vendor fakes: real sockets, every request recorded, faults on cue.

A fake subclasses :class:`LoopbackServer` and implements :meth:`LoopbackServer.handle`;
the server runs in a daemon thread on ``127.0.0.1`` and a free port. Faults are queued and
consumed one per request, before the vendor logic sees it:

- ``status``: answer that status with the vendor's error body (and ``Retry-After``);
- ``reply``: answer a given :class:`Reply` (e.g. Slack's ``200 {"ok": false}``);
- ``slow``: wait ``delay`` seconds, then handle and answer (the vendor got the request,
  the client has long given up);
- ``reset``: abort the connection with a TCP RST, after handling the request when
  ``process`` is set (the vendor acted, the answer was lost) or before it.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self, cast
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        """A header's value by case-insensitive name."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """What the fake answers: a status, a JSON (or raw bytes) body and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, consumed by the next request."""

    kind: Literal["status", "reply", "slow", "reset"]
    status: int = 503
    retry_after: str | None = None
    reply: Reply | None = None
    delay: float = 0.0
    process: bool = False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Writing to a client that timed out is expected here; stay quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        split = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length),
        )
        fake = cast(_HTTPServer, self.server).fake
        fault = fake.admit(request)
        self.close_connection = True
        if fault is None:
            self._write(fake.handle(request))
        elif fault.kind == "status":
            self._write(fake.fault_reply(fault.status, fault.retry_after))
        elif fault.kind == "reply":
            assert fault.reply is not None
            self._write(fault.reply)
        elif fault.kind == "slow":
            fake.stopping.wait(fault.delay)
            self._write(fake.handle(request))
        else:
            if fault.process:
                fake.handle(request)
            # SO_LINGER 0 turns close() into a RST: the client sees a reset, not an EOF.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _write(self, reply: Reply) -> None:
        if isinstance(reply.body, bytes):
            data, content_type = reply.body, "text/plain"
        elif reply.body is None:
            data, content_type = b"", "text/plain"
        else:
            data, content_type = json.dumps(reply.body).encode(), "application/json"
        self.send_response(reply.status)
        headers = {"Content-Type": content_type, **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


class LoopbackServer:
    """Base of the fakes: serves on loopback, records requests, replays queued faults."""

    def __init__(self) -> None:
        """Create a stopped server; use it as a context manager or call start/stop."""
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()
        self.stopping = threading.Event()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- to override ---------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> Reply:
        """Answer a request as the vendor would."""
        raise NotImplementedError

    def error_body(self, status: int) -> Any:
        """The vendor's body for an injected error status."""
        return {"message": f"injected HTTP {status}"}

    # --- faults and records --------------------------------------------------------------

    def fault_reply(self, status: int, retry_after: str | None) -> Reply:
        """The reply for an injected status."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return Reply(status, self.error_body(status), headers)

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` requests."""
        with self._lock:
            self._faults.extend([fault] * times)

    def fail_next(self, times: int, status: int, *, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``Retry-After``)."""
        self.inject(Fault("status", status=status, retry_after=retry_after), times)

    def slow_next(self, times: int = 1, *, delay: float = 1.0) -> None:
        """Answer the next ``times`` requests only after ``delay`` seconds."""
        self.inject(Fault("slow", delay=delay), times)

    def reset_next(self, times: int = 1, *, process: bool = False) -> None:
        """Reset the connection of the next ``times`` requests (after handling if ``process``)."""
        self.inject(Fault("reset", process=process), times)

    def admit(self, request: RecordedRequest) -> Fault | None:
        """Record ``request`` and take the next queued fault, if any."""
        with self._lock:
            self._requests.append(request)
            return self._faults.popleft() if self._faults else None

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, faulted ones included."""
        with self._lock:
            return list(self._requests)

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._server is None:
            raise RuntimeError("the fake is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Listen on a free loopback port and serve from a daemon thread."""
        self._server = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving; slow replies still waiting are released."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RecordingServer(LoopbackServer):
    """A receiver that records everything and answers one configurable reply (webhooks)."""

    def __init__(self, reply: Reply | None = None) -> None:
        """Answer ``reply`` (default ``200 {"ok": true}``) to every request."""
        super().__init__()
        self.reply = reply or Reply(200, {"ok": True})

    def handle(self, request: RecordedRequest) -> Reply:
        """Answer the configured reply."""
        return self.reply
