"""Atlassian Statuspage REST API v1: one fireline incident ↔ one Statuspage incident.

Wire format (developer.statuspage.io): base ``https://api.statuspage.io/v1``, header
``Authorization: OAuth <api key>``; ``POST /pages/{page_id}/incidents`` creates an incident
from ``{"incident": {name, status, impact_override, body, component_ids, components,
metadata, deliver_notifications}}`` and ``PATCH /pages/{page_id}/incidents/{id}`` adds an
update with the same fields; ``body`` becomes the incident update's text. Documented
limits: the name is at most 255 characters, the body at most 25,000; longer ones are
refused here, before any request, with the limit named (non-retryable).

Idempotency: Statuspage has no idempotency key, but incidents carry ``metadata`` (a JSON
object whose top-level values must be objects). Every request sets
``metadata.fireline = {incident_id, update_id}``. Before writing, the provider looks the
fireline incident up among ``GET /pages/{page_id}/incidents/unresolved`` (and, for a
resolving update, the recent ``GET /pages/{page_id}/incidents``): if the last write already
carried this ``update_id`` the answer was only lost, and nothing is sent again; if the
incident exists it is patched; otherwise it is created. A retry after a lost response
therefore neither creates a second incident nor repeats an update.

Errors go through :func:`activities.http.send`: 429 honours ``Retry-After``, 5xx retries,
401/404/422 are permanent with Statuspage's ``error`` text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from activities.http import send, vendor_error
from workflows.contracts import (
    MAX_BODY_CHARS,
    MAX_TITLE_CHARS,
    PublicStatus,
    StatusPublication,
    StatusPublished,
)

DEFAULT_BASE_URL = "https://api.statuspage.io/v1"
VENDOR = "statuspage"
# Documented by Statuspage for an incident's name and an update's body; the built-in page
# keeps the same limits (workflows.contracts), so both accept the same updates.
MAX_NAME_CHARS = MAX_TITLE_CHARS
# The key under ``metadata`` where fireline keeps its ids (top-level values must be objects).
METADATA_KEY = "fireline"
# The list endpoints return at most 100 per page; a page with more open incidents than that
# has bigger problems than a duplicate.
PAGE_SIZE = 100


class PublicationRefused(ApplicationError):
    """A publication Statuspage would refuse (too long, unmapped component): never retried."""

    def __init__(self, message: str) -> None:
        """Build a non-retryable error with type ``PublicationRefused``."""
        super().__init__(message, type="PublicationRefused", non_retryable=True)


def check_limits(pub: StatusPublication) -> None:
    """Refuse a title or body over Statuspage's documented limits, naming the limit."""
    if len(pub.title) > MAX_NAME_CHARS:
        raise PublicationRefused(
            f"title is {len(pub.title)} characters; Statuspage accepts at most "
            f"{MAX_NAME_CHARS} (MAX_NAME_CHARS)"
        )
    if len(pub.body) > MAX_BODY_CHARS:
        raise PublicationRefused(
            f"body is {len(pub.body)} characters; Statuspage accepts at most "
            f"{MAX_BODY_CHARS} (MAX_BODY_CHARS)"
        )


class StatuspagePublisher:
    """Publishes fireline status updates to one Statuspage page."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        api_key: str,
        page_id: str,
        component_ids: Mapping[str, str],
        base_url: str = DEFAULT_BASE_URL,
    ) -> None:
        """``component_ids`` maps fireline component ids to Statuspage component ids."""
        self._client = client
        self._api_key = api_key
        self._page_id = page_id
        self._component_ids = dict(component_ids)
        self._base = f"{base_url.rstrip('/')}/pages/{page_id}"

    def incident_body(self, pub: StatusPublication) -> dict[str, Any]:
        """The ``{"incident": {...}}`` body of a create or update request."""
        components: dict[str, str] = {}
        for component, status in pub.components.items():
            vendor_id = self._component_ids.get(component)
            if vendor_id is None:
                raise PublicationRefused(
                    f"components: '{component}' has no statuspage_id in the status_page config"
                )
            components[vendor_id] = status.value
        return {
            "incident": {
                "name": pub.title,
                "status": pub.status.value,
                "impact_override": pub.impact.value,
                "body": pub.body,
                "component_ids": list(components),
                "components": components,
                "metadata": {
                    METADATA_KEY: {"incident_id": pub.incident_id, "update_id": pub.update_id}
                },
                "deliver_notifications": True,
            }
        }

    async def publish(self, pub: StatusPublication) -> StatusPublished:
        """Create or update the Statuspage incident for ``pub``, at most once per update id."""
        check_limits(pub)
        body = self.incident_body(pub)
        existing = await self._find(pub)
        if existing is not None and _fireline(existing).get("update_id") == pub.update_id:
            return self._result(existing)
        if existing is None:
            answer = await self._request("POST", f"{self._base}/incidents", body)
        else:
            answer = await self._request("PATCH", f"{self._base}/incidents/{existing['id']}", body)
        return self._result(answer)

    async def _find(self, pub: StatusPublication) -> dict[str, Any] | None:
        """The Statuspage incident carrying this fireline incident id, if any."""
        # The two list endpoints page differently (documented: per_page vs limit).
        lists = [(f"{self._base}/incidents/unresolved", {"per_page": PAGE_SIZE})]
        if pub.status is PublicStatus.RESOLVED:
            # A resolve whose answer was lost left the incident resolved: look there too.
            lists.append((f"{self._base}/incidents", {"limit": PAGE_SIZE}))
        for url, params in lists:
            answer = await self._request("GET", url, None, params=params)
            if not isinstance(answer, list):
                raise vendor_error(VENDOR, 200, "incident list is not a JSON array", transient=True)
            for incident in answer:
                if isinstance(incident, dict) and (
                    _fireline(incident).get("incident_id") == pub.incident_id
                ):
                    return incident
        return None

    async def _request(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        *,
        params: dict[str, Any] | None = None,
    ) -> Any:
        request = self._client.build_request(
            method,
            url,
            json=body,
            params=params,
            headers={"Authorization": f"OAuth {self._api_key}", "Accept": "application/json"},
        )
        response = await send(self._client, request, vendor=VENDOR, secrets=[self._api_key])
        try:
            return response.json()
        except ValueError:
            raise vendor_error(
                VENDOR, response.status_code, "answer is not JSON", transient=True
            ) from None

    def _result(self, incident: Any) -> StatusPublished:
        if not isinstance(incident, dict) or not isinstance(incident.get("id"), str):
            raise vendor_error(VENDOR, 200, "answer has no incident id", transient=True)
        link = incident.get("shortlink")
        return StatusPublished(
            provider="atlassian",
            external_id=incident["id"],
            url=link if isinstance(link, str) else None,
        )


def _fireline(incident: dict[str, Any]) -> dict[str, Any]:
    metadata = incident.get("metadata")
    if not isinstance(metadata, dict):
        return {}
    ours = metadata.get(METADATA_KEY)
    return ours if isinstance(ours, dict) else {}
