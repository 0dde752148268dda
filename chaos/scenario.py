"""One seeded chaos run: real Temporal, a killable worker process, flaky vendors.

The driver (this process) plays Alertmanager and the responders: it sends webhooks to
fireline's API (in process, over ASGI), starts and approves a runbook, resolves the
incidents. Meanwhile a killer SIGKILLs the worker at seeded moments and starts another,
Temporal itself is stopped and restarted once on its SQLite file, PagerDuty and the
Kubernetes API fail a seeded fraction of calls, and every webhook arrives three times in
shuffled order. Then :mod:`chaos.invariants` checks what the vendors and workflows hold.

Seeded and reproducible: kill delays, fault draws and delivery orders all come from the
seed. Where a kill lands in the workflows' progress still depends on machine speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from chaos.invariants import (
    Invariant,
    approvals_decided_once,
    incidents_reached_state,
    pages_closed_on_resolve,
    pages_delivered_once,
    rollback_took_effect_once,
    timeline_intact,
)
from chaos.processes import WorkerProcess, fireline_env
from chaos.providers import FAULTS, FlakyPagerDuty
from chaos.worker_process import BREAK_DEDUP_KEYS
from runbooks.loader import load_runbooks
from tests.support import free_port
from worker.api import create_app
from worker.config import load_config
from worker.devserver import DevServer
from worker.errors import FirelineError
from worker.incident_service import IncidentService
from worker.k8s_emulator.demo import GOOD_IMAGE
from worker.k8s_emulator.faults import FaultKind, FaultPlan
from worker.k8s_emulator.resources import DEPLOYMENTS
from worker.k8s_emulator.server import K8sEmulator
from worker.runbook_service import RunbookService
from worker.settings import Settings
from worker.temporal_client import connect
from workflows.contracts import IncidentState, IncidentStatus, RunbookRunState

log = logging.getLogger("fireline.chaos")
T = TypeVar("T")

ROUTING_KEY = "c" * 32
USER = {"X-Fireline-User": "alice"}
RUNBOOK = "chaos-rollback"
APPROVAL_STEP = "approve"
REQUIRED_KINDS = ("declared", "alert_firing", "resolved")
REVISION = "deployment.kubernetes.io/revision"
K8S_FAULTS: tuple[FaultKind, ...] = ("429", "500", "reset")
# The driver's phases and the share of all kills done by the end of each.
PHASES = (
    ("alert grouping", 0.25),
    ("runbook", 0.35),
    ("approval and rollback", 0.6),
    ("escalation", 0.7),
    ("resolve", 0.9),
    ("after resolve", 1.0),
)

ROLLBACK = """\
name: chaos-rollback
parameters:
  deployment: {type: string, required: true}
steps:
  - id: inspect
    kind: action
    action: k8s.status
    cluster: sandbox
    with: {namespace: shop, deployment: "{params.deployment}"}
    # Not heartbeating: a step whose worker was SIGKILLed is retried only after its
    # timeout (default 5m), so keep it short; the faults need more than 3 attempts.
    timeout: 20s
    retries: {max_attempts: 30, backoff: 1s, max_backoff: 5s}
  - id: approve
    kind: approval
    approvers: {users: [alice]}
    prompt: Roll {params.deployment} back from revision {steps.inspect.output.revision}?
    timeout: 30m
  - id: rollback
    kind: action
    action: k8s.rollback
    cluster: sandbox
    with:
      namespace: shop
      deployment: "{params.deployment}"
      from_revision: "{steps.inspect.output.revision}"
    timeout: 20s
    retries: {max_attempts: 30, backoff: 1s, max_backoff: 5s}
  - id: wait-rollout
    kind: action
    action: k8s.wait_rollout
    cluster: sandbox
    with: {namespace: shop, deployment: "{params.deployment}", deadline: 10m}
    retries: {max_attempts: 30, backoff: 1s, max_backoff: 5s}
