"""ActionItemWorkflow: the reminder schedule (pure), and on the time-skipping server the
reminders before and after the due date, the overdue escalation, done / reassign / snooze,
and bad input refused with the field named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.postmortem import TrackerActivities
from activities.providers.github_issues import GitHubIssuesTracker, marker
from tests.fakes.github import FakeGitHub
from tests.postmortem_support import (
    Reminders,
    hours,
    postmortem_worker,
    resolved_incident,
    skip,
    snapshot,
    start_postmortem,
)
from tests.support import eventually, time_skipping_server
from workflows.action_item import ActionItemWorkflow, next_item_reminder
from workflows.contracts import (
    ActionItemKind,
    ActionItemPriority,
    ActionItemState,
    ActionItemSummary,
    AddActionItem,
    CompleteActionItem,
    PostmortemState,
    PostmortemStatus,
    ReassignActionItem,
    ReminderPolicy,
    ReminderSent,
    SnoozeActionItem,
)
from workflows.postmortem import PostmortemWorkflow

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
POLICY = ReminderPolicy.model_validate(
    {"before": ["3h", "1h"], "overdue_every": "2h", "escalate_after": "3h"}
)


def item(**overrides: Any) -> ActionItemState:
    fields: dict[str, Any] = {
        "id": "INC-1-A1",
        "postmortem_id": "INC-1",
        "incident_id": "INC-1",
        "title": "Canary config changes",
        "owner": "bob",
        "priority": ActionItemPriority.P2,
        "kind": ActionItemKind.PREVENT,
        "due_at": T0 + timedelta(hours=5),
        "created_at": T0,
        "created_by": "alice",
        "assigned_at": T0,
    }
    fields.update(overrides)
    return ActionItemState(**fields)


def schedule(
    state: ActionItemState, until: timedelta, since: timedelta = timedelta(0)
) -> list[tuple[float, str]]:
    """Every reminder from T0 + since up to T0 + until, as (hours after T0, kind), sending
    each when the workflow would: at its moment, or at once if that has passed."""
    out = []
    now = T0 + since
    while (plan := next_item_reminder(state, POLICY)) is not None and plan.at <= T0 + until:
        now = max(now, plan.at)
        out.append((hours(T0, now), plan.kind))
        state.reminders.append(ReminderSent(at=now, key=plan.key, kind=plan.kind, to="x"))
        if plan.kind == "escalation":
            state.escalated = True
    return out


def test_reminders_before_at_and_after_the_due_date_then_one_escalation() -> None:
    assert schedule(item(), timedelta(hours=12)) == [
        (0.0, "assigned"),
        (2.0, "due_soon"),
        (4.0, "due_soon"),
        (5.0, "overdue"),
        (7.0, "overdue"),
        (8.0, "escalation"),
        (9.0, "overdue"),
        (11.0, "overdue"),
    ]


def test_reminders_due_before_the_item_existed_are_skipped() -> None:
    # Created 2h before the due date: the 3h reminder's moment has passed.
    state = item(created_at=T0 + timedelta(hours=3), assigned_at=T0 + timedelta(hours=3))
    assert schedule(state, timedelta(hours=6), since=timedelta(hours=3)) == [
        (3.0, "assigned"),
        (4.0, "due_soon"),
        (5.0, "overdue"),
    ]


def test_a_snooze_holds_every_reminder_and_the_sequence_resumes_without_a_burst() -> None:
    state = item(snoozed_until=T0 + timedelta(hours=6, minutes=30))
    assert schedule(state, timedelta(hours=11)) == [
        (0.0, "assigned"),
        (6.5, "overdue"),
        (8.0, "escalation"),
        (8.5, "overdue"),
        (10.5, "overdue"),
    ]


def test_a_new_owner_gets_a_fresh_sequence_and_a_fresh_escalation_window() -> None:
    state = item()
    schedule(state, timedelta(hours=8))
    state.owner, state.assigned_at, state.escalated = "alice", T0 + timedelta(hours=8), False
    state.assignment += 1
    assert schedule(state, timedelta(hours=12), since=timedelta(hours=8)) == [
        (8.0, "assigned"),
        (8.0, "overdue"),
        (10.0, "overdue"),
        (11.0, "escalation"),
        (12.0, "overdue"),
    ]


def test_a_closed_item_has_no_reminders() -> None:
    assert next_item_reminder(item(status="done"), POLICY) is None


# --- on the time-skipping server --------------------------------------------------------


@pytest.fixture(scope="module")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A server of this module's own: action items are long-lived and abandoned by tests."""
    async with time_skipping_server() as env:
        yield env


