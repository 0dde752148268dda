"""One seeded chaos run: real Temporal, a killable worker process, flaky vendors.

The driver (this process) plays Alertmanager and the responders: it sends webhooks to
fireline's API (in process, over ASGI), starts and approves a runbook (rollback, then a
recovery check against a real Prometheus) and posts a customer update on every incident.
Then it acknowledges one incident, which must stay open, resolves the others and closes
one of those at once. Meanwhile a killer SIGKILLs the worker at seeded moments and starts
another, Temporal itself is stopped and restarted once on its SQLite file, and every
provider fails a seeded fraction of its calls: PagerDuty, the Slack war room and Atlassian
Statuspage (seeded fakes), the Kubernetes API emulator and a real Prometheus (each behind
a flaky loopback proxy). Every webhook arrives three times, shuffled; one ``firing`` copy
of each group arrives only after its ``resolved`` ones, stale. Then
:mod:`chaos.invariants` checks what the vendors and workflows hold, and the evidence they
judged is written to ``evidence.json`` in the work directory.

Seeded and reproducible: kill delays, fault draws and delivery orders all come from the
seed. Where a kill lands in the workflows' progress still depends on machine speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
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
    no_workflow_failed,
    pages_closed_on_resolve,
    pages_delivered_once,
    recovery_validated_once,
    rollback_took_effect_once,
    stale_firing_ignored,
    status_page_opened_once_and_closed,
    timeline_intact,
    war_room_entries,
    war_rooms_opened_once,
)
from chaos.processes import WorkerProcess, fireline_env
from chaos.prometheus import ERROR_RATIO, PrometheusStack, follow_cluster
from chaos.providers import (
    FAULTS,
    Flaky,
    FlakyKubernetesProxy,
    FlakyPagerDuty,
    FlakySlack,
    FlakyStatuspage,
)
from chaos.worker_process import BREAK_DEDUP_KEYS
from runbooks.loader import load_runbooks
from tests import support
from tests.support import free_port
from worker.api import create_app
from worker.config import load_config
from worker.devserver import DevServer
from worker.errors import FirelineError
from worker.incident_service import IncidentService
from worker.k8s_emulator.demo import GOOD_IMAGE
from worker.k8s_emulator.resources import DEPLOYMENTS
from worker.k8s_emulator.server import K8sEmulator
from worker.runbook_service import RunbookService
from worker.settings import Settings
from worker.temporal_client import connect
from worker.war_room_config import DEFAULT_MIRRORED
from workflows.alert_group import _state_key
from workflows.contracts import (
    AlertGroupState,
    Audience,
    IncidentState,
    IncidentStatus,
    PostUpdate,
    RunbookRunState,
    UpdateResult,
)

log = logging.getLogger("fireline.chaos")
T = TypeVar("T")

ROUTING_KEY = "c" * 32
SLACK_TOKEN = "xoxb-chaos-war-room"
STATUSPAGE_KEY = "chaos-statuspage-key"
STATUSPAGE_ID = "chaospage"
# Where fireline.yaml's secrets come from (env), for the worker and the driver.
SECRETS = {
    "CHAOS_PD_ROUTING_KEY": ROUTING_KEY,
    "CHAOS_SLACK_TOKEN": SLACK_TOKEN,
    "CHAOS_STATUSPAGE_KEY": STATUSPAGE_KEY,
}
USER = {"X-Fireline-User": "alice"}
RUNBOOK = "chaos-rollback"
APPROVAL_STEP = "approve"
CHECK_STEP = "validate"
CHECK_MEASUREMENTS = 3
# Every incident's timeline must hold these; resolved ones also "resolved", the one kept
# open "acknowledged".
REQUIRED_KINDS = ("declared", "alert_firing", "stakeholder_update", "war_room_opened")
UPDATE_TEXT = "We are investigating elevated errors."
REVISION = "deployment.kubernetes.io/revision"
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
  # Recovery validation against the real Prometheus (behind the flaky proxy): the ratio
  # follows the cluster, so it passes only if the rollback really restored the good image.
  - id: validate
    kind: check
    provider: prometheus
    query: max(@METRIC@{namespace="shop",deployment="{params.deployment}"})
    # Two scrapes after the rollout, so the first measurement sees the rolled-back image.
    initial_delay: 2s
    interval: 1s
    count: @COUNT@
    success_condition: result[0] < 0.05
    failure_condition: len(result) == 0 || result[0] >= 0.2
    retries: {max_attempts: 30, backoff: 1s, max_backoff: 5s}
""".replace("@METRIC@", ERROR_RATIO).replace("@COUNT@", str(CHECK_MEASUREMENTS))


