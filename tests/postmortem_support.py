"""Helpers for the postmortem and action-item workflow tests: a reminder recorder, the
config they run with, a worker, and time skipping in retried steps."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.contracts import Page, PageResult
from activities.postmortem import PostmortemActivities
from worker.config import FirelineConfig
from worker.postmortem_config import PostmortemConfig, postmortem_snapshot
from workflows.action_item import ActionItemWorkflow
from workflows.contracts import (
    DeclareIncident,
    IncidentState,
    PostmortemInput,
    PostmortemSnapshot,
    Resolve,
    Severity,
)
from workflows.incident import IncidentWorkflow
from workflows.postmortem import PostmortemWorkflow


@dataclass
class Reminders:
    """The notify.send activity, faked: records every reminder it is asked to deliver."""

    pages: list[Page] = field(default_factory=list)

    @activity.defn(name="notify.send")
    async def send(self, page: Page) -> PageResult:
        self.pages.append(page)
        return PageResult(
            provider=page.contact.kind,
            delivered=True,
            external_id=f"ext-{page.dedup_key}",
            action=page.action,
            dedup_key=page.dedup_key,
        )

    def to(self) -> list[tuple[str, str]]:
        """(recipient, title) of each distinct reminder, in order."""
        seen: dict[str, tuple[str, str]] = {}
        for p in self.pages:
            seen.setdefault(p.dedup_key, (p.recipient, p.title))
        return list(seen.values())


def config() -> FirelineConfig:
    """alice and bob in payments (managed by carol); dave has no team."""
    return FirelineConfig.model_validate(
        {
            "users": {
                "alice": {"name": "Alice Example", "email": "alice@example.com"},
                "bob": {
                    "name": "Bob Example",
                    "email": "bob@example.com",
                    "contact_methods": [{"kind": "pagerduty"}, {"kind": "slack", "address": "U2"}],
                },
                "carol": {"name": "Carol Example", "email": "carol@example.com"},
                "dave": {"name": "Dave Example", "email": "dave@example.com"},
            },
            "teams": {"payments": {"members": ["alice", "bob"], "manager": "carol"}},
            "services": {"checkout": {"owner_team": "payments"}},
        }
    )


def snapshot(export_dir: Path | None = None, **overrides: Any) -> PostmortemSnapshot:
    """Postmortem settings in hours, so timing tests skip little time."""
    fields: dict[str, Any] = {
        "reviewers": {"SEV2": ["carol"]},
        "due_after": {"SEV2": "10h"},
        "remind_before": ["2h"],
        "overdue_every": "4h",
        "action_items": {"before": ["3h", "1h"], "overdue_every": "2h", "escalate_after": "3h"},
        "export_dir": export_dir,
    }
    fields.update(overrides)
    return postmortem_snapshot(config(), PostmortemConfig.model_validate(fields))


@contextlib.asynccontextmanager
async def postmortem_worker(
    client: Client, task_queue: str, extra: Sequence[Any] = ()
) -> AsyncIterator[tuple[Reminders, list[str]]]:
    """A worker with the incident, postmortem and action-item workflows; the real gather and
    export activities; reminders recorded. Yields the recorder and a list of workflow ids
    to terminate afterwards."""
    reminders = Reminders()
    real = PostmortemActivities(client)
    started: list[str] = []
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[IncidentWorkflow, PostmortemWorkflow, ActionItemWorkflow],
        activities=[reminders.send, real.gather, real.export, *extra],
    ):
        try:
            yield reminders, started
        finally:
            # Leftovers on a task queue nobody polls any more keep the time-skipping
            # server from skipping time for later tests.
            for wf_id in started:
                with contextlib.suppress(RPCError):
                    await client.get_workflow_handle(wf_id).terminate("test finished")


async def resolved_incident(
    client: Client, task_queue: str, started: list[str]
) -> tuple[WorkflowHandle[Any, Any], IncidentState]:
    """A real incident, declared by alice (commander), acknowledged, noted and resolved."""
    from workflows.contracts import Acknowledge, AddNote

    incident_id = f"INC-{uuid.uuid4().int % 10**6}"
    handle = await client.start_workflow(
        IncidentWorkflow.run,
        DeclareIncident(
            id=incident_id,
            title="Checkout errors after deploy 1.4.0",
            service="checkout",
            severity=Severity.SEV2,
            declared_by="alice",
            commander="alice",
            config=config().snapshot("checkout"),
        ),
        id=f"incident-{incident_id}",
        task_queue=task_queue,
        execution_timeout=timedelta(days=30),
    )
    started.append(handle.id)
    await handle.execute_update(IncidentWorkflow.acknowledge, Acknowledge(actor="bob"))
    await handle.execute_update(
        IncidentWorkflow.add_note, AddNote(actor="bob", text="error rate back to normal")
    )
    result = await handle.execute_update(
        IncidentWorkflow.resolve, Resolve(actor="alice", summary="rolled back to 1.3.9")
    )
    return handle, result.state


async def start_postmortem(
    client: Client,
    task_queue: str,
    started: list[str],
    state: IncidentState,
    settings: PostmortemSnapshot,
    incident_workflow_id: str | None = None,
) -> WorkflowHandle[Any, Any]:
    """Start the postmortem as the incident's hook will: ``postmortem-<INC>``."""
    inp = PostmortemInput.for_incident(
        state, incident_workflow_id or f"incident-{state.id}", settings
    )
    handle = await client.start_workflow(
        PostmortemWorkflow.run,
        inp,
        id=f"postmortem-{state.id}",
        task_queue=task_queue,
        execution_timeout=timedelta(days=60),
    )
    started.append(handle.id)
    return handle


async def skip(time_env: WorkflowEnvironment, duration: timedelta) -> None:
    """Skip test-server time in steps of at most 30 minutes, retrying a failed step (the test
    server now and then fails a long skip while activities complete mid-jump)."""
    step = timedelta(minutes=30)
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


def hours(since: datetime, at: datetime) -> float:
    """Workflow time between two instants, in hours."""
    return (at - since).total_seconds() / 3600
