"""The built-in public status page: ``GET /status``, ``/status.json`` and ``/status.atom``.

No login and no JavaScript: server-rendered HTML (Jinja2, autoescaped) readable on a phone,
a JSON document and an Atom 1.0 feed, all from the same view of the page. The page shows
only what the ``StatusPageWorkflow`` holds, which is only what was published to customers;
the internal timeline never reaches it. Before the first publication (no workflow yet)
every configured component is operational, with configured maintenance applied.

Statuses are recomputed at request time with this process's clock (a query answers with
the clock of the workflow's last task, which a quiet page does not advance), so a
maintenance window starts and ends on time even when nothing is published.

``/status.json``::

    {"page": {"title", "url", "updated_at"},
     "status": {"indicator": <component status>, "description": "All Systems Operational"},
     "components": [{"id", "name", "description", "group", "status",
                     "uptime": {"percent": 99.95 | null,
                                "days": [{"date", "status" | null,
                                          "non_operational_minutes", "downtime_minutes"}]}}],
     "groups": [{"id", "name", "components": [component ids]}],
     "incidents": [<unresolved, newest first>], "recent_incidents": [<resolved, 90 days>],
       each {"id", "title", "status", "impact", "started_at", "updated_at", "resolved_at",
             "components": {id: status},
             "updates": [{"id", "at", "status", "body", "components"}] newest first},
     "scheduled_maintenances": [{"id", "title", "components", "starts_at", "ends_at", "body",
                                 "in_progress"}]}
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from worker.status_page_config import StatusPageConfig
from workflows.contracts import (
    STATUS_PAGE_WORKFLOW_ID,
    ComponentNow,
    ComponentStatus,
    Maintenance,
    PublicIncident,
    StatusPageSnapshot,
)
from workflows.status_page import StatusPageWorkflow
from workflows.uptime import (
    component_status,
    in_window,
    incident_statuses,
    is_active,
    uptime,
    worst,
)

log = logging.getLogger("fireline.status_page")

SnapshotSource = Callable[[], Awaitable[StatusPageSnapshot | None]]

TEMPLATES = Path(__file__).resolve().parent / "templates" / "status"
ATOM_NS = "http://www.w3.org/2005/Atom"
# Enough for a feed reader to catch up after a weekend; older news is on the page.
FEED_ENTRIES = 50
RECENT_INCIDENTS = 10
# A page that cannot be read says so quickly (503) rather than hanging the customer's browser.
QUERY_TIMEOUT = timedelta(seconds=5)

LABELS = {
    ComponentStatus.OPERATIONAL: "Operational",
    ComponentStatus.DEGRADED_PERFORMANCE: "Degraded performance",
    ComponentStatus.PARTIAL_OUTAGE: "Partial outage",
    ComponentStatus.MAJOR_OUTAGE: "Major outage",
    ComponentStatus.UNDER_MAINTENANCE: "Under maintenance",
}
BANNERS = {
    ComponentStatus.OPERATIONAL: "All Systems Operational",
    ComponentStatus.DEGRADED_PERFORMANCE: "Degraded Performance",
    ComponentStatus.PARTIAL_OUTAGE: "Partial System Outage",
    ComponentStatus.MAJOR_OUTAGE: "Major System Outage",
    ComponentStatus.UNDER_MAINTENANCE: "Scheduled Maintenance in Progress",
}
_HEADERS = {
    # Short: a customer refreshing during an incident must see the newest update.
    "Cache-Control": "public, max-age=10",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True)


def workflow_snapshot_source(
    client: Client, workflow_id: str = STATUS_PAGE_WORKFLOW_ID
) -> SnapshotSource:
    """Query the StatusPageWorkflow; None while it does not exist (nothing published yet)."""

    async def fetch() -> StatusPageSnapshot | None:
        handle = client.get_workflow_handle(workflow_id)
        try:
            result: StatusPageSnapshot = await handle.query(
                StatusPageWorkflow.snapshot, rpc_timeout=QUERY_TIMEOUT
            )
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return None
            raise
        return result

    return fetch


def build_view(
    config: StatusPageConfig, snapshot: StatusPageSnapshot | None, now: datetime
) -> dict[str, Any]:
    """The page as a JSON-ready document (``/status.json``; the HTML renders the same)."""
    maintenance = _maintenance(config, snapshot)
    incidents = snapshot.incidents if snapshot else []
    driven = incident_statuses(incidents)
    tracked_since = snapshot.tracked_since if snapshot else now
    transitions = snapshot.transitions if snapshot else []
    components: list[dict[str, Any]] = []
    statuses: list[ComponentStatus] = []
    for c in _components(config, snapshot):
        bars = uptime(c.id, transitions, now=now, tracked_since=tracked_since)
        status = component_status(c.id, driven, maintenance, now)
        statuses.append(status)
        components.append(
            {
                "id": c.id,
                "name": c.name,
                "description": c.description,
                "group": c.group,
                "status": status.value,
                "uptime": {
                    "percent": None if bars.percent is None else round(bars.percent, 2),
                    "days": [
                        {
                            "date": d.day.isoformat(),
                            "status": d.status.value if d.status else None,
                            "non_operational_minutes": round(d.non_operational_minutes),
                            "downtime_minutes": round(d.downtime_minutes),
                        }
                        for d in bars.days
                    ],
                },
            }
        )
    overall = worst(statuses)
    groups = snapshot.groups if snapshot and not config.groups else config.groups
    active = [i for i in incidents if is_active(i)]
    resolved = [i for i in incidents if not is_active(i)][:RECENT_INCIDENTS]
    updated = max([i.updated_at for i in incidents], default=None)
    return {
        "page": {
            "title": config.title,
            "url": config.public_url,
            "updated_at": (updated or now).isoformat(),
        },
        "status": {"indicator": overall.value, "description": BANNERS[overall]},
        "components": components,
        "groups": [
            {
                "id": g.id,
                "name": g.name,
                "components": [c["id"] for c in components if c["group"] == g.id],
            }
            for g in groups
        ],
        "incidents": [_incident(i) for i in active],
        "recent_incidents": [_incident(i) for i in resolved],
        "scheduled_maintenances": [
            {
                "id": m.id,
                "title": m.title,
                "components": m.components,
                "starts_at": m.starts_at.isoformat(),
                "ends_at": m.ends_at.isoformat(),
                "body": m.body,
                "in_progress": in_window(m, now),
            }
            for m in sorted(maintenance, key=lambda m: (m.starts_at, m.id))
            if m.ends_at > now
        ],
    }


def _components(
    config: StatusPageConfig, snapshot: StatusPageSnapshot | None
) -> list[ComponentNow]:
    # Config is the current truth for names and grouping; without it, the workflow's.
    if config.components:
        return [
            ComponentNow(id=c.id, name=c.name, description=c.description, group=c.group)
            for c in config.components
        ]
    return snapshot.components if snapshot else []


def _maintenance(
    config: StatusPageConfig, snapshot: StatusPageSnapshot | None
) -> list[Maintenance]:
    merged = {m.id: m for m in config.maintenance_entries()}
    merged.update({m.id: m for m in (snapshot.maintenance if snapshot else [])})
    return list(merged.values())


def _incident(incident: PublicIncident) -> dict[str, Any]:
    return {
        "id": incident.incident_id,
        "title": incident.title,
        "status": incident.status.value,
        "impact": incident.impact.value,
        "started_at": incident.started_at.isoformat(),
        "updated_at": incident.updated_at.isoformat(),
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "components": {k: v.value for k, v in incident.components.items()},
        "updates": [
            {
                "id": u.update_id,
                "at": u.at.isoformat(),
                "status": u.status.value,
                "body": u.body,
                "components": {k: v.value for k, v in u.components.items()},
            }
            for u in sorted(incident.updates, key=lambda u: u.at, reverse=True)
        ],
    }


def render_html(view: dict[str, Any]) -> str:
    """The page as HTML (everything escaped by the template engine)."""
    names = {c["id"]: c["name"] for c in view["components"]}
    grouped = {g["id"] for g in view["groups"]}
    return _env.get_template("page.html.j2").render(
        view=view,
        names=names,
        ungrouped=[c for c in view["components"] if c["group"] not in grouped],
        by_id={c["id"]: c for c in view["components"]},
        labels={s.value: label for s, label in LABELS.items()},
        when=_when,
        minutes=_minutes,
    )


def _when(value: str | None) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%b %d, %Y %H:%M UTC")


def _minutes(value: float) -> str:
    hours, mins = divmod(int(value), 60)
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def render_atom(view: dict[str, Any], self_url: str, page_url: str) -> bytes:
    """An Atom 1.0 feed: one entry per published update, newest first."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", page_url)
    sub(feed, "title", view["page"]["title"])
    sub(feed, "updated", view["page"]["updated_at"])
    sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    sub(feed, "link", rel="alternate", href=page_url, type="text/html")
    author = sub(feed, "author")
    sub(author, "name", view["page"]["title"])
    entries = [
        (incident, update)
        for incident in view["incidents"] + view["recent_incidents"]
        for update in incident["updates"]
    ]
    entries.sort(key=lambda pair: pair[1]["at"], reverse=True)
    for incident, update in entries[:FEED_ENTRIES]:
        entry = sub(feed, "entry")
        sub(entry, "id", f"{page_url}#update-{quote(update['id'], safe='')}")
        status = update["status"].capitalize()
        sub(entry, "title", f"{incident['title']} — {status}")
        sub(entry, "updated", update["at"])
        sub(entry, "published", update["at"])
        sub(
            entry,
            "link",
            rel="alternate",
            type="text/html",
            href=f"{page_url}#incident-{quote(incident['id'], safe='')}",
        )
        sub(entry, "content", update["body"], type="text")
    body: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return body


