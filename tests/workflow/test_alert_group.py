"""AlertGroupWorkflow on the time-skipping server: grouping timers, dedup, declare rules,
correlation, resolution and lingering, with the incident activities faked under their names."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from workflows.alert_group import AlertGroupWorkflow
from workflows.alerts import Alert, AlertSource, AlertStatus, fingerprint
from workflows.contracts import (
    AlertGroupInput,
    AlertGroupState,
    AlertsArrived,
    AttachAlerts,
    CorrelateRequest,
    Correlation,
    DeclaredIncident,
    DeclareFromAlerts,
    GroupedAlert,
)
from workflows.routing import load_routing, match_routes
from workflows.severity import ImpactLevel

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@dataclass
class FakeIncidents:
    """Stands in for worker/incident_activities.py and records every call."""

    correlation: Correlation = field(default_factory=Correlation)
    declared: list[DeclareFromAlerts] = field(default_factory=list)
    attached: list[AttachAlerts] = field(default_factory=list)
    closed: set[str] = field(default_factory=set)

    @activity.defn(name="incidents.correlate")
    async def correlate(self, req: CorrelateRequest) -> Correlation:
        return self.correlation

    @activity.defn(name="incidents.declare_from_alerts")
    async def declare_from_alerts(self, req: DeclareFromAlerts) -> DeclaredIncident:
        self.declared.append(req)
        return DeclaredIncident(incident_id=f"INC-{len(self.declared)}")

    @activity.defn(name="incidents.attach_alerts")
    async def attach_alerts(self, req: AttachAlerts) -> bool:
        if req.incident_id in self.closed:
            return False
        self.attached.append(req)
        return True


@pytest.fixture
async def incidents(client: Client, task_queue: str) -> AsyncIterator[FakeIncidents]:
    fake = FakeIncidents()
    handles: list[WorkflowHandle[Any, Any]] = []
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[AlertGroupWorkflow],
        activities=[fake.correlate, fake.declare_from_alerts, fake.attach_alerts],
    ):
        fake.handles = handles  # type: ignore[attr-defined]
        yield fake
        for handle in handles:
            with contextlib.suppress(RPCError):
                await handle.terminate("test finished")


def route(**declare: Any) -> Any:
    tree = load_routing(
        {
            "group_by": ["service", "alertname"],
            "group_wait": "30s",
            "group_interval": "5m",
            "routes": [
                {
                    "matchers": ['service="checkout"'],
                    "service": "checkout",
                    "declare": declare or {"min_severity": "critical"},
                }
            ],
        }
    )
    [resolved] = match_routes(tree, {"service": "checkout"})
    return resolved


def alert(
    name: str = "HighErrorRate",
    *,
    severity: str = "critical",
    status: AlertStatus = AlertStatus.FIRING,
    starts: datetime = T0,
    instance: str = "a",
) -> Alert:
    labels = {"alertname": name, "service": "checkout", "severity": severity, "instance": instance}
    return Alert(
        fingerprint=fingerprint(labels),
        status=status,
        labels=labels,
        annotations={"summary": f"{name} on {instance}"},
        starts_at=starts,
        ends_at=starts + timedelta(minutes=5) if status is AlertStatus.RESOLVED else None,
        source=AlertSource.ALERTMANAGER,
    )


async def send(
    client: Client,
    task_queue: str,
    fake: FakeIncidents,
    group: str,
    alerts: list[Alert],
    *,
    suppressed: str | None = None,
    correlate_with: list[str] | None = None,
    received_at: datetime = T0,
    **route_declare: Any,
) -> WorkflowHandle[Any, Any]:
    handle = await client.start_workflow(
        AlertGroupWorkflow.run,
        AlertGroupInput(
            group_key=group,
            route=route(**route_declare),
            correlate_with=correlate_with or [],
            linger=timedelta(hours=1),
        ),
        id=f"alert-group-{group}",
        task_queue=task_queue,
        start_signal="alerts",
        start_signal_args=[
            AlertsArrived(
                alerts=[GroupedAlert(alert=a, suppressed=suppressed) for a in alerts],
                received_at=received_at,
            )
        ],
        execution_timeout=timedelta(days=7),
    )
    fake.handles.append(handle)  # type: ignore[attr-defined]
    return handle


def key() -> str:
    return uuid.uuid4().hex[:12]


async def state(handle: WorkflowHandle[Any, Any]) -> AlertGroupState:
    result: AlertGroupState = await handle.query(AlertGroupWorkflow.state)
    return result


async def test_group_wait_batches_alerts_into_one_declaration(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, incidents: FakeIncidents
) -> None:
    group = key()
    await send(client, task_queue, incidents, group, [alert(instance="a")])
    await send(
        client,
        task_queue,
        incidents,
        group,
        [alert(instance="b", starts=T0 + timedelta(minutes=1))],
    )
    assert incidents.declared == []  # group_wait has not passed
    await time_env.sleep(timedelta(seconds=31))
    [declared] = incidents.declared
    assert declared.service == "checkout"
    assert declared.title == "HighErrorRate: HighErrorRate on a"  # titled from the first
    assert declared.impact.impact is ImpactLevel.PARTIAL_OUTAGE  # severity=critical
    [attach] = incidents.attached
    assert attach.incident_id == "INC-1"
    assert {c.labels["instance"] for c in attach.changes.changes} == {"a", "b"}
    # The declaration waits on other workflows' tasks, so it is a regular activity (a local
    # one holds the group's workflow-task slot meanwhile); attaching stays local.
    events = [
        e async for e in client.get_workflow_handle(f"alert-group-{group}").fetch_history_events()
    ]
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["incidents.declare_from_alerts"]


async def test_redelivery_changes_nothing(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, incidents: FakeIncidents
) -> None:
    group = key()
    batch = [alert(instance="a"), alert(instance="b")]
    handle = await send(client, task_queue, incidents, group, batch)
    await time_env.sleep(timedelta(seconds=31))
    await send(client, task_queue, incidents, group, batch)
    await send(client, task_queue, incidents, group, list(reversed(batch)))
    await time_env.sleep(timedelta(minutes=10))
    assert len(incidents.declared) == 1
    assert len(incidents.attached) == 1
    assert (await state(handle)).duplicates == 4


async def test_changes_after_a_flush_wait_for_group_interval(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, incidents: FakeIncidents
) -> None:
    group = key()
    await send(client, task_queue, incidents, group, [alert(instance="a")])
    await time_env.sleep(timedelta(seconds=31))
    assert len(incidents.attached) == 1
    await send(client, task_queue, incidents, group, [alert(instance="c")])
    await time_env.sleep(timedelta(minutes=2))
    assert len(incidents.attached) == 1  # group_interval (5m) since the last flush
    await time_env.sleep(timedelta(minutes=4))
    assert len(incidents.attached) == 2
    assert [c.labels["instance"] for c in incidents.attached[1].changes.changes] == ["c"]


async def test_alerts_below_the_declare_rule_are_recorded_not_declared(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, incidents: FakeIncidents
) -> None:
    group = key()
    handle = await send(client, task_queue, incidents, group, [alert(severity="warning")])
    await time_env.sleep(timedelta(minutes=1))
    assert incidents.declared == []
    assert len((await state(handle)).alerts) == 1
    await send(client, task_queue, incidents, group, [alert(instance="b")])  # critical
    await time_env.sleep(timedelta(minutes=6))
    assert len(incidents.declared) == 1


async def test_firing_for_delays_the_declaration(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, incidents: FakeIncidents
) -> None:
    group = key()
    # The alert starts at the test server's "now", which moves as time skips.
    started = await time_env.get_current_time()
    await send(client, task_queue, incidents, group, [alert(starts=started)], firing_for="10m")
    await time_env.sleep(timedelta(minutes=5))
    assert incidents.declared == []
    await time_env.sleep(timedelta(minutes=6))
    assert len(incidents.declared) == 1


async def test_min_occurrences_within_a_window(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, incidents: FakeIncidents
) -> None:
    group = key()
    rule: dict[str, Any] = {"min_occurrences": 3, "within": "10m"}
    now = await time_env.get_current_time()
    await send(client, task_queue, incidents, group, [alert(instance="a", starts=now)], **rule)
    await send(client, task_queue, incidents, group, [alert(instance="b", starts=now)], **rule)
    await time_env.sleep(timedelta(minutes=1))
    assert incidents.declared == []
    await send(client, task_queue, incidents, group, [alert(instance="c", starts=now)], **rule)
    await time_env.sleep(timedelta(minutes=6))
    assert len(incidents.declared) == 1


async def test_an_open_incident_of_a_dependency_takes_the_group_as_a_cascade(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, incidents: FakeIncidents
) -> None:
    incidents.correlation = Correlation(incident_id="INC-7", service="orders-db", reason="open")
    group = key()
    await send(
        client, task_queue, incidents, group, [alert()], correlate_with=["checkout", "orders-db"]
    )
    await time_env.sleep(timedelta(seconds=31))
    assert incidents.declared == []
    [attach] = incidents.attached
    assert attach.incident_id == "INC-7"
    assert attach.changes.cascade_note == "likely cascade: checkout depends on orders-db"


async def test_suppressed_alerts_never_declare(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, incidents: FakeIncidents
) -> None:
    group = key()
    handle = await send(
        client, task_queue, incidents, group, [alert()], suppressed="silenced by 1234"
    )
    await time_env.sleep(timedelta(minutes=1))
    assert incidents.declared == []
    assert (await state(handle)).suppressed == {alert().fingerprint: "silenced by 1234"}


async def test_all_resolved_is_reported_then_the_group_lingers_and_ends(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, incidents: FakeIncidents
) -> None:
    group = key()
    handle = await send(client, task_queue, incidents, group, [alert()])
    await time_env.sleep(timedelta(seconds=31))
    await send(client, task_queue, incidents, group, [alert(status=AlertStatus.RESOLVED)])
    await time_env.sleep(timedelta(minutes=6))
    last = incidents.attached[-1].changes
    assert last.all_resolved is True
    assert [c.status for c in last.changes] == [AlertStatus.RESOLVED]
    final = await handle.result()  # lingers one quiet hour, then completes
    assert final.incident_id == "INC-1"


async def test_a_flapping_alert_rejoins_its_incident(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, incidents: FakeIncidents
) -> None:
    group = key()
    await send(client, task_queue, incidents, group, [alert()])
    await time_env.sleep(timedelta(seconds=31))
    await send(client, task_queue, incidents, group, [alert(status=AlertStatus.RESOLVED)])
    await time_env.sleep(timedelta(minutes=6))
    await send(client, task_queue, incidents, group, [alert(starts=T0 + timedelta(minutes=20))])
    await time_env.sleep(timedelta(minutes=6))
    assert len(incidents.declared) == 1
    assert {a.incident_id for a in incidents.attached} == {"INC-1"}
    assert incidents.attached[-1].changes.changes[0].status is AlertStatus.FIRING


async def test_a_late_firing_copy_after_the_resolution_changes_nothing(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, incidents: FakeIncidents
) -> None:
    group = key()
    await send(client, task_queue, incidents, group, [alert()])
    await time_env.sleep(timedelta(seconds=31))
    resolved_at = T0 + timedelta(minutes=1)
    resolved = alert(status=AlertStatus.RESOLVED)
    await send(client, task_queue, incidents, group, [resolved], received_at=resolved_at)
    # The firing copy a retrying sender delivers after the resolution: same startsAt.
    stale = await send(client, task_queue, incidents, group, [alert()], received_at=resolved_at)
    await time_env.sleep(timedelta(minutes=6))
    now = await state(stale)
    assert [a.status for a in now.alerts.values()] == [AlertStatus.RESOLVED]
    assert now.duplicates == 1
    assert len(incidents.declared) == 1
    assert all(c.status is AlertStatus.RESOLVED for c in incidents.attached[-1].changes.changes)

    # Unchanged and firing again well after: Alertmanager's resolve_timeout had resolved
    # an alert Prometheus still sends. It fires.
    later = resolved_at + timedelta(minutes=10)
    await send(client, task_queue, incidents, group, [alert()], received_at=later)
    await time_env.sleep(timedelta(minutes=6))
    assert [a.status for a in (await state(stale)).alerts.values()] == [AlertStatus.FIRING]
    assert incidents.attached[-1].changes.changes[0].status is AlertStatus.FIRING


async def test_a_closed_incident_makes_the_group_declare_a_new_one(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, incidents: FakeIncidents
) -> None:
    group = key()
    await send(client, task_queue, incidents, group, [alert()])
    await time_env.sleep(timedelta(seconds=31))
    incidents.closed.add("INC-1")
    await send(client, task_queue, incidents, group, [alert(instance="b")])
    await time_env.sleep(timedelta(minutes=6))
    assert len(incidents.declared) == 2
    # A new request id, or the idempotent declaration would hand back the closed incident.
    assert incidents.declared[0].request_id != incidents.declared[1].request_id
    assert incidents.attached[-1].incident_id == "INC-2"
