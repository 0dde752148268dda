"""`K8sEmulator`: the apiserver emulator and its control plane, served on loopback.

Use it from async code (`await start()` / `await stop()`, or `async with`), from sync code
(`with K8sEmulator() as emulator:` runs it on a background thread), or as a process
(`python -m worker.k8s_emulator`). Point the official client at it with
`client_configuration()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import uvicorn

from worker.k8s_emulator.api import ResourceApi
from worker.k8s_emulator.app import create_app
from worker.k8s_emulator.clock import Clock, Ids
from worker.k8s_emulator.controller import ControlPlane
from worker.k8s_emulator.demo import seed_demo
from worker.k8s_emulator.faults import FaultInjector, FaultPlan
from worker.k8s_emulator.settings import Settings
from worker.k8s_emulator.store import Store

if TYPE_CHECKING:
    from kubernetes.client import Configuration

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


class EmulatorNotRunningError(RuntimeError):
    """The emulator was used as a server before `start()` or after `stop()`."""


class _Server(uvicorn.Server):
    """uvicorn's server, noticing a stop request within 10 ms rather than 100 ms."""

    async def main_loop(self) -> None:
        """Tick until asked to exit; tests start and stop an emulator for every case."""
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            await asyncio.sleep(0.01)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Close listeners and connections, waiting briefly (not a fixed 100 ms) for them."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = asyncio.get_running_loop().time() + _STOP_TIMEOUT
        # uvicorn signals no event when its last connection closes, so poll for it.
        while self.server_state.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
        for task in self.server_state.tasks:
            task.cancel()


class K8sEmulator:
    """A Kubernetes API emulator (apps/v1 Deployments, ReplicaSets; core/v1 Pods, Events,
    Nodes) with a deployment controller, driven over real HTTP."""

    def __init__(
        self,
        *,
        rollout_delay: float = 0.2,
        crash_interval: float = 0.5,
        bad_images: Iterable[str] = (),
        seed: int = 0,
        tick: float = 0.05,
    ) -> None:
        self.settings = Settings(
            rollout_delay=rollout_delay,
            crash_interval=crash_interval,
            bad_images=set(bad_images),
            tick=tick,
        )
        self.clock = Clock()
        ids = Ids(seed)
        self.store = Store(self.clock, ids)
        self.control = ControlPlane(self.store, self.clock, ids, self.settings)
        self.faults = FaultInjector()
        self.api = ResourceApi(self.store, self.control.reconcile)
        self._server: _Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self._ticking: asyncio.Task[None] | None = None
        self._url: str | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._thread_stop: asyncio.Event | None = None
        self._thread_error: BaseException | None = None

    # --- behaviour -----------------------------------------------------------------------

    @property
    def bad_images(self) -> set[str]:
        """Images whose containers crash-loop; mutable at any time."""
        return self.settings.bad_images

    def reconcile(self) -> None:
        """Run the controllers to a fixed point now."""
        self.control.reconcile()

    def advance(self, seconds: float) -> None:
        """Move emulator time forward (pod readiness, crash loops, progress deadlines)."""
        self.control.advance(seconds)

    def inject_faults(self, plan: FaultPlan | None) -> None:
        """Start failing API requests as `plan` says; None stops."""
        self.faults.configure(plan)

    def seed_demo(self, namespace: str = "shop") -> None:
        """Load the demo sandbox: nodes and a `checkout` Deployment stuck on a bad release."""
        seed_demo(self, namespace)

    # --- serving -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the running emulator, e.g. `http://127.0.0.1:38211`."""
        if self._url is None:
            raise EmulatorNotRunningError("the emulator is not running; call start() first")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on `host:port` (port 0 picks a free one) and start the control loop."""
        if self._server is not None:
            raise EmulatorNotRunningError("the emulator is already running")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this; without it, Nagle's algorithm meets the client's
        # delayed ACK and every response stalls for about 40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        config = uvicorn.Config(
            create_app(self.api, self.faults),
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=False,
            server_header=False,
        )
        self._server = _Server(config)
        self._serving = asyncio.create_task(self._server.serve(sockets=[sock]))
        deadline = asyncio.get_running_loop().time() + _START_TIMEOUT
        while not self._server.started:
            if self._serving.done() or asyncio.get_running_loop().time() > deadline:
                self._server = None
                sock.close()
                raise EmulatorNotRunningError(f"the emulator could not start on {host}:{port}")
            await asyncio.sleep(0.005)
        bound_port = sock.getsockname()[1]
        self._url = (
            f"http://[{host}]:{bound_port}"
            if family == socket.AF_INET6
            else (f"http://{host}:{bound_port}")
        )
        self._ticking = asyncio.create_task(self.control.run())

    async def stop(self) -> None:
        """Stop serving and stop the control loop."""
        if self._ticking is not None:
            self._ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticking
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await self._serving
        self._server = self._serving = self._ticking = None
        self._url = None

    async def serve_forever(self) -> None:
        """Wait until the server stops (e.g. on Ctrl+C), then stop the control loop."""
        if self._serving is None:
            raise EmulatorNotRunningError("the emulator is not running; call start() first")
        await self._serving
        await self.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.stop()

    def start_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve from a background thread with its own event loop (for sync callers)."""
        ready = threading.Event()

        async def run() -> None:
            self._thread_loop = asyncio.get_running_loop()
            self._thread_stop = asyncio.Event()
            try:
                await self.start(host, port)
            except BaseException as error:  # handed to the starting thread
                self._thread_error = error
                ready.set()
                return
            ready.set()
            await self._thread_stop.wait()
            await self.stop()

        self._thread_error = None
        self._thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
        self._thread.name = "k8s-emulator"
        self._thread.start()
        if not ready.wait(_START_TIMEOUT):
            raise EmulatorNotRunningError("the emulator thread did not start in time")
        if self._thread_error is not None:
            raise self._thread_error

    def stop_thread(self) -> None:
        """Stop a server started with `start_in_thread` and wait for its thread."""
        if self._thread is None or self._thread_loop is None or self._thread_stop is None:
            return
        self._thread_loop.call_soon_threadsafe(self._thread_stop.set)
        self._thread.join(_START_TIMEOUT)
        self._thread = self._thread_loop = self._thread_stop = None

    def __enter__(self) -> Self:
        self.start_in_thread()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop_thread()

    # --- clients -------------------------------------------------------------------------

    def client_configuration(self, *, retries: int | bool | None = None) -> Configuration:
        """A `kubernetes.client.Configuration` for the emulator: plain HTTP, no auth.

        `retries` is urllib3's: by default it silently retries idempotent requests after a
        connection reset or a 429 carrying `Retry-After`; pass False to see every fault.
        """
        # Imported here so that importing the emulator never loads the vendor client.
        from kubernetes.client import Configuration

        return Configuration(host=self.url, retries=retries)

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        """A kubeconfig (as a dict; JSON is valid YAML) whose current context is the emulator."""
        name = "fireline-sandbox"
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": name, "user": {}}],
            "contexts": [
                {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
            ],
            "current-context": name,
            "preferences": {},
        }