"""


@dataclass(frozen=True)
class ChaosOptions:
    """What to break and how much."""

    seed: int = 1
    kills: int = 20
    incidents: int = 6
    fault_rate: float = 0.3
    redeliveries: int = 2
    restart_server: bool = True
    # Seconds a worker lives before the next SIGKILL (drawn uniformly from the seed).
    kill_after: tuple[float, float] = (3.0, 7.0)
    settle_timeout: float = 300.0
    # Emulator seconds a rollout takes: long enough for kills to land mid-rollout.
    rollout_delay: float = 6.0
    # How long the end waits for pages, runs and incidents to converge (None: settle_timeout).
    converge_timeout: float | None = None
    # Plant the bug the suite must catch: PagerDuty keys that change on every attempt.
    break_dedup_keys: bool = False


@dataclass
class ChaosReport:
    """Faults injected and invariants checked, for the table and for tests."""

    options: ChaosOptions
    faults: dict[str, int] = field(default_factory=dict)
    invariants: list[Invariant] = field(default_factory=list)
    seconds: float = 0.0
    kill_phases: Counter[str] = field(default_factory=Counter)

    @property
    def held(self) -> bool:
        """Whether every invariant held."""
        return bool(self.invariants) and all(i.held for i in self.invariants)


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float, interval: float = 0.5
) -> T:
    """Retry ``check`` until it stops raising; the last error is raised at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await check()
        except (AssertionError, FirelineError, httpx.HTTPError, RuntimeError) as exc:
            if loop.time() > deadline:
                raise TimeoutError(f"not settled after {timeout:.0f}s: {exc}") from exc
            await asyncio.sleep(interval)


