"""A loopback Opsgenie Alert API: create, acknowledge and close, validated and deduplicated.

Like Opsgenie: every call needs ``Authorization: GenieKey <key>`` (else ``401 Could not
authenticate``); bodies must be JSON (else ``415``); semantic errors are ``422`` with the
standard ``{"message", "took", "requestId"}``; accepted calls are ``202 {"result": "Request
will be processed", ...}`` and processed as if asynchronously — acknowledging an alert that
does not exist still answers 202, and the failure shows only in :attr:`request_status`.
Creating an alert whose ``alias`` matches an open alert raises its ``count`` instead of
opening another. Acknowledge/close look the alert up by ``identifierType`` (default ``id``).
Stricter than Opsgenie: unknown fields are rejected.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tests.fakes.server import LoopbackServer, RecordedRequest, Reply

CREATE_FIELDS = frozenset(
    {
        "message",
        "alias",
        "description",
        "responders",
        "visibleTo",
        "actions",
        "tags",
        "details",
        "entity",
        "source",
        "priority",
        "user",
        "note",
    }
)
ACTION_FIELDS = frozenset({"user", "source", "note"})
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
RESPONDER_TYPES = ("user", "team", "escalation", "schedule")
IDENTIFIER_TYPES = ("id", "tiny", "alias")
_ACTION_PATH = re.compile(r"^/v2/alerts/(?P<identifier>[^/]+)/(?P<verb>acknowledge|close)$")


@dataclass
class OpsgenieAlert:
    """One alert as Opsgenie keeps it."""

    id: str
    tiny_id: str
    alias: str
    message: str
    priority: str
    responders: list[dict[str, str]]
    body: dict[str, Any]
    count: int = 1
    status: str = "open"
    acknowledged: bool = False
    notes: list[str] = field(default_factory=list)


def _responder_error(responder: Any) -> str | None:
    if not isinstance(responder, dict) or responder.get("type") not in RESPONDER_TYPES:
        return "Responder type should be one of [user, team, escalation, schedule]"
    if not any(isinstance(responder.get(k), str) for k in ("id", "name", "username")):
        return "Responder should have one of id, name or username"
    if responder["type"] != "user" and "username" in responder:
        return "Only user responders can be identified by username"
    return None


def validate_create(body: Any) -> str | None:
    """Opsgenie's complaint about a create-alert body, or None when it is valid."""
    if not isinstance(body, dict):
        return "Request body should be a JSON object"
    unknown = sorted(set(body) - CREATE_FIELDS)
    if unknown:
        return f"Unknown field '{unknown[0]}'"
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        return "Message can not be empty."
    if len(message) > 130:
        return "Message can not be longer than 130 characters."
    alias = body.get("alias", "")
    if not isinstance(alias, str) or len(alias) > 512:
        return "Alias can not be longer than 512 characters."
    if body.get("priority", "P3") not in PRIORITIES:
        return "Priority should be one of [P1, P2, P3, P4, P5]"
    responders = body.get("responders", [])
    if not isinstance(responders, list):
        return "Responders should be a list"
    for responder in responders:
        error = _responder_error(responder)
        if error:
            return error
    details = body.get("details", {})
    if not isinstance(details, dict) or not all(isinstance(v, str) for v in details.values()):
        return "Details should be a map of string keys to string values"
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return "Tags should be a list of strings"
    return None


class FakeOpsgenie(LoopbackServer):
    """Opsgenie's Alert API for the given API integration keys."""

    def __init__(self, api_keys: Iterable[str]) -> None:
        """Accept ``GenieKey`` authorization with ``api_keys`` only."""
        super().__init__()
        self.api_keys = set(api_keys)
        self.alerts: list[OpsgenieAlert] = []
        # requestId -> "Success" or the asynchronous failure, like GET /v2/alerts/requests/{id}.
        self.request_status: dict[str, str] = {}

    def alert(self, alias: str) -> OpsgenieAlert | None:
        """The newest alert with ``alias``."""
        matches = [a for a in self.alerts if a.alias == alias]
        return matches[-1] if matches else None

    @staticmethod
    def _answer(status: int, **fields: Any) -> Reply:
        return Reply(status, {**fields, "took": 0.002, "requestId": str(uuid.uuid4())})

    def error_body(self, status: int) -> Any:
        """Opsgenie's bodies for throttling and server errors."""
        message = "Too many requests" if status == 429 else "Internal Server Error"
        return {"message": message, "took": 0.0, "requestId": str(uuid.uuid4())}

    def handle(self, request: RecordedRequest) -> Reply:
        """Authenticate, validate and apply one call."""
        auth = request.header("authorization") or ""
        scheme, _, key = auth.partition(" ")
        if scheme != "GenieKey" or key not in self.api_keys:
            return self._answer(401, message="Could not authenticate")
        match = _ACTION_PATH.match(request.path)
        if request.path != "/v2/alerts" and match is None:
            return self._answer(404, message="Could not find handler for the request")
        if request.method != "POST":
            return self._answer(405, message="Method not allowed")
        if not (request.header("content-type") or "").startswith("application/json"):
            return self._answer(415, message="Unsupported Media Type")
        try:
            body = request.json()
        except ValueError:
            return self._answer(400, message="Invalid JSON body")
        if match is None:
            return self._create(body)
        return self._act(unquote(match["identifier"]), match["verb"], request, body)

    def _accepted(self, outcome: str) -> Reply:
        reply = self._answer(202, result="Request will be processed")
        self.request_status[reply.body["requestId"]] = outcome
        return reply

    def _create(self, body: Any) -> Reply:
        error = validate_create(body)
        if error:
            return self._answer(422, message=error)
        alias = body.get("alias") or body["message"]
        with self._lock:
            existing = next(
                (a for a in reversed(self.alerts) if a.alias == alias and a.status == "open"), None
            )
            if existing is not None:
                existing.count += 1
                return self._accepted("Success")
            self.alerts.append(
                OpsgenieAlert(
                    id=str(uuid.uuid4()),
                    tiny_id=str(len(self.alerts) + 1),
                    alias=alias,
                    message=body["message"],
                    priority=body.get("priority", "P3"),
                    responders=body.get("responders", []),
                    body=body,
                )
            )
        return self._accepted("Success")

    def _act(self, identifier: str, verb: str, request: RecordedRequest, body: Any) -> Reply:
        identifier_type = request.query.get("identifierType", ["id"])[0]
        if identifier_type not in IDENTIFIER_TYPES:
            return self._answer(422, message="Invalid identifierType [must be id, tiny or alias]")
        if not isinstance(body, dict) or set(body) - ACTION_FIELDS:
            return self._answer(422, message="Body may only contain user, source and note")
        attribute = {"id": "id", "tiny": "tiny_id", "alias": "alias"}[identifier_type]
        with self._lock:
            alert = next(
                (a for a in reversed(self.alerts) if getattr(a, attribute) == identifier), None
            )
            if alert is None:
                return self._accepted("Alert does not exist")
            if verb == "acknowledge":
                alert.acknowledged = True
            else:
                alert.status = "closed"
            if body.get("note"):
                alert.notes.append(str(body["note"]))
        return self._accepted("Success")