@dataclass(frozen=True)
class ChaosOptions:
    """What to break and how much."""

    seed: int = 1
    kills: int = 20
    incidents: int = 6
    fault_rate: float = 0.3
    # Drawn uniformly for each failing call (see chaos.providers.FAULTS).
    fault_kinds: tuple[str, ...] = tuple(FAULTS)
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
    # Leave the last incident acknowledged, not resolved: "the state it should" is not
    # always "resolved", and what stays open must stay open (page, status page, room).
    keep_one_open: bool = True
    # Close one resolved incident before the stale firings arrive: a closed incident takes
    # no more alerts, so its group is where a stale firing could open a second incident.
    close_one: bool = True
    # The rollback runbook with its approval and recovery check (and so Prometheus); off
    # for runs about paging alone.
    runbook: bool = True


@dataclass
class ChaosReport:
    """Faults injected and invariants checked, for the table and for tests."""

    options: ChaosOptions
    faults: dict[str, int] = field(default_factory=dict)
    # Per provider: calls it received, and the faults injected into them by kind.
    calls: dict[str, int] = field(default_factory=dict)
    provider_faults: dict[str, dict[str, int]] = field(default_factory=dict)
    invariants: list[Invariant] = field(default_factory=list)
    seconds: float = 0.0
    kill_phases: Counter[str] = field(default_factory=Counter)
    # The incident left acknowledged on purpose, and the one closed right after resolving.
    kept_open: str | None = None
    closed: str | None = None

    @property
    def held(self) -> bool:
        """Whether every invariant held."""
        return bool(self.invariants) and all(i.held for i in self.invariants)


# What a run that has not settled yet raises: a check not yet true, a refusal, a vendor or
# a restarting Temporal not answering.
NOT_SETTLED: tuple[type[Exception], ...] = (
    AssertionError,
    FirelineError,
    httpx.HTTPError,
    RuntimeError,
)


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float, interval: float = 0.5
) -> T:
    """Retry ``check`` until it stops raising; past the deadline, a TimeoutError says why."""
    try:
        return await support.eventually(
            check, timeout=timeout, interval=interval, retry_on=NOT_SETTLED
        )
    except NOT_SETTLED as exc:
        raise TimeoutError(f"not settled after {timeout:.0f}s: {exc}") from exc


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


@dataclass(frozen=True)
class _Vendors:
    """Where the worker finds each (flaky) vendor."""

    pagerduty: str
    slack: str
    statuspage: str
    prometheus: str | None


def _config(services: list[str], vendors: _Vendors, kubeconfig: Path) -> dict[str, Any]:
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
            # Alertmanager's default (5m) would hold the resolved and stale deliveries past
            # the run's end: flush them within a second, as they arrive.
            "group_interval": "1s",
            "service": "{labels.service}",
            "routes": [{"name": "critical", "matchers": ['severity="critical"']}],
        },
        "paging": {
            "pagerduty": {
                "routing_keys": {"default": {"env": "CHAOS_PD_ROUTING_KEY"}},
                "base_url": vendors.pagerduty,
            }
        },
        "clusters": {"sandbox": {"kubeconfig": str(kubeconfig)}},
        "metrics": {"prometheus": {"url": vendors.prometheus}} if vendors.prometheus else {},
        # Defaults: SEV1 cadence 30 min (no reminder falls inside the run), default audiences.
        "communications": {},
        # The chaos incidents are SEV1: each gets a Slack channel with its timeline mirrored.
        "war_room": {
            "provider": "slack",
            "slack": {"token": {"env": "CHAOS_SLACK_TOKEN"}, "base_url": vendors.slack},
            "severities": ["SEV1", "SEV2"],
        },
        # Customer updates go to Atlassian Statuspage; each service is one component.
        "status_page": {
            "provider": "atlassian",
            "title": "Chaos Shop Status",
            "components": [
                {"id": s, "name": f"Service {s}", "services": [s], "statuspage_id": _component(s)}
                for s in services
            ],
            "atlassian": {
                "page_id": STATUSPAGE_ID,
                "api_key": {"env": "CHAOS_STATUSPAGE_KEY"},
                "base_url": vendors.statuspage,
            },
        },
    }


