"""Seeded fault injection in front of the API, for chaos tests of fireline's activities.

A `FaultPlan` makes a fraction of API requests answer 429 (with `Retry-After`, as the
apiserver's priority-and-fairness throttling does), 500, lose their connection (a TCP
reset before any response byte), or answer late (``slow``: served normally after
``slow_seconds``, so a client with a shorter timeout gives up on a request that took effect).
Draws come from the plan's seed, so a test sees the same sequence of faults on every run.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.k8s_emulator.errors import ApiError, TooManyRequestsError

FaultKind = Literal["429", "500", "reset", "slow"]


@dataclass(frozen=True)
class FaultPlan:
    """Which API requests fail, and how.

    Attributes:
        rate: probability that a matching request fails (1.0 = every one).
        kinds: the fault drawn (uniformly) for a failing request.
        seed: seed of the draws.
        retry_after_seconds: the `Retry-After` header (and `details.retryAfterSeconds`) of 429s.
        methods: HTTP methods affected; empty means all.
        path_contains: only paths containing this text are affected.
        limit: stop injecting after this many faults; None means never stop.
        slow_seconds: how late a ``slow`` request is served.
    """

    rate: float = 1.0
    kinds: tuple[FaultKind, ...] = ("429",)
    seed: int = 0
    retry_after_seconds: int = 1
    methods: frozenset[str] = frozenset()
    path_contains: str = ""
    limit: int | None = None
    slow_seconds: float = 5.0


@dataclass(frozen=True)
class InjectedFault:
    """A record of one injected fault."""

    method: str
    path: str
    kind: FaultKind


class FaultInjector:
    """Decides, request by request, whether the active plan injects a fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan: FaultPlan | None = None
        self._rng = random.Random(0)
        self._injected: list[InjectedFault] = []

    def configure(self, plan: FaultPlan | None) -> None:
        """Activate a plan (None turns injection off); resets the draws and the record."""
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed if plan else 0)
            self._injected = []

    @property
    def plan(self) -> FaultPlan | None:
        """The active plan."""
        return self._plan

    @property
    def injected(self) -> list[InjectedFault]:
        """Faults injected since the plan was configured, oldest first."""
        with self._lock:
            return list(self._injected)

    def choose(self, method: str, path: str) -> FaultKind | None:
        """The fault for this request, or None to serve it normally."""
        with self._lock:
            plan = self._plan
            if plan is None or not plan.kinds:
                return None
            if plan.methods and method not in plan.methods:
                return None
            if plan.path_contains not in path:
                return None
            if plan.limit is not None and len(self._injected) >= plan.limit:
                return None
            if self._rng.random() >= plan.rate:
                return None
            kind = self._rng.choice(plan.kinds)
            self._injected.append(InjectedFault(method, path, kind))
            return kind


class FaultMiddleware:
    """ASGI middleware applying a `FaultInjector` to `/api` and `/apis` requests."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self._app = app
        self._injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, or fail it as the plan says."""
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith("/api"):
            await self._app(scope, receive, send)
            return
        kind = self._injector.choose(str(scope["method"]), path)
        if kind is None:
            await self._app(scope, receive, send)
            return
        plan = self._injector.plan
        if kind == "slow":
            await asyncio.sleep(plan.slow_seconds if plan else 0.0)
            await self._app(scope, receive, send)
            return
        await _drain(receive)
        if kind == "reset" and await _reset(send):
            return
        retry_after = plan.retry_after_seconds if plan else 1
        if kind == "429":
            error: ApiError = TooManyRequestsError(
                "Too many requests, please try again later.",
                {"retryAfterSeconds": retry_after},
            )
            headers = [(b"retry-after", str(retry_after).encode())]
        else:
            error = ApiError("Internal error occurred: injected fault", {})
            headers = []
        await _respond(send, error.code, error.status(), headers)


async def _drain(receive: Receive) -> None:
    more = True
    while more:
        message: Message = await receive()
        more = bool(message.get("more_body")) and message["type"] == "http.request"


async def _reset(send: Send) -> bool:
    # The server's transport sits behind the bound `send` of its request cycle (uvicorn);
    # closing it with SO_LINGER 0 makes the kernel answer with a TCP RST.
    transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let the server notice the disconnect before this handler returns.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return True


async def _respond(
    send: Send, code: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
