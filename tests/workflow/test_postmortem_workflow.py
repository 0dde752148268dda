"""PostmortemWorkflow on the time-skipping server: the draft from a real incident, the
review states, publishing refused while required sections are empty, exports, reminders."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

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
from workflows.action_item import ActionItemWorkflow
from workflows.contracts import (
    AddNote,
    EditSection,
    ExportPostmortem,
    PostmortemInput,
    PostmortemState,
    PostmortemStatus,
    ReviewAction,
    SectionKey,
)
from workflows.incident import IncidentWorkflow
from workflows.postmortem import PostmortemWorkflow


@pytest.fixture(scope="module")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A server of this module's own: postmortems are long-lived and abandoned by tests."""
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


def replayer() -> Replayer:
    """A replayer of this module's workflows, with fireline's converter."""
    return Replayer(
        workflows=[PostmortemWorkflow, ActionItemWorkflow], data_converter=pydantic_data_converter
    )


def read(path: str) -> str:
    """A small exported file's text (sync: pathlib blocks, which async tests must not)."""
    return Path(path).read_text()


async def drafted(handle: WorkflowHandle[Any, Any]) -> PostmortemState:
    async def check() -> PostmortemState:
        state = await handle.query(PostmortemWorkflow.state)
        assert state.status is PostmortemStatus.DRAFT, state.status
        return state

    return await eventually(check)


async def refusal(handle: WorkflowHandle[Any, Any], update: str, arg: Any) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(update, arg)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def test_resolving_drafts_the_postmortem_from_the_real_timeline_and_exports_it(
    client: Client, task_queue: str, world: tuple[Reminders, list[str]], tmp_path: Path
) -> None:
    _, started = world
    _, state = await resolved_incident(client, task_queue, started)
    handle = await start_postmortem(client, task_queue, started, state, snapshot(tmp_path))
    pm = await drafted(handle)
    assert state.resolved_at is not None

    assert pm.facts is not None
    texts = [i.text for i in pm.facts.timeline]
    assert texts == [
        f"alice declared SEV2 on checkout: {state.title}",
        "alice made alice commander",
        "bob acknowledged",
        "error rate back to normal",
        "alice resolved the incident: rolled back to 1.3.9",
    ]
    assert [i.phase for i in pm.facts.timeline] == [
        "declared",
        "roles",
        "acknowledged",
        "note",
        "resolved",
    ]
    assert pm.author == "alice"
    assert pm.reviewers == ["carol"]
    assert pm.due_at == state.resolved_at + timedelta(hours=10)
    summary = pm.section(SectionKey.SUMMARY)
    assert summary is not None
    assert summary.drafted
    assert summary.text.startswith(f"SEV2 incident on checkout: {state.title}. Declared ")
    assert "Resolution: rolled back to 1.3.9." in summary.text
    assert [k.value for k in pm.empty_required()] == [
        "trigger",
        "contributing_factors",
        "root_cause",
    ]

    async def exported() -> list[str]:
        current = await handle.query(PostmortemWorkflow.state)
        assert len(current.exported) == 2, current.export_error
        return current.exported

    paths = await eventually(exported)
    md, js = (Path(p) for p in paths)
    assert md.parent == tmp_path
    assert md.name.endswith(f"-{state.id}-checkout-errors-after-deploy-1-4-0.md")
    text = read(str(md))
    assert f"# Postmortem: {state.id} — {state.title}" in text
    assert "| resolved | alice resolved the incident: rolled back to 1.3.9 |" in text
    assert "_To write (required): Which change or condition set the incident off" in text
    assert json.loads(read(str(js)))["incident_id"] == state.id