def _component(service: str) -> str:
    return f"cmp{service.replace('-', '')}"


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
    # shared one would make each's draws depend on timing. Later vendors draw after the
    # first four, so adding one leaves the others' draws as they were.
    seeds = random.Random(opts.seed)
    pd_seed, k8s_seed, kill_seed, order_seed, slack_seed, sp_seed, prom_seed = (
        seeds.randrange(2**32) for _ in range(7)
    )
    flaky: dict[str, Any] = {"rate": opts.fault_rate, "kinds": opts.fault_kinds}
    report = ChaosReport(opts)
    _make_dirs(workdir)
    server = DevServer(state_dir=workdir / "temporal", port=free_port(), ui_port=None)
    services = [f"svc-{n}" for n in range(opts.incidents)]
    pagerduty = FlakyPagerDuty([ROUTING_KEY], seed=pd_seed, **flaky)
    slack = FlakySlack([SLACK_TOKEN], seed=slack_seed, **flaky)
    statuspage = FlakyStatuspage(
        page_id=STATUSPAGE_ID,
        api_key=STATUSPAGE_KEY,
        components=[_component(s) for s in services],
        seed=sp_seed,
        **flaky,
    )
    prometheus = PrometheusStack(workdir / "prometheus", seed=prom_seed, **flaky)
    # Slow rollouts, so kills land while the rolled-back revision is still rolling out.
    emulator = K8sEmulator(rollout_delay=opts.rollout_delay)
    # Prometheus waits for its first scrapes (seconds): in parallel with Temporal's start.
    prometheus_up = asyncio.ensure_future(
        asyncio.to_thread(prometheus.start) if opts.runbook else asyncio.sleep(0)
    )
    await server.start()
    fakes: list[Flaky] = [pagerduty, slack, statuspage]
    for fake in fakes:
        fake.start()
    await emulator.start()
    kubernetes = FlakyKubernetesProxy(emulator.url, seed=k8s_seed, **flaky)
    kubernetes.start()
    fakes.append(kubernetes)
    workers: WorkerProcess | None = None
    try:
        await prometheus_up
        emulator.seed_demo("shop")
        revision_before = int(_deployment(emulator)["metadata"]["annotations"][REVISION])
        vendors = _Vendors(
            pagerduty=pagerduty.url,
            slack=f"{slack.url}/api",
            statuspage=statuspage.base_url,
            prometheus=prometheus.url if opts.runbook else None,
        )
        config_path, library = _write_files(workdir, services, vendors, emulator, kubernetes.url)
        queue = f"chaos-{opts.seed}"
        env = fireline_env(
            temporal_address=server.address,
            config=config_path,
            runbooks_dir=library,
            task_queue=queue,
            state_dir=workdir / "state",
        )
        env.update(SECRETS)
        if opts.break_dedup_keys:
            env[BREAK_DEDUP_KEYS] = "1"
        # The first trigger of every incident reaches PagerDuty and its answer is lost:
        # every page is retried after the vendor acted, whatever the random draws say.
        pagerduty.lose_answers(opts.incidents)
        workers = WorkerProcess(env, workdir)
        workers.start()
        client = await connect(Settings(temporal_address=server.address))
        # The driver loads the same config, whose secrets must be readable here too.
        for name, value in SECRETS.items():
            os.environ.setdefault(name, value)
        config = load_config(config_path)
        incidents = IncidentService(client, config, queue)
        runbooks = RunbookService(
            client, config, queue, load_runbooks([library]), incidents=incidents
        )
        app = create_app(config, client, queue, ack_secret=secrets.token_bytes(32))
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fireline")
        killer = _Killer(workers, random.Random(kill_seed), opts)
        driver = _Driver(api, incidents, runbooks, random.Random(order_seed), opts, killer)
        following = (
            follow_cluster(prometheus.source, emulator, "shop", "checkout")
            if opts.runbook
            else asyncio.sleep(0)
        )
        async with (
            _running(following),
            _running(_watchdog(workers)),
            _running(killer.run()) as killing,
        ):
            ids = await driver.declare(services)
            kept_open = ids[-1] if opts.keep_one_open and len(ids) > 1 else None
            closable = [i for i in ids if i != kept_open]
            closed = closable[-1] if opts.close_one and closable else None
            report.kept_open, report.closed = kept_open, closed
            await killer.next_phase()
            run = await driver.runbook(ids[0]) if opts.runbook else None
            await killer.next_phase()
            if opts.restart_server:
                killer.paused.clear()  # one fault at a time: the restart is its own point
                await server.stop()
                server = DevServer(state_dir=server.state_dir, port=server.port, ui_port=None)
                await server.start()
                report.faults["Temporal server restarts"] = 1
                killer.paused.set()
            if run is not None:
                await driver.approve(ids[0], run)
            await killer.next_phase()
            await driver.paged(pagerduty, ids)
            await driver.tell_customers(ids)
            await killer.next_phase()
            await driver.resolve(services, ids, kept_open, closed)
            await killer.next_phase()
            await killing
            if not workers.alive:
                workers.start()
            expected = {
                i: (
                    IncidentStatus.ACKNOWLEDGED
                    if i == kept_open
                    else IncidentStatus.CLOSED
                    if i == closed
                    else IncidentStatus.RESOLVED
                )
                for i in ids
            }
            final = await driver.settle(pagerduty, slack, statuspage, expected, run)
        report.kill_phases = killer.kill_phases
        vendor_faults: dict[str, Flaky] = {
            "PagerDuty": pagerduty,
            "Slack war room": slack,
            "Statuspage": statuspage,
            "Kubernetes API": kubernetes,
        }
        if prometheus.proxy is not None:
            vendor_faults["Prometheus"] = prometheus.proxy
        for vendor, fake in vendor_faults.items():
            report.calls[vendor] = len(fake.requests)
            report.provider_faults[vendor] = {k: fake.faults.injected[k] for k in FAULTS}
        report.faults.update(
            {
                "worker SIGKILLs": workers.killed,
                "worker exits on its own, replaced": workers.crashed,
                **{
                    f"{vendor} {kind}": n
                    for vendor, kinds in report.provider_faults.items()
                    for kind, n in kinds.items()
                },
                f"webhook deliveries (x{1 + opts.redeliveries}, shuffled)": driver.deliveries,
                "stale firing deliveries after resolved": driver.stale,
            }
        )
        _write_evidence(workdir, final, await driver.groups(), pagerduty, slack, statuspage)
        deployment = _deployment(emulator)
        resolved = {i for i in ids if i != kept_open}
        page_states = {i: ("resolved" if i in resolved else "acknowledged") for i in ids}
        report.invariants = [
            incidents_reached_state(final, {i: want.value for i, want in expected.items()}),
            pages_delivered_once(pagerduty.alerts, ids),
            pages_closed_on_resolve(pagerduty.alerts, page_states),
        ]
        if run is not None:
            run_state = await _run_state(runbooks, ids[0], run)
            report.invariants += [
                rollback_took_effect_once(
                    revision_before,
                    int(deployment["metadata"]["annotations"][REVISION]),
                    deployment["spec"]["template"]["spec"]["containers"][0]["image"],
                    GOOD_IMAGE,
                ),
                approvals_decided_once(run_state, APPROVAL_STEP),
                recovery_validated_once(run_state, CHECK_STEP, CHECK_MEASUREMENTS),
            ]
        report.invariants += [
            timeline_intact(
                final,
                {i: _required_kinds(expected[i]) for i in ids},
            ),
            status_page_opened_once_and_closed(statuspage.incidents.values(), final, resolved),
            war_rooms_opened_once(slack.rooms.values(), slack.messages, final, DEFAULT_MIRRORED),
            stale_firing_ignored(await driver.incidents_by_service(services), final),
            no_workflow_failed(await driver.executions()),
        ]
        await api.aclose()
    finally:
        if workers is not None:
            workers.stop()
        await emulator.stop()
        for fake in fakes:
            fake.stop()
        await asyncio.to_thread(prometheus.stop)
        await server.stop()
    report.seconds = time.monotonic() - started
    return report


