"""The one HTTP error classification: ok / transient / permanent, Retry-After, redaction."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from activities.http import (
    MAX_RETRY_AFTER,
    DeliveryError,
    PermanentHttpError,
    TransientHttpError,
    error_detail,
    parse_retry_after,
    redact,
    send,
    vendor_error,
)
from tests.fakes.server import RecordingServer, Reply
from tests.support import free_port

NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)

# Loading the CA bundle costs ~0.1 s; one context serves every test client.
_TLS = ssl.create_default_context()


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: a proxy from the environment must never see loopback test traffic.
    async with httpx.AsyncClient(timeout=0.5, trust_env=False, verify=_TLS) as http:
        yield http


async def post(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await send(client, client.build_request("POST", url, json={}), vendor="acme")


# --- Retry-After ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("30", timedelta(seconds=30)),
        (" 7 ", timedelta(seconds=7)),
        ("0", timedelta(0)),
        ("86400", timedelta(minutes=5)),
        (format_datetime(NOW + timedelta(seconds=45), usegmt=True), timedelta(seconds=45)),
        ("Fri, 14 Mar 2025 09:28:00 GMT", timedelta(seconds=67)),
        (format_datetime(NOW - timedelta(minutes=3), usegmt=True), timedelta(0)),
        (format_datetime(NOW + timedelta(hours=2), usegmt=True), timedelta(minutes=5)),
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(
    header: str | None, expected: timedelta | None
) -> None:
    assert parse_retry_after(header, now=NOW) == expected


# --- classification over real HTTP ---------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_2xx_is_ok(server: RecordingServer, client: httpx.AsyncClient, status: int) -> None:
    server.reply = Reply(status)
    response = await post(client, server.url)
    assert response.status_code == status


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            400,
            {"message": "Event object is invalid"},
            "acme answered HTTP 400: Event object is invalid",
        ),
        (
            401,
            {"message": "Could not authenticate"},
            "acme answered HTTP 401: Could not authenticate",
        ),
        (403, None, "acme answered HTTP 403: Forbidden"),
        (404, b"no such route", "acme answered HTTP 404: no such route"),
        (409, {"error": "conflict"}, "acme answered HTTP 409: conflict"),
        (
            422,
            {"message": "Message can not be empty."},
            "acme answered HTTP 422: Message can not be empty.",
        ),
        (301, None, "acme answered HTTP 301: Moved Permanently"),
    ],
)
async def test_other_4xx_is_permanent(
    server: RecordingServer, client: httpx.AsyncClient, status: int, body: object, message: str
) -> None:
    server.reply = Reply(status, body)
    with pytest.raises(PermanentHttpError) as caught:
        await post(client, server.url)
    assert caught.value.message == message
    assert caught.value.type == "PermanentHttpError"
    assert caught.value.non_retryable is True
    assert caught.value.next_retry_delay is None


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (408, None, "acme answered HTTP 408: Request Timeout"),
        (429, {"message": "slow down"}, "acme answered HTTP 429: slow down"),
        (
            500,
            {"message": "Internal Server Error"},
            "acme answered HTTP 500: Internal Server Error",
        ),
        (502, b"bad gateway", "acme answered HTTP 502: bad gateway"),
        (503, None, "acme answered HTTP 503: Service Unavailable"),
        (504, None, "acme answered HTTP 504: Gateway Timeout"),
    ],
)
async def test_408_429_and_5xx_are_transient(
    server: RecordingServer, client: httpx.AsyncClient, status: int, body: object, message: str
) -> None:
    server.reply = Reply(status, body)
    with pytest.raises(TransientHttpError) as caught:
        await post(client, server.url)
    assert caught.value.message == message
    assert caught.value.type == "TransientHttpError"
    assert caught.value.non_retryable is False
    assert caught.value.next_retry_delay is None


async def test_429_retry_after_seconds_sets_the_next_retry_delay(
    server: RecordingServer, client: httpx.AsyncClient
) -> None:
    server.fail_next(1, 429, retry_after="12")
    with pytest.raises(TransientHttpError) as caught:
        await post(client, server.url)
    assert caught.value.message == "acme answered HTTP 429: injected HTTP 429 (retry after 12s)"
    assert caught.value.next_retry_delay == timedelta(seconds=12)


async def test_503_retry_after_http_date_sets_the_next_retry_delay(
    server: RecordingServer, client: httpx.AsyncClient
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=120)
    server.fail_next(1, 503, retry_after=format_datetime(when, usegmt=True))
    with pytest.raises(TransientHttpError) as caught:
        await post(client, server.url)
    delay = caught.value.next_retry_delay
    # The header has whole seconds and a moment passes before it is read.
    assert delay is not None
    assert timedelta(seconds=117) < delay <= timedelta(seconds=120)


async def test_retry_after_is_capped(server: RecordingServer, client: httpx.AsyncClient) -> None:
    server.fail_next(1, 429, retry_after="3600")
    with pytest.raises(TransientHttpError) as caught:
        await post(client, server.url)
    assert caught.value.next_retry_delay == MAX_RETRY_AFTER
    assert caught.value.message.endswith("(retry after 300s)")


async def test_timeout_is_transient(server: RecordingServer, client: httpx.AsyncClient) -> None:
    server.slow_next(delay=2.0)
    with pytest.raises(TransientHttpError) as caught:
        await post(client, server.url)
    assert caught.value.message == "acme timed out: ReadTimeout"
    assert caught.value.non_retryable is False


@pytest.mark.parametrize("process", [False, True])
async def test_connection_reset_is_transient(
    server: RecordingServer, client: httpx.AsyncClient, process: bool
) -> None:
    server.reset_next(process=process)
    with pytest.raises(TransientHttpError) as caught:
        await post(client, server.url)
    assert caught.value.message in {
        "acme unreachable: ReadError",
        "acme unreachable: RemoteProtocolError: Server disconnected without sending a response.",
    }
    # The fault is spent: the retry gets through.
    assert (await post(client, server.url)).status_code == 200
    assert len(server.requests) == 2


async def test_connection_refused_is_transient(client: httpx.AsyncClient) -> None:
    port = free_port()
    # Nothing listens on the port now.
    with pytest.raises(TransientHttpError) as caught:
        await post(client, f"http://127.0.0.1:{port}/")
    assert caught.value.message == "acme unreachable: ConnectError: All connection attempts failed"


async def test_unsupported_scheme_is_permanent(client: httpx.AsyncClient) -> None:
    with pytest.raises(PermanentHttpError) as caught:
        await post(client, "ftp://127.0.0.1/hooks")
    assert caught.value.message == (
        "acme request invalid: Request URL has an unsupported protocol 'ftp://'."
    )


# --- vendor error text and secrets -----------------------------------------------------------


def response(status: int, content: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.Response(status, content=content, headers={"Content-Type": content_type})


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (
            b'{"status": "invalid event", "message": "Event object is invalid",'
            b' "errors": ["Invalid routing key", "\'payload\' is missing or blank"]}',
            "Event object is invalid - Invalid routing key; 'payload' is missing or blank",
        ),
        (b'{"ok": false, "error": "channel_not_found"}', "channel_not_found"),
        (b'{"message": "Could not authenticate", "took": 0.0}', "Could not authenticate"),
        (b'{"errors": {"channel": "unknown"}}', "channel: unknown"),
        (b"  plain words  ", "plain words"),
        (b"", "Bad Request"),
        (b"x" * 400, "x" * 297 + "..."),
    ],
)
def test_error_detail_takes_the_vendors_words(content: bytes, detail: str) -> None:
    assert error_detail(response(400, content)) == detail


def test_redact_replaces_every_secret_longest_first() -> None:
    text = "key=abc123 and abc123456, not empty"
    assert redact(text, ["abc123", "abc123456", ""]) == ("key=[REDACTED] and [REDACTED], not empty")


async def test_secrets_never_reach_the_message_or_the_log(
    server: RecordingServer, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr3t-routing-key-0123456789abc"
    server.reply = Reply(400, {"message": f"Invalid routing key {secret}"})
    request = client.build_request("POST", f"{server.url}/hooks/{secret}", json={})
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentHttpError) as caught:
        await send(client, request, vendor="acme", secrets=[secret])
    assert caught.value.message == "acme answered HTTP 400: Invalid routing key [REDACTED]"
    # httpx itself logs request URLs at INFO; fireline's own records must stay clean.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("activities")]
    assert ours == ["acme answered HTTP 400: Invalid routing key [REDACTED]"]


def test_vendor_error_types_share_the_delivery_root() -> None:
    transient = vendor_error("slack", 200, "ratelimited", transient=True, retry_after=timedelta(0))
    permanent = vendor_error("slack", 200, "invalid_auth", transient=False)
    assert isinstance(transient, TransientHttpError)
    assert isinstance(permanent, PermanentHttpError)
    assert isinstance(transient, DeliveryError)
    assert isinstance(permanent, DeliveryError)
    # A zero Retry-After means "now"; the retry policy decides the backoff.
    assert transient.next_retry_delay is None
    assert transient.message == "slack answered HTTP 200: ratelimited (retry after 0s)"
