"""Communications end to end on the dev server, through the API and the real wiring.

fireline.example.yaml's communications and built-in status page: a SEV1 declared on
checkout appears on /status as soon as its first update is published (redacted for
customers), the executive copy reaches the console inbox, and resolving turns the
component operational again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from activities.providers.console import read_inbox
from tests.support import eventually
from worker.api import create_app
from worker.config import load_config
from worker.runner import build_worker
from worker.settings import Settings
from worker.wiring import activities

ROOT = Path(__file__).resolve().parents[2]
ALICE = {"X-Fireline-User": "alice"}


@pytest.fixture
async def api(dev_client: Client, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = load_config(ROOT / "fireline.example.yaml")
    queue = f"comms-{uuid.uuid4()}"
    settings = Settings(state_dir=tmp_path)
    app = create_app(config, dev_client, queue)
    async with build_worker(dev_client, queue, activities(dev_client, config, queue, settings)):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fireline") as http:
            http.inbox = tmp_path / "inbox"  # type: ignore[attr-defined]
            yield http


async def act(api: httpx.AsyncClient, path: str, body: dict[str, Any], who: str) -> Any:
    response = await api.post(path, json=body, headers={"X-Fireline-User": who})
    assert response.status_code in (200, 201), response.text
    return response.json()


async def checkout(api: httpx.AsyncClient) -> dict[str, Any]:
    page: dict[str, Any] = (await api.get("/status.json")).json()
    component: dict[str, Any] = {c["id"]: c for c in page["components"]}["checkout"]
    return component | {"page": page}


async def test_a_sev1_reaches_the_status_page_and_resolving_clears_it(
    api: httpx.AsyncClient,
) -> None:
    incident = await act(
        api,
        "/v1/incidents",
        {
            "title": "Checkout fails for alice@example.com",
            "service": "checkout",
            "severity": "SEV1",
        },
        "alice",
    )
    inc = incident["id"]
    assert incident["next_update_due"] is not None  # SEV1: every 30 minutes
    await act(
        api, f"/v1/incidents/{inc}/roles", {"role": "communications", "user": "carol"}, "alice"
    )
    await act(
        api,
        f"/v1/incidents/{inc}/updates",
        {"text": "Card payments fail; MRN 1234567 reported it via bob@example.com."},
        "carol",
    )

    async def published() -> dict[str, Any]:
        component = await checkout(api)
        assert component["status"] == "major_outage", component["status"]
        return component

    page = (await eventually(published))["page"]
    [active] = [i for i in page["incidents"] if i["id"] == inc]
    assert active["title"] == "Checkout fails for [email]"
    assert active["updates"][0]["body"] == "Card payments fail; [patient] reported it via [email]."
    html = (await api.get("/status")).text
    assert "Checkout fails for [email]" in html
    assert "alice@example.com" not in html

    async def delivered() -> list[Any]:
        state = (await api.get(f"/v1/incidents/{inc}", headers=ALICE)).json()
        assert state["updates"][0]["deliveries"], state["updates"]
        return list(state["updates"][0]["deliveries"])

    deliveries = await eventually(delivered)
    assert all(d["ok"] for d in deliveries), deliveries
    # The executive copy went to carol's console inbox, patient id redacted.
    inbox = read_inbox(api.inbox)  # type: ignore[attr-defined]
    [note] = [e for e in inbox if e.page.recipient == "carol" and e.page.informational]
    assert "[patient]" in note.page.summary
    assert not note.page.ack_url  # a stakeholder update has nothing to acknowledge

    await act(api, f"/v1/incidents/{inc}/resolve", {"summary": "rolled back"}, "alice")

    async def cleared() -> dict[str, Any]:
        component = await checkout(api)
        assert component["status"] == "operational", component["status"]
        return component

    page = (await eventually(cleared))["page"]
    assert inc not in [i["id"] for i in page["incidents"]]
    [past] = [i for i in page["recent_incidents"] if i["id"] == inc]
    assert past["updates"][0]["status"] == "resolved"
