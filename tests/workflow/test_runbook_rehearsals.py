"""Every shipped runbook, rehearsed: tests/rehearsals/<runbook>.yaml played against the real
RunbookWorkflow with scripted step results (tests/runbook_harness.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from runbooks.loader import load_runbooks
from runbooks.substitution import AlertFacts
from tests.runbook_harness import (
    Script,
    declare_incident,
    incident_state,
    play,
    start_run,
    step_statuses,
    world_worker,
)
from tests.support import eventually
from workflows.contracts import IncidentStatus
from workflows.durations import parse_duration

ROOT = Path(__file__).resolve().parents[2]
REHEARSALS = ROOT / "tests" / "rehearsals"
LIBRARY = load_runbooks([ROOT / "runbooks"])
CASES = [
    (path.stem, case)
    for path in sorted(REHEARSALS.glob("*.yaml"))
    for case in yaml.safe_load(path.read_text())["cases"]
]


def test_every_shipped_runbook_is_rehearsed() -> None:
    rehearsed = {name for name, _ in CASES}
    assert set(LIBRARY) <= rehearsed, f"no rehearsal for {set(LIBRARY) - rehearsed}"


@pytest.mark.parametrize(
    ("runbook", "case"), CASES, ids=[f"{name}: {case['name']}" for name, case in CASES]
)
async def test_rehearsal(
    own_time_env: WorkflowEnvironment, task_queue: str, runbook: str, case: Any
) -> None:
    client = own_time_env.client
    resolves = case.get("alert_resolves_after")
    script = Script(
        actions=case.get("actions", {}),
        measurements=case.get("measurements", {}),
        decisions=case.get("decisions", {}),
        alert_resolves_after=parse_duration(resolves) if resolves else None,
    )
    alert = AlertFacts.model_validate(case["alert"]) if case.get("alert") else None
    async with world_worker(client, task_queue, script):
        incident = await declare_incident(client, task_queue)
        run = await start_run(
            client, incident, task_queue, LIBRARY[runbook], params=case["params"], alert=alert
        )
        async with asyncio.timeout(90):  # a hang is a failure with a message, not a stall
            state = await play(own_time_env, run, script)
        expect = case["expect"]
        expected = [next(iter(item.items())) for item in expect["steps"]]
        assert step_statuses(state) == expected, state.error
        assert state.status == expect["status"], state.error
        if "mitigated" in expect:

            async def mitigation_as_expected() -> None:
                status = (await incident_state(incident)).status
                assert (status is IncidentStatus.MITIGATED) == expect["mitigated"], status

            await eventually(mitigation_as_expected)
