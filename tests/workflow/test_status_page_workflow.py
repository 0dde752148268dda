"""StatusPageWorkflow on the time-skipping server: publish, dedupe, refuse, maintenance,
90-day pruning and continue-as-new."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.status_page import BuiltinStatusPage
from workflows.contracts import (
    MAX_BODY_CHARS,
    ComponentStatus,
    Maintenance,
    PageComponent,
    PageGroup,
    PublicStatus,
    ScheduleMaintenance,
    StatusImpact,
    StatusPageInput,
    StatusPageSnapshot,
    StatusPublication,
    StatusPublished,
    StatusTransition,
)
from workflows.status_page import StatusPageWorkflow

MAJOR = ComponentStatus.MAJOR_OUTAGE
OP = ComponentStatus.OPERATIONAL


def page_input(**changes: Any) -> StatusPageInput:
    inp = StatusPageInput(
        title="Example Shop Status",
        public_url="https://status.example.com/status",
        components=[
            PageComponent(id="checkout", name="Checkout", group="shop"),
            PageComponent(id="payments-api", name="Payments API", group="shop"),
            PageComponent(id="website", name="Website"),
        ],
        groups=[PageGroup(id="shop", name="Shop")],
    )
    return inp.model_copy(update=changes)


def pub(at: datetime, update_id: str = "INC-1-u1", **changes: Any) -> StatusPublication:
    publication = StatusPublication(
        incident_id="INC-1",
        update_id=update_id,
        at=at,
        title="Checkout failures",
        status=PublicStatus.INVESTIGATING,
        impact=StatusImpact.CRITICAL,
        body="Customers cannot complete checkout. We are investigating.",
        components={"checkout": MAJOR},
    )
    return publication.model_copy(update=changes)


class Page:
    """A status page workflow of its own (id unique per test) and its publisher."""

    def __init__(self, client: Client, task_queue: str, inp: StatusPageInput) -> None:
        self.id = f"status-page-{uuid.uuid4()}"
        self.client = client
        self.publisher = BuiltinStatusPage(
            client, task_queue=task_queue, start_input=inp, workflow_id=self.id
        )

    @property
    def handle(self) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(self.id)

    async def snapshot(self) -> StatusPageSnapshot:
        result: StatusPageSnapshot = await self.handle.query(StatusPageWorkflow.snapshot)
        return result

    async def statuses(self) -> dict[str, ComponentStatus]:
        return {c.id: c.status for c in (await self.snapshot()).components}


@pytest.fixture
async def worker(client: Client, task_queue: str) -> AsyncIterator[Worker]:
    async with Worker(client, task_queue=task_queue, workflows=[StatusPageWorkflow]) as running:
        yield running


async def test_publish_starts_the_page_shows_the_incident_and_resolving_clears_it(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, worker: Worker
) -> None:
    page = Page(client, task_queue, page_input())
    now = await time_env.get_current_time()

    first = await page.publisher.publish(pub(now))

    assert first == StatusPublished(
        provider="builtin",
        external_id="INC-1",
        url="https://status.example.com/status#incident-INC-1",
    )
    assert await page.statuses() == {"checkout": MAJOR, "payments-api": OP, "website": OP}
    snap = await page.snapshot()
    assert [g.name for g in snap.groups] == ["Shop"]
    (incident,) = snap.incidents
    assert (incident.title, incident.status, incident.resolved_at) == (
        "Checkout failures",
        PublicStatus.INVESTIGATING,
        None,
    )
    assert [u.body for u in incident.updates] == [
        "Customers cannot complete checkout. We are investigating."
    ]

    # The same update again (an activity retry) changes nothing and answers the same.
    assert await page.publisher.publish(pub(now)) == first
    assert len((await page.snapshot()).incidents[0].updates) == 1

    await time_env.sleep(timedelta(minutes=30))
    later = now + timedelta(minutes=30)
    await page.publisher.publish(
        pub(
            later,
            "INC-1-u2",
            status=PublicStatus.RESOLVED,
            body="Checkout works again.",
            components={"checkout": OP},
        )
    )
    assert await page.statuses() == {"checkout": OP, "payments-api": OP, "website": OP}
    snap = await page.snapshot()
    (incident,) = snap.incidents
    assert incident.status is PublicStatus.RESOLVED
    assert incident.resolved_at == later
    assert [u.update_id for u in incident.updates] == ["INC-1-u1", "INC-1-u2"]
    assert [(t.component, t.status) for t in snap.transitions] == [
        ("checkout", MAJOR),
        ("checkout", OP),
    ]
    assert snap.transitions[1].at - snap.transitions[0].at >= timedelta(minutes=30)

    # Deterministic: the recorded history replays against today's code.
    history = await page.handle.fetch_history()
    replayer = Replayer(workflows=[StatusPageWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


async def test_the_worst_active_incident_wins(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, worker: Worker
) -> None:
    page = Page(client, task_queue, page_input())
    now = await time_env.get_current_time()
    await page.publisher.publish(
        pub(now, components={"checkout": ComponentStatus.DEGRADED_PERFORMANCE})
    )
    await page.publisher.publish(
        pub(now, "INC-2-u1", incident_id="INC-2", components={"checkout": MAJOR, "website": MAJOR})
    )
    assert await page.statuses() == {"checkout": MAJOR, "payments-api": OP, "website": MAJOR}
    # Update ids need only be unique per incident: INC-3's "INC-1-u1" is news.
    await page.publisher.publish(
        pub(now, incident_id="INC-3", components={"payments-api": ComponentStatus.PARTIAL_OUTAGE})
    )
    assert (await page.statuses())["payments-api"] is ComponentStatus.PARTIAL_OUTAGE

    await page.publisher.publish(
        pub(now, "INC-2-u2", incident_id="INC-2", status=PublicStatus.RESOLVED, components={})
    )
    statuses = await page.statuses()
    assert statuses["checkout"] is ComponentStatus.DEGRADED_PERFORMANCE
    assert statuses["website"] is OP


async def test_bad_publications_are_refused_with_the_field_and_limit_named(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, worker: Worker
) -> None:
    page = Page(client, task_queue, page_input())
    now = await time_env.get_current_time()
    with pytest.raises(ApplicationError) as caught:
        await page.publisher.publish(pub(now, body="x" * (MAX_BODY_CHARS + 1)))
    assert caught.value.message == (
        "status page refused the update: body: 25001 characters is over the limit of 25000"
    )
    assert caught.value.non_retryable
    assert caught.value.type == "InvalidPublication"

    with pytest.raises(ApplicationError) as caught:
        await page.publisher.publish(pub(now.replace(tzinfo=None)))
    assert caught.value.message == "status page refused the update: at: must carry a timezone"

    with pytest.raises(ApplicationError) as caught:
        await page.publisher.publish(pub(now, components={"search": MAJOR}))
    assert caught.value.message == (
        "status page refused the update: components: unknown component 'search' "
        "(known: checkout, payments-api, website)"
    )
    assert (await page.snapshot()).incidents == []


async def test_maintenance_from_config_and_by_update(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, worker: Worker
) -> None:
    now = await time_env.get_current_time()
    configured = Maintenance(
        id="db-upgrade",
        title="Database upgrade",
        components=["website"],
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
    )
    page = Page(client, task_queue, page_input(maintenance=[configured]))
    await page.publisher.publish(pub(now))
    assert await page.statuses() == {
        "checkout": MAJOR,
        "payments-api": OP,
        "website": ComponentStatus.UNDER_MAINTENANCE,
    }

    planned = Maintenance(
        id="psp-migration",
        title="Payment provider migration",
        components=["payments-api"],
        starts_at=now + timedelta(days=2),
        ends_at=now + timedelta(days=2, hours=2),
        body="Card payments may be delayed.",
    )
    stored = await page.handle.execute_update(
        StatusPageWorkflow.schedule_maintenance, ScheduleMaintenance(maintenance=planned)
    )
    assert stored == planned
    assert [m.id for m in (await page.snapshot()).maintenance] == ["db-upgrade", "psp-migration"]

    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await page.handle.execute_update(
            StatusPageWorkflow.schedule_maintenance,
            ScheduleMaintenance(
                maintenance=planned.model_copy(update={"id": "x", "components": ["search"]})
            ),
        )
    assert isinstance(caught.value.cause, ApplicationError)
    assert caught.value.cause.message.startswith(
        "maintenance.components: unknown component 'search'"
    )
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await page.handle.execute_update(
            StatusPageWorkflow.schedule_maintenance,
            ScheduleMaintenance(
                maintenance=planned.model_copy(update={"ends_at": planned.starts_at})
            ),
        )
    assert isinstance(caught.value.cause, ApplicationError)
    assert caught.value.cause.message == "maintenance.ends_at: must be after starts_at"


async def test_history_continues_as_new_and_old_incidents_age_out(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, worker: Worker
) -> None:
    page = Page(client, task_queue, page_input(max_history_events=30))
    start = await time_env.get_current_time()
    await page.publisher.publish(pub(start))
    await page.publisher.publish(
        pub(start, "INC-1-u2", status=PublicStatus.RESOLVED, components={"checkout": OP})
    )
    first_run = (await page.handle.describe()).run_id
    tracked_since = (await page.snapshot()).tracked_since
    # Enough updates on a second incident to pass 30 events more than once.
    for n in range(1, 13):
        await page.publisher.publish(
            pub(
                start,
                f"INC-2-u{n}",
                incident_id="INC-2",
                title="Slow website",
                components={"website": ComponentStatus.DEGRADED_PERFORMANCE},
                body=f"Update {n}",
            )
        )
    assert (await page.handle.describe()).run_id != first_run
    snap = await page.snapshot()
    assert [i.incident_id for i in snap.incidents] == ["INC-2", "INC-1"]
    assert [u.body for u in snap.incidents[0].updates] == [f"Update {n}" for n in range(1, 13)]
    assert snap.tracked_since == tracked_since  # carried, so uptime history is not reset
    # A retry of an update from before continue-as-new is still recognised.
    await page.publisher.publish(pub(start, "INC-2-u3", incident_id="INC-2", title="x"))
    assert len((await page.snapshot()).incidents[0].updates) == 12

    # 91 days later INC-1 (resolved) is gone; INC-2 (still open) stays, as does its
    # transition to degraded, which tells the uptime bars its state when the window opens.
    await time_env.sleep(timedelta(days=91))
    await page.publisher.publish(
        pub(start + timedelta(days=91), "INC-3-u1", incident_id="INC-3", components={})
    )
    snap = await page.snapshot()
    assert [i.incident_id for i in snap.incidents] == ["INC-3", "INC-2"]
    assert snap.transitions == [
        StatusTransition(
            component="website",
            at=snap.transitions[0].at,
            status=ComponentStatus.DEGRADED_PERFORMANCE,
        )
    ]
    await page.handle.terminate("test over")
