"""Runtime overrides through the API: they change who is on call and who gets paged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.support import eventually
from worker.api import create_app
from worker.config import FirelineConfig
from worker.runner import build_worker
from worker.settings import Settings
from worker.wiring import activities

pytestmark = pytest.mark.integration
TASK_QUEUE = "fireline-oncall-tests"
ALICE = {"X-Fireline-User": "alice"}


def config() -> FirelineConfig:
    return FirelineConfig.model_validate(
        {
            "users": {
                "alice": {"name": "Alice Example", "email": "alice@example.com"},
                "bob": {"name": "Bob Example", "email": "bob@example.com"},
            },
            "schedules": {
                "solo": {
                    "timezone": "UTC",
                    "layers": [
                        {
                            "name": "only-alice",
                            "users": ["alice"],
                            "rotation": "weekly",
                            "start": "2026-01-05T09:00:00Z",
                        }
                    ],
                }
            },
            "escalation_policies": {
                "solo": {"levels": [{"targets": [{"schedule": "solo"}], "delay": "1h"}]}
            },
            "services": {"ledger": {"escalation_policy": "solo"}},
        }
    )


@pytest.fixture(scope="module")
async def api(
    dev_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    cfg = config()
    settings = Settings(state_dir=tmp_path_factory.mktemp("state"))
    app = create_app(cfg, dev_client, TASK_QUEUE)
    async with (
        build_worker(dev_client, TASK_QUEUE, activities(dev_client, cfg, TASK_QUEUE, settings)),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://f") as http,
    ):
        yield http


async def test_an_override_changes_who_is_on_call_and_who_is_paged(
    api: httpx.AsyncClient,
) -> None:
    before = (await api.get("/v1/oncall", headers=ALICE)).json()
    assert [(r["schedule"], r["user"]) for r in before] == [("solo", "alice")]
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "schedule": "solo",
        "user": "bob",
        "start": (now - timedelta(minutes=1)).isoformat(),
        "end": (now + timedelta(hours=2)).isoformat(),
        "reason": "alice at the dentist",
    }
    created = await api.post("/v1/oncall/overrides", json=body, headers=ALICE)
    assert created.status_code == 201, created.text
    stored = created.json()
    assert stored["override"]["created_by"] == "alice"
    shown = (await api.get("/v1/oncall/solo", headers=ALICE)).json()
    assert shown["now"]["user"] == "bob"
    assert shown["now"]["source"] == "override"

    declared = await api.post(
        "/v1/incidents",
        json={"title": "Ledger drift", "service": "ledger", "severity": "SEV2"},
        headers=ALICE,
    )
    inc = declared.json()["id"]

    async def bob_paged() -> None:
        texts = [
            e["text"]
            for e in (await api.get(f"/v1/incidents/{inc}", headers=ALICE)).json()["timeline"]
        ]
        assert any(t.startswith("paged bob via console") for t in texts), texts

    await eventually(bob_paged)
    removed = await api.delete(f"/v1/oncall/overrides/{stored['id']}", headers=ALICE)
    assert removed.status_code == 200
    after = (await api.get("/v1/oncall", headers=ALICE)).json()
    assert [r["user"] for r in after] == ["alice"]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (
            {"schedule": "nope", "user": "bob"},
            400,
            "schedule: unknown schedule 'nope'; known: solo",
        ),
        ({"schedule": "solo", "user": "mallory"}, 400, "user: unknown user 'mallory'"),
    ],
)
async def test_bad_overrides_are_refused(
    api: httpx.AsyncClient, body: dict[str, str], status: int, reason: str
) -> None:
    now = datetime.now(UTC)
    full = {**body, "start": now.isoformat(), "end": (now + timedelta(hours=1)).isoformat()}
    response = await api.post("/v1/oncall/overrides", json=full, headers=ALICE)
    assert (response.status_code, response.json()["reason"]) == (status, reason)


async def test_an_override_that_already_ended_is_refused(api: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    response = await api.post(
        "/v1/oncall/overrides",
        json={
            "schedule": "solo",
            "user": "bob",
            "start": (now - timedelta(hours=2)).isoformat(),
            "end": (now - timedelta(hours=1)).isoformat(),
        },
        headers=ALICE,
    )
    assert response.status_code == 400
    assert response.json()["reason"].endswith("which has already passed")
