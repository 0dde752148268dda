"""Escalation on the time-skipping server: levels, repeats, acknowledgement, resolution,
escalate-now, overrides mid-incident, closing the loop, and dedup across retries."""

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
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.contracts import ContactKind, Page, PageAction, PageResult
from tests.support import eventually, time_skipping_server
from worker.config import FirelineConfig
from workflows.contracts import (
    Acknowledge,
    DeclareIncident,
    Escalate,
    EscalationOutcome,
    EscalationStop,
    Resolve,
    Severity,
)
from workflows.escalation_workflow import EscalationWorkflow
from workflows.incident import IncidentWorkflow
from workflows.oncall import on_call_at


@dataclass
class Pager:
    """The notify.send activity, faked: records every delivery attempt."""

    attempts: list[Page] = field(default_factory=list)
    fail_first: int = 0

    @activity.defn(name="notify.send")
    async def send(self, page: Page) -> PageResult:
        self.attempts.append(page)
        if self.fail_first > 0:
            self.fail_first -= 1
            raise ApplicationError("PagerDuty answered HTTP 503", type="TransientHttpError")
        return PageResult(
            provider=page.contact.kind,
            delivered=True,
            external_id=f"ext-{page.dedup_key}",
            action=page.action,
            dedup_key=page.dedup_key,
        )

    def triggers(self) -> list[tuple[str, str]]:
        seen: dict[str, tuple[str, str]] = {}
        for p in self.attempts:
            if p.action is PageAction.TRIGGER:
                seen[p.dedup_key] = (p.recipient, p.contact.kind.value)
        return list(seen.values())

    def follow_ups(self, action: PageAction) -> list[str]:
        return [p.recipient for p in self.attempts if p.action is action]


