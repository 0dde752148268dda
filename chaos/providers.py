"""Vendor fakes that misbehave on a seeded fraction of calls (429, 5xx, resets, timeouts).

Each flaky vendor is the tests' loopback fake (the documented wire format, every request
recorded) with :class:`Flaky` in front of it: a seeded draw per request decides whether it
is served or answered with one of :data:`FAULTS`, and every injected fault is counted by
kind in ``faults.injected`` for the chaos table.

A ``timeout`` here is the vendor acting at once and its answer arriving after the client
gave up (httpx in ``worker.wiring`` waits 10 s). That is the common shape of a real
timeout, and the one idempotency must survive: the retry finds the work already done.
(``LoopbackServer``'s own ``slow`` fault acts only after the delay, which would race a
lookup-before-write retry such as Slack's or Statuspage's against the vendor's late
processing; no client can win that race, so it proves nothing about fireline.)
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.server import Fault, LoopbackServer, RecordedRequest, Reply, _Handler
from tests.fakes.slack import FakeSlack
from tests.fakes.statuspage import FakeStatuspage

# httpx in worker.wiring gives a vendor 10 s, metrics sources default to 10 s: a reply
# slower than that is a client timeout (the vendor still acted).
TIMEOUT_DELAY = 11.0
TIMEOUT = "timeout"

FAULTS: dict[str, Fault] = {
    "429": Fault("status", status=429, retry_after="1"),
    "500": Fault("status", status=500),
    "503": Fault("status", status=503),
    "reset": Fault("reset"),
    # The vendor acted and the answer was lost: the nastiest case for idempotency.
    "reset-after-processing": Fault("reset", process=True),
    TIMEOUT: Fault("slow", delay=TIMEOUT_DELAY),
}


class FaultDraws:
    """Seeded draws of whether a call fails and how; counts what was injected, by kind."""

    def __init__(self, *, rate: float, seed: int, kinds: Iterable[str] = tuple(FAULTS)) -> None:
        """Fail ``rate`` of the calls with a kind drawn from ``kinds``; draws from ``seed``."""
        unknown = sorted(set(kinds) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown fault kind(s) {unknown}; known: {sorted(FAULTS)}")
        self.rate = rate
        self.kinds = tuple(kinds)
        self.injected: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        """The fault kind for the next call, or None to serve it."""
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            kind = self._rng.choice(self.kinds)
            self.injected[kind] += 1
            return kind

    def count(self, kind: str, times: int = 1) -> None:
        """Count faults queued by hand (e.g. answers lost on purpose)."""
        with self._lock:
            self.injected[kind] += times


class Flaky(LoopbackServer):
    """Mixin for a fake: a seeded share of its requests fail (put it before the fake)."""

    faults: FaultDraws
    # How late a timed-out answer comes: past the client's own timeout.
    timeout_delay: float = TIMEOUT_DELAY

    def _init_flaky(self, faults: FaultDraws) -> None:
        self.faults = faults
        # Replies computed when a timeout was drawn, by request object: served late.
        self._late: dict[int, Reply] = {}
        self._late_lock = threading.Lock()

    def admit(self, request: RecordedRequest) -> Fault | None:
        """Record the request; a fault queued by a test wins over a random one."""
        queued = super().admit(request)
        if queued is not None:
            return queued
        kind = self.faults.draw()
        if kind is None:
            return None
        if kind == TIMEOUT:
            # The vendor acts now; the handler thread answers after the client gave up.
            reply = super().handle(request)
            with self._late_lock:
                self._late[id(request)] = reply
            return Fault("slow", delay=self.timeout_delay)
        return FAULTS[kind]

    def handle(self, request: RecordedRequest) -> Reply:
        """The vendor's answer; for a timed-out request, the one computed when it arrived."""
        with self._late_lock:
            late = self._late.pop(id(request), None)
        return late if late is not None else super().handle(request)


class FlakyPagerDuty(Flaky, FakePagerDuty):
    """FakePagerDuty failing ``rate`` of its calls with a seeded choice of :data:`FAULTS`."""

    def __init__(
        self,
        routing_keys: Iterable[str],
        *,
        rate: float,
        seed: int,
        kinds: Iterable[str] = tuple(FAULTS),
    ) -> None:
        """Fail ``rate`` of the requests; draws come from ``seed``."""
        FakePagerDuty.__init__(self, routing_keys)
        self._init_flaky(FaultDraws(rate=rate, seed=seed, kinds=kinds))

    @property
    def injected(self) -> Counter[str]:
        """Faults injected so far, by kind."""
        return self.faults.injected

    def lose_answers(self, times: int) -> None:
        """The next ``times`` requests are acted on, then their connection is reset."""
        self.inject(FAULTS["reset-after-processing"], times)
        self.faults.count("reset-after-processing", times)