async def test_publishing_is_refused_naming_every_empty_required_section(
    client: Client, task_queue: str, world: tuple[Reminders, list[str]], tmp_path: Path
) -> None:
    _, started = world
    _, state = await resolved_incident(client, task_queue, started)
    handle = await start_postmortem(client, task_queue, started, state, snapshot(tmp_path))
    await drafted(handle)

    err = await refusal(handle, "publish", ReviewAction(actor="carol"))
    assert err.type == "InvalidRequest"
    assert err.message == (
        f"cannot publish the postmortem of {state.id}: required sections are empty: "
        "trigger (Trigger), contributing_factors (Contributing factors), "
        "root_cause (Root-cause analysis)"
    )

    for key, text in (
        (SectionKey.TRIGGER, "Deploy 1.4.0 changed the connection pool size."),
        (SectionKey.CONTRIBUTING_FACTORS, "- No canary stage for config changes."),
    ):
        await handle.execute_update(
            PostmortemWorkflow.edit_section, EditSection(actor="alice", section=key, text=text)
        )
    err = await refusal(handle, "publish", ReviewAction(actor="carol"))
    assert err.message.endswith("required sections are empty: root_cause (Root-cause analysis)")

    result = await handle.execute_update(
        PostmortemWorkflow.edit_section,
        EditSection(
            actor="alice",
            section=SectionKey.ROOT_CAUSE,
            text="1. Why did checkout fail? Human error.\n2. Why ...",
        ),
    )
    assert result.warnings == [
        "'Human error': 'human error' ends the inquiry; describe what made the action easy "
        "to get wrong"
    ]
    # Sections complete, but still a draft: the review comes first.
    err = await refusal(handle, "publish", ReviewAction(actor="carol"))
    assert (err.type, err.message) == (
        "InvalidTransition",
        f"cannot publish it: the postmortem of {state.id} is a draft: submit it for review first",
    )
    await handle.execute_update(PostmortemWorkflow.submit, ReviewAction(actor="alice"))
    err = await refusal(handle, "publish", ReviewAction(actor="bob"))
    assert (err.type, err.message) == (
        "NotAllowed",
        "only the reviewers (carol) may publish this postmortem",
    )
    err = await refusal(handle, "request_changes", ReviewAction(actor="carol"))
    assert err.message == "comment: say what needs to change"

    published = await handle.execute_update(PostmortemWorkflow.publish, ReviewAction(actor="carol"))
    assert published.state.status is PostmortemStatus.PUBLISHED
    assert published.state.published_by == "carol"
    assert [e.action for e in published.state.review] == ["submitted for review", "published"]
    md = read(published.state.exported[0])
    assert "| Status | published |" in md
    assert "Deploy 1.4.0 changed the connection pool size." in md
    # Published with no action items: the postmortem's work is done.
    outcome = await handle.result()
    assert outcome.status is PostmortemStatus.PUBLISHED
    # The whole review replays against the code (no nondeterminism in drafting or review).
    await replayer().replay_workflow(await handle.fetch_history())


async def test_unknown_users_and_exports_without_a_directory_are_refused(
    client: Client, task_queue: str, world: tuple[Reminders, list[str]]
) -> None:
    _, started = world
    _, state = await resolved_incident(client, task_queue, started)
    handle = await start_postmortem(client, task_queue, started, state, snapshot(None))
    await drafted(handle)
    err = await refusal(
        handle, "edit_section", EditSection(actor="mallory", section=SectionKey.LUCKY, text="x")
    )
    assert (err.type, err.message) == (
        "UnknownUser",
        "actor: unknown user 'mallory': not in fireline's user directory",
    )
    err = await refusal(handle, "export", ExportPostmortem(actor="alice"))
    assert (err.type, err.message) == (
        "InvalidRequest",
        "no export directory is configured (postmortems.export_dir in fireline.yaml)",
    )


async def test_a_missing_incident_still_gives_an_empty_draft_saying_why(
    client: Client, task_queue: str, world: tuple[Reminders, list[str]]
) -> None:
    _, started = world
    _, state = await resolved_incident(client, task_queue, started)
    handle = await start_postmortem(
        client, task_queue, started, state, snapshot(None), incident_workflow_id="incident-nope"
    )
    pm = await drafted(handle)
    assert pm.facts is None
    assert "incident workflow incident-nope not found: " in pm.gather_error
    assert pm.section(SectionKey.SUMMARY) is not None
    assert SectionKey.SUMMARY in pm.empty_required()


