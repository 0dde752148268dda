"""Runbook runs through the HTTP API, on the real dev server with a real worker.

A small library of approval-only runbooks keeps the tests about the API: who may decide,
what the timeline records, idempotent double clicks, and refusals with their reasons.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.support import demo_config, eventually
from worker.api import create_app
from worker.runner import build_worker

pytestmark = pytest.mark.integration

ALICE = {"X-Fireline-User": "alice"}
BOB = {"X-Fireline-User": "bob"}
CAROL = {"X-Fireline-User": "carol"}

TASK_QUEUE = "fireline-runbook-api-tests"

TWO_GATES = """\
name: two-gates
description: Two approvals in a row, for the API tests.
parameters:
  replicas: {type: int, default: 3}
steps:
  - id: first
    kind: approval
    approvers: {roles: [commander]}
    prompt: Scale {incident.id} to {params.replicas}?
  - id: second
    kind: approval
    approvers: {users: [bob]}
    prompt: Really?
"""


@pytest.fixture(scope="module")
async def api(
    dev_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    library = tmp_path_factory.mktemp("runbooks")
    (library / "two-gates.yaml").write_text(TWO_GATES)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FIRELINE_RUNBOOKS_DIR", str(library))
        app = create_app(demo_config(), dev_client, TASK_QUEUE)
    async with (
        build_worker(dev_client, TASK_QUEUE),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fireline"
        ) as http,
    ):
        yield http


async def incident(api: httpx.AsyncClient) -> str:
    body = {"title": "Checkout slow", "service": "checkout", "severity": "SEV2", "commander": "bob"}
    response = await api.post("/v1/incidents", json=body, headers=ALICE)
    assert response.status_code == 201, response.text
    incident_id: str = response.json()["id"]
    return incident_id


async def start(api: httpx.AsyncClient, inc: str, **body: Any) -> dict[str, Any]:
    payload = {"runbook": "two-gates", "dry_run": True, **body}
    response = await api.post(f"/v1/incidents/{inc}/runs", json=payload, headers=ALICE)
    assert response.status_code == 201, response.text
    summary: dict[str, Any] = response.json()
    return summary


async def waiting_on(api: httpx.AsyncClient, inc: str, run: str, step: str) -> dict[str, Any]:
    async def check() -> dict[str, Any]:
        response = await api.get(f"/v1/incidents/{inc}/runs/{run}", headers=ALICE)
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        assert state["pending"] is not None
        assert state["pending"]["step_id"] == step
        return state

    return await eventually(check)


def decide_path(inc: str, run: str, step: str, verb: str = "approve") -> str:
    return f"/v1/incidents/{inc}/runs/{run}/steps/{step}/{verb}"


async def test_library_lists_the_configured_runbooks(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/runbooks", headers=ALICE)
    assert response.status_code == 200
    assert response.json() == [
        {
            "name": "two-gates",
            "description": "Two approvals in a row, for the API tests.",
            "match": [],
            "parameters": {
                "replicas": {"type": "int", "default": 3, "description": "", "required": False}
            },
        }
    ]


async def test_a_dry_run_starts_and_is_listed(api: httpx.AsyncClient) -> None:
    inc = await incident(api)
    run = await start(api, inc, params={"replicas": "5"})
    assert run["run_id"] == f"{inc}-r1"
    assert run["workflow_id"] == f"runbook-{inc}-r1"
    assert (run["runbook"], run["dry_run"], run["started_by"]) == ("two-gates", True, "alice")
    state = await waiting_on(api, inc, run["run_id"], "first")
    assert state["pending"]["prompt"] == f"Scale {inc} to 5?"
    assert state["incident_id"] == inc
    runs = (await api.get(f"/v1/incidents/{inc}/runs", headers=ALICE)).json()
    assert [r["run_id"] for r in runs] == [run["run_id"]]


async def test_approvals_refusals_idempotence_and_abort(api: httpx.AsyncClient) -> None:
    inc = await incident(api)
    run_id = (await start(api, inc))["run_id"]
    await waiting_on(api, inc, run_id, "first")

    # Carol is not the commander: refused with the reason, and the timeline says so.
    refused = await api.post(decide_path(inc, run_id, "first"), json={}, headers=CAROL)
    assert refused.status_code == 403, refused.text
    reason = "carol may not approve first: allowed are the commander (bob)"
    assert refused.json() == {"error": "forbidden", "reason": reason}

    async def refusal_recorded() -> None:
        timeline = (await api.get(f"/v1/incidents/{inc}", headers=ALICE)).json()["timeline"]
        refusals = [e for e in timeline if e["kind"] == "refused"]
        assert [(e["actor"], e["text"]) for e in refusals] == [
            ("carol", f"refused approve first in {run_id} by carol: {reason}")
        ]

    await eventually(refusal_recorded)

    # The commander approves; the run goes on to the next gate.
    approved = await api.post(
        decide_path(inc, run_id, "first"), json={"comment": "go"}, headers=BOB
    )
    assert approved.status_code == 200, approved.text
    state = await waiting_on(api, inc, run_id, "second")
    first = [s for s in state["steps"] if s["step_id"] == "first"]
    assert [(s["status"], s["actor"], s["comment"]) for s in first] == [("succeeded", "bob", "go")]

    # A double click is the same decision: same answer, nothing decided twice.
    again = await api.post(decide_path(inc, run_id, "first"), json={"comment": "go"}, headers=BOB)
    assert again.status_code == 200, again.text
    assert again.json() == approved.json()
    state = await waiting_on(api, inc, run_id, "second")
    assert [s["step_id"] for s in state["steps"]] == ["first", "second"]

    # Only the commander aborts; then nothing more can be approved.
    not_commander = await api.post(
        f"/v1/incidents/{inc}/runs/{run_id}/abort", json={"reason": "x"}, headers=ALICE
    )
    assert not_commander.status_code == 403
    assert not_commander.json()["reason"] == f"only the commander (bob) may abort {run_id}"
    aborted = await api.post(
        f"/v1/incidents/{inc}/runs/{run_id}/abort", json={"reason": "wrong runbook"}, headers=BOB
    )
    assert aborted.status_code == 200, aborted.text

    async def ended() -> None:
        state = (await api.get(f"/v1/incidents/{inc}/runs/{run_id}", headers=ALICE)).json()
        assert state["status"] == "aborted"

    await eventually(ended)
    late = await api.post(decide_path(inc, run_id, "second"), json={}, headers=BOB)
    assert late.status_code == 409, late.text
    assert late.json()["reason"] == f"run {run_id} is closed"


async def test_reject_ends_the_run(api: httpx.AsyncClient) -> None:
    inc = await incident(api)
    run_id = (await start(api, inc))["run_id"]
    await waiting_on(api, inc, run_id, "first")
    rejected = await api.post(
        decide_path(inc, run_id, "first", "reject"), json={"comment": "no"}, headers=BOB
    )
    assert rejected.status_code == 200, rejected.text

    async def ended() -> None:
        state = (await api.get(f"/v1/incidents/{inc}/runs/{run_id}", headers=ALICE)).json()
        assert state["status"] in ("failed", "aborted")
        assert state["steps"][0]["status"] == "failed"

    await eventually(ended)


async def test_pause_and_resume_by_the_commander(api: httpx.AsyncClient) -> None:
    inc = await incident(api)
    run_id = (await start(api, inc))["run_id"]
    await waiting_on(api, inc, run_id, "first")
    base = f"/v1/incidents/{inc}/runs/{run_id}"
    paused = await api.post(f"{base}/pause", json={"reason": "hold on"}, headers=BOB)
    assert paused.status_code == 200, paused.text
    assert (paused.json()["status"], paused.json()["paused_by"]) == ("paused", "bob")
    twice = await api.post(f"{base}/pause", headers=BOB)
    assert twice.status_code == 409
    assert twice.json()["reason"] == f"{run_id} is already paused"
    resumed = await api.post(f"{base}/resume", json={}, headers=BOB)
    assert resumed.json()["status"] == "running"


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"runbook": "nope"}, 404, "no runbook 'nope'; known: two-gates"),
        (
            {"runbook": "two-gates", "params": {"replicas": "many"}},
            400,
            "params: parameter 'replicas': expected an integer, found 'many'",
        ),
        (
            {"runbook": "two-gates", "params": {"colour": "red"}},
            400,
            "params: unknown parameter 'colour' (declared: replicas)",
        ),
        ({"runbook": "two-gates", "colour": "red"}, 422, "colour: unknown field"),
    ],
)
async def test_bad_starts_are_refused_with_the_reason(
    api: httpx.AsyncClient, body: dict[str, Any], status: int, reason: str
) -> None:
    inc = await incident(api)
    response = await api.post(f"/v1/incidents/{inc}/runs", json=body, headers=ALICE)
    assert response.status_code == status, response.text
    assert response.json()["reason"] == reason


async def test_unknown_incident_and_run_are_404(api: httpx.AsyncClient) -> None:
    missing = await api.post(
        "/v1/incidents/INC-99999/runs", json={"runbook": "two-gates"}, headers=ALICE
    )
    assert missing.status_code == 404
    assert missing.json()["reason"] == "no incident INC-99999"
    inc = await incident(api)
    no_run = await api.get(f"/v1/incidents/{inc}/runs/{inc}-r9", headers=ALICE)
    assert no_run.status_code == 404
    assert no_run.json()["reason"] == f"{inc} has no run {inc}-r9"
    approve = await api.post(decide_path(inc, f"{inc}-r9", "first"), headers=BOB)
    assert approve.status_code == 404
