"""GitHub Issues as an action-item tracker: open an issue per action item, close it when done.

REST API v3 (``Accept: application/vnd.github+json``, ``X-GitHub-Api-Version: 2022-11-28``,
``Authorization: Bearer <token>``). Idempotent both ways:

- open: every issue fireline opens carries its label (``fireline``) and a marker comment
  ``<!-- fireline-action-item: INC-7-A1 -->`` in its body. Before creating, the repository's
  issues with the label (any state) are listed and the marker looked for, so a retried
  activity finds the issue its first attempt opened instead of opening a second one.
  The list endpoint is used rather than search: search is eventually consistent and would
  miss an issue created a second ago.
- close: ``PATCH`` to ``state: closed`` with a ``state_reason`` is a no-op on a closed issue.

A primary rate limit (``403`` with ``x-ratelimit-remaining: 0``) is transient and retried
after ``x-ratelimit-reset``; every other 4xx is permanent (see :mod:`activities.http`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from activities.contracts import CloseTicket, TicketRef, TicketRequest
from activities.http import (
    PermanentHttpError,
    TransientHttpError,
    _transport_error,  # the shared classification of connection faults
    classify,
    error_detail,
)

VENDOR = "GitHub"
API_VERSION = "2022-11-28"
PER_PAGE = 100
# Enough pages for 1,000 labelled issues; a repository with more should use its own label.
MAX_PAGES = 10


def marker(key: str) -> str:
    """The hidden line that ties an issue to its action item."""
    return f"<!-- fireline-action-item: {key} -->"


class GitHubIssuesTracker:
    """Opens and closes issues in one repository."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        token: str,
        repo: str,
        *,
        base_url: str = "https://api.github.com",
        label: str = "fireline",
    ) -> None:
        """``repo`` is ``owner/name``; ``token`` needs Issues read/write on it."""
        self._client = client
        self._token = token
        self._repo = repo
        self._base = base_url.rstrip("/")
        self._label = label

    async def open(self, req: TicketRequest) -> TicketRef:
        """The action item's issue: found again if it exists, else created."""
        existing = await self._find(req.key)
        if existing is not None:
            return self._ref(existing, created=False)
        body = f"{req.body}\n\n{marker(req.key)}\n"
        payload: dict[str, Any] = {
            "title": req.title,
            "body": body,
            "labels": [self._label, *req.labels],
        }
        response = await self._send("POST", f"/repos/{self._repo}/issues", json=payload)
        return self._ref(response.json(), created=True)

    async def close(self, req: CloseTicket) -> TicketRef:
        """Close the issue as completed or not planned (a no-op when already closed)."""
        if req.comment:
            await self._send(
                "POST",
                f"/repos/{self._repo}/issues/{req.external_id}/comments",
                json={"body": req.comment},
            )
        response = await self._send(
            "PATCH",
            f"/repos/{self._repo}/issues/{req.external_id}",
            json={"state": "closed", "state_reason": req.reason},
        )
        return self._ref(response.json(), created=False)

    async def _find(self, key: str) -> dict[str, Any] | None:
        wanted = marker(key)
        for page in range(1, MAX_PAGES + 1):
            response = await self._send(
                "GET",
                f"/repos/{self._repo}/issues",
                params={
                    "labels": self._label,
                    "state": "all",
                    "per_page": str(PER_PAGE),
                    "page": str(page),
                },
            )
            issues = response.json()
            if not isinstance(issues, list):
                raise PermanentHttpError(f"{VENDOR} answered a list of issues with {issues!r}")
            for issue in issues:
                # The issues endpoint lists pull requests too; they are never ours.
                if (
                    isinstance(issue, dict)
                    and "pull_request" not in issue
                    and wanted in (issue.get("body") or "")
                ):
                    return issue
            if len(issues) < PER_PAGE:
                return None
        return None

    def _ref(self, issue: dict[str, Any], *, created: bool) -> TicketRef:
        return TicketRef(
            provider="github",
            external_id=str(issue["number"]),
            url=str(issue.get("html_url") or ""),
            state=str(issue.get("state") or ""),
            created=created,
        )

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        request = self._client.build_request(
            method,
            f"{self._base}{path}",
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self._token}",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "fireline",
            },
            **kwargs,
        )
        try:
            response = await self._client.send(request)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _transport_error(exc, VENDOR, [self._token]) from None
        # A 403 is a rate limit, not a refusal, when the quota is spent: retry after reset.
        wait = _rate_limited(response)
        if wait is not None:
            raise TransientHttpError(
                f"{VENDOR} answered HTTP 403: {error_detail(response)} (rate limited)",
                retry_after=wait,
            )
        return classify(response, vendor=VENDOR, secrets=[self._token])


def _rate_limited(response: httpx.Response) -> timedelta | None:
    if response.status_code != 403 or response.headers.get("x-ratelimit-remaining") != "0":
        return None
    reset = response.headers.get("x-ratelimit-reset", "")
    if not reset.isdigit():
        return timedelta(minutes=1)
    wait = datetime.fromtimestamp(int(reset), UTC) - datetime.now(UTC)
    return max(timedelta(seconds=1), min(wait, timedelta(minutes=5)))
