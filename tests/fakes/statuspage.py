"""A loopback Atlassian Statuspage REST API v1 (base URL ``<url>/v1``).

Serves the incident endpoints fireline uses, for one page id and one API key:

- ``GET /v1/pages/{page_id}/incidents`` (``limit``, newest first) and
  ``GET /v1/pages/{page_id}/incidents/unresolved`` (``per_page``);
- ``POST /v1/pages/{page_id}/incidents`` and ``PATCH /v1/pages/{page_id}/incidents/{id}``
  with ``{"incident": {...}}``; ``body`` becomes a new incident update.

Like Statuspage: ``Authorization: OAuth <key>`` is required (``401 {"error": "Could not
authenticate"}``), an unknown page or incident is ``404``, and a bad incident is ``422
{"error": "..."}``: name over 255 characters, body over 25,000, an unknown status, impact
or component id, metadata whose top-level values are not objects. Stricter than
Statuspage: unknown incident fields are a 422 too, so a typo fails a test. Faults from
:class:`LoopbackServer` (``fail_next(1, 429, retry_after="2")``, 5xx, resets) apply, and
:meth:`FakeStatuspage.lose_next_answer` loses the answer of the next write of one method.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from typing import Any

from tests.fakes.server import Fault, LoopbackServer, RecordedRequest, Reply, _Handler

MAX_NAME = 255
MAX_BODY = 25_000
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
IMPACTS = ("none", "minor", "major", "critical")
COMPONENT_STATUSES = (
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
)
INCIDENT_FIELDS = frozenset(
    {
        "name",
        "status",
        "impact_override",
        "body",
        "component_ids",
        "components",
        "metadata",
        "deliver_notifications",
        "scheduled_for",
        "scheduled_until",
        "backfilled",
        "backfill_date",
    }
)
_PATH = re.compile(r"^/v1/pages/(?P<page>[^/]+)/incidents(?:/(?P<rest>[^/]+))?$")


class _PatchHandler(_Handler):
    # The shared server answers GET/POST/PUT/DELETE; Statuspage updates with PATCH.
    def do_PATCH(self) -> None:  # noqa: N802 - http.server dispatches on this name
        self._dispatch()


def _error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


class FakeStatuspage(LoopbackServer):
    """One Statuspage page with the given components (Statuspage component ids)."""

    def __init__(self, *, page_id: str, api_key: str, components: Iterable[str]) -> None:
        """Accept ``api_key`` for ``page_id``, whose components have these ids."""
        super().__init__()
        self.page_id = page_id
        self.api_key = api_key
        self.components = set(components)
        self.incidents: dict[str, dict[str, Any]] = {}
        self.component_status: dict[str, str] = dict.fromkeys(self.components, "operational")
        self._state = threading.Lock()
        self._next = 1
        self._lose: list[str] = []

    def lose_next_answer(self, method: str) -> None:
        """Perform the next ``method`` request, then reset its connection (answer lost).

        Unlike ``reset_next``, earlier requests of other methods (the lookup) pass.
        """
        self._lose.append(method)

    def admit(self, request: RecordedRequest) -> Fault | None:
        """Record the request; a pending lost answer for its method comes first."""
        fault = super().admit(request)
        if fault is None and request.method in self._lose:
            self._lose.remove(request.method)
            return Fault("reset", process=True)
        return fault

    def start(self) -> None:
        """Listen like LoopbackServer, with PATCH understood."""
        super().start()
        # Swap in the PATCH-aware handler before the first request can arrive.
        assert self._server is not None
        self._server.RequestHandlerClass = _PatchHandler

    @property
    def base_url(self) -> str:
        """What a provider is configured with: ``<url>/v1``."""
        return f"{self.url}/v1"

    def error_body(self, status: int) -> Any:
        """Statuspage's error shape for injected statuses."""
        if status == 429:
            return {"error": "Rate limit exceeded"}
        return {"error": "Internal Server Error"}

    def handle(self, request: RecordedRequest) -> Reply:
        """Authenticate, route and answer one request."""
        match = _PATH.match(request.path)
        if match is None:
            return _error(404, "Not found")
        if request.header("authorization") != f"OAuth {self.api_key}":
            return _error(401, "Could not authenticate")
        if match["page"] != self.page_id:
            return _error(404, "The requested page could not be found")
        rest = match["rest"]
        with self._state:
            if request.method == "GET" and rest is None:
                limit = int((request.query.get("limit") or ["100"])[0])
                return Reply(200, self._listed(lambda _: True)[:limit])
            if request.method == "GET" and rest == "unresolved":
                per_page = int((request.query.get("per_page") or ["100"])[0])
                unresolved = self._listed(lambda i: i["status"] not in ("resolved", "postmortem"))
                return Reply(200, unresolved[:per_page])
            if request.method == "POST" and rest is None:
                return self._write(request, None)
            if request.method == "PATCH" and rest is not None:
                if rest not in self.incidents:
                    return _error(404, "The requested incident could not be found")
                return self._write(request, self.incidents[rest])
        return _error(405, "Method not allowed")

    def _listed(self, keep: Any) -> list[dict[str, Any]]:
        chosen = [i for i in self.incidents.values() if keep(i)]
        return [json.loads(json.dumps(i)) for i in reversed(chosen)]

    def _write(self, request: RecordedRequest, incident: dict[str, Any] | None) -> Reply:
        if not (request.header("content-type") or "").startswith("application/json"):
            return _error(415, "Content-Type must be application/json")
        try:
            body = request.json()
        except ValueError:
            return _error(400, "Body is not JSON")
        fields = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return _error(400, "incident is missing")
        problem = self._problem(fields, creating=incident is None)
        if problem:
            return _error(422, problem)
        now = f"2026-11-28T05:{self._next:02d}:00Z"
        created = incident is None
        if incident is None:
            incident = {
                "id": f"sp{self._next:010d}",
                "page_id": self.page_id,
                "created_at": now,
                "impact": "none",
                "incident_updates": [],
                "components": [],
                "metadata": {},
                "resolved_at": None,
                "shortlink": f"https://stspg.io/{self._next:06d}",
            }
            self.incidents[incident["id"]] = incident
        self._next += 1
        for key in ("name", "status", "metadata"):
            if key in fields:
                incident[key] = fields[key]
        if "impact_override" in fields:
            incident["impact_override"] = incident["impact"] = fields["impact_override"]
        affected: dict[str, str] = dict(fields.get("components") or {})
        for component in fields.get("component_ids") or []:
            affected.setdefault(component, self.component_status[component])
        self.component_status.update(affected)
        incident["components"] = [
            {"id": c, "status": self.component_status[c]} for c in sorted(affected)
        ] or incident["components"]
        if fields.get("body"):
            incident["incident_updates"].insert(
                0,
                {
                    "id": f"up{len(incident['incident_updates']) + 1}-{incident['id']}",
                    "incident_id": incident["id"],
                    "status": incident["status"],
                    "body": fields["body"],
                    "created_at": now,
                    "affected_components": [
                        {"code": c, "new_status": s} for c, s in sorted(affected.items())
                    ],
                },
            )
        if incident.get("status") == "resolved":
            incident["resolved_at"] = incident["resolved_at"] or now
        incident["updated_at"] = now
        return Reply(201 if created else 200, incident)

    def _problem(self, fields: dict[str, Any], *, creating: bool) -> str | None:
        unknown = sorted(set(fields) - INCIDENT_FIELDS)
        if unknown:
            return f"Unknown incident attribute: {unknown[0]}"
        name = fields.get("name")
        if creating and not name:
            return "Name can't be blank"
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
            return f"Name is too long (maximum is {MAX_NAME} characters)"
        body = fields.get("body")
        if body is not None and (not isinstance(body, str) or len(body) > MAX_BODY):
            return f"Body is too long (maximum is {MAX_BODY} characters)"
        if fields.get("status", "investigating") not in INCIDENT_STATUSES:
            return f"Status is not included in the list: {fields.get('status')}"
        if fields.get("impact_override", "none") not in IMPACTS:
            return f"Impact override is not included in the list: {fields.get('impact_override')}"
        components = fields.get("components") or {}
        if not isinstance(components, dict):
            return "components must be an object of component id to status"
        for component, status in components.items():
            if component not in self.components:
                return f"Component {component} could not be found"
            if status not in COMPONENT_STATUSES:
                return f"Component status is not included in the list: {status}"
        for component in fields.get("component_ids") or []:
            if component not in self.components:
                return f"Component {component} could not be found"
        metadata = fields.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict)
            or any(not isinstance(v, dict) for v in metadata.values())
        ):
            return "Metadata top-level values must be objects"
        return None