@pytest.fixture
def client(time_env: WorkflowEnvironment) -> Client:
    """This module's server's client."""
    return time_env.client


@pytest.fixture
async def world(client: Client, task_queue: str) -> AsyncIterator[tuple[Reminders, list[str]]]:
    async with postmortem_worker(client, task_queue) as found:
        yield found


async def postmortem(
    client: Client, task_queue: str, started: list[str]
) -> WorkflowHandle[Any, Any]:
    _, state = await resolved_incident(client, task_queue, started)
    handle = await start_postmortem(client, task_queue, started, state, snapshot(None))

    async def drafted() -> None:
        pm = await handle.query(PostmortemWorkflow.state)
        assert pm.status is PostmortemStatus.DRAFT

    await eventually(drafted)
    return handle


async def add_item(
    time_env: WorkflowEnvironment,
    client: Client,
    pm: WorkflowHandle[Any, Any],
    started: list[str],
    *,
    owner: str = "bob",
    due_in: timedelta = timedelta(hours=5),
) -> tuple[WorkflowHandle[Any, Any], ActionItemSummary]:
    now = await time_env.get_current_time()
    summary: ActionItemSummary = await pm.execute_update(
        PostmortemWorkflow.add_action_item,
        AddActionItem(
            actor="alice",
            title="Canary config changes before full rollout",
            owner=owner,
            due_at=now + due_in,
            kind=ActionItemKind.PREVENT,
            priority=ActionItemPriority.P1,
            link="https://tracker.example.com/ISSUE-7",
        ),
    )
    started.append(summary.workflow_id)
    return client.get_workflow_handle(summary.workflow_id), summary


async def item_reminders(reminders: Reminders, item_id: str) -> list[tuple[str, str]]:
    return [
        (p.recipient, p.title) for p in reminders.pages if p.details.get("action_item") == item_id
    ]


async def state_with(handle: WorkflowHandle[Any, Any], count: int) -> ActionItemState:
    async def check() -> ActionItemState:
        s = await handle.query(ActionItemWorkflow.state)
        assert len(s.reminders) == count, [(r.kind, r.to, r.at) for r in s.reminders]
        return s

    return await eventually(check)


async def refused(handle: WorkflowHandle[Any, Any], update: str, arg: Any) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(update, arg)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_reminders_before_and_after_the_due_date_and_the_overdue_escalation(
    time_env: WorkflowEnvironment,
    client: Client,
    task_queue: str,
    world: tuple[Reminders, list[str]],
) -> None:
    reminders, started = world
    pm = await postmortem(client, task_queue, started)
    handle, summary = await add_item(time_env, client, pm, started)
    assert summary.id.endswith("-A1")
    created = (await handle.query(ActionItemWorkflow.state)).created_at

    # The owner hears at once that the item is theirs; the first reminder is 3h before due.
    s = await state_with(handle, 1)
    assert (s.reminders[0].kind, s.reminders[0].to) == ("assigned", "bob")
    await skip(time_env, timedelta(hours=1, minutes=30))
    assert await item_reminders(reminders, summary.id) == [
        ("bob", f"Action item {summary.id} is yours")
    ]
    await skip(time_env, timedelta(hours=1))
    s = await state_with(handle, 2)
    assert (s.reminders[1].kind, s.reminders[1].to) == ("due_soon", "bob")
    page = [p for p in reminders.pages if p.details.get("action_item") == summary.id][-1]
    # bob's reminders go to Slack, never to his pager.
    assert page.contact.kind.value == "slack"
    assert page.urgency.value == "low"
    assert page.title == f"Action item {summary.id} is due soon"

    await skip(time_env, timedelta(hours=7))
    s = await state_with(handle, 7)
    assert [(r.kind, r.to, round(hours(created, r.at), 1)) for r in s.reminders] == [
        ("assigned", "bob", 0.0),
        ("due_soon", "bob", 2.0),
        ("due_soon", "bob", 4.0),
        ("overdue", "bob", 5.0),
        ("overdue", "bob", 7.0),
        ("escalation", "carol", 8.0),
        ("overdue", "bob", 9.0),
    ]
    assert s.escalated
    escalation = [p for p in reminders.pages if p.recipient == "carol"]
    assert escalation[-1].title == f"Action item {summary.id} is overdue"
    assert "owned by bob, has been open 0d past its due date" in escalation[-1].summary

    async def listed_escalated() -> None:
        state: PostmortemState = await pm.query(PostmortemWorkflow.state)
        assert state.action_items[0].escalated

    await eventually(listed_escalated)


