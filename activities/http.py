"""The one place where a vendor's answer becomes ok, retry, or give up.

Every provider sends through :func:`send`; every failure it raises is a Temporal
``ApplicationError`` whose ``type`` the workflows (and tests) match on::

    temporalio.exceptions.ApplicationError
     └── DeliveryError                 base of every delivery failure; never raised itself
          ├── TransientHttpError       408, 429, 5xx, connection faults, timeouts;
          │                            retried, next_retry_delay = Retry-After (capped)
          ├── PermanentHttpError       every other non-2xx; non_retryable
          ├── TransientSmtpError       (providers/email_smtp) connection faults, 4xx replies
          ├── PermanentSmtpError       (providers/email_smtp) 5xx replies; non_retryable
          └── ProviderNotConfigured    (notify) no provider wired for a contact kind;
                                       non_retryable

Vendors that answer errors inside a 2xx body (Slack's ``{"ok": false}``) are classified by
their provider and raised with :func:`vendor_error`, so the types stay the same.

Messages carry the vendor, the HTTP status and the vendor's own error text, never a
credential: every secret the provider passes in is replaced by ``[REDACTED]``, and headers
are never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

logger = logging.getLogger(__name__)

# A vendor asking for more than this is answered sooner: a page waiting ten minutes behind a
# rate limit is worse than one more 429, and Temporal's backoff still applies after it.
MAX_RETRY_AFTER = timedelta(minutes=5)
# Enough of a vendor's error body to diagnose, not enough to flood the timeline.
_MAX_DETAIL = 300
REDACTED = "[REDACTED]"
_TRANSIENT_STATUSES = frozenset({408, 429})


class DeliveryError(ApplicationError):
    """Base of every failure a notification provider raises."""


class TransientHttpError(DeliveryError):
    """A failure worth retrying: 408, 429, 5xx, or the request never got an answer."""

    def __init__(self, message: str, *, retry_after: timedelta | None = None) -> None:
        """Build a retryable error; ``retry_after`` overrides Temporal's next backoff."""
        super().__init__(
            message,
            type="TransientHttpError",
            non_retryable=False,
            # A zero delay means "now", which is what the retry policy does anyway.
            next_retry_delay=retry_after or None,
        )


class PermanentHttpError(DeliveryError):
    """A failure no retry can fix: bad credentials, bad request, unknown channel."""

    def __init__(self, message: str) -> None:
        """Build a non-retryable error."""
        super().__init__(message, type="PermanentHttpError", non_retryable=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every non-empty secret replaced by ``[REDACTED]``."""
    # Longest first, so a secret containing another is not left half-visible.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> timedelta | None:
    """Read a ``Retry-After`` header (delta-seconds or HTTP-date), clamped to [0, 5 min]."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        delay = timedelta(seconds=int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            # RFC 9110 dates are GMT; parsedate gives naive for "-0000".
            when = when.replace(tzinfo=UTC)
        delay = when - (now or datetime.now(UTC))
    return max(timedelta(0), min(delay, MAX_RETRY_AFTER))


def vendor_error(
    vendor: str,
    status: int,
    detail: str,
    *,
    transient: bool,
    retry_after: timedelta | None = None,
    secrets: Iterable[str] = (),
) -> DeliveryError:
    """Build the error for a vendor's answer, with the message format every test asserts."""
    message = redact(f"{vendor} answered HTTP {status}: {detail}", secrets)
    if transient:
        if retry_after is not None:
            message += f" (retry after {int(retry_after.total_seconds())}s)"
        return TransientHttpError(message, retry_after=retry_after)
    return PermanentHttpError(message)


def error_detail(response: httpx.Response) -> str:
    """The vendor's own words from an error body, or the reason phrase when it has none."""
    text = response.text.strip()
    try:
        body: Any = json.loads(text) if text else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts: list[str] = []
        # PagerDuty and Opsgenie say "message"; Slack says "error"; PagerDuty adds "errors".
        for key in ("message", "error", "error_description"):
            value = body.get(key)
            if isinstance(value, str) and value:
                parts.append(value)
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts.append("; ".join(str(e) for e in errors))
        elif isinstance(errors, dict) and errors:
            parts.append("; ".join(f"{k}: {v}" for k, v in errors.items()))
        detail = " - ".join(parts)
    else:
        detail = text
    if not detail:
        detail = response.reason_phrase or "no body"
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 3] + "..."
    return detail


def is_transient_status(status: int) -> bool:
    """Return whether an HTTP status is worth retrying (408, 429, 5xx)."""
    return status in _TRANSIENT_STATUSES or 500 <= status <= 599


def classify(
    response: httpx.Response, *, vendor: str, secrets: Iterable[str] = ()
) -> httpx.Response:
    """Return a 2xx response; raise the classified error for anything else."""
    status = response.status_code
    if 200 <= status <= 299:
        return response
    # A 3xx is a wrong base URL (httpx does not follow redirects here): permanent, like 4xx.
    transient = is_transient_status(status)
    retry_after = parse_retry_after(response.headers.get("retry-after")) if transient else None
    error = vendor_error(
        vendor,
        status,
        error_detail(response),
        transient=transient,
        retry_after=retry_after,
        secrets=secrets,
    )
    logger.warning("%s", error.message)
    raise error


def _transport_error(
    exc: httpx.HTTPError | httpx.InvalidURL, vendor: str, secrets: Iterable[str]
) -> DeliveryError:
    # An unsupported scheme or malformed URL is configuration: retrying cannot fix it.
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return PermanentHttpError(redact(f"{vendor} request invalid: {exc}", secrets))
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "unreachable"
    # httpx often re-raises with an empty message; the socket error it wraps says why.
    reason = str(exc) or str(exc.__cause__ or exc.__context__ or "")
    text = f"{vendor} {kind}: {type(exc).__name__}" + (f": {reason}" if reason else "")
    return TransientHttpError(redact(text, secrets))


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    vendor: str,
    secrets: Iterable[str] = (),
) -> httpx.Response:
    """Send ``request`` and return the 2xx response, or raise a :class:`DeliveryError`."""
    secrets = tuple(secrets)
    try:
        response = await client.send(request)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        error = _transport_error(exc, vendor, secrets)
        logger.warning("%s", error.message)
        # Not chained: Temporal records the cause too, and httpx's carries the request.
        raise error from None
    return classify(response, vendor=vendor, secrets=secrets)
