"""Postmortem drafts from recorded incident histories, pinned by golden Markdown files.

Each recorded history in ``tests/histories/`` is replayed against today's workflow code
(no server), and the workflow's final state is what ``postmortem.gather`` would have read
through the ``state`` queries. The draft built from it must equal
``tests/golden/postmortems/<name>.md``. After an intended change to the template, rewrite
the files with ``FIRELINE_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from activities.contracts import ExportRequest
from activities.postmortem import _export
from worker.replay import load_history
from workflows.contracts import (
    ActionItemKind,
    ActionItemPriority,
    ActionItemSummary,
    DeclareIncident,
    IncidentOutcome,
    IncidentRecord,
    IncidentState,
    PostmortemInput,
    PostmortemSnapshot,
    PostmortemState,
    RunbookInput,
    RunbookRunState,
    SectionKey,
)
from workflows.incident import IncidentWorkflow
from workflows.postmortem_draft import (
    blameless_warnings,
    export_basename,
    initial_state,
    render_markdown,
    with_draft,
)
from workflows.runbook import RunbookWorkflow

ROOT = Path(__file__).resolve().parents[1]
HISTORIES = ROOT / "histories"
GOLDEN = ROOT / "golden" / "postmortems"

_captured: list[Any] = []


@workflow.defn(name="IncidentWorkflow", sandboxed=False)
class _CapturedIncident(IncidentWorkflow):
    """Today's incident workflow, keeping a reference to itself to read its final state."""

    @workflow.run
    async def run(self, inp: DeclareIncident) -> IncidentOutcome:
        _captured.append(self)
        return await super().run(inp)


@workflow.defn(name="RunbookWorkflow", sandboxed=False)
class _CapturedRun(RunbookWorkflow):
    """Today's runbook workflow, likewise."""

    @workflow.run
    async def run(self, inp: RunbookInput) -> RunbookRunState:
        _captured.append(self)
        return await super().run(inp)


async def final_state(name: str) -> Any:
    """The state a workflow had at the end of its recorded history."""
    replayer = Replayer(
        workflows=[_CapturedIncident, _CapturedRun], data_converter=pydantic_data_converter
    )
    await replayer.replay_workflow(load_history(HISTORIES / f"{name}.json"))
    return _captured[-1]._s


async def record(incident: str, runs: list[str]) -> IncidentRecord:
    state = await final_state(incident)
    assert isinstance(state, IncidentState)
    run_states = [await final_state(r) for r in runs]
    return IncidentRecord(incident=state, runs=run_states)


SETTINGS = PostmortemSnapshot.model_validate(
    {"reviewers": {"SEV2": ["carol"], "SEV1": ["carol", "dave"]}, "due_after": {"SEV2": "5d"}}
)


def drafted(rec: IncidentRecord) -> PostmortemState:
    """The postmortem exactly as the workflow builds it, at the incident's resolution."""
    s = rec.incident
    inp = PostmortemInput.for_incident(s, f"incident-{s.id}", SETTINGS)
    state = initial_state(inp, inp.resolved_at)
    return with_draft(state, rec, inp.resolved_at)


CASES = {
    "incident-full-lifecycle-before-result-tail": [],
    "incident-from-alerts-auto-resolved": [],
    "incident-paging-escalated-acked-resolved": [],
    "incident-with-runbook-runs": [
        "runbook-approved-validated",
        "runbook-rejected-failure-handler",
    ],
}