def _alertmanager(service: str, status: str) -> dict[str, Any]:
    alerts = [
        {
            "status": status,
            "labels": {
                "alertname": "ChaosErrors",
                "service": service,
                "instance": f"{service}-{n}",
                "severity": "critical",
            },
            "annotations": {"summary": f"{service}-{n} is failing requests"},
            "startsAt": "2026-11-28T06:00:00Z",
            "endsAt": "2026-11-28T06:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": f"{service}-{n}".encode().hex()[:16],
        }
        for n in range(2)
    ]
    return {
        "receiver": "fireline",
        "status": status,
        "alerts": alerts,
        "groupLabels": {"alertname": "ChaosErrors", "service": service},
        "commonLabels": {"alertname": "ChaosErrors", "service": service, "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093",
        "version": "4",
        "groupKey": f'{{}}:{{service="{service}"}}',
        "truncatedAlerts": 0,
    }


def _config(services: list[str], pagerduty_url: str, kubeconfig: Path) -> dict[str, Any]:
    return {
        "users": {
            "alice": {
                "name": "Alice Example",
                "email": "alice@example.com",
                "contact_methods": [{"kind": "pagerduty"}],
            },
            "bob": {"name": "Bob Example", "email": "bob@example.com"},
        },
        "services": {s: {"escalation_policy": "oncall"} for s in services},
        # Nobody acknowledges in this run: the level's delay is far beyond its length, so
        # a second page would be a duplicate, not an escalation.
        "escalation_policies": {
            "oncall": {"levels": [{"targets": [{"user": "alice"}], "delay": "2h"}]}
        },
        "routing": {
            "group_by": ["service", "alertname"],
            "group_wait": "0s",
            "service": "{labels.service}",
            "routes": [{"name": "critical", "matchers": ['severity="critical"']}],
        },
        "paging": {
            "pagerduty": {
                "routing_keys": {"default": {"env": "CHAOS_PD_ROUTING_KEY"}},
                "base_url": pagerduty_url,
            }
        },
        "clusters": {"sandbox": {"kubeconfig": str(kubeconfig)}},
    }


class _Killer:
    """SIGKILLs the worker after seeded lifetimes, replacing it each time."""

    def __init__(self, workers: WorkerProcess, rng: random.Random, opts: ChaosOptions) -> None:
        self.workers = workers
        self.rng = rng
        self.opts = opts
        self.paused = asyncio.Event()
        self.paused.set()
        self.kill_phases: Counter[str] = Counter()
        self.done = 0
        self._phase = 0

    @property
    def phase(self) -> str:
        """The phase of the incident's life the driver is in."""
        return PHASES[self._phase][0]

    def _cap(self) -> int:
        return round(PHASES[self._phase][1] * self.opts.kills)

    async def next_phase(self) -> None:
        """End the phase once its share of the kills happened, then enter the next one.

        The killer never goes beyond the current phase's share, so every phase of the
        incident's life gets its kills, however fast or slow the machine is.
        """
        while self.done < self._cap():
            await asyncio.sleep(0.2)
        self._phase += 1

    async def run(self) -> None:
        for _ in range(self.opts.kills):
            await asyncio.sleep(self.rng.uniform(*self.opts.kill_after))
            await self.paused.wait()
            while self.done >= self._cap():
                await asyncio.sleep(0.2)
            self.workers.kill()
            log.info("SIGKILL worker during %s", self.phase)
            self.kill_phases[self.phase] += 1
            await asyncio.sleep(self.rng.uniform(0.0, 0.5))
            self.workers.start()
            self.done += 1


async def _watchdog(workers: WorkerProcess) -> None:
    while True:
        workers.ensure_running()
        await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def _running(coro: Awaitable[None]) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.ensure_future(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_scenario(workdir: Path, opts: ChaosOptions) -> ChaosReport:
    """Run the whole scenario in ``workdir`` and check every invariant."""
    started = time.monotonic()
    # One generator per consumer: the killer and the driver draw concurrently, and a
    # shared one would make each's draws depend on timing.
    seeds = random.Random(opts.seed)
    pd_seed, k8s_seed, kill_seed, order_seed = (seeds.randrange(2**32) for _ in range(4))
    report = ChaosReport(opts)
    _make_dirs(workdir)
    server = DevServer(state_dir=workdir / "temporal", port=free_port(), ui_port=None)
    pagerduty = FlakyPagerDuty([ROUTING_KEY], rate=opts.fault_rate, seed=pd_seed)
    # Slow rollouts, so kills land while the rolled-back revision is still rolling out.
    emulator = K8sEmulator(rollout_delay=opts.rollout_delay)
    services = [f"svc-{n}" for n in range(opts.incidents)]
    await server.start()
    pagerduty.start()
    await emulator.start()
    workers: WorkerProcess | None = None
    try:
        emulator.seed_demo("shop")
        revision_before = int(_deployment(emulator)["metadata"]["annotations"][REVISION])
        emulator.inject_faults(FaultPlan(rate=opts.fault_rate, kinds=K8S_FAULTS, seed=k8s_seed))
        config_path, library = _write_files(workdir, services, pagerduty.url, emulator)
        queue = f"chaos-{opts.seed}"
        env = fireline_env(
            temporal_address=server.address,
            config=config_path,
            runbooks_dir=library,
            task_queue=queue,
            state_dir=workdir / "state",
        )
        env["CHAOS_PD_ROUTING_KEY"] = ROUTING_KEY
        if opts.break_dedup_keys:
            env[BREAK_DEDUP_KEYS] = "1"
        # The first trigger of every incident reaches PagerDuty and its answer is lost:
        # every page is retried after the vendor acted, whatever the random draws say.
        pagerduty.lose_answers(opts.incidents)
        workers = WorkerProcess(env, workdir)
        workers.start()
        client = await connect(Settings(temporal_address=server.address))
        config = load_config(config_path)
        incidents = IncidentService(client, config, queue)
        runbooks = RunbookService(
            client, config, queue, load_runbooks([library]), incidents=incidents
        )
        app = create_app(config, client, queue, ack_secret=secrets.token_bytes(32))
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fireline")
        killer = _Killer(workers, random.Random(kill_seed), opts)
        driver = _Driver(api, incidents, runbooks, random.Random(order_seed), opts, killer)
        async with _running(_watchdog(workers)), _running(killer.run()) as killing:
            ids = await driver.declare(services)
            await killer.next_phase()
            run = await driver.runbook(ids[0])
            await killer.next_phase()
            if opts.restart_server:
                killer.paused.clear()  # one fault at a time: the restart is its own point
                await server.stop()
                server = DevServer(state_dir=server.state_dir, port=server.port, ui_port=None)
                await server.start()
                report.faults["Temporal server restarts"] = 1
                killer.paused.set()
            await driver.approve(ids[0], run)
            await killer.next_phase()
            await driver.paged(pagerduty, ids)
            await killer.next_phase()
            await driver.resolve(services, ids)
            await killer.next_phase()
            await killing
        if not workers.alive:
            workers.start()
        final = await driver.settle(pagerduty, ids, run)
        report.kill_phases = killer.kill_phases
        k8s_faults = Counter(f.kind for f in emulator.faults.injected)
        report.faults.update(
            {
                "worker SIGKILLs": workers.killed,
                "worker exits on its own, replaced": workers.crashed,
                **{f"PagerDuty {k}": pagerduty.injected[k] for k in FAULTS},
                **{f"Kubernetes API {k}": k8s_faults[k] for k in K8S_FAULTS},
                f"webhook deliveries (x{1 + opts.redeliveries}, shuffled)": driver.deliveries,
            }
        )
        deployment = _deployment(emulator)
        report.invariants = [
            incidents_reached_state(final, IncidentStatus.RESOLVED.value),
            pages_delivered_once(pagerduty.alerts, ids),
            pages_closed_on_resolve(pagerduty.alerts),
            rollback_took_effect_once(
                revision_before,
                int(deployment["metadata"]["annotations"][REVISION]),
                deployment["spec"]["template"]["spec"]["containers"][0]["image"],
                GOOD_IMAGE,
            ),
            approvals_decided_once(await _run_state(runbooks, ids[0], run), APPROVAL_STEP),
            timeline_intact(final, REQUIRED_KINDS),
        ]
        await api.aclose()
    finally:
        if workers is not None:
            workers.stop()
        await emulator.stop()
        pagerduty.stop()
        await server.stop()
    report.seconds = time.monotonic() - started
    return report


def _make_dirs(workdir: Path) -> None:
    for path in (workdir / "temporal", workdir / "runbooks"):
        path.mkdir(parents=True, exist_ok=True)


def _write_files(
    workdir: Path, services: list[str], pagerduty_url: str, emulator: K8sEmulator
) -> tuple[Path, Path]:
    """The worker's kubeconfig, fireline.yaml and runbook library; (config, library)."""
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(json.dumps(emulator.kubeconfig("shop")))
    config_path = workdir / "fireline.yaml"
    config_path.write_text(yaml.safe_dump(_config(services, pagerduty_url, kubeconfig)))
    library = workdir / "runbooks"
    (library / f"{RUNBOOK}.yaml").write_text(ROLLBACK)
    return config_path, library


def _deployment(emulator: K8sEmulator) -> dict[str, Any]:
    found: dict[str, Any] = emulator.api.get(DEPLOYMENTS, "shop", "checkout")
    return found


async def _run_state(runbooks: RunbookService, incident: str, run: str) -> RunbookRunState | None:
    try:
        return await runbooks.state(incident, run)
    except FirelineError:
        return None


class _Driver:
    """Alertmanager and the responders, retrying like they would."""

    def __init__(
        self,
        api: httpx.AsyncClient,
        incidents: IncidentService,
        runbooks: RunbookService,
        rng: random.Random,
        opts: ChaosOptions,
        killer: _Killer,
    ) -> None:
        self.api = api
        self.incidents = incidents
        self.runbooks = runbooks
        self.rng = rng
        self.opts = opts
        self.killer = killer
        self.deliveries = 0

    async def _post(self, path: str, body: Any) -> httpx.Response:
        """POST until fireline answers 2xx (or 409), as a webhook sender retries."""

        async def once() -> httpx.Response:
            response = await self.api.post(path, json=body, headers=USER)
            assert response.status_code < 300 or response.status_code == 409, (
                path,
                response.status_code,
                response.text[:300],
            )
            return response

        return await eventually(once, timeout=120)

    async def deliver(self, services: list[str], status: str) -> None:
        """Every webhook 1 + redeliveries times, all shuffled together."""
        batch = [s for s in services for _ in range(1 + self.opts.redeliveries)]
        self.rng.shuffle(batch)
        for service in batch:
            await self._post("/v1/alerts/alertmanager", _alertmanager(service, status))
            self.deliveries += 1

    async def declare(self, services: list[str]) -> list[str]:
        """Fire every service's alerts; the incident id each group declared, in order."""
        await self.deliver(services, "firing")

        async def declared(service: str) -> str:
            rows = await self.incidents.list(service=service)
            assert len(rows) == 1, (service, [r.id for r in rows])
            return rows[0].id

        return [
            await eventually(lambda s=s: declared(s), timeout=self.opts.settle_timeout)  # type: ignore[misc]
            for s in services
        ]

    async def runbook(self, incident: str) -> str:
        """Start the rollback runbook once, and wait until it asks for approval."""

        async def start() -> str:
            runs = await self.runbooks.runs(incident)
            if runs:  # a start whose answer was lost still started the run
                return runs[0].run_id
            summary = await self.runbooks.start(
                incident, RUNBOOK, {"deployment": "checkout"}, "alice"
            )
            return summary.run_id

        run = await eventually(start, timeout=self.opts.settle_timeout)

        async def waiting() -> None:
            state = await self.runbooks.state(incident, run)
            assert state.pending is not None, (state.status, state.current_step, state.error)

        await eventually(waiting, timeout=self.opts.settle_timeout)
        return run

    async def approve(self, incident: str, run: str) -> None:
        """Approve twice, as a double click would: the second must change nothing."""
        for _ in range(2):

            async def decide() -> None:
                await self.runbooks.decide(incident, run, APPROVAL_STEP, True, "alice")

            await eventually(decide, timeout=self.opts.settle_timeout)

    async def paged(self, pagerduty: FlakyPagerDuty, ids: list[str]) -> None:
        """Wait until every incident's page reached PagerDuty."""

        async def check() -> None:
            paged = {
                e.get("payload", {}).get("custom_details", {}).get("incident_id")
                for a in pagerduty.alerts
                for e in a.events
            }
            assert set(ids) <= paged, sorted(set(ids) - paged)

        await eventually(check, timeout=self.opts.settle_timeout)

    async def resolve(self, services: list[str], ids: list[str]) -> None:
        """Resolve every incident through the API, then the alerts resolve (x3, shuffled)."""
        for incident in ids:
            await self._post(
                f"/v1/incidents/{incident}/resolve", {"summary": "rolled back; errors gone"}
            )
        await self.deliver(services, "resolved")

    async def settle(
        self, pagerduty: FlakyPagerDuty, ids: list[str], run: str
    ) -> dict[str, IncidentState | None]:
        """Wait (bounded) for the system to converge; return each incident's final state."""

        async def converged() -> None:
            assert all(a.status == "resolved" for a in pagerduty.alerts), "pages still open"
            state = await self.runbooks.state(ids[0], run)
            assert state.status in ("succeeded", "failed", "aborted"), state.status
            for incident in ids:
                got = await self.incidents.get(incident)
                assert got.status is IncidentStatus.RESOLVED, (incident, got.status)

        try:
            timeout = self.opts.converge_timeout or self.opts.settle_timeout
            await eventually(converged, timeout=timeout)
        except TimeoutError as exc:
            log.warning("did not converge: %s", exc)  # the invariants say what is wrong
        final: dict[str, IncidentState | None] = {}
        for incident in ids:
            try:
                final[incident] = await self.incidents.get(incident)
            except FirelineError:
                final[incident] = None
        return final
