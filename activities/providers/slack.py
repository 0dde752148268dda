"""Slack Web API ``chat.postMessage``: pages into a channel or a user's DM.

Slack answers most errors with HTTP 200 and ``{"ok": false, "error": "<code>"}``; those
codes are classified here and raised through :func:`activities.http.vendor_error`, so they
carry the same types as HTTP failures. A 429 (``ratelimited``) is an HTTP status and goes
through :func:`activities.http.send` with its ``Retry-After``.

Slack has no idempotency key for ``chat.postMessage``: a retry after a lost response can
post twice. Acknowledge and resolve are threaded under the trigger (``external_id`` is
``<channel>:<ts>``), so a duplicate stays in one thread.
"""

from __future__ import annotations

from typing import Any

import httpx

from activities.contracts import ContactKind, Page, PageAction, PageResult
from activities.http import parse_retry_after, send, vendor_error

DEFAULT_BASE_URL = "https://slack.com/api"
VENDOR = "slack"
# Codes Slack documents as temporary; everything else (invalid_auth, channel_not_found,
# not_in_channel, is_archived, missing_scope, ...) needs a human to change config.
TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)


def is_transient_error(code: str) -> bool:
    """Return whether a Slack error code is worth retrying."""
    return code in TRANSIENT_ERRORS


def _text(page: Page) -> str:
    if page.action is PageAction.TRIGGER:
        text = f"[{page.severity.value}] {page.incident_id}: {page.title}"
        return f"{text} - acknowledge: {page.ack_url}" if page.ack_url else text
    by = f" by {page.actor}" if page.actor else ""
    verb = "acknowledged" if page.action is PageAction.ACKNOWLEDGE else "resolved"
    return f"{page.incident_id} {verb}{by}: {page.title}"


def blocks(page: Page) -> list[dict[str, Any]]:
    """Block Kit layout of a page: headline, summary, acknowledge button, links."""
    result: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_text(page)}*"}}
    ]
    if page.action is not PageAction.TRIGGER:
        return result
    if page.summary:
        result.append({"type": "section", "text": {"type": "plain_text", "text": page.summary}})
    if page.ack_url:
        button = {
            "type": "button",
            "text": {"type": "plain_text", "text": "Acknowledge"},
            "url": page.ack_url,
            "style": "primary",
        }
        result.append({"type": "actions", "elements": [button]})
    context = [f"paged {page.recipient}", f"urgency {page.urgency.value}"]
    context += [f"<{link.href}|{link.text or link.href}>" for link in page.links]
    result.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]}
    )
    return result


class SlackNotifier:
    """Posts pages with a bot token (``Authorization: Bearer xoxb-…``)."""

    def __init__(
        self, *, client: httpx.AsyncClient, token: str, base_url: str = DEFAULT_BASE_URL
    ) -> None:
        """Configure the provider; ``base_url`` ends in ``/api``."""
        self._client = client
        self._token = token
        self._url = base_url.rstrip("/") + "/chat.postMessage"

    def message(self, page: Page) -> dict[str, Any]:
        """The ``chat.postMessage`` body for ``page``."""
        channel = page.contact.address
        body: dict[str, Any] = {
            "channel": channel,
            "text": _text(page),
            "blocks": blocks(page),
            "unfurl_links": False,
        }
        thread_channel, _, thread_ts = page.external_id.partition(":")
        if page.action is not PageAction.TRIGGER and thread_ts:
            # The trigger's DM channel id (D…) differs from the user id it was sent to.
            body["channel"] = thread_channel
            body["thread_ts"] = thread_ts
            # Resolution is news for the whole channel, not only the thread.
            body["reply_broadcast"] = page.action is PageAction.RESOLVE
        return body

    async def notify(self, page: Page) -> PageResult:
        """Post the page, or its acknowledge/resolve follow-up."""
        request = self._client.build_request(
            "POST",
            self._url,
            json=self.message(page),
            headers={
                "Authorization": f"Bearer {self._token}",
                # Slack warns "missing_charset" without it.
                "Content-Type": "application/json; charset=utf-8",
            },
        )
        response = await send(self._client, request, vendor=VENDOR, secrets=[self._token])
        try:
            answer: Any = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise vendor_error(
                VENDOR, response.status_code, "answer is not a JSON object", transient=True
            )
        if answer.get("ok") is not True:
            code = str(answer.get("error") or "unknown_error")
            raise vendor_error(
                VENDOR,
                response.status_code,
                code,
                transient=is_transient_error(code),
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                secrets=[self._token],
            )
        return PageResult(
            provider=ContactKind.SLACK,
            delivered=True,
            external_id=f"{answer.get('channel', '')}:{answer.get('ts', '')}",
            detail=f"posted to {answer.get('channel', page.contact.address)}",
            action=page.action,
            dedup_key=page.dedup_key,
        )
