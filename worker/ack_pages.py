"""The pages behind a one-click acknowledge link: ``GET`` and ``POST /v1/ack/{token}``.

``GET`` only shows a confirmation page with a button, because mail scanners and chat
unfurlers fetch every link they see; only the button's ``POST`` acknowledges. Pages are
self-contained HTML (inline CSS, no external assets) readable on a phone; a client sending
``Accept: application/json`` gets the same answers as JSON. A bad link is answered with its
``AckLinkError`` status (400 malformed, 403 tampered, 410 expired), never a 500; an
``acknowledge`` callback failing unexpectedly is a 503.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from worker.ack_links import AckLinkError, AckToken, verify
from worker.errors import FirelineError

log = logging.getLogger("fireline.ack")

UNAVAILABLE_REASON = "fireline could not reach the incident; try again or use the CLI"

# The token in the URL is a credential: keep it out of caches, referrers, search indexes and
# other sites' frames (a framed one-click button invites clickjacking).
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

_CSS = """
body{font-family:system-ui,-apple-system,sans-serif;margin:0;padding:1.5rem;
background:#f6f7f9;color:#1d2330;line-height:1.5}
main{max-width:32rem;margin:0 auto;background:#fff;border-radius:12px;padding:1.5rem;
box-shadow:0 1px 4px rgba(0,0,0,.1)}
h1{font-size:1.4rem;margin:0 0 .75rem}
p{margin:.5rem 0;overflow-wrap:anywhere}
button{display:block;width:100%;margin-top:1.25rem;padding:1rem;font-size:1.2rem;
font-weight:600;color:#fff;background:#c62828;border:0;border-radius:10px;cursor:pointer}
.muted{color:#5b6475;font-size:.9rem}
"""


class AckResult(StrEnum):
    """How an acknowledge attempt ended."""

    ACKNOWLEDGED = "acknowledged"
    ALREADY_ACKNOWLEDGED = "already_acknowledged"
    CLOSED = "closed"
    UNKNOWN_INCIDENT = "unknown_incident"


@dataclass(frozen=True)
class AckOutcome:
    """The answer of the ``acknowledge`` callback; ``by`` names an earlier acknowledger."""

    result: AckResult
    incident_id: str
    title: str | None = None
    by: str | None = None

    def message(self, user: str | None) -> str:
        """One sentence for the page and the JSON ``message``."""
        name = f"{self.incident_id} ({self.title})" if self.title else self.incident_id
        match self.result:
            case AckResult.ACKNOWLEDGED:
                who = f" as {user}" if user else ""
                return f"{name} is acknowledged{who}; escalation stops."
            case AckResult.ALREADY_ACKNOWLEDGED:
                who = f" by {self.by}" if self.by else ""
                return f"{name} was already acknowledged{who}; nothing changed."
            case AckResult.CLOSED:
                return f"{name} is closed; there is nothing to acknowledge."
            case AckResult.UNKNOWN_INCIDENT:
                return (
                    f"fireline has no incident {self.incident_id}; "
                    "check `fireline incident list` or the dashboard."
                )


AcknowledgeCallback = Callable[[str, str | None], Awaitable[AckOutcome]]

_HEADINGS = {
    AckResult.ACKNOWLEDGED: "Acknowledged {id}",
    AckResult.ALREADY_ACKNOWLEDGED: "{id} was already acknowledged",
    AckResult.CLOSED: "{id} is closed",
    AckResult.UNKNOWN_INCIDENT: "Unknown incident {id}",
}

_LINK_HEADINGS = {400: "Link not valid", 403: "Link altered", 410: "Link expired"}


def ack_router(
    secret: bytes,
    acknowledge: AcknowledgeCallback,
    *,
    now: Callable[[], datetime],
) -> APIRouter:
    """Routes serving acknowledge links signed with ``secret``."""
    if not secret:
        raise ValueError("the acknowledge-link secret must not be empty")
    router = APIRouter(tags=["acknowledge"])

    def check(token: str) -> AckToken | AckLinkError:
        try:
            return verify(token, secret, now=now())
        except AckLinkError as exc:
            # The token is a credential; log the kind of refusal, never the text.
            log.info("refused an acknowledge link: %s", type(exc).__name__)
            return exc

    @router.get("/v1/ack/{token}", response_model=None)
    async def confirm(token: str, request: Request) -> Response:
        """Confirmation page; acknowledges nothing (link prefetchers issue GETs)."""
        checked = check(token)
        if isinstance(checked, AckLinkError):
            return _link_error(request, checked)
        ack = checked
        if _wants_json(request):
            return _json(
                {
                    "incident_id": ack.incident_id,
                    "user": ack.user,
                    "expires_at": ack.expires_at.isoformat(),
                    "acknowledge": "POST to this URL",
                },
                200,
            )
        who = f"You were paged for {ack.incident_id}" + (f" as {ack.user}." if ack.user else ".")
        return _page(
            200,
            f"Acknowledge {ack.incident_id}?",
            [
                who,
                "Acknowledging tells everyone you own the response and stops the escalation.",
                f"This link works until {ack.expires_at:%Y-%m-%d %H:%M} UTC.",
            ],
            button=f"Acknowledge {ack.incident_id}",
        )

    @router.post("/v1/ack/{token}", response_model=None)
    async def acknowledge_incident(token: str, request: Request) -> Response:
        """Acknowledge the link's incident as the link's user and show what happened."""
        checked = check(token)
        if isinstance(checked, AckLinkError):
            return _link_error(request, checked)
        ack = checked
        try:
            outcome = await acknowledge(ack.incident_id, ack.user)
        except FirelineError as exc:
            # An expected refusal (unknown user, Temporal down) already has a status and reason.
            return _error(request, exc.status, type(exc).__name__.lower(), exc.reason)
        except Exception:
            log.exception("acknowledging %s from a link failed", ack.incident_id)
            return _error(
                request,
                503,
                "unavailable",
                f"{UNAVAILABLE_REASON}: `fireline incident ack {ack.incident_id}`",
            )
        log.info("%s acknowledge link for %s: %s", ack.user, ack.incident_id, outcome.result)
        message = outcome.message(ack.user)
        if _wants_json(request):
            return _json(
                {
                    "outcome": outcome.result.value,
                    "incident_id": outcome.incident_id,
                    "title": outcome.title,
                    "acknowledged_by": outcome.by,
                    "message": message,
                },
                200,
            )
        return _page(200, _HEADINGS[outcome.result].format(id=outcome.incident_id), [message])

    return router


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    # Browsers list text/html first and often */* too; only a JSON-only client gets JSON.
    return "application/json" in accept and "text/html" not in accept


def _link_error(request: Request, exc: AckLinkError) -> Response:
    hint = None
    if exc.status != 410:
        # The token's incident id cannot be trusted here, so point at the generic ways in.
        hint = (
            "Open the link from the newest page, or acknowledge with "
            "`fireline incident ack <id>` or in the dashboard."
        )
    heading = _LINK_HEADINGS.get(exc.status, "Link not valid")
    return _error(request, exc.status, exc.code, exc.reason, heading=heading, hint=hint)


def _error(
    request: Request,
    status: int,
    code: str,
    reason: str,
    *,
    heading: str = "Could not acknowledge",
    hint: str | None = None,
) -> Response:
    if _wants_json(request):
        return _json({"error": code, "reason": reason}, status)
    return _page(status, heading, [reason] if hint is None else [reason, hint])


def _json(body: dict[str, Any], status: int) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=_HEADERS)


def _page(
    status: int, heading: str, paragraphs: list[str], *, button: str | None = None
) -> Response:
    """A complete HTML page; every argument is plain text and escaped here."""
    esc = html.escape
    body = "".join(f"<p>{esc(p)}</p>" for p in paragraphs)
    if button is not None:
        # No action attribute: the form posts back to exactly the URL that was opened.
        body += f'<form method="post"><button type="submit">{esc(button)}</button></form>'
    document = (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{esc(heading)} · fireline</title><style>{_CSS}</style></head>"
        f'<body><main><h1>{esc(heading)}</h1>{body}<p class="muted">fireline</p></main>'
        "</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_HEADERS)