def _required_kinds(status: IncidentStatus) -> tuple[str, ...]:
    """The timeline kinds an incident that ended in ``status`` must hold."""
    if status is IncidentStatus.ACKNOWLEDGED:
        return (*REQUIRED_KINDS, "acknowledged")
    if status is IncidentStatus.CLOSED:
        return (*REQUIRED_KINDS, "resolved", "closed")
    return (*REQUIRED_KINDS, "resolved")


def _write_evidence(
    workdir: Path,
    final: dict[str, IncidentState | None],
    groups: list[AlertGroupState],
    pagerduty: FlakyPagerDuty,
    slack: FlakySlack,
    statuspage: FlakyStatuspage,
) -> None:
    """What the invariants judged, as JSON in the work directory (kept with --workdir)."""
    evidence = {
        "incidents": {k: v.model_dump(mode="json") if v else None for k, v in final.items()},
        "alert_groups": [g.model_dump(mode="json") for g in groups],
        "pagerduty_alerts": [
            {"dedup_key": a.dedup_key, "status": a.status, "events": a.events}
            for a in pagerduty.alerts
        ],
        "slack_rooms": [
            {"id": r.id, "name": r.name, "topic": r.topic} for r in slack.rooms.values()
        ],
        "slack_messages": [
            {
                "channel": m.channel,
                "ts": m.ts,
                "thread_ts": m.thread_ts,
                "text": m.text,
                "metadata": m.metadata,
            }
            for m in slack.messages
        ],
        "statuspage_incidents": list(statuspage.incidents.values()),
    }
    (workdir / "evidence.json").write_text(json.dumps(evidence, indent=2, default=str))