async def test_done_closes_the_item_and_the_postmortem_lists_it_done(
    time_env: WorkflowEnvironment,
    client: Client,
    task_queue: str,
    world: tuple[Reminders, list[str]],
) -> None:
    reminders, started = world
    pm = await postmortem(client, task_queue, started)
    handle, summary = await add_item(time_env, client, pm, started)
    err = await refused(handle, "done", CompleteActionItem(actor="mallory"))
    assert (err.type, err.message) == (
        "UnknownUser",
        "actor: unknown user 'mallory': not in fireline's user directory",
    )
    done = await handle.execute_update(
        ActionItemWorkflow.done, CompleteActionItem(actor="bob", note="shipped in 1.4.2")
    )
    assert done.status == "done"
    assert done.events[-1].text == "bob marked it done: shipped in 1.4.2"
    final = await client.get_workflow_handle(handle.id, result_type=ActionItemState).result()
    assert final.closed_by == "bob"
    await Replayer(
        workflows=[ActionItemWorkflow], data_converter=pydantic_data_converter
    ).replay_workflow(await handle.fetch_history())

    async def listed_done() -> None:
        state: PostmortemState = await pm.query(PostmortemWorkflow.state)
        assert [i.status for i in state.action_items] == ["done"]

    await eventually(listed_done)
    await skip(time_env, timedelta(hours=10))
    # Only the notice of the assignment went out: nothing after done.
    assert [t for _, t in await item_reminders(reminders, summary.id)] == [
        f"Action item {summary.id} is yours"
    ]


async def test_reassign_and_snooze_change_who_hears_and_when(
    time_env: WorkflowEnvironment,
    client: Client,
    task_queue: str,
    world: tuple[Reminders, list[str]],
) -> None:
    _, started = world
    pm = await postmortem(client, task_queue, started)
    handle, _ = await add_item(time_env, client, pm, started)
    created = (await handle.query(ActionItemWorkflow.state)).created_at
    now = await time_env.get_current_time()

    err = await refused(handle, "reassign", ReassignActionItem(actor="alice", owner="bob"))
    assert (err.type, err.message) == ("InvalidRequest", "owner: bob already owns " + _id(handle))
    err = await refused(handle, "reassign", ReassignActionItem(actor="alice", owner="zed"))
    assert (err.type, err.message) == (
        "UnknownUser",
        "owner: unknown user 'zed': not in fireline's user directory",
    )
    err = await refused(
        handle, "snooze", SnoozeActionItem(actor="bob", until=now - timedelta(minutes=1))
    )
    assert err.type == "InvalidRequest"
    assert err.message.startswith("until: ")
    assert err.message.endswith(" is in the past")

    # dave has no team and no manager: his overdue item escalates to the commander (alice).
    await handle.execute_update(
        ActionItemWorkflow.reassign, ReassignActionItem(actor="alice", owner="dave")
    )
    await handle.execute_update(
        ActionItemWorkflow.snooze,
        SnoozeActionItem(actor="dave", until=now + timedelta(hours=6, minutes=30)),
    )
    await skip(time_env, timedelta(hours=9))
    s = await state_with(handle, 5)
    assert [(r.kind, r.to, round(hours(created, r.at), 1)) for r in s.reminders] == [
        ("assigned", "bob", 0.0),
        ("assigned", "dave", 0.0),
        ("overdue", "dave", 6.5),
        ("escalation", "alice", 8.0),
        ("overdue", "dave", 8.5),
    ]


