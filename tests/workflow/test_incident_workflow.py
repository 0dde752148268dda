"""IncidentWorkflow on the time-skipping server: lifecycle, validators, timers, continue-as-new."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.support import demo_config
from worker.runner import build_worker
from workflows.alerts import AlertStatus
from workflows.contracts import (
    Acknowledge,
    AddNote,
    AlertChange,
    AlertsChanged,
    AssignRole,
    Close,
    DeclareIncident,
    IncidentOutcome,
    IncidentSettings,
    IncidentStatus,
    MarkMitigated,
    RefusalRecorded,
    Reopen,
    Resolve,
    Role,
    SetSeverity,
    Severity,
)
from workflows.incident import IncidentWorkflow
from workflows.severity import ImpactFacts, ImpactLevel, SeverityPolicy

Handle = WorkflowHandle[IncidentWorkflow, IncidentOutcome]


_started: list[Handle] = []


@pytest.fixture
async def worker(client: Client, task_queue: str) -> AsyncIterator[None]:
    async with build_worker(client, task_queue):
        yield
        # A workflow left with a pending task and no worker stops the test server from
        # skipping time for every later test: end this test's workflows while we can.
        while _started:
            with contextlib.suppress(RPCError):  # already closed
                await _started.pop().terminate("test finished")


def declaration(**overrides: Any) -> DeclareIncident:
    fields: dict[str, Any] = {
        "id": f"INC-{uuid.uuid4().int % 100_000}",
        "title": "Checkout errors",
        "service": "checkout",
        "severity": Severity.SEV2,
        "declared_by": "alice",
        "config": demo_config().snapshot("checkout"),
    }
    fields.update(overrides)
    return DeclareIncident(**fields)


async def start(client: Client, task_queue: str, inp: DeclareIncident) -> Handle:
    handle = await client.start_workflow(
        IncidentWorkflow.run,
        inp,
        id=f"incident-{inp.id}-{uuid.uuid4().hex[:6]}",
        task_queue=task_queue,
        execution_timeout=timedelta(days=30),
    )
    _started.append(handle)
    return handle


async def refused(handle: Handle, update: Any, arg: Any) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(update, arg)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


pytestmark = pytest.mark.usefixtures("worker")


async def test_declared_incident_has_state_timeline_and_commander(
    client: Client, task_queue: str
) -> None:
    handle = await start(client, task_queue, declaration(commander="bob"))
    state = await handle.query(IncidentWorkflow.state)
    assert state.status is IncidentStatus.DECLARED
    assert state.severity is Severity.SEV2
    assert state.severity_reason == "set by the declarer"
    assert state.roles == {Role.COMMANDER: "bob"}
    assert [e.kind for e in state.timeline] == ["declared", "role_assigned"]
    assert state.timeline[0].text == "alice declared SEV2 on checkout: Checkout errors"
    assert state.timeline[1].text == "alice made bob commander"


async def test_severity_comes_from_the_policy_when_not_given(
    client: Client, task_queue: str
) -> None:
    inp = declaration(severity=None, impact=ImpactFacts(impact=ImpactLevel.PARTIAL_OUTAGE))
    handle = await start(client, task_queue, inp)
    state = await handle.query(IncidentWorkflow.state)
    # checkout is tier-1 in the demo catalog: the default policy makes that SEV1.
    assert state.severity is Severity.SEV1
    assert state.severity_reason.startswith("rule '")


async def test_full_lifecycle_to_close(client: Client, task_queue: str) -> None:
    handle = await start(client, task_queue, declaration())
    ack = await handle.execute_update(IncidentWorkflow.acknowledge, Acknowledge(actor="bob"))
    assert ack.state.status is IncidentStatus.ACKNOWLEDGED
    assert ack.state.acknowledged_by == "bob"
    mit = await handle.execute_update(
        IncidentWorkflow.mark_mitigated, MarkMitigated(actor="bob", summary="rolled back")
    )
    assert mit.entry.text == "bob marked the incident mitigated: rolled back"
    res = await handle.execute_update(
        IncidentWorkflow.resolve, Resolve(actor="alice", summary="1.3.2 restored")
    )
    assert res.state.status is IncidentStatus.RESOLVED
    await handle.execute_update(IncidentWorkflow.close, Close(actor="alice"))
    outcome = await handle.result()
    assert outcome.status is IncidentStatus.CLOSED
    assert outcome.acknowledged_at is not None
    assert outcome.declared_at <= outcome.acknowledged_at <= outcome.resolved_at  # type: ignore[operator]


@pytest.mark.parametrize(
    ("steps", "update", "arg", "error_type", "message"),
    [
        (
            ["ack"],
            IncidentWorkflow.acknowledge,
            Acknowledge(actor="bob"),
            "InvalidTransition",
            "{id} is already acknowledged",
        ),
        (
            ["resolve"],
            IncidentWorkflow.acknowledge,
            Acknowledge(actor="bob"),
            "InvalidTransition",
            "{id} is resolved; reopen it first if the problem is back",
        ),
        (
            ["resolve"],
            IncidentWorkflow.resolve,
            Resolve(actor="bob", summary="again"),
            "InvalidTransition",
            "{id} is resolved",
        ),
        (
            [],
            IncidentWorkflow.close,
            Close(actor="bob"),
            "InvalidTransition",
            "{id} must be resolved before it can be closed",
        ),
        (
            [],
            IncidentWorkflow.reopen,
            Reopen(actor="bob", reason="back"),
            "InvalidTransition",
            "{id} is not resolved, so there is nothing to reopen",
        ),
        (
            [],
            IncidentWorkflow.acknowledge,
            Acknowledge(actor="mallory"),
            "UnknownUser",
            "unknown user 'mallory': not in fireline's user directory",
        ),
        (
            [],
            IncidentWorkflow.assign_role,
            AssignRole(actor="alice", role=Role.COMMANDER, user="mallory"),
            "UnknownUser",
            "unknown user 'mallory': not in fireline's user directory",
        ),
        (
            [],
            IncidentWorkflow.set_severity,
            SetSeverity(actor="alice", severity=Severity.SEV2, reason="same"),
            "InvalidRequest",
            "{id} is already SEV2",
        ),
        (
            [],
            IncidentWorkflow.assign_role,
            AssignRole(actor="alice", role=Role.SCRIBE, user=None),
            "InvalidRequest",
            "nobody holds the scribe role",
        ),
    ],
)
async def test_validators_refuse_and_write_nothing(
    client: Client,
    task_queue: str,
    steps: list[str],
    update: Any,
    arg: Any,
    error_type: str,
    message: str,
) -> None:
    inp = declaration()
    handle = await start(client, task_queue, inp)
    for step in steps:
        if step == "ack":
            await handle.execute_update(IncidentWorkflow.acknowledge, Acknowledge(actor="bob"))
        elif step == "resolve":
            await handle.execute_update(
                IncidentWorkflow.resolve, Resolve(actor="bob", summary="done")
            )
    timeline_before = await handle.query(IncidentWorkflow.timeline)  # first task done
    before = await handle.fetch_history()
    error = await refused(handle, update, arg)
    assert error.type == error_type
    assert error.message == message.format(id=inp.id)
    after = await handle.fetch_history()
    # The validator ran before anything was accepted: only the workflow task that carried
    # the request is new; no Update event, no timeline entry.
    added = {EventType.Name(e.event_type) for e in after.events[len(before.events) :]}
    assert added <= {
        "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
        "EVENT_TYPE_WORKFLOW_TASK_STARTED",
        "EVENT_TYPE_WORKFLOW_TASK_COMPLETED",
    }
    assert await handle.query(IncidentWorkflow.timeline) == timeline_before


async def test_a_person_holds_one_role_and_roles_can_be_vacated(
    client: Client, task_queue: str
) -> None:
    handle = await start(client, task_queue, declaration())
    await handle.execute_update(
        IncidentWorkflow.assign_role, AssignRole(actor="alice", role=Role.SCRIBE, user="bob")
    )
    moved = await handle.execute_update(
        IncidentWorkflow.assign_role, AssignRole(actor="alice", role=Role.COMMANDER, user="bob")
    )
    assert moved.state.roles == {Role.COMMANDER: "bob"}
    assert moved.entry.text == "alice made bob commander; bob is no longer scribe"
    replaced = await handle.execute_update(
        IncidentWorkflow.assign_role, AssignRole(actor="bob", role=Role.COMMANDER, user="carol")
    )
    assert replaced.entry.text == "bob made carol commander (replacing bob)"
    vacated = await handle.execute_update(
        IncidentWorkflow.assign_role, AssignRole(actor="carol", role=Role.COMMANDER, user=None)
    )
    assert vacated.state.roles == {}
    assert vacated.entry.text == "carol vacated commander (was carol)"
    await handle.execute_update(
        IncidentWorkflow.assign_role, AssignRole(actor="alice", role=Role.SME, user="alice")
    )
    error = await refused(
        handle,
        IncidentWorkflow.assign_role,
        AssignRole(actor="bob", role=Role.SME, user="alice"),
    )
    assert (error.type, error.message) == ("InvalidRequest", "alice is already sme")


async def test_severity_change_records_direction_and_reason(
    client: Client, task_queue: str
) -> None:
    handle = await start(client, task_queue, declaration())
    result = await handle.execute_update(
        IncidentWorkflow.set_severity,
        SetSeverity(actor="alice", severity=Severity.SEV1, reason="all regions affected"),
    )
    assert result.entry.text == "alice raised severity SEV2 → SEV1: all regions affected"
    assert result.state.severity_reason == "set by alice: all regions affected"


async def test_mitigate_before_ack_counts_as_first_acknowledgement(
    client: Client, task_queue: str
) -> None:
    handle = await start(client, task_queue, declaration())
    result = await handle.execute_update(
        IncidentWorkflow.mark_mitigated, MarkMitigated(actor="carol")
    )
    assert result.state.acknowledged_by == "carol"
    assert result.entry.text == (
        "carol marked the incident mitigated (this is also the first acknowledgement)"
    )


async def test_resolved_incident_closes_itself_after_reopen_window(
    time_env: WorkflowEnvironment, client: Client, task_queue: str
) -> None:
    handle = await start(client, task_queue, declaration())
    await handle.execute_update(IncidentWorkflow.resolve, Resolve(actor="bob", summary="fixed"))
    await time_env.sleep(timedelta(minutes=30))
    reopened = await handle.execute_update(
        IncidentWorkflow.reopen, Reopen(actor="alice", reason="errors are back")
    )
    assert reopened.state.status is IncidentStatus.ACKNOWLEDGED
    assert reopened.state.resolved_at is None
    await handle.execute_update(IncidentWorkflow.resolve, Resolve(actor="bob", summary="fixed"))
    outcome = await handle.result()  # time skips through the one-hour window
    assert outcome.status is IncidentStatus.CLOSED
    assert outcome.closed_at is not None
    assert outcome.resolved_at is not None
    assert outcome.closed_at - outcome.resolved_at >= timedelta(hours=1)
    timeline = await handle.query(IncidentWorkflow.timeline)
    assert timeline[-1].text == "closed: the reopen window passed"


async def test_long_incident_continues_as_new_without_losing_anything(
    client: Client, task_queue: str
) -> None:
    config = (
        demo_config()
        .snapshot("checkout")
        .model_copy(update={"settings": IncidentSettings(max_history_events=40)})
    )
    handle = await start(client, task_queue, declaration(config=config))
    await handle.execute_update(IncidentWorkflow.acknowledge, Acknowledge(actor="bob"))
    for i in range(30):
        await handle.execute_update(IncidentWorkflow.add_note, AddNote(actor="alice", text=f"n{i}"))
    state = await handle.query(IncidentWorkflow.state)
    assert state.generation > 1
    notes = [e.text for e in state.timeline if e.kind == "note"]
    assert notes == [f"n{i}" for i in range(30)]
    assert state.status is IncidentStatus.ACKNOWLEDGED
    assert len({e.id for e in state.timeline}) == len(state.timeline)


async def test_an_update_result_carries_the_newest_entries_not_the_whole_timeline(
    client: Client, task_queue: str
) -> None:
    handle = await start(client, task_queue, declaration())
    results = [
        await handle.execute_update(IncidentWorkflow.add_note, AddNote(actor="alice", text=f"n{i}"))
        for i in range(60)
    ]
    last = results[-1]
    assert last.entry.text == "n59"
    assert [e.text for e in last.state.timeline][-3:] == ["n57", "n58", "n59"]
    assert len(last.state.timeline) == 50
    full = await handle.query(IncidentWorkflow.state)
    assert last.timeline_omitted == len(full.timeline) - 50 > 0
    assert results[0].timeline_omitted == 0
    # What history records per Update stays the same size however long the incident runs.
    sizes = [
        e.workflow_execution_update_completed_event_attributes.outcome.success.ByteSize()
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
    ]
    assert len(sizes) == 60
    assert sizes[-1] < 1.2 * sizes[49], sizes


async def test_refusal_signal_goes_on_the_timeline(client: Client, task_queue: str) -> None:
    handle = await start(client, task_queue, declaration())
    await handle.signal(
        IncidentWorkflow.record_refusal,
        RefusalRecorded(actor="mallory", action="acknowledge", reason="unknown user"),
    )
    timeline = await handle.query(IncidentWorkflow.timeline)
    assert timeline[-1].kind == "refused"
    assert timeline[-1].text == "refused acknowledge by mallory: unknown user"


async def test_time_window_policy_works_inside_the_sandbox(client: Client, task_queue: str) -> None:
    # ZoneInfo inside the workflow sandbox only works because the policy modules are passed
    # through; a direct import would break `during` rules at run time, not at load.
    policy = SeverityPolicy.model_validate(
        {
            "default": "SEV4",
            "time_intervals": [
                {"name": "always", "time_intervals": [{"location": "America/New_York"}]}
            ],
            "rules": [{"name": "any time", "when": {"during": ["always"]}, "severity": "SEV1"}],
        }
    )
    config = demo_config().snapshot("checkout").model_copy(update={"severity_policy": policy})
    handle = await start(client, task_queue, declaration(severity=None, config=config))
    state = await handle.query(IncidentWorkflow.state)
    assert state.severity is Severity.SEV1
    assert state.severity_reason.startswith("rule 'any time': ")


def _change(status: AlertStatus, name: str = "HighErrorRate", fp: str = "fp1") -> AlertChange:
    return AlertChange(
        fingerprint=fp,
        alertname=name,
        status=status,
        summary="5xx above 5%",
        starts_at=datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
        ends_at=datetime(2026, 11, 27, 9, 5, tzinfo=UTC)
        if status is AlertStatus.RESOLVED
        else None,
    )


async def test_alert_changes_go_on_the_timeline_once(client: Client, task_queue: str) -> None:
    handle = await start(client, task_queue, declaration())
    msg = AlertsChanged(group_key="g1", changes=[_change(AlertStatus.FIRING)])
    await handle.signal(IncidentWorkflow.alerts_changed, msg)
    await handle.signal(IncidentWorkflow.alerts_changed, msg)  # an activity retry
    state = await handle.query(IncidentWorkflow.state)
    assert [e.text for e in state.timeline if e.kind.startswith("alert")] == [
        "alert HighErrorRate firing: 5xx above 5%"
    ]
    assert state.alert_groups == ["g1"]


@pytest.mark.parametrize(
    ("severity", "policy", "status", "last"),
    [
        (
            Severity.SEV3,
            None,
            IncidentStatus.RESOLVED,
            "resolved automatically: all alerts resolved",
        ),
        (
            Severity.SEV1,
            None,
            IncidentStatus.DECLARED,
            "all alerts resolved; still open: SEV1 incidents are resolved by a person",
        ),
        (
            Severity.SEV1,
            True,
            IncidentStatus.RESOLVED,
            "resolved automatically: all alerts resolved",
        ),
        (
            Severity.SEV4,
            False,
            IncidentStatus.DECLARED,
            "all alerts resolved; still open: the route turns auto-resolve off",
        ),
    ],
)
async def test_all_alerts_resolved_follows_the_auto_resolve_policy(
    client: Client,
    task_queue: str,
    severity: Severity,
    policy: bool | None,
    status: IncidentStatus,
    last: str,
) -> None:
    handle = await start(client, task_queue, declaration(severity=severity))
    await handle.signal(
        IncidentWorkflow.alerts_changed,
        AlertsChanged(group_key="g1", changes=[_change(AlertStatus.FIRING)]),
    )
    await handle.signal(
        IncidentWorkflow.alerts_changed,
        AlertsChanged(
            group_key="g1",
            changes=[_change(AlertStatus.RESOLVED)],
            all_resolved=True,
            auto_resolve=policy,
        ),
    )
    state = await handle.query(IncidentWorkflow.state)
    assert state.status is status
    assert state.timeline[-1].text == last


async def test_an_alert_firing_again_reopens_a_resolved_incident(
    time_env: WorkflowEnvironment, client: Client, task_queue: str
) -> None:
    handle = await start(client, task_queue, declaration(severity=Severity.SEV3))
    for status in (AlertStatus.FIRING, AlertStatus.RESOLVED):
        await handle.signal(
            IncidentWorkflow.alerts_changed,
            AlertsChanged(group_key="g1", changes=[_change(status)], all_resolved=True),
        )
    assert (await handle.query(IncidentWorkflow.state)).status is IncidentStatus.RESOLVED
    # Fires again after the resolution (the test server's clock is the workflow's).
    again = _change(AlertStatus.FIRING).model_copy(
        update={"starts_at": await time_env.get_current_time() + timedelta(minutes=1)}
    )
    await handle.signal(
        IncidentWorkflow.alerts_changed, AlertsChanged(group_key="g1", changes=[again])
    )
    state = await handle.query(IncidentWorkflow.state)
    assert state.status is IncidentStatus.ACKNOWLEDGED
    assert state.timeline[-1].text == "reopened: an alert is firing again"


async def test_a_cascade_is_said_once(client: Client, task_queue: str) -> None:
    handle = await start(client, task_queue, declaration())
    for fp in ("a", "b"):
        await handle.signal(
            IncidentWorkflow.alerts_changed,
            AlertsChanged(
                group_key="g-checkout",
                changes=[_change(AlertStatus.FIRING, fp=fp)],
                cascade_note="likely cascade: checkout depends on orders-db",
            ),
        )
    timeline = await handle.query(IncidentWorkflow.timeline)
    assert [e.text for e in timeline if e.kind == "cascade"] == [
        "alerts attached as a likely cascade: checkout depends on orders-db"
    ]


async def test_an_alert_that_fired_before_the_resolution_does_not_reopen(
    time_env: WorkflowEnvironment, client: Client, task_queue: str
) -> None:
    handle = await start(client, task_queue, declaration(severity=Severity.SEV3))
    started = await time_env.get_current_time()
    await handle.execute_update(IncidentWorkflow.resolve, Resolve(actor="bob", summary="done"))
    late = _change(AlertStatus.FIRING).model_copy(
        update={"starts_at": started - timedelta(minutes=1)}
    )
    await handle.signal(
        IncidentWorkflow.alerts_changed, AlertsChanged(group_key="g1", changes=[late])
    )
    state = await handle.query(IncidentWorkflow.state)
    assert state.status is IncidentStatus.RESOLVED
    assert state.timeline[-1].text == "alert HighErrorRate firing: 5xx above 5%"
