"""The runnable parts of fireline and how they start: ``up``, ``worker``, ``api``.

``up`` is the embedded stack for one machine: the Temporal dev server (state under the
state directory), the worker and the API in one foreground command. ``worker`` and ``api``
run one part each against any Temporal, for production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from activities.kubernetes.clusters import ClusterConfigError
from runbooks.loader import RunbookLoadError
from worker.api import create_app
from worker.codec import EncryptionKeyError, keyring_from_settings
from worker.config import ConfigError, FirelineConfig, load_config
from worker.demo import ALERT_COMMAND, start_sandbox
from worker.devserver import DevServer, DevServerError, port_is_free
from worker.process import api_server
from worker.runbook_library import load_library
from worker.runner import build_worker, cluster_workers
from worker.settings import Settings, is_loopback
from worker.temporal_client import connect
from worker.wiring import ack_secret, activities

log = logging.getLogger("fireline")


class StartupError(RuntimeError):
    """A part cannot start; the message says what to do."""


def load_checked_config(settings: Settings, *, serves_api: bool) -> FirelineConfig:
    """Load the config and refuse settings that would be unsafe with it."""
    try:
        config = load_config(settings.config)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    try:
        # Checked at start: a broken runbook must not surface in the middle of an incident.
        load_library(settings)
    except RunbookLoadError as exc:
        raise StartupError(f"runbooks: {exc}") from None
    try:
        keyring_from_settings(settings)
    except EncryptionKeyError as exc:
        raise StartupError(f"payload encryption: {exc}") from None
    if serves_api and not config.auth.tokens and not is_loopback(settings.api_host):
        raise StartupError(
            f"local mode (no auth.tokens in {settings.config or 'the config'}) trusts the user "
            f"name in each request, so it only binds loopback; FIRELINE_API_HOST is "
            f"{settings.api_host}. Configure auth.tokens, or bind 127.0.0.1."
        )
    return config


async def _connect(settings: Settings) -> Client:
    try:
        return await connect(settings)
    except RuntimeError as exc:
        raise StartupError(
            f"cannot connect to Temporal at {settings.address} (namespace "
            f"{settings.namespace}): {exc}. Is it running? Set FIRELINE_TEMPORAL_ADDRESS."
        ) from None


def _check_api_port(settings: Settings) -> None:
    if not port_is_free(settings.api_host, settings.api_port):
        raise StartupError(
            f"port {settings.api_port} on {settings.api_host} is already in use; stop what holds "
            "it or choose another with FIRELINE_API_PORT / --api-port"
        )


async def up(settings: Settings, stop: asyncio.Event) -> int:
    """Run the embedded stack until ``stop`` is set."""
    config = load_checked_config(settings, serves_api=True)
    _check_api_port(settings)
    server: DevServer | None = None
    if settings.temporal_address is None:
        server = DevServer(
            state_dir=settings.state_dir,
            port=settings.temporal_port,
            ui_port=settings.ui_port,
            namespace=settings.namespace,
            ui_codec_endpoint=f"{settings.base_url}/codec" if settings.encryption_enabled else None,
        )
        _progress(
            f"starting Temporal dev server on {server.address} (state in {settings.state_dir}/)"
        )
        try:
            await server.start()
        except DevServerError as exc:
            raise StartupError(str(exc)) from None
    sandbox = None
    if settings.demo:
        _progress("starting the demo sandbox: Kubernetes API emulator and metrics source")
        sandbox = await start_sandbox(settings.state_dir)
        config = sandbox.configure(config)
    try:
        client = await _connect(settings)
        workers = _workers(client, config, settings)
        api = api_server(
            create_app(
                config,
                client,
                settings.task_queue,
                ack_secret=ack_secret(settings),
                ui_origins=settings.ui_origins,
            ),
            settings.api_host,
            settings.api_port,
        )
        async with contextlib.AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            serving = asyncio.create_task(api.serve())
            while not api.started and not serving.done():
                await asyncio.sleep(0.05)
            if serving.done():
                raise StartupError(f"the API did not start on {settings.base_url}")
            _banner(settings, server, config)
            await _wait_for_stop_or_exit(stop, serving)
            _progress("stopping: API, worker, Temporal")
            api.should_exit = True
            await serving
    finally:
        if sandbox is not None:
            await sandbox.stop()
        if server is not None:
            await server.stop()
    _progress("stopped")
    return 0


async def run_worker(settings: Settings, stop: asyncio.Event) -> int:
    """Run only the worker until ``stop`` is set."""
    config = load_checked_config(settings, serves_api=False)
    client = await _connect(settings)
    workers = _workers(client, config, settings)
    async with contextlib.AsyncExitStack() as running:
        for worker in workers:
            await running.enter_async_context(worker)
        queues = ", ".join(w.task_queue for w in workers)
        log.info("worker polling task queue(s) %s on %s", queues, settings.address)
        await stop.wait()
        log.info("worker stopping")
    return 0


def _workers(client: Client, config: FirelineConfig, settings: Settings) -> list[Worker]:
    """The fireline worker (unless cluster-only) and one per served Kubernetes cluster."""
    try:
        names = settings.cluster_names(list(config.clusters))
        clusters = cluster_workers(client, config, names)
    except (ValueError, ClusterConfigError) as exc:
        raise StartupError(f"Kubernetes clusters: {exc}") from None
    if settings.cluster_only is not None:
        return clusters
    main = build_worker(
        client,
        settings.task_queue,
        activities(client, config, settings.task_queue, settings),
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_cached_workflows=settings.max_cached_workflows,
    )
    return [main, *clusters]


async def run_api(settings: Settings, stop: asyncio.Event) -> int:
    """Run only the API until ``stop`` is set."""
    config = load_checked_config(settings, serves_api=True)
    _check_api_port(settings)
    client = await _connect(settings)
    app = create_app(
        config,
        client,
        settings.task_queue,
        ack_secret=ack_secret(settings),
        ui_origins=settings.ui_origins,
    )
    api = api_server(app, settings.api_host, settings.api_port)
    serving = asyncio.create_task(api.serve())
    log.info("API on %s (docs at %s/docs)", settings.base_url, settings.base_url)
    await _wait_for_stop_or_exit(stop, serving)
    api.should_exit = True
    await serving
    return 0


async def _wait_for_stop_or_exit(stop: asyncio.Event, serving: asyncio.Task[None]) -> None:
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({stopping, serving}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()


def _encryption_mode(settings: Settings) -> str:
    keyring = keyring_from_settings(settings)
    if keyring is None:
        return "off (payloads readable in Temporal; set FIRELINE_ENCRYPTION_KEYS)"
    return f"AES-256-GCM, active key '{keyring.active}' of {len(keyring.ids)}"


def _progress(text: str) -> None:
    print(f"fireline: {text}", file=sys.stderr, flush=True)


def _banner(settings: Settings, server: DevServer | None, config: FirelineConfig) -> None:
    mode = "token auth" if config.auth.tokens else "local mode (loopback, X-Fireline-User)"
    lines = [
        "",
        "  fireline is up",
        f"    API            {settings.base_url}",
        f"    API docs       {settings.base_url}/docs",
        f"    dashboard      {settings.base_url}/ui",
    ]
    if config.status_page is not None and config.status_page.provider == "builtin":
        lines.append(f"    status page    {settings.base_url}/status")
    if server is not None and server.ui_url:
        lines.append(
            f"    Temporal UI    {server.ui_url}/namespaces/{settings.namespace}/workflows"
        )
    lines += [
        f"    Temporal       {settings.address} (namespace {settings.namespace})",
        f"    config         {settings.config or '(none: defaults)'}",
        f"    auth           {mode}",
        f"    encryption     {_encryption_mode(settings)}",
        "",
        '  Try:  fireline incident declare --as alice --service checkout "Checkout errors"',
    ]
    if settings.demo:
        lines += [
            "  Demo: a sandbox cluster (emulated) where shop/checkout just rolled out a",
            "        crash-looping release. Send the alert that starts bad-deploy-rollback:",
            f"          {ALERT_COMMAND}",
            "        then follow README 'Try the runbook loop'.",
        ]
    lines += [
        "  Stop: Ctrl-C",
        "",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