async def test_bad_action_items_are_refused_naming_the_field(
    time_env: WorkflowEnvironment,
    client: Client,
    task_queue: str,
    world: tuple[Reminders, list[str]],
) -> None:
    _, started = world
    pm = await postmortem(client, task_queue, started)
    now = await time_env.get_current_time()

    def add(**fields: Any) -> AddActionItem:
        base: dict[str, Any] = {
            "actor": "alice",
            "title": "Alert on pool saturation",
            "owner": "bob",
            "due_at": now + timedelta(days=7),
        }
        base.update(fields)
        return AddActionItem(**base)

    err = await refused(pm, "add_action_item", add(due_at=now - timedelta(days=1)))
    assert err.type == "InvalidRequest"
    assert err.message.startswith(f"due_at: {(now - timedelta(days=1)).isoformat()} is in the past")
    err = await refused(pm, "add_action_item", add(owner="dave2"))
    assert (err.type, err.message) == (
        "UnknownUser",
        "owner: unknown user 'dave2': not in fireline's user directory",
    )
    err = await refused(pm, "add_action_item", add(title="  "))
    assert (err.type, err.message) == ("InvalidRequest", "title: say what will be done")
    err = await refused(pm, "add_action_item", add(due_at=datetime(2030, 1, 1)))
    assert err.message == "due_at: give a time zone (e.g. 2026-12-01T17:00:00Z)"
    err = await refused(pm, "add_action_item", add(link="javascript:alert(1)"))
    assert err.message == "link: 'javascript:alert(1)' is not an http(s) URL"
    state: PostmortemState = await pm.query(PostmortemWorkflow.state)
    assert state.action_items == []


def _id(handle: WorkflowHandle[Any, Any]) -> str:
    return handle.id.removeprefix("action-item-")


async def test_a_tracker_ticket_is_opened_for_the_item_and_closed_when_it_is_done(
    time_env: WorkflowEnvironment, client: Client, task_queue: str
) -> None:
    with FakeGitHub("acme/infra", "ghp_token") as github:
        async with httpx.AsyncClient(timeout=5) as http:
            tracking = TrackerActivities(
                {
                    "github": GitHubIssuesTracker(
                        http, "ghp_token", "acme/infra", base_url=github.url
                    )
                }
            )
            async with postmortem_worker(client, task_queue, [tracking.open, tracking.close]) as (
                _,
                started,
            ):
                _, state = await resolved_incident(client, task_queue, started)
                pm = await start_postmortem(
                    client,
                    task_queue,
                    started,
                    state,
                    snapshot(None).model_copy(update={"tracker": "github"}),
                )
                now = await time_env.get_current_time()
                summary: ActionItemSummary = await pm.execute_update(
                    PostmortemWorkflow.add_action_item,
                    AddActionItem(
                        actor="alice",
                        title="Canary config changes",
                        owner="bob",
                        due_at=now + timedelta(days=7),
                    ),
                )
                started.append(summary.workflow_id)
                handle = client.get_workflow_handle(summary.workflow_id)

                async def ticketed() -> ActionItemState:
                    s = await handle.query(ActionItemWorkflow.state)
                    assert s.ticket_id == "1", s.ticket_error
                    return s

                s = await eventually(ticketed)
                assert s.link == "https://github.com/acme/infra/issues/1"
                assert github.issues[0].labels == ["fireline", "prevent", "P2"]
                assert marker(summary.id) in github.issues[0].body
                await handle.execute_update(
                    ActionItemWorkflow.done, CompleteActionItem(actor="bob", note="canary on")
                )
                await client.get_workflow_handle(handle.id, result_type=ActionItemState).result()
                issue = github.issues[0]
                assert (issue.state, issue.state_reason) == ("closed", "completed")
                assert issue.comments == ["bob marked it done: canary on"]
                assert len(github.issues) == 1

                async def listed_with_link() -> None:
                    items = (await pm.query(PostmortemWorkflow.state)).action_items
                    assert [(i.status, i.link) for i in items] == [
                        ("done", "https://github.com/acme/infra/issues/1")
                    ]

                await eventually(listed_with_link)