def status_page_router(
    source: SnapshotSource,
    config: StatusPageConfig,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> APIRouter:
    """Routes for the public status page; ``source`` reads the workflow's snapshot."""
    router = APIRouter(tags=["status page"])

    async def view() -> dict[str, Any] | Response:
        try:
            snapshot = await source()
        except (RPCError, WorkflowQueryFailedError) as exc:
            log.warning("status page unavailable: %s", exc)
            return JSONResponse(
                {"error": "unavailable", "reason": "the status page cannot be read right now"},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return build_view(config, snapshot, now())

    def page_url(request: Request) -> str:
        return config.public_url or str(request.url_for("status_html"))

    @router.get("/status", response_class=HTMLResponse, name="status_html")
    async def status_html() -> Response:
        """The public status page."""
        current = await view()
        if isinstance(current, Response):
            return current
        return HTMLResponse(render_html(current), headers=_HEADERS)

    @router.get("/status.json")
    async def status_json() -> Response:
        """The status page as JSON (shape in this module's docstring)."""
        current = await view()
        if isinstance(current, Response):
            return current
        return JSONResponse(current, headers=_HEADERS)

    @router.get("/status.atom")
    async def status_atom(request: Request) -> Response:
        """An Atom 1.0 feed of published updates."""
        current = await view()
        if isinstance(current, Response):
            return current
        feed = render_atom(current, str(request.url), page_url(request))
        return Response(feed, media_type="application/atom+xml", headers=_HEADERS)

    return router