class FlakySlack(Flaky, FakeSlack):
    """The Slack Web API fake (war rooms), failing a seeded share of its calls."""

    def __init__(
        self,
        tokens: Iterable[str],
        *,
        users: Iterable[str] = (),
        rate: float,
        seed: int,
        kinds: Iterable[str] = tuple(FAULTS),
    ) -> None:
        """Accept ``tokens``, know ``users``; fail ``rate`` of the requests."""
        FakeSlack.__init__(self, tokens, users=users)
        self._init_flaky(FaultDraws(rate=rate, seed=seed, kinds=kinds))


class FlakyStatuspage(Flaky, FakeStatuspage):
    """The Atlassian Statuspage fake, failing a seeded share of its calls."""

    def __init__(
        self,
        *,
        page_id: str,
        api_key: str,
        components: Iterable[str],
        rate: float,
        seed: int,
        kinds: Iterable[str] = tuple(FAULTS),
    ) -> None:
        """One page with ``components``; fail ``rate`` of the requests."""
        FakeStatuspage.__init__(self, page_id=page_id, api_key=api_key, components=components)
        self._init_flaky(FaultDraws(rate=rate, seed=seed, kinds=kinds))


class _AnyMethod(_Handler):
    # The shared handler answers GET/POST/PUT/DELETE; Kubernetes patches too.
    def do_PATCH(self) -> None:  # noqa: N802 - http.server dispatches on this name
        self._dispatch()


class Forwarder(LoopbackServer):
    """A loopback proxy: every request goes on to ``upstream``, its answer comes back."""

    def __init__(self, upstream: str) -> None:
        """Proxy to ``upstream`` (``http://host:port``)."""
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.forwarded = 0
        # Called from the server's handler threads; httpx.Client is thread-safe.
        self._client = httpx.Client(timeout=30.0, trust_env=False)

    def start(self) -> None:
        """Listen like LoopbackServer, with PATCH understood."""
        super().start()
        assert self._server is not None
        self._server.RequestHandlerClass = _AnyMethod

    def handle(self, request: RecordedRequest) -> Reply:
        """Pass the request on and the upstream's answer back."""
        url = self.upstream + request.path
        if request.query:
            url += "?" + urlencode(request.query, doseq=True)
        # Hop-by-hop headers (Connection, Content-Length, Host) are the proxy's own.
        headers = {
            k: v
            for k, v in request.headers.items()
            if k not in ("connection", "content-length", "host", "transfer-encoding")
        }
        try:
            answer = self._client.request(
                request.method, url, content=request.body, headers=headers
            )
        except httpx.HTTPError as exc:
            return Reply(502, self.error_body(502) | {"detail": str(exc)})
        with self._lock:
            self.forwarded += 1
        content_type = answer.headers.get("content-type", "application/json")
        return Reply(answer.status_code, answer.content, {"Content-Type": content_type})

    def error_body(self, status: int) -> Any:
        """The upstream's error shape for an injected status."""
        return {"message": f"injected HTTP {status}"}

    def stop(self) -> None:
        """Stop serving and close the upstream client."""
        super().stop()
        self._client.close()


class FlakyKubernetesProxy(Flaky, Forwarder):
    """The Kubernetes API (the emulator) behind a proxy failing a seeded share of calls.

    In front of the emulator rather than its own FaultPlan, for the kinds that one lacks:
    answers lost after the apiserver acted (a rollback that happened, unbeknown to the
    client) and timeouts. The Kubernetes activities give a request 30 s.
    """

    timeout_delay = 31.0

    def __init__(
        self, upstream: str, *, rate: float, seed: int, kinds: Iterable[str] = tuple(FAULTS)
    ) -> None:
        """Proxy to ``upstream``; fail ``rate`` of the requests, drawn from ``seed``."""
        Forwarder.__init__(self, upstream)
        self._init_flaky(FaultDraws(rate=rate, seed=seed, kinds=kinds))

    def error_body(self, status: int) -> Any:
        """The apiserver's ``Status`` for an injected error."""
        reason = {429: "TooManyRequests", 503: "ServiceUnavailable"}.get(status, "InternalError")
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"injected HTTP {status}",
            "reason": reason,
            "code": status,
        }
