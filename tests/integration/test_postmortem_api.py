"""Postmortems and action items through the HTTP API, on the real dev server and worker.

The config has a ``postmortems`` section, so resolving through the API starts the
postmortem the way it does in production: the incident's own hook, on resolve.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from activities.postmortem import PostmortemActivities
from tests.postmortem_support import Reminders
from tests.support import demo_config, eventually
from worker.api import create_app
from worker.config import FirelineConfig
from worker.runner import WORKFLOWS

pytestmark = pytest.mark.integration

ALICE = {"X-Fireline-User": "alice"}
BOB = {"X-Fireline-User": "bob"}
CAROL = {"X-Fireline-User": "carol"}
TASK_QUEUE = "fireline-postmortem-api-tests"


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("postmortems")


@pytest.fixture(scope="module")
async def api(dev_client: Client, export_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    raw = demo_config().model_dump(mode="json", exclude_unset=True)
    raw["postmortems"] = {"reviewers": {"SEV2": ["carol"]}, "export_dir": str(export_dir)}
    app = create_app(FirelineConfig.model_validate(raw), dev_client, TASK_QUEUE)
    reminders = Reminders()
    pm = PostmortemActivities(dev_client)
    async with (
        Worker(
            dev_client,
            task_queue=TASK_QUEUE,
            workflows=list(WORKFLOWS),
            activities=[reminders.send, pm.gather, pm.export],
            activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=4),
        ),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fireline"
        ) as http,
    ):
        yield http


async def resolved_postmortem(api: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    body = {"title": "Checkout slow", "service": "checkout", "severity": "SEV2", "commander": "bob"}
    response = await api.post("/v1/incidents", json=body, headers=ALICE)
    assert response.status_code == 201, response.text
    incident_id: str = response.json()["id"]
    response = await api.post(
        f"/v1/incidents/{incident_id}/resolve", json={"summary": "pool resized"}, headers=BOB
    )
    assert response.status_code == 200, response.text

    async def drafted() -> dict[str, Any]:
        got = await api.get(f"/v1/postmortems/{incident_id}", headers=ALICE)
        assert got.status_code == 200, got.text
        pm: dict[str, Any] = got.json()
        assert pm["status"] == "draft"
        return pm

    return incident_id, await eventually(drafted)


async def test_resolve_drafts_a_postmortem_that_publishes_only_when_complete(
    api: httpx.AsyncClient, dev_client: Client, export_dir: Path
) -> None:
    inc, pm = await resolved_postmortem(api)
    texts = [i["text"] for i in pm["facts"]["timeline"]]
    assert texts[0] == "alice declared SEV2 on checkout: Checkout slow"
    assert texts[-1] == "bob resolved the incident: pool resized"

    response = await api.post(f"/v1/postmortems/{inc}/publish", headers=CAROL)
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "reason": f"cannot publish the postmortem of {inc}: required sections are empty: "
        "trigger (Trigger), contributing_factors (Contributing factors), "
        "root_cause (Root-cause analysis)",
    }
    for section in ("trigger", "contributing_factors", "root_cause"):
        response = await api.put(
            f"/v1/postmortems/{inc}/sections/{section}",
            json={"text": f"The {section} of the pool exhaustion."},
            headers=BOB,
        )
        assert response.status_code == 200, response.text
    response = await api.put(
        f"/v1/postmortems/{inc}/sections/nonsense", json={"text": "x"}, headers=BOB
    )
    assert response.status_code == 422
    assert (await api.post(f"/v1/postmortems/{inc}/submit", headers=BOB)).status_code == 200
    response = await api.post(f"/v1/postmortems/{inc}/publish", headers=BOB)
    assert (response.status_code, response.json()["reason"]) == (
        403,
        "only the reviewers (carol) may publish this postmortem",
    )
    response = await api.post(f"/v1/postmortems/{inc}/publish", headers=CAROL)
    assert response.status_code == 200, response.text
    exported = response.json()["state"]["exported"]
    assert [Path(p).suffix for p in exported] == [".md", ".json"]
    markdown = await api.get(f"/v1/postmortems/{inc}/markdown", headers=ALICE)
    assert markdown.headers["content-type"].startswith("text/plain")
    assert "| Status | published |" in markdown.text
    # What people wrote in the postmortem is searchable with the incident.
    found = await api.get("/v1/incidents/search", params={"q": "exhaustion"}, headers=ALICE)
    assert found.status_code == 200, found.text
    assert inc in [hit["id"] for hit in found.json()], found.json()


async def test_action_items_bad_input_is_refused_and_good_items_are_tracked(
    api: httpx.AsyncClient, dev_client: Client, export_dir: Path
) -> None:
    inc, _ = await resolved_postmortem(api)
    now = datetime.now(UTC)
    good = {
        "title": "Alert on connection pool saturation",
        "owner": "alice",
        "due_at": (now + timedelta(days=14)).isoformat(),
        "kind": "detect",
        "priority": "P1",
    }
    path = f"/v1/postmortems/{inc}/action-items"
    past = {**good, "due_at": (now - timedelta(days=1)).isoformat()}
    response = await api.post(path, json=past, headers=BOB)
    assert response.status_code == 400
    assert response.json()["reason"].startswith("due_at: ")
    assert " is in the past (now " in response.json()["reason"]
    response = await api.post(path, json={**good, "owner": "zed"}, headers=BOB)
    assert (response.status_code, response.json()["reason"]) == (
        400,
        "owner: unknown user 'zed'; known: alice, bob, carol",
    )
    response = await api.post(path, json={**good, "kind": "blame"}, headers=BOB)
    assert response.status_code == 422
    response = await api.post(path, json=good, headers=BOB)
    assert response.status_code == 201, response.text
    item = response.json()
    assert item["id"] == f"{inc}-A1"

    async def listed() -> None:
        rows = (await api.get("/v1/action-items", headers=ALICE)).json()
        assert item["id"] in [r["id"] for r in rows]

    await eventually(listed)
    overdue = (await api.get("/v1/action-items?overdue=true", headers=ALICE)).json()
    assert item["id"] not in [r["id"] for r in overdue]

    response = await api.post(
        f"/v1/action-items/{item['id']}/reassign", json={"owner": "alice"}, headers=BOB
    )
    assert (response.status_code, response.json()["reason"]) == (
        409,
        f"owner: alice already owns {item['id']}",
    )
    response = await api.post(
        f"/v1/action-items/{item['id']}/done", json={"note": "alert added"}, headers=ALICE
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    response = await api.get("/v1/action-items/INC-999999-A1", headers=ALICE)
    assert (response.status_code, response.json()["reason"]) == (
        404,
        "no action item INC-999999-A1",
    )
    response = await api.get("/v1/postmortems/INC-999999", headers=ALICE)
    assert response.status_code == 404
    assert response.json()["reason"] == (
        "no postmortem for INC-999999: one is drafted when the incident is resolved"
    )
