"""PagerDuty Events API v2: ``POST {base}/v2/enqueue`` with the page's dedup key.

PagerDuty deduplicates on ``dedup_key`` per routing key: a second trigger with the same key
is added to the open alert instead of opening another, and acknowledge/resolve address the
alert by that key. So a retried activity never pages twice, and closing the loop needs no
state beyond the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from activities.contracts import ContactKind, Page, PageAction, PageResult, PageSeverity
from activities.http import PermanentHttpError, send

DEFAULT_BASE_URL = "https://events.pagerduty.com"
VENDOR = "pagerduty"
_SEVERITY = {
    PageSeverity.SEV1: "critical",
    PageSeverity.SEV2: "error",
    PageSeverity.SEV3: "warning",
    PageSeverity.SEV4: "info",
}
_MAX_SUMMARY = 1024


class PagerDutyNotifier:
    """Pages through PagerDuty; routing keys are held here, named by contact addresses."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        routing_keys: Mapping[str, str],
        base_url: str = DEFAULT_BASE_URL,
        source: str = "fireline",
        client_name: str = "fireline",
        client_url: str = "",
    ) -> None:
        """Configure the provider; ``routing_keys`` maps names (e.g. ``default``) to keys."""
        self._client = client
        self._routing_keys = dict(routing_keys)
        self._url = base_url.rstrip("/") + "/v2/enqueue"
        self._source = source
        self._client_name = client_name
        self._client_url = client_url

    def event(self, page: Page) -> dict[str, Any]:
        """The Events API v2 body for ``page``, routing key included."""
        name = page.contact.address or "default"
        routing_key = self._routing_keys.get(name)
        if routing_key is None:
            raise PermanentHttpError(f"{VENDOR}: no routing key named {name!r} is configured")
        body: dict[str, Any] = {
            "routing_key": routing_key,
            "event_action": page.action.value,
            "dedup_key": page.dedup_key,
        }
        if page.action is not PageAction.TRIGGER:
            return body
        summary = f"[{page.severity.value}] {page.incident_id}: {page.title}"
        payload: dict[str, Any] = {
            "summary": summary[:_MAX_SUMMARY],
            "source": page.service or self._source,
            "severity": _SEVERITY[page.severity],
            "class": "incident",
            "custom_details": {
                "incident_id": page.incident_id,
                "summary": page.summary,
                "recipient": page.recipient,
                "urgency": page.urgency.value,
                **page.details,
            },
        }
        if page.service:
            payload["component"] = page.service
        if page.team:
            payload["group"] = page.team
        links = [{"href": page.ack_url, "text": "Acknowledge"}] if page.ack_url else []
        links += [{"href": link.href, "text": link.text or link.href} for link in page.links]
        body["payload"] = payload
        body["links"] = links
        body["client"] = self._client_name
        if self._client_url:
            body["client_url"] = self._client_url
        return body

    async def notify(self, page: Page) -> PageResult:
        """Send a trigger, acknowledge or resolve event for ``page``."""
        body = self.event(page)
        request = self._client.build_request("POST", self._url, json=body)
        response = await send(
            self._client, request, vendor=VENDOR, secrets=self._routing_keys.values()
        )
        answer: Any = response.json() if response.content else {}
        answer = answer if isinstance(answer, dict) else {}
        return PageResult(
            provider=ContactKind.PAGERDUTY,
            delivered=True,
            external_id=str(answer.get("dedup_key") or page.dedup_key),
            detail=str(answer.get("message") or f"HTTP {response.status_code}"),
            action=page.action,
            dedup_key=page.dedup_key,
        )
