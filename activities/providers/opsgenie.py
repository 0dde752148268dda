"""Opsgenie Alert API: create, acknowledge and close by alias (the page's dedup key).

Opsgenie deduplicates on ``alias``: creating an alert whose alias matches an open alert
raises that alert's count instead of notifying again. All three calls answer ``202`` and
are processed asynchronously; acknowledge and close address the alert with
``identifierType=alias``, so no Opsgenie id has to be remembered.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from activities.contracts import (
    ContactKind,
    Page,
    PageAction,
    PageResult,
    PageSeverity,
    ResponderType,
    Urgency,
)
from activities.http import send

DEFAULT_BASE_URL = "https://api.opsgenie.com"
VENDOR = "opsgenie"
MAX_MESSAGE = 130
MAX_ALIAS = 512
MAX_DESCRIPTION = 15_000
_PRIORITY = {
    PageSeverity.SEV1: 1,
    PageSeverity.SEV2: 2,
    PageSeverity.SEV3: 3,
    PageSeverity.SEV4: 4,
}


def priority(severity: PageSeverity, urgency: Urgency) -> str:
    """Opsgenie priority for a page: SEV1→P1 … SEV4→P4, one step lower when low urgency."""
    level = _PRIORITY[severity] + (1 if urgency is Urgency.LOW else 0)
    return f"P{min(level, 5)}"


def responder(page: Page) -> dict[str, str]:
    """The responder object for the page's contact: users by username, others by name."""
    kind = page.contact.responder_type
    key = "username" if kind is ResponderType.USER else "name"
    return {key: page.contact.address or page.recipient, "type": kind.value}


class OpsgenieNotifier:
    """Pages through Opsgenie with an API integration key (``Authorization: GenieKey``)."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        source: str = "fireline",
    ) -> None:
        """Configure the provider; EU accounts use ``https://api.eu.opsgenie.com``."""
        self._client = client
        self._api_key = api_key
        self._base = base_url.rstrip("/") + "/v2/alerts"
        self._source = source

    def alert(self, page: Page) -> dict[str, Any]:
        """The create-alert body for ``page``."""
        details = {
            "incident_id": page.incident_id,
            "recipient": page.recipient,
            "urgency": page.urgency.value,
            **page.details,
        }
        if page.ack_url:
            details["ack_url"] = page.ack_url
        description = page.summary
        if page.links:
            description += "\n\n" + "\n".join(f"{x.text or x.href}: {x.href}" for x in page.links)
        body: dict[str, Any] = {
            "message": f"[{page.severity.value}] {page.title}"[:MAX_MESSAGE],
            "alias": page.dedup_key[:MAX_ALIAS],
            "description": description.strip()[:MAX_DESCRIPTION],
            "responders": [responder(page)],
            "priority": priority(page.severity, page.urgency),
            "details": details,
            "source": self._source,
            "tags": ["fireline", page.incident_id, page.severity.value],
        }
        if page.service:
            body["entity"] = page.service
        return body

    def request(self, page: Page) -> httpx.Request:
        """The HTTP request for ``page``'s action."""
        headers = {"Authorization": f"GenieKey {self._api_key}"}
        if page.action is PageAction.TRIGGER:
            return self._client.build_request(
                "POST", self._base, json=self.alert(page), headers=headers
            )
        verb = "acknowledge" if page.action is PageAction.ACKNOWLEDGE else "close"
        alias = quote(page.dedup_key[:MAX_ALIAS], safe="")
        note = f"{verb}d in fireline" + (f" by {page.actor}" if page.actor else "")
        return self._client.build_request(
            "POST",
            f"{self._base}/{alias}/{verb}",
            params={"identifierType": "alias"},
            json={"source": self._source, "note": note, "user": page.actor or self._source},
            headers=headers,
        )

    async def notify(self, page: Page) -> PageResult:
        """Create, acknowledge or close the alert for ``page``."""
        response = await send(
            self._client, self.request(page), vendor=VENDOR, secrets=[self._api_key]
        )
        answer: Any = response.json() if response.content else {}
        answer = answer if isinstance(answer, dict) else {}
        result = str(answer.get("result") or f"HTTP {response.status_code}")
        request_id = answer.get("requestId")
        return PageResult(
            provider=ContactKind.OPSGENIE,
            delivered=True,
            external_id=page.dedup_key[:MAX_ALIAS],
            detail=f"{result} (requestId {request_id})" if request_id else result,
            action=page.action,
            dedup_key=page.dedup_key,
        )
