"""``POST /v1/slack/commands``: ``/fireline`` slash commands; notes from chat reach the timeline.

Slack sends ``application/x-www-form-urlencoded`` and signs it: ``X-Slack-Signature`` is
``v0=`` + hex HMAC-SHA256(signing secret, ``v0:<X-Slack-Request-Timestamp>:<raw body>``).
A missing or wrong signature, or a timestamp more than five minutes away (a replay), is
refused with 401 and the reason. Everything after that is answered with Slack's documented
JSON, ``{"response_type": "ephemeral", "text": ...}``, and HTTP 200 — a refused note is a
message to the person who typed it, never a 500. Slack gives up after 3 seconds, so a slow
Update is answered "still working" and finishes in the background.

Commands::

    /fireline note <text>            in an incident's channel (#inc-12-…)
    /fireline note INC-12 <text>     anywhere
    /fireline help

``POST /v1/slack/interactions`` takes the message shortcut with callback id
``fireline_note`` ("Add to incident timeline"): the message's text becomes a note by the
person who used the shortcut, on the incident whose channel it is in. Slack wants an empty
200 at once for shortcuts; the outcome is posted to the payload's ``response_url``, as is a
slash command's outcome that took longer than the 3 seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from worker.errors import FirelineError
from worker.incident_service import IncidentService
from worker.war_room_config import ChatUser, user_for_slack_id
from workflows.contracts import AddNote

log = logging.getLogger("fireline.slack")

# Where Slack's response_url points; anything else in a payload is not followed.
SLACK_RESPONSE_URLS = "https://hooks.slack.com/"
# The callback id of the "Add to incident timeline" message shortcut in the Slack app.
NOTE_SHORTCUT = "fireline_note"
# Slack's documented replay window.
MAX_SKEW_SECONDS = 5 * 60
# Slack shows "operation_timeout" after 3 s; answer before that.
ANSWER_WITHIN_SECONDS = 2.5
_EXPLICIT_ID = re.compile(r"^(INC-[0-9]+)\b\s*(.*)$", re.IGNORECASE | re.DOTALL)
_ID_IN_CHANNEL = re.compile(r"(?:^|[-_])inc-([0-9]+)(?=[-_]|$)")

HELP = (
    "*/fireline* — incident commands\n"
    "• `/fireline note <text>` in an incident's channel: add a note to its timeline\n"
    "• `/fireline note INC-12 <text>`: the same, from any channel\n"
    "• `/fireline help`: this message"
)


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """Slack's ``X-Slack-Signature`` for ``body`` sent at ``timestamp``."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()


def verification_problem(
    secret: bytes, headers: Mapping[str, str], body: bytes, now: float
) -> str | None:
    """Why a request is not from Slack, or None when it is."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    given = headers.get("x-slack-signature", "")
    if not timestamp or not given:
        return "X-Slack-Request-Timestamp and X-Slack-Signature headers are required"
    if not timestamp.isdigit():
        return "X-Slack-Request-Timestamp is not a number of seconds"
    if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        return "X-Slack-Request-Timestamp is more than 5 minutes from now (a replayed request?)"
    if not hmac.compare_digest(signature(secret, timestamp, body), given):
        return "X-Slack-Signature does not match the request (wrong signing secret?)"
    return None


def incident_from_channel(channel_name: str) -> str | None:
    """INC-12 from a war room's name such as ``inc-12-checkout-5xx`` (prefixes allowed)."""
    found = _ID_IN_CHANNEL.search(channel_name.lower())
    return f"INC-{found.group(1)}" if found else None


def parse_note(text: str, channel_name: str) -> tuple[str, str]:
    """(incident id, note) from ``note``'s argument; ValueError says what is missing."""
    explicit = _EXPLICIT_ID.match(text.strip())
    if explicit:
        incident_id, note = explicit.group(1).upper(), explicit.group(2).strip()
    else:
        found = incident_from_channel(channel_name)
        if found is None:
            raise ValueError(
                "say which incident: `/fireline note INC-12 <text>`, "
                "or run it in the incident's channel"
            )
        incident_id, note = found, text.strip()
    if not note:
        raise ValueError(f"a note needs text: `/fireline note {incident_id} <text>`")
    return incident_id, note


def ephemeral(text: str) -> dict[str, str]:
    """Slack's answer shown only to the person who ran the command."""
    return {"response_type": "ephemeral", "text": text}