@pytest.fixture(scope="module")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of this module's own.

    Escalations signal their incident and are abandoned by it; on the shared server the
    leftovers of these scenarios now and then kept later modules from skipping time.
    """
    async with time_skipping_server() as env:
        yield env


@pytest.fixture
def client(time_env: WorkflowEnvironment) -> Client:
    """This module's server's client."""
    return time_env.client


@pytest.fixture
async def pager(client: Client, task_queue: str) -> AsyncIterator[Pager]:
    fake = Pager()
    started: list[WorkflowHandle[Any, Any]] = []
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[IncidentWorkflow, EscalationWorkflow],
        activities=[fake.send],
    ):
        fake.started = started  # type: ignore[attr-defined]
        yield fake
        for handle in started:
            for wf_id in (handle.id, "escalation-" + handle.id.removeprefix("incident-")):
                with contextlib.suppress(RPCError):
                    await client.get_workflow_handle(wf_id).terminate("test finished")


def config(now: datetime, overrides: list[dict[str, Any]] | None = None) -> FirelineConfig:
    week_start = (now - timedelta(days=1)).replace(microsecond=0)
    return FirelineConfig.model_validate(
        {
            "users": {
                "alice": {
                    "name": "Alice Example",
                    "email": "alice@example.com",
                    "contact_methods": [{"kind": "console"}, {"kind": "pagerduty"}],
                },
                "bob": {"name": "Bob Example", "email": "bob@example.com"},
                "carol": {"name": "Carol Example", "email": "carol@example.com"},
            },
            "schedules": {
                "primary": {
                    "timezone": "UTC",
                    "layers": [
                        {
                            "name": "weekly",
                            "users": ["alice", "bob"],
                            "rotation": "weekly",
                            "start": week_start.isoformat(),
                        }
                    ],
                    "overrides": overrides or [],
                }
            },
            "escalation_policies": {
                "payments": {
                    "repeat": 1,
                    "levels": [
                        {"targets": [{"schedule": "primary"}], "delay": "5m"},
                        {"targets": [{"user": "carol"}], "delay": "10m"},
                    ],
                }
            },
            "services": {"checkout": {"escalation_policy": "payments"}},
        }
    )


async def declare(
    time_env: WorkflowEnvironment,
    client: Client,
    task_queue: str,
    pager: Pager,
    overrides: list[dict[str, Any]] | None = None,
    *,
    settle: bool = True,
) -> WorkflowHandle[Any, Any]:
    now = await time_env.get_current_time()
    incident_id = f"INC-{uuid.uuid4().int % 10**6}"
    handle = await client.start_workflow(
        IncidentWorkflow.run,
        DeclareIncident(
            id=incident_id,
            title="Checkout errors",
            service="checkout",
            severity=Severity.SEV2,
            declared_by="alice",
            config=config(now, overrides).snapshot("checkout", incident_id),
        ),
        id=f"incident-{incident_id}",
        task_queue=task_queue,
        execution_timeout=timedelta(days=7),
    )
    pager.started.append(handle)  # type: ignore[attr-defined]
    if settle:
        # Let level 1 go out (real time; the test server's clock does not move) before a
        # test skips time: skipping while the child start and first pages are in flight
        # made the test server's sleep time out now and then.
        async def first_level_paged() -> None:
            texts = await timeline(handle)
            assert sum(t.startswith("paged ") for t in texts) >= 1, texts

        await eventually(first_level_paged, timeout=15)
    return handle


async def skip(time_env: WorkflowEnvironment, duration: timedelta) -> None:
    """Skip test-server time in steps, retrying a step whose RPC failed.

    Under load the time-skipping test server now and then fails a long skip ("Timeout
    expired", "h2 protocol error") while activities complete mid-jump. Steps of at most
    5 minutes, each tried up to five times, keep the scenarios deterministic; none of
    them depends on overshooting by a step.
    """
    step = timedelta(minutes=5)
    while duration > timedelta(0):
        this = min(step, duration)
        for attempt in range(5):
            try:
                await time_env.sleep(this)
                break
            except RPCError:
                if attempt == 4:
                    raise
        duration -= this


async def timeline(handle: WorkflowHandle[Any, Any]) -> list[str]:
    return [e.text for e in await handle.query(IncidentWorkflow.timeline)]


async def test_level_one_pages_the_on_call_and_an_ack_stops_and_closes_the_loop(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, pager: Pager
) -> None:
    handle = await declare(time_env, client, task_queue, pager)
    await skip(time_env, timedelta(minutes=1))
    # Pages due at the same moment go out together, in no particular order.
    assert sorted(pager.triggers()) == [("alice", "console"), ("alice", "pagerduty")]
    await handle.execute_update(IncidentWorkflow.acknowledge, Acknowledge(actor="alice"))
    await skip(time_env, timedelta(minutes=20))
    assert len(pager.triggers()) == 2  # nobody else was paged
    # Only the vendor that keeps pages open hears about the acknowledgement.
    assert pager.follow_ups(PageAction.ACKNOWLEDGE) == ["alice"]
    await handle.execute_update(IncidentWorkflow.resolve, Resolve(actor="alice", summary="ok"))
    await skip(time_env, timedelta(minutes=1))
    assert pager.follow_ups(PageAction.RESOLVE) == ["alice"]
    texts = await timeline(handle)
    assert "paging started with escalation policy 'payments'" in texts
    assert any(t.startswith("paged alice via pagerduty: level 1") for t in texts)
    assert "acknowledged the pagerduty page to alice" in texts
    assert "resolved the pagerduty page to alice" in texts


async def test_nobody_acks_so_every_level_and_the_repeat_are_paged(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, pager: Pager
) -> None:
    handle = await declare(time_env, client, task_queue, pager)
    await skip(time_env, timedelta(minutes=35))
    recipients = [r for r, kind in pager.triggers() if kind == "console"]
    assert recipients == ["alice", "carol", "alice", "carol"]
    texts = await timeline(handle)
    assert "no acknowledgement: escalating to level 2" in texts
    assert "no acknowledgement: escalating to level 1 (pass 2)" in texts
    assert texts[-1] == (
        "escalation policy 'payments' exhausted after 4 level(s) with no acknowledgement; "
        "pages stay open"
    )


async def test_a_level_is_paged_without_waiting_for_the_timeline(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, pager: Pager
) -> None:
    """The report of a step and the page after it leave in one workflow task.

    Awaiting the incident's signal first cost a server round trip and an incident task
    (600 ms under load) before the next level was paged.
    """
    handle = await declare(time_env, client, task_queue, pager)
    await skip(time_env, timedelta(minutes=6))
    assert "carol" in [r for r, _ in pager.triggers()]
    escalation = client.get_workflow_handle("escalation-" + handle.id.removeprefix("incident-"))
    events = [e.event_type async for e in escalation.fetch_history_events()]
    # Each workflow task's commands, in order: the one that escalates to level 2 both
    # schedules carol's pages and sends the "escalating" report.
    batches: list[list[int]] = [[]]
    for kind in events:
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            batches.append([])
        elif kind in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
            EventType.EVENT_TYPE_TIMER_STARTED,
        ):
            batches[-1].append(kind)
    paged_with_report = [
        b
        for b in batches
        if EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED in b
        and EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED in b
    ]
    assert paged_with_report, batches
    # And a level's timer starts with the "paged" reports, not after they are delivered.
    assert any(
        EventType.EVENT_TYPE_TIMER_STARTED in b
        and EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED in b
        for b in batches
    ), batches
    texts = await timeline(handle)
    # The outbox keeps the reports in the order they were made.
    assert texts.index("no acknowledgement: escalating to level 2") < next(
        i for i, t in enumerate(texts) if t.startswith("paged carol")
    )


async def test_an_incident_gone_before_the_last_report_does_not_fail_the_escalation(
    task_queue: str,
) -> None:
    # A server of its own: signals sent to a terminated workflow leave the test server
    # unable to skip time for the tests after this one.
    async with time_skipping_server() as env:
        pager = Pager()
        pager.started = []  # type: ignore[attr-defined]
        async with Worker(
            env.client,
            task_queue=task_queue,
            workflows=[IncidentWorkflow, EscalationWorkflow],
            activities=[pager.send],
        ):
            handle = await declare(env, env.client, task_queue, pager)
            await skip(env, timedelta(minutes=1))
            escalation = env.client.get_workflow_handle(
                "escalation-" + handle.id.removeprefix("incident-")
            )
            # Closed and gone (make chaos closed one right after resolving it): the
            # escalation still resolves its pages, and its reports have nowhere to go.
            await handle.terminate("closed")
            await escalation.signal(
                EscalationWorkflow.stop, EscalationStop(reason="resolved", actor="alice")
            )
            outcome = EscalationOutcome.model_validate(await escalation.result())
    assert outcome.pages_sent == 2
    assert pager.follow_ups(PageAction.RESOLVE) == ["alice"]


async def test_level_two_waits_for_the_level_one_delay(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, pager: Pager
) -> None:
    await declare(time_env, client, task_queue, pager)
    await skip(time_env, timedelta(minutes=4))
    assert [r for r, _ in pager.triggers()] == ["alice", "alice"]
    await skip(time_env, timedelta(minutes=2))
    assert "carol" in [r for r, _ in pager.triggers()]


async def test_resolve_during_escalation_stops_it_and_resolves_the_pages(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, pager: Pager
) -> None:
    handle = await declare(time_env, client, task_queue, pager)
    await skip(time_env, timedelta(minutes=2))
    await handle.execute_update(IncidentWorkflow.resolve, Resolve(actor="bob", summary="fixed"))
    await skip(time_env, timedelta(minutes=20))
    assert [r for r, _ in pager.triggers()] == ["alice", "alice"]
    assert pager.follow_ups(PageAction.RESOLVE) == ["alice"]
    assert pager.follow_ups(PageAction.ACKNOWLEDGE) == []


async def test_escalate_now_pages_the_next_level_at_once(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, pager: Pager
) -> None:
    handle = await declare(time_env, client, task_queue, pager)

    async def level_one_paged() -> None:
        assert len(pager.triggers()) == 2

    await eventually(level_one_paged, timeout=10)
    result = await handle.execute_update(IncidentWorkflow.escalate, Escalate(actor="alice"))
    assert result.entry.text == "alice escalated to the next level now"

    async def carol_paged() -> None:
        # No time has passed on the test server: the level's 5m wait was cut short.
        assert "carol" in [r for r, _ in pager.triggers()]

    await eventually(carol_paged, timeout=10)


async def test_an_override_that_starts_mid_incident_takes_the_next_pass(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, pager: Pager
) -> None:
    now = await time_env.get_current_time()
    override = {
        "user": "bob",
        "start": (now + timedelta(minutes=10)).isoformat(),
        "end": (now + timedelta(hours=2)).isoformat(),
        "reason": "alice is off sick",
    }
    await declare(time_env, client, task_queue, pager, overrides=[override])
    await skip(time_env, timedelta(minutes=25))
    consoles = [r for r, kind in pager.triggers() if kind == "console"]
    assert consoles == ["alice", "carol", "bob", "carol"]


async def test_a_retried_page_keeps_its_dedup_key(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, pager: Pager
) -> None:
    pager.fail_first = 2  # the first two deliveries fail with a 503
    await declare(time_env, client, task_queue, pager, settle=False)
    await skip(time_env, timedelta(minutes=1))
    first_level = [p for p in pager.attempts if p.action is PageAction.TRIGGER]
    assert len(first_level) == 4  # two contacts, two of the attempts retried
    assert len({p.dedup_key for p in first_level}) == 2  # ...with the same keys
    assert {p.contact.kind for p in first_level} == {ContactKind.CONSOLE, ContactKind.PAGERDUTY}


async def test_escalate_is_refused_without_paging_or_after_ack(
    time_env: WorkflowEnvironment, client: Client, task_queue: str, pager: Pager
) -> None:
    from temporalio.client import WorkflowUpdateFailedError

    handle = await declare(time_env, client, task_queue, pager)
    await handle.execute_update(IncidentWorkflow.acknowledge, Acknowledge(actor="bob"))
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(IncidentWorkflow.escalate, Escalate(actor="bob"))
    assert isinstance(caught.value.cause, ApplicationError)
    assert caught.value.cause.message.endswith("is acknowledged: paging has stopped")


async def test_dst_change_mid_escalation_pages_whoever_is_on_call_after_the_jump() -> None:
    # A fresh server: jumping months ahead on the shared one is slow to settle.
    async with time_skipping_server() as env:
        await _dst_scenario(env, env.client, f"tq-{uuid.uuid4()}")


async def _dst_scenario(time_env: WorkflowEnvironment, client: Client, task_queue: str) -> None:
    # 2027-03-14 01:55 EST; ten minutes later it is 03:05 EDT, past a 03:00 hand-off.
    start = datetime(2027, 3, 14, 6, 55, tzinfo=UTC)
    now = await time_env.get_current_time()
    if now < start:
        await time_env.sleep(start - now)
    pager = Pager()
    cfg = FirelineConfig.model_validate(
        {
            "users": {
                "alice": {"name": "Alice Example", "email": "alice@example.com"},
                "bob": {"name": "Bob Example", "email": "bob@example.com"},
            },
            "schedules": {
                "nightly": {
                    "timezone": "America/New_York",
                    "layers": [
                        {
                            "name": "daily",
                            "users": ["alice", "bob"],
                            "rotation": "daily",
                            "start": "2027-03-01T03:00:00-05:00",
                        }
                    ],
                }
            },
            "escalation_policies": {
                "nightly": {
                    "levels": [
                        {"targets": [{"schedule": "nightly"}], "delay": "10m"},
                        {"targets": [{"schedule": "nightly"}], "delay": "10m"},
                    ]
                }
            },
            "services": {"checkout": {"escalation_policy": "nightly"}},
        }
    )
    schedule = cfg.schedule("nightly")
    declared_at = await time_env.get_current_time()
    before = on_call_at(schedule, declared_at)
    after = on_call_at(schedule, declared_at + timedelta(minutes=10))
    assert before is not None
    assert after is not None
    assert before.user != after.user  # the hand-off falls inside the jump
    incident_id = f"INC-{uuid.uuid4().int % 10**6}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[IncidentWorkflow, EscalationWorkflow],
        activities=[pager.send],
    ):
        await client.start_workflow(
            IncidentWorkflow.run,
            DeclareIncident(
                id=incident_id,
                title="Overnight batch failing",
                service="checkout",
                severity=Severity.SEV2,
                declared_by="alice",
                config=cfg.snapshot("checkout", incident_id),
            ),
            id=f"incident-{incident_id}",
            task_queue=task_queue,
            execution_timeout=timedelta(days=7),
        )

        async def first_paged() -> None:
            assert pager.triggers()

        await eventually(first_paged, timeout=15)
        await skip(time_env, timedelta(minutes=15))
        assert [r for r, _ in pager.triggers()] == [before.user, after.user]


async def test_an_ack_in_the_same_instant_as_the_escalation_timer_wins(
    own_time_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The timer firing and the acknowledgement land in one workflow task: no level 2.

    With no worker polling, the level-1 timer fires on the server and the stop signal
    arrives; both wait in the same pending workflow task, so the new worker sees them in
    one activation, the closest a test can get to "the same instant".
    """
    client = own_time_env.client
    fake = Pager()
    fake.started = []  # type: ignore[attr-defined]

    def worker() -> Worker:
        return Worker(
            client,
            task_queue=task_queue,
            workflows=[IncidentWorkflow, EscalationWorkflow],
            activities=[fake.send],
            # No sticky queue: the pending task must reach the next worker at once, not
            # after the stopped worker's sticky queue times out.
            max_cached_workflows=0,
        )

    async with worker():
        handle = await declare(own_time_env, client, task_queue, fake)
        escalation = client.get_workflow_handle("escalation-" + handle.id.removeprefix("incident-"))

        async def both_idle() -> None:
            # Stop the worker only once nothing is in flight: the test server does not
            # skip time past a workflow task or signal that waits for a worker.
            for wf in (handle, escalation):
                assert _idle([e.event_type for e in (await wf.fetch_history()).events]), wf.id

        await eventually(both_idle, timeout=15)
    try:
        await skip(own_time_env, timedelta(minutes=5, seconds=1))  # level 1's delay is 5m
        await escalation.signal(
            EscalationWorkflow.stop, EscalationStop(reason="acknowledged", actor="alice")
        )
        async with worker():

            async def pages_acknowledged() -> None:
                assert fake.follow_ups(PageAction.ACKNOWLEDGE) == ["alice"]

            await eventually(pages_acknowledged, timeout=15)
            await skip(own_time_env, timedelta(minutes=20))
            assert [r for r, _ in fake.triggers()] == ["alice", "alice"]  # carol never paged
            history = await escalation.fetch_history()
            kinds = [e.event_type for e in history.events]
            fired = kinds.index(EventType.EVENT_TYPE_TIMER_FIRED)
            signaled = kinds.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
            # Both before the same workflow task: one activation saw them together.
            between = kinds[min(fired, signaled) : max(fired, signaled)]
            assert EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED not in between
            texts = await timeline(handle)
            assert not any("escalating to level 2" in t for t in texts), texts
    finally:
        for wf_id in (handle.id, escalation.id):
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(wf_id).terminate("test finished")


def _idle(kinds: list[EventType.ValueType]) -> bool:
    """Nothing waits on a worker: no task scheduled after the last one completed."""
    done = len(kinds) - 1 - kinds[::-1].index(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    tail = kinds[done + 1 :]
    opened = tail.count(EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED)
    closed = tail.count(EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_SIGNALED)
    return (
        EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED not in tail
        and opened == closed
        and (EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in tail)
    )
