"""Record representative workflow histories into tests/histories/ (``make histories``).

Each scenario drives real workflows on a throwaway Temporal dev server and exports the
histories as JSON. ``tests/workflow/test_replay.py`` replays every file against today's
code, so a change that would break an incident already in flight fails CI. Re-record only
when adding a scenario; existing files are the past that new code must still replay.

Usage: python -m tests.record_histories [--only NAME] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from tests.support import demo_config, free_port
from worker.config import FirelineConfig
from worker.devserver import DevServer
from worker.runner import build_worker
from worker.settings import Settings
from worker.temporal_client import connect
from worker.wiring import activities
from workflows.alert_group import AlertGroupWorkflow
from workflows.alerts import Alert, AlertSource, AlertStatus, fingerprint
from workflows.contracts import (
    Acknowledge,
    AddNote,
    AddOverride,
    AlertGroupInput,
    AlertsArrived,
    AllocateNumber,
    AssignRole,
    Close,
    DeclareIncident,
    GroupedAlert,
    IncidentSettings,
    MarkMitigated,
    OverrideStoreInput,
    RefusalRecorded,
    RemoveOverride,
    Reopen,
    Resolve,
    Role,
    SequenceInput,
    SetSeverity,
    Severity,
)
from workflows.incident import IncidentWorkflow
from workflows.overrides import OverrideStoreWorkflow
from workflows.routing import load_routing, match_routes
from workflows.sequence import IncidentSequenceWorkflow
from workflows.severity import ImpactFacts, ImpactLevel

OUT = Path(__file__).parent / "histories"
TASK_QUEUE = "record-histories"

Scenario = Callable[[Client], Awaitable[dict[str, WorkflowHandle[Any, Any]]]]


def _declare(incident_id: str, **overrides: Any) -> DeclareIncident:
    fields: dict[str, Any] = {
        "id": incident_id,
        "title": "Checkout errors after deploy 1.4.0",
        "service": "checkout",
        "severity": Severity.SEV2,
        "declared_by": "alice",
        "config": demo_config().snapshot("checkout"),
    }
    fields.update(overrides)
    return DeclareIncident(**fields)


async def _start(client: Client, inp: DeclareIncident) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        IncidentWorkflow.run, inp, id=f"incident-{inp.id}", task_queue=TASK_QUEUE
    )


async def full_lifecycle(client: Client) -> dict[str, WorkflowHandle[Any, Any]]:
    """Declared → acknowledged → roles → severity → notes → mitigated → resolved → closed."""
    h = await _start(client, _declare("INC-1", commander="bob"))
    await h.execute_update(IncidentWorkflow.acknowledge, Acknowledge(actor="bob"))
    await h.execute_update(
        IncidentWorkflow.assign_role, AssignRole(actor="bob", role=Role.SCRIBE, user="carol")
    )
    await h.execute_update(
        IncidentWorkflow.assign_role,
        AssignRole(actor="bob", role=Role.COMMUNICATIONS, user="carol"),
    )
    await h.execute_update(
        IncidentWorkflow.set_severity,
        SetSeverity(actor="bob", severity=Severity.SEV1, reason="all regions"),
    )
    await h.execute_update(IncidentWorkflow.add_note, AddNote(actor="alice", text="1.4.0 is bad"))
    await h.execute_update(
        IncidentWorkflow.mark_mitigated, MarkMitigated(actor="bob", summary="rolled back")
    )
    await h.execute_update(IncidentWorkflow.resolve, Resolve(actor="bob", summary="1.3.2 is back"))
    await h.execute_update(IncidentWorkflow.close, Close(actor="bob"))
    await h.result()
    return {"incident-full-lifecycle": h}


async def reopened_then_auto_closed(client: Client) -> dict[str, WorkflowHandle[Any, Any]]:
    """Policy-classified severity, a refused action audited, reopen, close by the timer."""
    config = demo_config().snapshot("checkout")
    config = config.model_copy(
        update={"settings": IncidentSettings(reopen_window=timedelta(seconds=2))}
    )
    inp = _declare(
        "INC-2",
        severity=None,
        impact=ImpactFacts(impact=ImpactLevel.PARTIAL_OUTAGE),
        config=config,
    )
    h = await _start(client, inp)
    await h.signal(
        IncidentWorkflow.record_refusal,
        RefusalRecorded(actor="mallory", action="acknowledge", reason="unknown user"),
    )
    await h.execute_update(IncidentWorkflow.mark_mitigated, MarkMitigated(actor="carol"))
    await h.execute_update(IncidentWorkflow.resolve, Resolve(actor="carol", summary="fixed"))
    await h.execute_update(IncidentWorkflow.reopen, Reopen(actor="alice", reason="errors back"))
    await h.execute_update(IncidentWorkflow.resolve, Resolve(actor="alice", summary="fixed"))
    await h.result()  # the 2 s reopen window passes and the incident closes itself
    return {"incident-reopened-auto-closed": h}


async def continued_as_new(client: Client) -> dict[str, WorkflowHandle[Any, Any]]:
    """A long incident: the first run ends in continue-as-new, the second is still open."""
    config = demo_config().snapshot("checkout")
    config = config.model_copy(update={"settings": IncidentSettings(max_history_events=40)})
    h = await _start(client, _declare("INC-3", config=config))
    first_run = h.result_run_id
    for i in range(25):
        await h.execute_update(IncidentWorkflow.add_note, AddNote(actor="alice", text=f"n{i}"))
    first = client.get_workflow_handle(h.id, run_id=first_run)
    latest = client.get_workflow_handle(h.id)
    return {"incident-continued-as-new-run1": first, "incident-in-flight-run2": latest}


async def open_in_flight(client: Client) -> dict[str, WorkflowHandle[Any, Any]]:
    """An incident still open when the code changes: the case replay exists for."""
    h = await _start(client, _declare("INC-4", severity=Severity.SEV3))
    await h.execute_update(IncidentWorkflow.acknowledge, Acknowledge(actor="alice"))
    await h.execute_update(IncidentWorkflow.add_note, AddNote(actor="alice", text="looking"))
    return {"incident-open-acknowledged": h}


async def sequence(client: Client) -> dict[str, WorkflowHandle[Any, Any]]:
    """The incident-number allocator after a few allocations."""
    h = await client.start_workflow(
        IncidentSequenceWorkflow.run,
        SequenceInput(),
        id="record-incident-sequence",
        task_queue=TASK_QUEUE,
    )
    for who in ("alice", "bob", "carol"):
        await h.execute_update(IncidentSequenceWorkflow.allocate, AllocateNumber(requested_by=who))
    return {"incident-sequence": h}


async def alert_group_to_incident(client: Client) -> dict[str, WorkflowHandle[Any, Any]]:
    """A warning alert group declares a SEV3, resolves it with its alerts, lingers, ends."""
    tree = load_routing(
        {
            "group_by": ["service", "alertname"],
            "group_wait": "0s",
            "group_interval": "1s",
            "service": "{labels.service}",
            "declare": {},
        }
    )
    labels = {"alertname": "SlowQueries", "service": "search", "severity": "warning"}
    [route] = match_routes(tree, labels)
    firing = Alert(
        fingerprint=fingerprint(labels),
        status=AlertStatus.FIRING,
        labels=labels,
        annotations={"summary": "p99 above 2s"},
        starts_at=datetime(2026, 11, 27, 9, tzinfo=UTC),
        source=AlertSource.ALERTMANAGER,
    )
    resolved = firing.model_copy(
        update={"status": AlertStatus.RESOLVED, "ends_at": datetime(2026, 11, 27, 9, 7, tzinfo=UTC)}
    )
    group = await client.start_workflow(
        AlertGroupWorkflow.run,
        AlertGroupInput(
            group_key="record/search",
            route=route,
            correlate_with=["search"],
            linger=timedelta(seconds=2),
        ),
        id="alert-group-record-search",
        task_queue=TASK_QUEUE,
        start_signal="alerts",
        start_signal_args=[
            AlertsArrived(alerts=[GroupedAlert(alert=firing)], received_at=firing.starts_at)
        ],
    )
    incident_id = None
    while incident_id is None:
        await asyncio.sleep(0.2)
        incident_id = (await group.query(AlertGroupWorkflow.state)).incident_id
    await group.signal(
        AlertGroupWorkflow.alerts,
        AlertsArrived(alerts=[GroupedAlert(alert=resolved)], received_at=resolved.starts_at),
    )
    await group.result()
    return {
        "alert-group-declares-resolves-lingers": group,
        "incident-from-alerts-auto-resolved": client.get_workflow_handle(f"incident-{incident_id}"),
    }


def _paging_config() -> FirelineConfig:
    return FirelineConfig.model_validate(
        {
            "users": {
                "alice": {"name": "Alice Example", "email": "alice@example.com"},
                "carol": {"name": "Carol Example", "email": "carol@example.com"},
            },
            "escalation_policies": {
                "payments": {
                    "levels": [
                        {"targets": [{"user": "alice"}], "delay": "2s"},
                        {"targets": [{"user": "carol"}], "delay": "1h"},
                    ]
                }
            },
            "services": {"checkout": {"escalation_policy": "payments"}},
        }
    )


async def paging(client: Client) -> dict[str, WorkflowHandle[Any, Any]]:
    """An incident pages level 1, escalates to level 2, is acknowledged and resolved."""
    inp = _declare("INC-5", config=_paging_config().snapshot("checkout", "INC-5"))
    h = await _start(client, inp)
    escalation = client.get_workflow_handle("escalation-INC-5")
    while True:
        texts = [e.text for e in await h.query(IncidentWorkflow.timeline)]
        if any(t.startswith("paged carol") for t in texts):
            break
        await asyncio.sleep(0.2)
    await h.execute_update(IncidentWorkflow.acknowledge, Acknowledge(actor="carol"))
    await h.execute_update(IncidentWorkflow.resolve, Resolve(actor="carol", summary="ok"))
    await escalation.result()
    return {
        "incident-paging-escalated-acked-resolved": h,
        "escalation-escalated-acked-resolved": escalation,
    }


async def override_store(client: Client) -> dict[str, WorkflowHandle[Any, Any]]:
    """Runtime on-call overrides: two added, one removed."""
    h = await client.start_workflow(
        OverrideStoreWorkflow.run,
        OverrideStoreInput(),
        id="record-overrides",
        task_queue=TASK_QUEUE,
    )
    now = datetime.now(UTC)
    ids = []
    for user, hours in (("bob", 8), ("carol", 4)):
        stored = await h.execute_update(
            OverrideStoreWorkflow.add_override,
            AddOverride(
                schedule="primary",
                user=user,
                start=now,
                end=now + timedelta(hours=hours),
                created_by="alice",
                reason="covering",
            ),
        )
        ids.append(stored.id)
    await h.execute_update(
        OverrideStoreWorkflow.remove_override, RemoveOverride(id=ids[1], actor="alice")
    )
    return {"override-store-add-remove": h}


RECORDED_RUNBOOK = {
    "name": "recorded-rollback",
    "parameters": {"deployment": {"type": "string", "required": True}},
    "steps": [
        {
            "id": "inspect",
            "kind": "action",
            "action": "k8s.status",
            "with": {"deployment": "{params.deployment}"},
        },
        {
            "id": "approve",
            "kind": "approval",
            "approvers": {"roles": ["commander"]},
            "prompt": "Roll {params.deployment} back from {steps.inspect.output.revision}?",
        },
        {
            "id": "rollback",
            "kind": "action",
            "action": "k8s.rollback",
            "with": {
                "deployment": "{params.deployment}",
                "from_revision": "{steps.inspect.output.revision}",
            },
        },
        {
            "id": "validate",
            "kind": "check",
            "query": "error_ratio",
            "success_condition": "result[0] < 0.05",
        },
    ],
    "on_failure": {
        "run": [
            {
                "id": "page-owners",
                "kind": "action",
                "action": "page",
                "with": {"summary": "rollback did not help"},
            }
        ],
        "then": "escalate",
    },
}


async def runbook_runs(client: Client) -> dict[str, WorkflowHandle[Any, Any]]:
    """A runbook approved, acted and validated (mitigating the incident); a second one
    rejected, running its on_failure page."""
    # Imported here: the harness is test code the other scenarios do not need.
    from runbooks.schema import Runbook
    from tests.runbook_harness import Script, declare_incident, start_run, world_worker
    from workflows.contracts import ApprovalDecision
    from workflows.runbook import RunbookWorkflow

    queue = TASK_QUEUE + "-runbooks"
    runbook = Runbook.model_validate(RECORDED_RUNBOOK)
    script = Script(
        actions={"inspect": [{"output": {"revision": 2}}], "rollback": [{"output": {}}]},
        measurements={"validate": [[0.01]]},
    )
    async with world_worker(client, queue, script):
        incident = await declare_incident(client, queue)
        runs = []
        for approve in (True, False):
            run = await start_run(client, incident, queue, runbook, params={"deployment": "api"})
            while (await run.query(RunbookWorkflow.state)).pending is None:
                await asyncio.sleep(0.1)
            await run.execute_update(
                RunbookWorkflow.decide,
                ApprovalDecision(step_id="approve", approve=approve, actor="alice"),
            )
            await run.result()
            runs.append(run)
        await asyncio.sleep(1)  # the incident takes the runs' last events
        return {
            "runbook-approved-validated": runs[0],
            "runbook-rejected-failure-handler": runs[1],
            "incident-with-runbook-runs": incident,
        }


async def communications(client: Client) -> dict[str, WorkflowHandle[Any, Any]]:
    """A SEV1 with a war room, a comms lead, an update to every audience, resolved, closed."""

    from tests.workflow.test_comms_workflow import Talk, snapshot
    from workflows.contracts import PostUpdate

    queue = TASK_QUEUE + "-comms"
    fake = Talk()
    async with fake.worker(client, queue):
        incident_id = "INC-20"
        h = await client.start_workflow(
            IncidentWorkflow.run,
            _declare(incident_id, severity=Severity.SEV1, config=snapshot()),
            id=f"incident-{incident_id}",
            task_queue=queue,
        )
        comms = client.get_workflow_handle(f"comms-{incident_id}")
        await h.execute_update(
            IncidentWorkflow.assign_role,
            AssignRole(actor="alice", role=Role.COMMUNICATIONS, user="bob"),
        )
        await h.execute_update(
            IncidentWorkflow.post_update,
            PostUpdate(actor="bob", text="Checkout fails for some customers; rolling back."),
        )
        while not (await h.query(IncidentWorkflow.state)).updates[0].deliveries:
            await asyncio.sleep(0.1)
        await h.execute_update(IncidentWorkflow.resolve, Resolve(actor="alice", summary="ok"))
        await h.execute_update(IncidentWorkflow.close, Close(actor="alice"))
        await h.result()
        await comms.result()
        return {"incident-with-communications": h, "comms-war-room-updates-closed": comms}


async def communications_after_an_outage(
    client: Client,
) -> dict[str, WorkflowHandle[Any, Any]]:
    """A SEV1 updated and resolved while no worker ran: communications catch up."""

    from tests.workflow.test_comms_workflow import Talk, snapshot
    from workflows.contracts import PostUpdate

    queue = TASK_QUEUE + "-comms-outage"
    incident_id = "INC-21"
    h = await client.start_workflow(
        IncidentWorkflow.run,
        _declare(incident_id, severity=Severity.SEV1, config=snapshot()),
        id=f"incident-{incident_id}",
        task_queue=queue,
    )
    # Admitted before any worker polls the queue: the first task handles both.
    posted = asyncio.create_task(
        h.execute_update(IncidentWorkflow.post_update, PostUpdate(actor="alice", text="On it."))
    )
    await asyncio.sleep(1)
    resolved = asyncio.create_task(
        h.execute_update(IncidentWorkflow.resolve, Resolve(actor="alice", summary="ok"))
    )
    await asyncio.sleep(1)
    fake = Talk()
    async with fake.worker(client, queue):
        await asyncio.gather(posted, resolved)
        while not all(u.deliveries for u in (await h.query(IncidentWorkflow.state)).updates):
            await asyncio.sleep(0.1)
        await h.execute_update(IncidentWorkflow.close, Close(actor="alice"))
        await h.result()
    return {"incident-comms-catch-up-after-outage": h}


async def postmortem(client: Client) -> dict[str, WorkflowHandle[Any, Any]]:
    """Resolve starts the postmortem; a section edited, submitted, an action item added."""
    from workflows.contracts import (
        AddActionItem,
        EditSection,
        PostmortemStatus,
        ReviewAction,
        SectionKey,
    )
    from workflows.postmortem import PostmortemWorkflow

    config = FirelineConfig.model_validate(
        {
            "users": {
                "alice": {"name": "Alice Example", "email": "alice@example.com"},
                "carol": {"name": "Carol Example", "email": "carol@example.com"},
            },
            "postmortems": {"reviewers": {"SEV2": ["carol"]}},
        }
    )
    inp = _declare("INC-30", config=config.snapshot("checkout", "INC-30"), commander="alice")
    h = await _start(client, inp)
    await h.execute_update(IncidentWorkflow.resolve, Resolve(actor="alice", summary="rolled back"))
    pm = client.get_workflow_handle("postmortem-INC-30")
    while True:
        try:
            state = await pm.query(PostmortemWorkflow.state)
        except Exception:  # not started yet
            await asyncio.sleep(0.2)
            continue
        if state.status is not PostmortemStatus.GATHERING:
            break
        await asyncio.sleep(0.2)
    for section, text in (
        (SectionKey.TRIGGER, "Release 1.4.0 shipped a connection pool of 2."),
        (SectionKey.CONTRIBUTING_FACTORS, "The canary saw too little traffic to show it."),
        (SectionKey.ROOT_CAUSE, "Pool size is not validated against expected load."),
    ):
        await pm.execute_update(
            PostmortemWorkflow.edit_section, EditSection(actor="alice", section=section, text=text)
        )
    await pm.execute_update(PostmortemWorkflow.submit, ReviewAction(actor="alice"))
    await pm.execute_update(
        PostmortemWorkflow.add_action_item,
        AddActionItem(
            actor="alice",
            title="Alert on pool saturation",
            owner="carol",
            due_at=datetime.now(UTC) + timedelta(days=7),
        ),
    )
    return {"incident-resolved-starts-postmortem": h, "postmortem-in-review-with-item": pm}


SCENARIOS: dict[str, Scenario] = {
    "postmortem": postmortem,
    "communications": communications,
    "communications_after_an_outage": communications_after_an_outage,
    "runbook_runs": runbook_runs,
    "override_store": override_store,
    "paging": paging,
    "alert_group_to_incident": alert_group_to_incident,
    "full_lifecycle": full_lifecycle,
    "reopened_then_auto_closed": reopened_then_auto_closed,
    "continued_as_new": continued_as_new,
    "open_in_flight": open_in_flight,
    "sequence": sequence,
}


async def record(out: Path, only: str | None) -> list[Path]:
    """Run the scenarios on a fresh dev server and write their histories."""
    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a one-off script, nothing else runs
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = DevServer(state_dir=Path(tmp), port=free_port(), ui_port=None)
        await server.start()
        try:
            client = await connect(Settings(temporal_address=server.address))
            acts = activities(client, _paging_config(), TASK_QUEUE, Settings(state_dir=Path(tmp)))
            async with build_worker(client, TASK_QUEUE, acts):
                for name, scenario in SCENARIOS.items():
                    if only and name != only:
                        continue
                    for file_name, handle in (await scenario(client)).items():
                        history = await handle.fetch_history()
                        path = out / f"{file_name}.json"
                        text = json.dumps(json.loads(history.to_json()), indent=1) + "\n"
                        path.write_text(text)
                        written.append(path)
                        print(f"recorded {path} ({len(history.events)} events)")
        finally:
            await server.stop()
    return written


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", choices=sorted(SCENARIOS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    asyncio.run(record(args.out, args.only))


if __name__ == "__main__":
    main()