def _make_dirs(workdir: Path) -> None:
    for path in (workdir / "temporal", workdir / "runbooks"):
        path.mkdir(parents=True, exist_ok=True)


def _write_files(
    workdir: Path,
    services: list[str],
    vendors: _Vendors,
    emulator: K8sEmulator,
    kubernetes: str,
) -> tuple[Path, Path]:
    """The worker's kubeconfig, fireline.yaml and runbook library; (config, library).

    The kubeconfig is the emulator's, pointed at ``kubernetes``: the flaky proxy in front.
    """
    kubeconfig = workdir / "kubeconfig"
    config = emulator.kubeconfig("shop")
    config["clusters"][0]["cluster"]["server"] = kubernetes
    kubeconfig.write_text(json.dumps(config))
    config_path = workdir / "fireline.yaml"
    config_path.write_text(yaml.safe_dump(_config(services, vendors, kubeconfig)))
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
        self.stale = 0

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

    async def _send(self, batch: list[tuple[str, str]]) -> None:
        for service, status in batch:
            await self._post("/v1/alerts/alertmanager", _alertmanager(service, status))
            self.deliveries += 1

    def _copies(self, services: list[str], status: str, n: int) -> list[tuple[str, str]]:
        return [(s, status) for s in services for _ in range(n)]

    async def declare(self, services: list[str]) -> list[str]:
        """Fire every service's alerts; the incident id each group declared, in order.

        Each firing webhook is sent 1 + redeliveries times, but the last copy is held back:
        it arrives, stale, after the group's resolved ones (see :meth:`resolve`).
        """
        copies = self.opts.redeliveries if self.opts.redeliveries else 1
        batch = self._copies(services, "firing", copies)
        self.rng.shuffle(batch)
        await self._send(batch)

        async def declared(service: str) -> str:
            rows = await self.incidents.list(service=service)
            assert len(rows) == 1, (service, [r.id for r in rows])
            return rows[0].id

        return [
            await eventually(lambda s=s: declared(s), timeout=self.opts.settle_timeout)  # type: ignore[misc]
            for s in services
        ]

    async def executions(self) -> dict[str, str]:
        """Every workflow of the run and its status, from visibility."""
        client = self.incidents.client
        # Visibility lags the last closes by about a second.
        await asyncio.sleep(1)
        return {
            e.id: e.status.name if e.status else "UNKNOWN" async for e in client.list_workflows("")
        }

    async def groups(self) -> list[AlertGroupState]:
        """Every alert group's state (queried from its workflow)."""
        client = self.incidents.client
        found = []
        async for execution in client.list_workflows("WorkflowType = 'AlertGroupWorkflow'"):
            handle = client.get_workflow_handle(execution.id)
            found.append(await handle.query("state", result_type=AlertGroupState))
        return found

    async def incidents_by_service(self, services: list[str]) -> dict[str, list[str]]:
        """Every incident ever declared per service, whatever its status."""
        found: dict[str, list[str]] = {}
        for service in services:

            async def listed(service: str = service) -> list[str]:
                rows = await self.incidents.list(statuses=list(IncidentStatus), service=service)
                return sorted(r.id for r in rows)

            found[service] = await eventually(listed, timeout=60)
        return found

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

    async def tell_customers(self, ids: list[str]) -> None:
        """One stakeholder update per incident, for responders and customers.

        The responder's client retries with one Update id per incident: Temporal runs an
        Update id once, so a retry after a lost answer cannot post the update twice.
        """
        for incident in ids:
            update = PostUpdate(
                actor="alice",
                text=UPDATE_TEXT,
                audiences=[Audience.RESPONDERS, Audience.CUSTOMERS],
            )

            async def post(incident: str = incident, update: PostUpdate = update) -> None:
                handle = self.incidents.client.get_workflow_handle(f"incident-{incident}")
                await self.incidents.execute_update(
                    handle,
                    "post_update",
                    update,
                    UpdateResult,
                    subject=incident,
                    update_id=f"chaos-update-{incident}",
                )

            await eventually(post, timeout=self.opts.settle_timeout)

    async def resolve(
        self, services: list[str], ids: list[str], kept_open: str | None, closed: str | None
    ) -> None:
        """Resolve the incidents through the API (acknowledge the one kept open, close one
        at once), then the alerts resolve: each webhook 1 + redeliveries times, shuffled,
        and after the last resolved copy of each group its held-back firing copy arrives,
        stale."""
        for incident in ids:
            if incident == kept_open:
                await self._post(f"/v1/incidents/{incident}/acknowledge", {})
                continue
            await self._post(
                f"/v1/incidents/{incident}/resolve", {"summary": "rolled back; errors gone"}
            )
            if incident == closed:
                await self._post(f"/v1/incidents/{incident}/close", {})
        batch = self._copies(services, "resolved", 1 + self.opts.redeliveries)
        self.rng.shuffle(batch)
        if self.opts.redeliveries:
            for service in services:
                last = max(i for i, (s, _) in enumerate(batch) if s == service)
                batch.insert(self.rng.randint(last + 1, len(batch)), (service, "firing"))
                self.stale += 1
        await self._send(batch)

    async def settle(
        self,
        pagerduty: FlakyPagerDuty,
        slack: FlakySlack,
        statuspage: FlakyStatuspage,
        expected: dict[str, IncidentStatus],
        run: str | None,
    ) -> dict[str, IncidentState | None]:
        """Wait (bounded) for the system to converge; return each incident's final state."""
        ids = list(expected)
        first = ids[0]

        async def converged() -> None:
            for group in await self.groups():
                unreported = [
                    fp
                    for fp, alert in group.alerts.items()
                    if group.incident_id and group.reported.get(fp) != _state_key(alert)
                ]
                assert not unreported, ("alert group still to flush", unreported)
            # Pages of incidents the run never declared are the invariants' business; they
            # must not hold the wait up until its timeout.
            pages = {
                a.dedup_key: a.status
                for a in pagerduty.alerts
                if any(
                    e.get("payload", {}).get("custom_details", {}).get("incident_id") in expected
                    for e in a.events
                )
            }
            assert all(v in ("resolved", "acknowledged") for v in pages.values()), pages
            if run is not None:
                state = await self.runbooks.state(first, run)
                assert state.status in ("succeeded", "failed", "aborted"), state.status
            opened = {
                (i.get("metadata") or {}).get("fireline", {}).get("incident_id"): i["status"]
                for i in statuspage.incidents.values()
            }
            posted = {
                str((m.metadata or {}).get("event_payload", {}).get("entry_id"))
                for m in slack.messages
            }
            for incident, want in expected.items():
                got = await self.incidents.get(incident)
                assert got.status is want, (incident, got.status)
                if want is not IncidentStatus.ACKNOWLEDGED:
                    assert opened.get(incident) == "resolved", (incident, opened.get(incident))
                else:
                    assert incident in opened, (incident, "no status page incident yet")
                if want is not IncidentStatus.CLOSED:
                    # A closed incident hears no more deliveries (the invariants say so).
                    waiting = [u.id for u in got.updates if not u.deliveries]
                    assert not waiting, (incident, "updates not delivered yet", waiting)
                missing = [e for e in war_room_entries(got, DEFAULT_MIRRORED) if e not in posted]
                assert not missing, (incident, "not in the war room yet", missing)

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
