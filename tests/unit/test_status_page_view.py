"""The status page's view and routes without Temporal: maintenance on time, 503 when the
page cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from temporalio.service import RPCError, RPCStatusCode

from worker.status_page_config import StatusPageConfig
from worker.status_page_web import build_view, status_page_router
from workflows.contracts import (
    ComponentStatus,
    PublicIncident,
    PublicStatus,
    PublishedUpdate,
    StatusImpact,
    StatusPageSnapshot,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CONFIG = StatusPageConfig.model_validate(
    {
        "title": "Example Shop Status",
        "components": [
            {"id": "checkout", "name": "Checkout"},
            {"id": "website", "name": "Website"},
        ],
        "maintenance": [
            {
                "id": "db-upgrade",
                "title": "Database upgrade",
                "components": ["website"],
                "starts_at": "2026-11-28T11:00:00Z",
                "ends_at": "2026-11-28T13:00:00Z",
            }
        ],
    }
)


def snapshot_with(status: PublicStatus) -> StatusPageSnapshot:
    update = PublishedUpdate(
        update_id="INC-1-u1",
        at=NOW - timedelta(minutes=10),
        status=status,
        impact=StatusImpact.MINOR,
        body="Checkout is slow.",
        components={"checkout": ComponentStatus.DEGRADED_PERFORMANCE},
    )
    incident = PublicIncident(
        incident_id="INC-1",
        title="Slow checkout",
        status=status,
        impact=StatusImpact.MINOR,
        started_at=update.at,
        updated_at=update.at,
        resolved_at=update.at if status is PublicStatus.RESOLVED else None,
        components=update.components,
        updates=[update],
    )
    return StatusPageSnapshot(
        at=NOW - timedelta(hours=5),  # a quiet workflow's clock lags; the view uses NOW
        title="Example Shop Status",
        tracked_since=NOW - timedelta(days=1),
        incidents=[incident],
    )


def test_maintenance_follows_the_request_clock() -> None:
    view = build_view(CONFIG, None, NOW)
    statuses = {c["id"]: c["status"] for c in view["components"]}
    assert statuses == {"checkout": "operational", "website": "under_maintenance"}
    assert view["status"]["description"] == "Scheduled Maintenance in Progress"
    assert view["scheduled_maintenances"][0]["in_progress"] is True
    after = build_view(CONFIG, None, NOW + timedelta(hours=2))
    assert after["scheduled_maintenances"] == []
    assert after["status"]["indicator"] == "operational"


def test_an_active_incident_outranks_maintenance_in_the_banner() -> None:
    view = build_view(CONFIG, snapshot_with(PublicStatus.INVESTIGATING), NOW)
    assert view["status"] == {
        "indicator": "degraded_performance",
        "description": "Degraded Performance",
    }
    assert [i["id"] for i in view["incidents"]] == ["INC-1"]
    assert view["recent_incidents"] == []


def test_a_resolved_incident_moves_to_past_incidents() -> None:
    view = build_view(CONFIG, snapshot_with(PublicStatus.RESOLVED), NOW)
    assert view["incidents"] == []
    assert [i["id"] for i in view["recent_incidents"]] == ["INC-1"]
    statuses = {c["id"]: c["status"] for c in view["components"]}
    assert statuses["checkout"] == "operational"


async def test_an_unreadable_page_is_a_503_not_a_500() -> None:
    async def broken() -> StatusPageSnapshot | None:
        raise RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")

    app = FastAPI()
    app.include_router(status_page_router(broken, CONFIG, now=lambda: NOW))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fireline.test") as http:
        for path in ("/status", "/status.json", "/status.atom"):
            response = await http.get(path)
            assert response.status_code == 503
            assert response.json() == {
                "error": "unavailable",
                "reason": "the status page cannot be read right now",
            }
            assert response.headers["retry-after"] == "5"
