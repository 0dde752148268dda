"""A loopback PagerDuty Events API v2: ``POST /v2/enqueue``, validated and deduplicated.

Like PagerDuty: a trigger whose ``dedup_key`` matches an open alert (same routing key)
joins it instead of opening another; acknowledge/resolve of an unknown key are accepted and
dropped; a resolved alert's key opens a new alert on the next trigger. Invalid events get
``400 {"status": "invalid event", "message": "Event object is invalid", "errors": [...]}``.
The fake is stricter than PagerDuty in one way: unknown fields are rejected, so a typo
(``dedupKey``) fails a test instead of silently opening an undeduplicated alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import LoopbackServer, RecordedRequest, Reply

ROUTING_KEY_LENGTH = 32
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
EVENT_FIELDS = frozenset(
    {
        "routing_key",
        "event_action",
        "dedup_key",
        "payload",
        "images",
        "links",
        "client",
        "client_url",
    }
)
PAYLOAD_FIELDS = frozenset(
    {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}
)


@dataclass
class Alert:
    """One PagerDuty alert and every event applied to it."""

    routing_key: str
    dedup_key: str
    summary: str
    severity: str
    status: str = "triggered"
    events: list[dict[str, Any]] = field(default_factory=list)


def _missing(name: str) -> str:
    return f"'{name}' is missing or blank"


def validate(event: Any, routing_keys: set[str]) -> list[str]:
    """PagerDuty's complaints about an event, empty when it is valid."""
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = [f"Unknown field '{name}'" for name in sorted(set(event) - EVENT_FIELDS)]
    key = event.get("routing_key")
    if not isinstance(key, str) or not key:
        errors.append(_missing("routing_key"))
    elif len(key) != ROUTING_KEY_LENGTH:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    elif key not in routing_keys:
        errors.append("Invalid routing key")
    action = event.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append(_missing("dedup_key"))
    if action == "trigger":
        errors += _validate_trigger(event)
    return errors


def _validate_trigger(event: dict[str, Any]) -> list[str]:
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return [_missing("payload")]
    errors = [f"Unknown field 'payload.{n}'" for n in sorted(set(payload) - PAYLOAD_FIELDS)]
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary:
        errors.append(_missing("payload.summary"))
    elif len(summary) > 1024:
        errors.append("'payload.summary' is too long (maximum is 1024 characters)")
    if not isinstance(payload.get("source"), str) or not payload["source"]:
        errors.append(_missing("payload.source"))
    if payload.get("severity") not in SEVERITIES:
        errors.append(
            "'payload.severity' is invalid (must be one of critical, error, warning, info)"
        )
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict):
        errors.append("'payload.custom_details' must be an object")
    links = event.get("links", [])
    if not isinstance(links, list) or not all(
        isinstance(x, dict) and isinstance(x.get("href"), str) and set(x) <= {"href", "text"}
        for x in links
    ):
        errors.append("'links' must be a list of objects with 'href' and optional 'text'")
    return errors


class FakePagerDuty(LoopbackServer):
    """PagerDuty's Events API v2 for the given routing keys (32 characters each)."""

    def __init__(self, routing_keys: Iterable[str]) -> None:
        """Accept events for ``routing_keys`` only."""
        super().__init__()
        self.routing_keys = set(routing_keys)
        self.alerts: list[Alert] = []
        self.dropped: list[dict[str, Any]] = []

    def alert(self, dedup_key: str) -> Alert | None:
        """The newest alert with ``dedup_key``."""
        matches = [a for a in self.alerts if a.dedup_key == dedup_key]
        return matches[-1] if matches else None

    def error_body(self, status: int) -> Any:
        """PagerDuty's bodies for throttling and server errors."""
        if status == 429:
            return {
                "status": "throttle event",
                "message": (
                    "Requests for this service are arriving too quickly. Please retry later."
                ),
            }
        return {"status": "error", "message": "Internal Server Error"}

    def handle(self, request: RecordedRequest) -> Reply:
        """Validate and apply one event."""
        if request.path != "/v2/enqueue":
            return Reply(404, {"status": "not found", "message": "Not Found"})
        if request.method != "POST":
            return Reply(405, {"status": "method not allowed", "message": "Method Not Allowed"})
        invalid = {"status": "invalid event", "message": "Event object is invalid"}
        if not (request.header("content-type") or "").startswith("application/json"):
            return Reply(400, {**invalid, "errors": ["Content-Type must be application/json"]})
        try:
            event = request.json()
        except ValueError:
            return Reply(400, {**invalid, "errors": ["Invalid JSON"]})
        errors = validate(event, self.routing_keys)
        if errors:
            return Reply(400, {**invalid, "errors": errors})
        dedup_key = str(event.get("dedup_key") or uuid.uuid4().hex)
        self._apply(event, dedup_key)
        return Reply(
            202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
        )

    def _apply(self, event: dict[str, Any], dedup_key: str) -> None:
        with self._lock:
            open_alert = next(
                (
                    a
                    for a in reversed(self.alerts)
                    if a.dedup_key == dedup_key
                    and a.routing_key == event["routing_key"]
                    and a.status != "resolved"
                ),
                None,
            )
            action = event["event_action"]
            if action == "trigger" and open_alert is None:
                payload = event["payload"]
                open_alert = Alert(
                    event["routing_key"], dedup_key, payload["summary"], payload["severity"]
                )
                self.alerts.append(open_alert)
            if open_alert is None:
                self.dropped.append(event)
                return
            open_alert.events.append(event)
            if action == "acknowledge" and open_alert.status == "triggered":
                open_alert.status = "acknowledged"
            elif action == "resolve":
                open_alert.status = "resolved"