@pytest.mark.parametrize("name", list(CASES))
async def test_draft_from_a_recorded_history_matches_its_golden_markdown(name: str) -> None:
    rec = await record(name, CASES[name])
    text = render_markdown(drafted(rec))
    golden = GOLDEN / f"{name}.md"
    if os.environ.get("FIRELINE_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.is_file(), f"{golden} missing: run with FIRELINE_UPDATE_GOLDEN=1"
    assert text == golden.read_text()


async def test_the_draft_carries_the_real_timeline_alerts_checks_and_approvals() -> None:
    runs = await record(
        "incident-with-runbook-runs",
        ["runbook-approved-validated", "runbook-rejected-failure-handler"],
    )
    facts = drafted(runs).facts
    assert facts is not None
    assert [(a.step_id, a.decision, a.actor) for a in facts.approvals] == [
        ("approve", "approved", "alice"),
        ("approve", "rejected", "alice"),
    ]
    assert [(c.step_id, c.status, c.last_values) for c in facts.checks] == [
        ("validate", "succeeded", [0.01])
    ]
    assert facts.timeline[0].phase == "declared"
    assert any(i.phase == "mitigated" for i in facts.timeline)

    alerts = drafted(await record("incident-from-alerts-auto-resolved", [])).facts
    assert alerts is not None
    assert alerts.alerts, "the incident declared from alerts lists them"
    assert alerts.window.first_alert_at == min(a.starts_at for a in alerts.alerts)

    paging = drafted(await record("incident-paging-escalated-acked-resolved", [])).facts
    assert paging is not None
    assert paging.pages > 0
    assert any(i.phase == "paging" for i in paging.timeline)


async def test_the_people_left_to_write_are_the_required_sections_without_data() -> None:
    state = drafted(await record("incident-full-lifecycle", []))
    assert (state.severity.value, state.reviewers) == ("SEV1", ["carol", "dave"])
    assert [k.value for k in state.empty_required()] == [
        "trigger",
        "contributing_factors",
        "root_cause",
    ]
    summary = state.section(SectionKey.SUMMARY)
    assert summary is not None
    assert summary.drafted


async def test_an_edited_section_survives_drafting_and_action_items_fill_their_section() -> None:
    rec = await record("incident-full-lifecycle", [])
    inp = PostmortemInput.for_incident(rec.incident, "incident-x", SETTINGS)
    state = initial_state(inp, inp.resolved_at)
    summary = state.section(SectionKey.SUMMARY)
    assert summary is not None
    summary.text, summary.edited_by = "Our own words.", "alice"
    state = with_draft(state, rec, inp.resolved_at)
    assert state.section(SectionKey.SUMMARY) == summary
    state.required_sections.append(SectionKey.ACTION_ITEMS)
    assert SectionKey.ACTION_ITEMS in state.empty_required()
    state.action_items.append(
        ActionItemSummary(
            id=f"{state.incident_id}-A1",
            workflow_id="action-item-x",
            title="Canary | config",
            owner="bob",
            priority=ActionItemPriority.P1,
            kind=ActionItemKind.DETECT,
            due_at=datetime(2026, 12, 1, tzinfo=UTC),
            link="https://tracker.example.com/7",
        )
    )
    assert SectionKey.ACTION_ITEMS not in state.empty_required()
    md = render_markdown(state)
    assert (
        f"| {state.incident_id}-A1 | [Canary \\| config](https://tracker.example.com/7) | "
        "detect | P1 | bob | 2026-12-01 | open |"
    ) in md


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("The deploy was rolled out by hand; this was human error.", ["'human error'"]),
        ("Whose fault was it?", ["'Whose fault'"]),
        ("bob should have known the pool was small", ["'should have known'"]),
        ("A careless change", ["'careless'"]),
        ("The pool size default was too small for peak traffic.", []),
        ("The alert fault tolerance was fine", []),
    ],
)
def test_blameless_warnings_flag_wording_about_people_not_systems(
    text: str, flagged: list[str]
) -> None:
    assert [w.split(":")[0] for w in blameless_warnings(text)] == flagged


def test_export_names_and_idempotent_atomic_writes(tmp_path: Path) -> None:
    state = PostmortemState(
        id="INC-9",
        incident_id="INC-9",
        title="Checkout: errors / timeouts!",
        service="checkout",
        severity="SEV2",
        created_at=datetime(2026, 11, 28, 23, 30, tzinfo=UTC),
        due_at=datetime(2026, 12, 3, tzinfo=UTC) + timedelta(0),
    )
    assert export_basename(state) == "2026-11-28-INC-9-checkout-errors-timeouts"
    req = ExportRequest(
        directory=str(tmp_path / "docs"), basename="x", markdown="# x\n", json_text="{}\n"
    )
    first = _export(req)
    assert first.changed == [True, True]
    assert _export(req).changed == [False, False]
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["x.json", "x.md"]
    changed = _export(req.model_copy(update={"markdown": "# y\n"}))
    assert changed.changed == [True, False]
    assert (tmp_path / "docs" / "x.md").read_text() == "# y\n"


def test_export_into_a_file_path_is_a_permanent_error(tmp_path: Path) -> None:
    blocker = tmp_path / "docs"
    blocker.write_text("not a directory")
    req = ExportRequest(directory=str(blocker), basename="x", markdown="", json_text="{}")
    with pytest.raises(ApplicationError) as caught:
        _export(req)
    assert caught.value.type == "ExportFailed"
    assert caught.value.non_retryable
    assert caught.value.message.startswith(f"cannot write the postmortem to {blocker}: ")