def slack_command_router(
    service: IncidentService,
    users: Mapping[str, ChatUser],
    signing_secret: bytes,
    *,
    http: httpx.AsyncClient | None = None,
    response_url_prefixes: Sequence[str] = (SLACK_RESPONSE_URLS,),
    now: Callable[[], float] = time.time,
    answer_within: float = ANSWER_WITHIN_SECONDS,
) -> APIRouter:
    """Routes for Slack slash commands and the note shortcut, verified with ``signing_secret``.

    ``http`` posts late outcomes to the command's ``response_url`` (only URLs starting with
    one of ``response_url_prefixes``: Slack's, unless a test says otherwise); without it a
    late outcome is only logged.
    """
    if not signing_secret:
        raise ValueError("the Slack signing secret must not be empty")
    router = APIRouter(tags=["slack"])
    # Work still running after the answer went back; kept so it is not garbage-collected.
    pending: set[asyncio.Task[Any]] = set()

    async def add_note(incident_id: str, user: str, note: str) -> dict[str, str]:
        try:
            cmd = AddNote(actor=user, text=note)
        except ValidationError as exc:
            reason = "; ".join(str(e["msg"]) for e in exc.errors())
            return ephemeral(f"Not added: the note is not valid ({reason}).")
        try:
            await service.act(incident_id, "add_note", cmd, actor=user)
        except FirelineError as exc:
            return ephemeral(f"Not added to {incident_id}: {exc.reason}")
        return ephemeral(f"Added to the {incident_id} timeline.")

    async def respond_later(work: asyncio.Task[dict[str, str]], response_url: str) -> None:
        answer = await work
        log.info("slash-command outcome after answering Slack: %s", answer["text"])
        if http is None or not response_url.startswith(tuple(response_url_prefixes)):
            return
        try:
            reply = await http.post(response_url, json=answer)
            if reply.status_code >= 300:
                log.warning("Slack response_url answered HTTP %s", reply.status_code)
        except httpx.HTTPError as exc:
            log.warning("could not reach Slack's response_url: %s", type(exc).__name__)

    def in_background(work: asyncio.Task[dict[str, str]], response_url: str) -> None:
        follow_up = asyncio.create_task(respond_later(work, response_url))
        pending.add(follow_up)
        follow_up.add_done_callback(pending.discard)
        follow_up.add_done_callback(_log_failure)

    def caller(slack_user: str) -> str | dict[str, str]:
        user = user_for_slack_id(users, slack_user)
        if user is None:
            return ephemeral(
                f"Your Slack user {slack_user or '(none)'} is not linked to a fireline user: "
                f"set `slack: {slack_user or 'U…'}` on your user in fireline.yaml."
            )
        return user

    async def run_note(form: Mapping[str, str]) -> dict[str, str]:
        user = caller(form.get("user_id", ""))
        if isinstance(user, dict):
            return user
        text = form.get("text", "").strip()
        try:
            incident_id, note = parse_note(text[len("note") :], form.get("channel_name", ""))
        except ValueError as exc:
            return ephemeral(f"Not added: {exc}.")
        work = asyncio.create_task(add_note(incident_id, user, note))
        done, _ = await asyncio.wait({work}, timeout=answer_within)
        if work in done:
            return work.result()
        in_background(work, form.get("response_url", ""))
        return ephemeral(
            f"Still recording the note on {incident_id}; it will be on the timeline "
            "as soon as Temporal answers."
        )

    async def verified_form(request: Request) -> dict[str, str] | JSONResponse:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        problem = verification_problem(signing_secret, headers, body, now())
        if problem is not None:
            log.warning("refused a Slack request: %s", problem)
            return JSONResponse({"error": "unauthorized", "reason": problem}, status_code=401)
        try:
            parsed = parse_qs(body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            return JSONResponse(ephemeral("The request was not valid UTF-8."))
        return {key: values[0] for key, values in parsed.items() if values}

    @router.post("/v1/slack/commands")
    async def slash_command(request: Request) -> JSONResponse:
        """A ``/fireline`` slash command from Slack."""
        form = await verified_form(request)
        if isinstance(form, JSONResponse):
            return form
        words = form.get("text", "").split(maxsplit=1)
        verb = words[0].lower() if words else "help"
        if verb == "help":
            return JSONResponse(ephemeral(HELP))
        if verb == "note":
            return JSONResponse(await run_note(form))
        return JSONResponse(ephemeral(f"Unknown command `{verb}`.\n{HELP}"))

    @router.post("/v1/slack/interactions")
    async def interaction(request: Request) -> Response:
        """Slack interactivity: the "Add to incident timeline" message shortcut."""
        form = await verified_form(request)
        if isinstance(form, JSONResponse):
            return form
        try:
            payload: Any = json.loads(form.get("payload", ""))
        except ValueError:
            payload = None
        shortcut = _message_shortcut(payload)
        if shortcut is None:
            return JSONResponse(
                {"error": "bad_request", "reason": "not a fireline message shortcut payload"},
                status_code=400,
            )
        answer: dict[str, str] | None = None
        user = caller(shortcut.user_id)
        if isinstance(user, dict):
            answer = user
        else:
            incident_id = incident_from_channel(shortcut.channel_name)
            if incident_id is None:
                answer = ephemeral(
                    "Not added: this channel is not an incident's war room "
                    "(its name does not carry an incident id such as inc-12)."
                )
            else:
                author = user_for_slack_id(users, shortcut.author_id)
                note = shortcut.text
                if author and author != user:
                    note = f"{author} in Slack: {note}"
                work = asyncio.create_task(add_note(incident_id, user, note))
                in_background(work, shortcut.response_url)
        if answer is not None:
            # Refusals known at once go back the same way as late outcomes.
            in_background(_done(answer), shortcut.response_url)
        # Slack wants an empty 200 within 3 s; the outcome goes to response_url.
        return Response(status_code=200)

    return router


@dataclass(frozen=True)
class _Shortcut:
    user_id: str
    channel_name: str
    author_id: str
    text: str
    response_url: str


def _message_shortcut(payload: Any) -> _Shortcut | None:
    if not isinstance(payload, dict) or payload.get("type") != "message_action":
        return None
    if payload.get("callback_id") != NOTE_SHORTCUT:
        return None
    user = payload.get("user")
    channel = payload.get("channel")
    message = payload.get("message")
    if not (isinstance(user, dict) and isinstance(channel, dict) and isinstance(message, dict)):
        return None
    return _Shortcut(
        user_id=str(user.get("id") or ""),
        channel_name=str(channel.get("name") or ""),
        author_id=str(message.get("user") or ""),
        text=str(message.get("text") or ""),
        response_url=str(payload.get("response_url") or ""),
    )


def _done(answer: dict[str, str]) -> asyncio.Task[dict[str, str]]:
    async def already() -> dict[str, str]:
        return answer

    return asyncio.create_task(already())


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a Slack note failed after answering Slack", exc_info=task.exception())