async def test_reminders_go_to_the_author_then_the_reviewers_before_and_after_the_due_date(
    time_env: WorkflowEnvironment,
    client: Client,
    task_queue: str,
    world: tuple[Reminders, list[str]],
) -> None:
    reminders, started = world
    _, state = await resolved_incident(client, task_queue, started)
    handle = await start_postmortem(client, task_queue, started, state, snapshot(None))
    await drafted(handle)
    assert state.resolved_at is not None

    # Due 10h after resolution; reminders 2h before, then every 4h once overdue.
    await skip(time_env, timedelta(hours=7))
    assert reminders.to() == []
    await skip(time_env, timedelta(hours=1, minutes=30))

    async def reminded(count: int) -> PostmortemState:
        pm = await handle.query(PostmortemWorkflow.state)
        assert len(pm.reminders) == count, pm.reminders
        return pm

    pm = await eventually(lambda: reminded(1))
    [r] = pm.reminders
    assert (r.kind, r.to, r.ok) == ("due_soon", "alice", True)
    assert hours(state.resolved_at, r.at) == pytest.approx(8, abs=0.01)
    page = reminders.pages[-1]
    assert page.urgency.value == "low"
    assert "not who caused the incident" in page.summary
    assert "trigger, contributing factors, root-cause analysis" in page.summary

    assert page.title.startswith(f"Postmortem {state.id}: due ")

    await handle.execute_update(PostmortemWorkflow.submit, ReviewAction(actor="alice"))
    # In review: the reviewer hears at once (the due-soon moment has passed), then at the
    # due date, then every 4h.
    await skip(time_env, timedelta(hours=6))
    pm = await eventually(lambda: reminded(4))
    later = [(r.kind, r.to) for r in pm.reminders[1:]]
    assert later == [("due_soon", "carol"), ("overdue", "carol"), ("overdue", "carol")]
    at = [hours(state.resolved_at, r.at) for r in pm.reminders[1:]]
    assert at == [pytest.approx(h, abs=0.01) for h in (8.5, 10, 14)]
    assert reminders.pages[-1].title == f"Postmortem {state.id}: overdue"
    assert reminders.pages[-1].recipient == "carol"


async def test_the_facts_are_gathered_again_after_the_reopen_window_and_on_request(
    time_env: WorkflowEnvironment,
    client: Client,
    task_queue: str,
    world: tuple[Reminders, list[str]],
) -> None:
    _, started = world
    incident, state = await resolved_incident(client, task_queue, started)
    inp_settings = snapshot(None)
    handle = await client.start_workflow(
        PostmortemWorkflow.run,
        PostmortemInput.for_incident(
            state, incident.id, inp_settings, refresh_after=timedelta(hours=2)
        ),
        id=f"postmortem-{state.id}",
        task_queue=task_queue,
        execution_timeout=timedelta(days=60),
    )
    started.append(handle.id)
    await drafted(handle)
    await handle.execute_update(
        PostmortemWorkflow.edit_section,
        EditSection(actor="alice", section=SectionKey.SUMMARY, text="Our own summary."),
    )
    await incident.execute_update(
        IncidentWorkflow.add_note, AddNote(actor="bob", text="customer emails answered")
    )
    result = await handle.execute_update(PostmortemWorkflow.refresh, ReviewAction(actor="bob"))
    assert result.state.facts is not None
    assert result.state.facts.timeline[-1].text == "customer emails answered"
    summary = result.state.section(SectionKey.SUMMARY)
    assert summary is not None
    assert summary.text == "Our own summary."

    # The incident closes when its reopen window (1h) passes; the refresh at 2h shows it.
    await skip(time_env, timedelta(hours=2, minutes=30))

    async def closed_in_draft() -> None:
        pm = await handle.query(PostmortemWorkflow.state)
        assert pm.facts is not None
        assert pm.facts.timeline[-1].text == "closed: the reopen window passed"
        assert pm.status is PostmortemStatus.DRAFT

    await eventually(closed_in_draft)
