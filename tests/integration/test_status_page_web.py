"""The built-in status page end to end on the dev server: the ``status_page.publish``
activity → StatusPageWorkflow → ``/status``, ``/status.json`` and ``/status.atom``."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.status_page import BuiltinStatusPage, StatusPageActivities
from worker.status_page_config import StatusPageConfig
from worker.status_page_web import status_page_router, workflow_snapshot_source
from workflows.contracts import (
    ComponentStatus,
    PublicStatus,
    StatusImpact,
    StatusPublication,
)
from workflows.status_page import StatusPageWorkflow

ATOM = "{http://www.w3.org/2005/Atom}"


def shop_config(**changes: Any) -> StatusPageConfig:
    """A fictional shop: checkout and the payments API in one group, the website alone."""
    now = datetime.now(UTC)
    raw: dict[str, Any] = {
        "title": "Example Shop Status",
        "public_url": "https://status.example.com/status",
        "groups": [{"id": "shop", "name": "Shop"}],
        "components": [
            {"id": "checkout", "name": "Checkout", "group": "shop", "services": ["checkout"]},
            {"id": "payments-api", "name": "Payments API", "group": "shop"},
            {"id": "website", "name": "Website", "description": "www.example.com"},
        ],
        "maintenance": [
            {
                "title": "Search index rebuild",
                "components": ["website"],
                "starts_at": (now + timedelta(days=3)).isoformat(),
                "ends_at": (now + timedelta(days=3, hours=1)).isoformat(),
                "body": "Search may return stale results.",
            }
        ],
    }
    raw.update(changes)
    return StatusPageConfig.model_validate(raw)


def publication(update_id: str, **changes: Any) -> StatusPublication:
    pub = StatusPublication(
        incident_id="INC-42",
        update_id=update_id,
        at=datetime.now(UTC),
        title="Checkout failures",
        status=PublicStatus.INVESTIGATING,
        impact=StatusImpact.CRITICAL,
        body="Customers cannot complete checkout. We are investigating.",
        components={"checkout": ComponentStatus.MAJOR_OUTAGE},
    )
    return pub.model_copy(update=changes)


class Stack:
    """A worker running the page workflow, the publish activity, and the web routes."""

    def __init__(self, client: Client, task_queue: str, config: StatusPageConfig) -> None:
        workflow_id = f"status-page-{uuid.uuid4()}"
        self.activities = StatusPageActivities(
            BuiltinStatusPage(
                client,
                task_queue=task_queue,
                start_input=config.start_input(),
                workflow_id=workflow_id,
            )
        )
        app = FastAPI()
        app.include_router(
            status_page_router(workflow_snapshot_source(client, workflow_id), config)
        )
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fireline.test"
        )

    async def publish(self, pub: StatusPublication) -> None:
        await ActivityEnvironment().run(self.activities.publish, pub)

    async def page(self) -> dict[str, Any]:
        response = await self.http.get("/status.json")
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    async def statuses(self) -> dict[str, str]:
        return {c["id"]: c["status"] for c in (await self.page())["components"]}


@pytest.fixture
async def stack(dev_client: Client, task_queue: str) -> AsyncIterator[Stack]:
    async with Worker(dev_client, task_queue=task_queue, workflows=[StatusPageWorkflow]):
        built = Stack(dev_client, task_queue, shop_config())
        try:
            yield built
        finally:
            await built.http.aclose()


async def test_before_anything_is_published_the_page_is_operational_from_config(
    stack: Stack,
) -> None:
    page = await stack.page()
    assert page["status"] == {"indicator": "operational", "description": "All Systems Operational"}
    assert await stack.statuses() == {
        "checkout": "operational",
        "payments-api": "operational",
        "website": "operational",
    }
    assert page["groups"] == [
        {"id": "shop", "name": "Shop", "components": ["checkout", "payments-api"]}
    ]
    assert page["incidents"] == []
    (maintenance,) = page["scheduled_maintenances"]
    assert (maintenance["title"], maintenance["in_progress"]) == ("Search index rebuild", False)
    html = (await stack.http.get("/status")).text
    assert "All Systems Operational" in html
    assert "Search index rebuild" in html


async def test_a_published_incident_shows_and_resolving_it_restores_the_component(
    stack: Stack,
) -> None:
    await stack.publish(publication("INC-42-u1"))

    page = await stack.page()
    assert page["status"]["indicator"] == "major_outage"
    assert (await stack.statuses())["checkout"] == "major_outage"
    (incident,) = page["incidents"]
    assert incident["title"] == "Checkout failures"
    assert [u["body"] for u in incident["updates"]] == [
        "Customers cannot complete checkout. We are investigating."
    ]

    await stack.publish(
        publication(
            "INC-42-u2",
            status=PublicStatus.IDENTIFIED,
            body="A faulty release was found; rolling back.",
        )
    )
    html = (await stack.http.get("/status")).text
    # Newest first.
    assert html.index("A faulty release was found") < html.index("Customers cannot complete")

    await stack.publish(
        publication(
            "INC-42-u3",
            status=PublicStatus.RESOLVED,
            body="Checkout works again.",
            components={"checkout": ComponentStatus.OPERATIONAL},
        )
    )
    page = await stack.page()
    assert page["status"]["indicator"] == "operational"
    assert (await stack.statuses())["checkout"] == "operational"
    assert page["incidents"] == []
    (past,) = page["recent_incidents"]
    assert [u["status"] for u in past["updates"]] == ["resolved", "identified", "investigating"]
    checkout = next(c for c in page["components"] if c["id"] == "checkout")
    today = checkout["uptime"]["days"][-1]
    assert today["status"] == "major_outage"
    assert len(checkout["uptime"]["days"]) == 90


async def test_published_text_is_escaped(stack: Stack) -> None:
    await stack.publish(
        publication(
            "INC-42-u1",
            title="<script>alert('title')</script>",
            body='<img src=x onerror="alert(1)"> & more',
        )
    )
    html = (await stack.http.get("/status")).text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; more" in html


async def test_the_atom_feed_lists_published_updates(stack: Stack) -> None:
    await stack.publish(publication("INC-42-u1"))
    await stack.publish(
        publication("INC-42-u2", status=PublicStatus.MONITORING, body="Fix deployed <b>.")
    )

    response = await stack.http.get("/status.atom")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/atom+xml"
    feed = ET.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}id") == "https://status.example.com/status"
    assert feed.findtext(f"{ATOM}title") == "Example Shop Status"
    assert feed.findtext(f"{ATOM}updated")
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}title") for e in entries] == [
        "Checkout failures — Monitoring",
        "Checkout failures — Investigating",
    ]
    assert entries[0].findtext(f"{ATOM}content") == "Fix deployed <b>."
    assert entries[0].findtext(f"{ATOM}id") == (
        "https://status.example.com/status#update-INC-42-u2"
    )
    link = entries[0].find(f"{ATOM}link")
    assert link is not None
    assert link.get("href") == "https://status.example.com/status#incident-INC-42"


async def test_a_refused_update_does_not_reach_the_page(stack: Stack) -> None:
    from temporalio.exceptions import ApplicationError

    with pytest.raises(ApplicationError) as caught:
        await stack.publish(publication("INC-42-u1", body="x" * 25_001))
    assert "over the limit of 25000" in caught.value.message
    assert (await stack.page())["incidents"] == []
