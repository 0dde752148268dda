"""Rehearse a runbook against the real RunbookWorkflow with scripted step results.

A :class:`Script` says what each action returns (per call), what each check measures, and
how each approval is decided. :func:`rehearse` declares an incident (alice is commander),
starts the run through the incident's ``start_runbook`` Update, plays the script on the
time-skipping server and returns the run's final state and the incident's.

Actions and ``metrics.query`` are one dynamic fake activity, so any action name works and
every request the workflow sends is kept for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.contracts import (
    ActionRequest,
    ActionResult,
    MetricQuery,
    MetricSample,
    Page,
    PageResult,
)
from runbooks.schema import Runbook
from runbooks.substitution import AlertFacts
from tests.support import demo_config
from worker.config import FirelineConfig
from workflows.contracts import (
    AlertStatusChanged,
    ApprovalDecision,
    DeclareIncident,
    IncidentState,
    RunbookRunState,
    Severity,
    StartRunbook,
    TriageTarget,
)
from workflows.escalation_workflow import EscalationWorkflow
from workflows.incident import IncidentWorkflow
from workflows.runbook import RunbookWorkflow

# Runbook actions are named <system>.<verb>; anything else is not an action.
ACTION_PREFIXES = ("k8s.", "http.", "flag.", "temporal.", "demo.")
# Workflow ids each test task queue started, terminated when its world stops.
_STARTED: dict[str, list[str]] = {}
GROUPS = {"sre-leads": ["bob"], "trading-ops": ["bob"], "payments-leads": ["bob"]}


@dataclass
class Script:
    """What the outside world does during one rehearsal."""

    # step id -> one result per call: {"output": {...}} or {"error": "...", "retryable": bool}
    actions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # check step id -> one list of numbers per measurement (or {"error": "..."})
    measurements: dict[str, list[Any]] = field(default_factory=dict)
    # approval step id -> {"approve": bool, "by": user, "comment": str} or {"timeout": True}
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The run's alert resolves once this much (test-server) time has passed.
    alert_resolves_after: timedelta | None = None


@dataclass
class World:
    """The fake side of every activity, and what the workflow asked of it."""

    script: Script
    client: Client
    requests: list[ActionRequest] = field(default_factory=list)
    queries: list[tuple[str, str]] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    _calls: dict[str, int] = field(default_factory=dict)

    @activity.defn(dynamic=True)
    async def act(self, args: Sequence[RawValue]) -> Any:
        name = activity.info().activity_type
        converter = activity.payload_converter()
        if name == "metrics.query":
            query = converter.from_payload(args[0].payload, MetricQuery)
            return await self._measure(query)
        if name == "notify.send":  # the incident's own paging, when a runbook escalates
            page = converter.from_payload(args[0].payload, Page)
            self.pages.append(page)
            return PageResult(
                provider=page.contact.kind,
                delivered=True,
                action=page.action,
                dedup_key=page.dedup_key,
            )
        if not name.startswith(ACTION_PREFIXES):
            raise ApplicationError(f"the harness has no activity {name}", non_retryable=True)
        request = converter.from_payload(args[0].payload, ActionRequest)
        self.requests.append(request)
        key = request.step_id
        n = self._calls.get(key, 0)
        self._calls[key] = n + 1
        scripted = self.script.actions.get(key, [])
        result = scripted[min(n, len(scripted) - 1)] if scripted else {"output": {}}
        if "error" in result:
            raise ApplicationError(
                str(result["error"]),
                type="ScriptedFailure",
                non_retryable=not result.get("retryable", False),
            )
        return ActionResult(
            output=result.get("output", {}),
            summary=f"{name} done" + (" (dry run)" if request.dry_run else ""),
            changed=not request.dry_run,
            dry_run=request.dry_run,
            attempt=activity.info().attempt,
        )

    async def _measure(self, query: MetricQuery) -> MetricSample:
        # The check that asks is the run's current step: read it from the run itself.
        info = activity.info()
        assert info.workflow_id is not None
        handle = self.client.get_workflow_handle(info.workflow_id)
        state: RunbookRunState = await handle.query(RunbookWorkflow.state)
        step = state.current_step or ""
        self.queries.append((step, query.query))
        n = self._calls.get(f"measure:{step}", 0)
        self._calls[f"measure:{step}"] = n + 1
        values = self.script.measurements.get(step, [])
        if n >= len(values):
            raise ApplicationError(
                f"no scripted measurement {n + 1} for {step}", non_retryable=True
            )
        value = values[n]
        if isinstance(value, dict):
            raise ApplicationError(str(value["error"]), non_retryable=True)
        return MetricSample(
            source=query.source,
            query=query.query,
            result_type="vector",
            values=[float(v) for v in value],
            labels=[{} for _ in value],
            time=datetime.now(UTC),
        )


def harness_config() -> FirelineConfig:
    """alice, bob, carol, and the groups rehearsals name."""
    base = demo_config().model_dump(mode="json", exclude_unset=True)
    base.setdefault("teams", {})
    for group, members in GROUPS.items():
        base["teams"][group] = {"members": members}
    return FirelineConfig.model_validate(base)


@contextlib.asynccontextmanager
async def world_worker(client: Client, task_queue: str, script: Script) -> AsyncIterator[World]:
    """A worker running the real workflows and the scripted world."""
    world = World(script=script, client=client)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[IncidentWorkflow, EscalationWorkflow, RunbookWorkflow],
        activities=[world.act],
    ):
        try:
            yield world
        finally:
            # Left running, these workflows' tasks wait for a worker that is gone, and the
            # shared test server then refuses to skip time for the next test.
            for workflow_id in _STARTED.pop(task_queue, []):
                with contextlib.suppress(RPCError):
                    await client.get_workflow_handle(workflow_id).terminate("rehearsal over")


async def declare_incident(
    client: Client, task_queue: str, triage: Sequence[TriageTarget] = ()
) -> WorkflowHandle[Any, Any]:
    """An incident on checkout with alice as commander, paging nobody."""
    incident_id = f"INC-{uuid.uuid4().int % 10**6}"
    config = harness_config()
    _STARTED.setdefault(task_queue, []).append(f"incident-{incident_id}")
    return await client.start_workflow(
        IncidentWorkflow.run,
        DeclareIncident(
            id=incident_id,
            title="Checkout errors",
            service="checkout",
            severity=Severity.SEV2,
            declared_by="alice",
            commander="alice",
            config=config.snapshot("checkout", incident_id),
            triage=list(triage),
        ),
        id=f"incident-{incident_id}",
        task_queue=task_queue,
        execution_timeout=timedelta(days=7),
    )


async def start_run(
    client: Client,
    incident: WorkflowHandle[Any, Any],
    task_queue: str,
    runbook: Runbook,
    *,
    params: dict[str, Any] | None = None,
    alert: AlertFacts | None = None,
    dry_run: bool = False,
    actor: str = "alice",
) -> WorkflowHandle[Any, Any]:
    """Start ``runbook`` through the incident, every cluster on the test's task queue."""
    cluster = (alert.labels.get("cluster") if alert else None) or "sandbox"
    summary = await incident.execute_update(
        IncidentWorkflow.start_runbook,
        StartRunbook(
            runbook=runbook,
            actor=actor,
            params=params or {},
            alert=alert,
            dry_run=dry_run,
            cluster_queues={cluster: task_queue},
            groups=GROUPS,
        ),
    )
    _STARTED.setdefault(task_queue, []).append(summary.workflow_id)
    return client.get_workflow_handle(summary.workflow_id)


