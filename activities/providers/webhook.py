"""Generic webhook: a signed JSON POST for anything fireline has no provider for.

Headers a receiver can rely on:

- ``X-Fireline-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` with the shared secret;
- ``X-Fireline-Timestamp: <unix seconds>``, also inside the signed body as ``timestamp``,
  so a receiver can refuse stale replays with a value the signature covers;
- ``Idempotency-Key``: the page's dedup key (suffixed ``:acknowledge`` / ``:resolve`` for
  follow-ups), the same on every retry of one delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from activities.contracts import ContactKind, Page, PageResult
from activities.http import PermanentHttpError, send

VENDOR = "webhook"
SIGNATURE_HEADER = "X-Fireline-Signature"
TIMESTAMP_HEADER = "X-Fireline-Timestamp"


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex digest>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, signature: str) -> bool:
    """Return whether ``signature`` is the valid signature of ``body`` (constant time)."""
    return hmac.compare_digest(sign(secret, body), signature)


def event(page: Page, timestamp: int) -> dict[str, Any]:
    """The JSON document a webhook receives for ``page``."""
    return {
        "version": 1,
        "event": page.action.value,
        "timestamp": timestamp,
        "dedup_key": page.dedup_key,
        "incident_id": page.incident_id,
        "title": page.title,
        "summary": page.summary,
        "severity": page.severity.value,
        "urgency": page.urgency.value,
        "recipient": page.recipient,
        "service": page.service,
        "team": page.team,
        "ack_url": page.ack_url,
        "links": [link.model_dump() for link in page.links],
        "details": page.details,
        "actor": page.actor,
    }


class WebhookNotifier:
    """POSTs signed page events to the contact's URL, or to ``base_url`` when it has none."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        secret: str,
        base_url: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure the provider with the HMAC secret shared with receivers."""
        self._client = client
        self._secret = secret
        self._default_url = base_url
        self._clock = clock

    def request(self, page: Page) -> httpx.Request:
        """The signed request for ``page``."""
        url = page.contact.address or self._default_url
        if not url:
            raise PermanentHttpError(f"{VENDOR}: no URL for {page.recipient}'s webhook")
        timestamp = int(self._clock())
        # Serialised once: the signature must cover exactly the bytes that are sent.
        body = json.dumps(event(page, timestamp), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            TIMESTAMP_HEADER: str(timestamp),
            "Idempotency-Key": page.delivery_key,
        }
        return self._client.build_request("POST", url, content=body, headers=headers)

    async def notify(self, page: Page) -> PageResult:
        """POST the page event."""
        response = await send(
            self._client, self.request(page), vendor=VENDOR, secrets=[self._secret]
        )
        return PageResult(
            provider=ContactKind.WEBHOOK,
            delivered=True,
            external_id=page.delivery_key,
            detail=f"HTTP {response.status_code}",
            action=page.action,
            dedup_key=page.dedup_key,
        )
