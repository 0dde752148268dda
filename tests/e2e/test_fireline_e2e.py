"""Real Prometheus → real Alertmanager → fireline (real API server, worker, dev server).

A rule on a metric the test controls fires; Alertmanager's webhook reaches fireline with a
bearer token of a configured integration; an incident is declared and titled from the
alert; the metric recovers and the resolution flows back onto the incident's timeline.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.e2e.harness import E2EStacks, alert_rule
from tests.support import free_port
from worker.api import create_app
from worker.config import FirelineConfig
from worker.process import api_server
from worker.runner import build_worker
from worker.settings import Settings
from worker.wiring import activities

pytestmark = pytest.mark.e2e

TASK_QUEUE = "fireline-e2e"
TOKEN = "am-e2e-token"
ALICE = {"X-Fireline-User": "alice"}


def e2e_config() -> FirelineConfig:
    return FirelineConfig.model_validate(
        {
            "users": {"alice": {"name": "Alice Example", "email": "alice@example.com"}},
            "teams": {"payments": {"members": ["alice"]}},
            "services": {"cart": {"owner_team": "payments", "tier": "tier-1"}},
            "routing": {
                "group_by": ["service", "alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
                "service": "{labels.service}",
                "declare": {"min_severity": "critical"},
                # SEV3 and below resolve with their alerts; this route says: always.
                "auto_resolve": True,
            },
            "integrations": {
                "e2e-alertmanager": {
                    "kind": "alertmanager",
                    "token": {"sha256": hashlib.sha256(TOKEN.encode()).hexdigest()},
                }
            },
        }
    )


@pytest.fixture
async def fireline_url(dev_client: Client, tmp_path: Path) -> AsyncIterator[str]:
    config = e2e_config()
    settings = Settings(state_dir=tmp_path / "state")
    port = free_port()
    server = api_server(create_app(config, dev_client, TASK_QUEUE), "127.0.0.1", port)
    async with build_worker(
        dev_client, TASK_QUEUE, activities(dev_client, config, TASK_QUEUE, settings)
    ):
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        await serving


async def test_prometheus_rule_to_alertmanager_to_incident_and_back(
    e2e_stacks: E2EStacks, fireline_url: str
) -> None:
    stack = e2e_stacks.stack(
        f"{fireline_url}/v1/alerts/alertmanager",
        [
            alert_rule(
                "CheckoutErrorRatioHigh",
                "checkout_error_ratio > 0.05",
                labels={"severity": "critical"},
                annotations={"summary": "checkout 5xx ratio above 5%"},
            )
        ],
        bearer_token=TOKEN,
        repeat_interval="1h",
    )
    stack.metrics.set("checkout_error_ratio", 0.01, labels={"service": "cart"})
    async with httpx.AsyncClient(base_url=fireline_url, timeout=10) as api:

        async def incidents() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = (
                await api.get(
                    "/v1/incidents", params={"service": "cart", "all": "true"}, headers=ALICE
                )
            ).json()
            return rows

        assert await incidents() == []
        stack.metrics.set("checkout_error_ratio", 0.4, labels={"service": "cart"})

        async def declared() -> dict[str, Any]:
            rows = await incidents()
            assert len(rows) == 1, rows
            assert rows[0]["severity"] is not None
            return rows[0]

        row = await stack.wait_until_async(declared, what="an incident from the alert", timeout=60)
        assert row["title"] == "CheckoutErrorRatioHigh: checkout 5xx ratio above 5%"
        assert row["severity"] == "SEV1"  # critical on a tier-1 service

        stack.metrics.set("checkout_error_ratio", 0.0, labels={"service": "cart"})

        async def resolved() -> list[str]:
            state = (await api.get(f"/v1/incidents/{row['id']}", headers=ALICE)).json()
            texts = [e["text"] for e in state["timeline"]]
            assert "alert CheckoutErrorRatioHigh resolved" in texts, texts
            assert state["status"] == "resolved"
            return texts

        texts = await stack.wait_until_async(resolved, what="the resolution", timeout=60)
        assert texts[-1] == "resolved automatically: all alerts resolved"
        assert len(await incidents()) == 1  # one incident, however often Alertmanager sent


async def test_alertmanager_without_the_token_is_refused(
    e2e_stacks: E2EStacks, fireline_url: str
) -> None:
    am = e2e_stacks.alertmanager(f"{fireline_url}/v1/alerts/alertmanager", bearer_token="wrong")
    async with httpx.AsyncClient(base_url=fireline_url, timeout=10) as api:
        am.push_alerts(
            [
                {
                    "labels": {
                        "alertname": "Unauthorised",
                        "service": "cart",
                        "severity": "critical",
                    }
                }
            ]
        )

        async def counted() -> None:
            text = (await api.get("/metrics")).text
            assert (
                'fireline_alerts_received_total{source="alertmanager",outcome="unauthorized"}'
                in text
            )

        await am.wait_until_async(counted, what="the refused delivery", timeout=30)
        rows = (await api.get("/v1/incidents", params={"all": "true"}, headers=ALICE)).json()
        assert all(not r["title"].startswith("Unauthorised") for r in rows)
