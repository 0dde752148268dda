"""A war room in any chat that takes a webhook (Teams, Mattermost, Google Chat via a relay).

Each call is one signed JSON POST to the configured URL, with the same headers as
:mod:`activities.providers.webhook` (``X-Fireline-Signature``, ``X-Fireline-Timestamp``) and
an ``Idempotency-Key`` that is the same on every retry: ``<incident>:war-room`` for the
opening, ``<incident>:<entry id>`` for a mirrored entry. ``thread_key`` (the incident id)
lets the receiver thread every post of one incident together. A receiver may answer
``{"url": "..."}`` to the opening to give the room's link.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from activities.http import PermanentHttpError, send
from activities.providers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from workflows.contracts import OpenWarRoom, WarRoom, WarRoomPost, WarRoomPosted

VENDOR = "chat webhook"


def open_event(req: OpenWarRoom, timestamp: int) -> dict[str, Any]:
    """The document a receiver gets when the incident's war room opens."""
    return {
        "version": 1,
        "event": "war_room.open",
        "timestamp": timestamp,
        "incident_id": req.incident_id,
        "thread_key": req.incident_id,
        "kind": "war_room_opened",
        "text": f"[{req.severity.value}] {req.incident_id}: {req.title} ({req.service})",
        "title": req.title,
        "severity": req.severity.value,
        "service": req.service,
        "summary": req.summary,
        "commander": req.commander,
        "invite": req.invite,
        "links": req.links.model_dump(),
    }


def post_event(req: WarRoomPost, timestamp: int) -> dict[str, Any]:
    """The document a receiver gets for one mirrored timeline entry."""
    return {
        "version": 1,
        "event": "war_room.post",
        "timestamp": timestamp,
        "incident_id": req.incident_id,
        "thread_key": req.incident_id,
        "entry_id": req.entry_id,
        "kind": req.kind,
        "text": req.text,
    }


class WebhookWarRooms:
    """Posts the war room's opening and mirrored entries to one chat webhook."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        url: str,
        secret: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure the receiver's URL and the HMAC secret shared with it."""
        if not url:
            raise PermanentHttpError(f"{VENDOR}: no URL configured for the war room")
        self._client = client
        self._url = url
        self._secret = secret
        self._clock = clock

    def request(self, document: dict[str, Any], key: str) -> httpx.Request:
        """The signed request for ``document`` with ``Idempotency-Key: key``."""
        # Serialised once: the signature must cover exactly the bytes that are sent.
        body = json.dumps(document, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            TIMESTAMP_HEADER: str(document["timestamp"]),
            "Idempotency-Key": key,
        }
        return self._client.build_request("POST", self._url, content=body, headers=headers)

    async def open(self, req: OpenWarRoom) -> WarRoom:
        """Announce the war room; the receiver threads by ``thread_key``."""
        document = open_event(req, int(self._clock()))
        response = await send(
            self._client,
            self.request(document, f"{req.incident_id}:war-room"),
            vendor=VENDOR,
            secrets=[self._secret],
        )
        return WarRoom(provider="webhook", url=_room_url(response), thread_ts=req.incident_id)

    async def post(self, req: WarRoomPost, *, retried: bool = False) -> WarRoomPosted:
        """Mirror one entry; the receiver deduplicates retries by ``Idempotency-Key``."""
        if req.room.provider != "webhook":
            raise PermanentHttpError(f"{VENDOR}: war room {req.room.provider} is not a webhook")
        document = post_event(req, int(self._clock()))
        await send(
            self._client,
            self.request(document, f"{req.incident_id}:{req.entry_id}"),
            vendor=VENDOR,
            secrets=[self._secret],
        )
        return WarRoomPosted(provider="webhook")


def _room_url(response: httpx.Response) -> str | None:
    try:
        answer: Any = response.json()
    except ValueError:
        return None
    url = answer.get("url") if isinstance(answer, dict) else None
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None
