"""The HTTP API against the real dev server and a real worker: behaviour and bad input."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.support import demo_config, eventually
from worker.api import create_app
from worker.config import FirelineConfig
from worker.runner import build_worker

pytestmark = pytest.mark.integration

ALICE = {"X-Fireline-User": "alice"}
BOB = {"X-Fireline-User": "bob"}


# One task queue for the module: the incident-number sequence is a single long-lived
# workflow, bound to the queue of the worker that first served it, as in production.
TASK_QUEUE = "fireline-api-tests"


@pytest.fixture(scope="module")
async def api(dev_client: Client) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        build_worker(dev_client, TASK_QUEUE),
        _http(demo_config(), dev_client, TASK_QUEUE) as http,
    ):
        yield http


def _http(config: FirelineConfig, client: Client, task_queue: str) -> httpx.AsyncClient:
    app = create_app(config, client, task_queue)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fireline")


async def declare(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    payload = {"title": "Checkout errors", "service": "checkout", "severity": "SEV2", **body}
    response = await api.post("/v1/incidents", json=payload, headers=ALICE)
    assert response.status_code == 201, response.text
    state: dict[str, Any] = response.json()
    return state


async def test_declare_act_and_read_back(api: httpx.AsyncClient) -> None:
    state = await declare(api, commander="bob", labels={"region": "eu-west-1"})
    assert state["id"].startswith("INC-")
    assert state["declared_by"] == "alice"
    assert state["roles"] == {"commander": "bob"}
    inc = state["id"]
    ack = await api.post(f"/v1/incidents/{inc}/acknowledge", json={}, headers=BOB)
    assert ack.status_code == 200
    assert ack.json()["entry"]["text"] == "bob acknowledged"
    note = await api.post(f"/v1/incidents/{inc}/notes", json={"text": "1.4.0 is bad"}, headers=BOB)
    assert note.json()["state"]["timeline"][-1]["actor"] == "bob"
    got = (await api.get(f"/v1/incidents/{inc}", headers=ALICE)).json()
    assert got["status"] == "acknowledged"
    assert [e["kind"] for e in got["timeline"]] == [
        "declared",
        "role_assigned",
        "acknowledged",
        "note",
    ]


async def test_an_action_on_a_long_incident_still_answers_with_the_whole_timeline(
    api: httpx.AsyncClient,
) -> None:
    inc = (await declare(api))["id"]
    for i in range(55):
        note = await api.post(f"/v1/incidents/{inc}/notes", json={"text": f"n{i}"}, headers=BOB)
        assert note.status_code == 200, note.text
    body = note.json()
    texts = [e["text"] for e in body["state"]["timeline"]]
    assert texts[0].startswith("alice declared"), texts[:2]
    assert texts[-1] == "n54"
    assert len(texts) == len(
        (await api.get(f"/v1/incidents/{inc}", headers=ALICE)).json()["timeline"]
    )
    assert body["timeline_omitted"] == 0


async def test_severity_from_policy_uses_impact_and_catalog(api: httpx.AsyncClient) -> None:
    state = await declare(api, severity=None, impact={"impact": "partial_outage"})
    assert state["severity"] == "SEV1"  # checkout is tier-1
    low = await declare(api, service="search", severity=None, impact={"impact": "degraded"})
    assert low["severity"] == "SEV3"


async def test_incident_numbers_are_sequential(api: httpx.AsyncClient) -> None:
    first = int((await declare(api))["id"].removeprefix("INC-"))
    second = int((await declare(api))["id"].removeprefix("INC-"))
    assert second == first + 1


async def test_list_filters_come_from_visibility(api: httpx.AsyncClient) -> None:
    sev1 = (await declare(api, severity="SEV1", title="List me"))["id"]
    search = (await declare(api, service="search", severity="SEV4"))["id"]
    await api.post(f"/v1/incidents/{search}/acknowledge", json={}, headers=BOB)

    async def listed() -> None:
        rows = (await api.get("/v1/incidents", params={"severity": "SEV1"}, headers=ALICE)).json()
        mine = [r for r in rows if r["id"] == sev1]
        assert mine, rows
        assert mine[0]["title"] == "List me"
        assert mine[0]["status"] == "declared"
        assert all(r["severity"] == "SEV1" for r in rows)
        acked = (
            await api.get(
                "/v1/incidents",
                params={"status": "acknowledged", "service": "search"},
                headers=ALICE,
            )
        ).json()
        assert search in [r["id"] for r in acked]
        assert all(r["service"] == "search" and r["status"] == "acknowledged" for r in acked)

    await eventually(listed)


async def test_resolved_and_closed_incidents_leave_the_default_list(api: httpx.AsyncClient) -> None:
    inc = (await declare(api))["id"]
    await api.post(f"/v1/incidents/{inc}/resolve", json={"summary": "fixed"}, headers=BOB)
    await api.post(f"/v1/incidents/{inc}/close", json={}, headers=BOB)

    async def gone() -> None:
        open_ids = [r["id"] for r in (await api.get("/v1/incidents", headers=ALICE)).json()]
        assert inc not in open_ids
        every = (await api.get("/v1/incidents", params={"all": "true"}, headers=ALICE)).json()
        closed = [r for r in every if r["id"] == inc]
        assert closed
        assert closed[0]["status"] == "closed"
        assert closed[0]["resolved_at"] is not None

    await eventually(gone)


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b'{"title": "x", "service": ', 422, "body: malformed JSON"),
        (
            b'{"title": "x", "service": "checkout", "severity": "SEV9"}',
            422,
            "severity: Input should be 'SEV1', 'SEV2', 'SEV3' or 'SEV4'",
        ),
        (b'{"service": "checkout"}', 422, "title: Field required"),
        (b'{"title": "x", "service": "checkout", "colour": "red"}', 422, "colour: unknown field"),
        (
            b'{"title": "x", "service": "checkout", "impact": {"impact": "meh"}}',
            422,
            "impact.impact: Input should be",
        ),
        (
            b'{"title": "x", "service": "billing"}',
            400,
            "service: unknown service 'billing'; known services: checkout, search",
        ),
        (
            b'{"title": "x", "service": "checkout", "commander": "mallory"}',
            400,
            "commander: unknown user 'mallory'",
        ),
        (b"[]", 422, "body: Input should be a valid dictionary"),
    ],
)
async def test_bad_declarations_name_the_problem(
    api: httpx.AsyncClient, body: bytes, status: int, reason: str
) -> None:
    response = await api.post(
        "/v1/incidents", content=body, headers={**ALICE, "Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert response.json()["reason"].startswith(reason)


async def test_refused_actions_answer_with_the_validator_reason(api: httpx.AsyncClient) -> None:
    inc = (await declare(api))["id"]
    await api.post(f"/v1/incidents/{inc}/resolve", json={"summary": "done"}, headers=BOB)
    await api.post(f"/v1/incidents/{inc}/close", json={}, headers=BOB)
    again = await api.post(f"/v1/incidents/{inc}/resolve", json={"summary": "x"}, headers=BOB)
    assert again.status_code == 409
    assert again.json() == {"error": "conflict", "reason": f"{inc} is closed"}


async def test_unknown_user_is_refused_and_the_refusal_is_on_the_timeline(
    api: httpx.AsyncClient,
) -> None:
    inc = (await declare(api))["id"]
    response = await api.post(
        f"/v1/incidents/{inc}/acknowledge", json={}, headers={"X-Fireline-User": "mallory"}
    )
    assert response.status_code == 403
    assert response.json()["reason"] == "unknown user 'mallory': not in fireline's user directory"

    async def audited() -> None:
        timeline = (await api.get(f"/v1/incidents/{inc}", headers=ALICE)).json()["timeline"]
        assert timeline[-1]["kind"] == "refused"
        assert timeline[-1]["text"] == (
            "refused acknowledge by mallory: unknown user 'mallory': "
            "not in fireline's user directory"
        )

    await eventually(audited)
    state = (await api.get(f"/v1/incidents/{inc}", headers=ALICE)).json()
    assert state["status"] == "declared"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reason"),
    [
        ("GET", "/v1/incidents/INC-999999", None, 404, "no incident INC-999999"),
        ("GET", "/v1/incidents/not-an-id", None, 422, "incident_id: String should match pattern"),
        ("POST", "/v1/incidents/INC-999999/acknowledge", {}, 404, "no incident INC-999999"),
        (
            "POST",
            "/v1/incidents/INC-1/severity",
            {"severity": "SEV1"},
            422,
            "reason: Field required",
        ),
        (
            "POST",
            "/v1/incidents/INC-1/roles",
            {"role": "boss", "user": "bob"},
            422,
            "role: Input should be",
        ),
        ("GET", "/v1/nothing-here", None, 404, "Not Found"),
    ],
)
async def test_errors_are_json_with_reasons(
    api: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    reason: str,
) -> None:
    response = await api.request(method, path, json=body, headers=ALICE)
    assert response.status_code == status
    assert response.json()["reason"].startswith(reason)


async def test_local_mode_needs_a_user_name(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/incidents")
    assert response.status_code == 401
    assert response.json()["reason"] == (
        "local mode: say who you are with the X-Fireline-User header "
        "(CLI: --as USER or FIRELINE_USER)"
    )


async def test_token_mode_maps_bearer_tokens_to_users(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    raw = demo_config().model_dump(mode="json")
    raw["auth"] = {
        "tokens": [{"user": "carol", "token_sha256": hashlib.sha256(b"s3cret").hexdigest()}]
    }
    config = FirelineConfig.model_validate(raw)
    async with _http(config, dev_client, TASK_QUEUE) as api:
        missing = await api.get("/v1/incidents", headers=ALICE)
        assert missing.status_code == 401
        assert missing.json()["reason"] == (
            "send 'Authorization: Bearer <token>' (CLI: FIRELINE_TOKEN)"
        )
        wrong = await api.get("/v1/incidents", headers={"Authorization": "Bearer nope"})
        assert (wrong.status_code, wrong.json()["reason"]) == (401, "the bearer token is not valid")
        ok = await api.post(
            "/v1/incidents",
            json={"title": "Token test", "service": "checkout", "severity": "SEV3"},
            # The header naming another user is ignored: the token says who this is.
            headers={"Authorization": "Bearer s3cret", **ALICE},
        )
        assert ok.status_code == 201
        assert ok.json()["declared_by"] == "carol"


async def test_health_and_readiness(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_openapi_documents_every_incident_route(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    for action in ("acknowledge", "roles", "severity", "notes", "mitigate", "resolve"):
        assert f"/v1/incidents/{{incident_id}}/{action}" in paths


async def test_a_new_task_queue_counter_jumps_past_existing_incidents(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    existing = int((await declare(api))["id"].removeprefix("INC-"))
    # A worker on another queue starts its own counter at 1, which collides with INC-1.
    other = "fireline-api-tests-moved"
    async with build_worker(dev_client, other), _http(demo_config(), dev_client, other) as moved:
        state = await declare(moved)
    number = int(state["id"].removeprefix("INC-"))
    assert number > existing
    assert state["title"] == "Checkout errors"