async def run_state(run: WorkflowHandle[Any, Any]) -> RunbookRunState:
    """The run's state query."""
    state: RunbookRunState = await run.query(RunbookWorkflow.state)
    return state


async def incident_state(incident: WorkflowHandle[Any, Any]) -> IncidentState:
    """The incident's state query."""
    state: IncidentState = await incident.query(IncidentWorkflow.state)
    return state


async def play(
    env: WorkflowEnvironment,
    run: WorkflowHandle[Any, Any],
    script: Script,
    *,
    step: timedelta = timedelta(seconds=30),
    limit: int = 400,
) -> RunbookRunState:
    """Drive the run to its end: decide approvals as scripted, skip time in small steps."""
    decided: set[str] = set()
    elapsed = timedelta(0)
    resolved = False
    for _ in range(limit):
        state = await run_state(run)
        if state.ended_at is not None:
            await _incident_saw_the_end(run, state)
            return state
        pending = state.pending
        if pending is not None and pending.step_id not in decided:
            decision = script.decisions.get(pending.step_id)
            if decision is None:
                raise AssertionError(f"unscripted approval: {pending.step_id}")
            if not decision.get("timeout"):
                decided.add(pending.step_id)
                await run.execute_update(
                    RunbookWorkflow.decide,
                    ApprovalDecision(
                        step_id=pending.step_id,
                        approve=bool(decision["approve"]),
                        actor=str(decision["by"]),
                        comment=str(decision.get("comment", "")),
                    ),
                )
                continue
        if (
            script.alert_resolves_after is not None
            and not resolved
            and elapsed >= script.alert_resolves_after
        ):
            resolved = True
            await run.signal(RunbookWorkflow.alert_changed, AlertStatusChanged(status="resolved"))
        await _sleep(env, step)
        elapsed += step
        # Let the worker take what the skip released before the next look.
        await asyncio.sleep(0.02)
    raise AssertionError(f"the run did not end within {limit} steps")


async def _incident_saw_the_end(run: WorkflowHandle[Any, Any], state: RunbookRunState) -> None:
    """Until the incident has heard the run end, as a person's next action would find it.

    The run reports its end to the incident by a signal: a test that starts the next run at
    once would otherwise race it and meet "already running".
    """
    # The handle keeps the client it came from; the SDK has no public name for it.
    incident = run._client.get_workflow_handle(f"incident-{state.incident_id}")
    for _ in range(200):
        runs = (await incident_state(incident)).runs
        if all(r.status not in ("running", "paused") for r in runs if r.run_id == state.run_id):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{state.incident_id} never heard that {state.run_id} ended")


async def _sleep(env: WorkflowEnvironment, duration: timedelta) -> None:
    for attempt in range(5):
        try:
            await env.sleep(duration)
            return
        except RPCError:
            if attempt == 4:
                raise


def step_statuses(state: RunbookRunState) -> list[tuple[str, str]]:
    """(step id, status) for every visit, in the order they ran."""
    return [(r.step_id, r.status) for r in state.steps]
