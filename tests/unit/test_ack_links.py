"""Signed acknowledge links: tokens, the secret file, and the pages behind the link."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from worker.ack_links import (
    AckToken,
    ExpiredLink,
    MalformedLink,
    TamperedLink,
    link_for,
    load_or_create_secret,
    sign,
    verify,
)
from worker.ack_pages import AckOutcome, AckResult, ack_router
from worker.errors import Forbidden

SECRET = b"fictional-secret-for-tests-only"
NOW = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
EXPIRES = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
TOKEN = AckToken(incident_id="INC-7", user="mira", expires_at=EXPIRES, nonce="n0nce")
EXPIRED_REASON = (
    "this acknowledge link expired at 2026-11-27 14:00 UTC; "
    "acknowledge with `fireline incident ack INC-7` or in the dashboard"
)
INCOMPLETE = (
    "this acknowledge link is not valid: it is incomplete; open the whole link from the page"
)
BAD_CHARS = "this acknowledge link is not valid: it contains characters a link cannot have"
ALTERED = "this acknowledge link has been altered"
JSON = {"Accept": "application/json"}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _flip(text: str, index: int) -> str:
    """``text`` with one base64url character changed."""
    swapped = "A" if text[index] != "A" else "B"
    return text[:index] + swapped + text[index + 1 :]


# --- tokens ---------------------------------------------------------------------------------


def test_round_trip_returns_the_same_token() -> None:
    text = sign(TOKEN, SECRET)
    assert verify(text, SECRET, now=NOW) == TOKEN


def test_token_is_url_safe_unpadded_and_deterministic() -> None:
    text = sign(TOKEN, SECRET)
    assert text == sign(TOKEN, SECRET)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    payload, signature = text.split(".")
    assert json.loads(base64.urlsafe_b64decode(payload + "==")) == {
        "e": int(EXPIRES.timestamp()),
        "i": "INC-7",
        "n": "n0nce",
        "u": "mira",
    }
    assert len(base64.urlsafe_b64decode(signature + "=")) == 32


def test_user_none_round_trips() -> None:
    token = AckToken(incident_id="INC-12", user=None, expires_at=EXPIRES, nonce="x")
    assert verify(sign(token, SECRET), SECRET, now=NOW).user is None


def test_expiry_is_normalised_to_whole_utc_seconds() -> None:
    berlin_winter = timezone(timedelta(hours=1))
    local = datetime(2026, 11, 27, 15, 0, 0, 700_000, tzinfo=berlin_winter)
    token = AckToken("INC-7", "mira", local, "n")
    assert token.expires_at == datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    assert token.expires_at.tzinfo is UTC
    assert verify(sign(token, SECRET), SECRET, now=NOW) == token


def test_nonce_differs_between_links() -> None:
    first = link_for("https://fire.example", "INC-7", "mira", SECRET, now=NOW)
    second = link_for("https://fire.example", "INC-7", "mira", SECRET, now=NOW)
    assert first != second


def test_link_for_builds_the_ack_url_with_default_ttl() -> None:
    link = link_for("https://fire.example/", "INC-7", "mira", SECRET, now=NOW)
    prefix = "https://fire.example/v1/ack/"
    assert link.startswith(prefix)
    token = verify(link.removeprefix(prefix), SECRET, now=NOW)
    assert (token.incident_id, token.user) == ("INC-7", "mira")
    assert token.expires_at == NOW + timedelta(hours=24)


def test_link_for_honours_ttl() -> None:
    link = link_for("http://x", "INC-7", None, SECRET, now=NOW, ttl=timedelta(minutes=5))
    token = verify(link.rsplit("/", 1)[1], SECRET, now=NOW)
    assert token.expires_at == NOW + timedelta(minutes=5)


def test_tampered_payload_is_refused() -> None:
    payload, signature = sign(TOKEN, SECRET).split(".")
    forged = _b64(
        json.dumps({"e": 9_999_999_999, "i": "INC-7", "n": "n0nce", "u": "mira"}).encode()
    )
    for text in (f"{forged}.{signature}", f"{_flip(payload, 3)}.{signature}"):
        with pytest.raises(TamperedLink) as caught:
            verify(text, SECRET, now=NOW)
        assert str(caught.value) == ALTERED


def test_tampered_signature_is_refused() -> None:
    text = sign(TOKEN, SECRET)
    with pytest.raises(TamperedLink) as caught:
        verify(_flip(text, len(text) - 5), SECRET, now=NOW)
    assert caught.value.reason == ALTERED
    assert caught.value.status == 403


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(TamperedLink, match=f"^{ALTERED}$"):
        verify(sign(TOKEN, SECRET), b"another-secret", now=NOW)


@pytest.mark.parametrize("cut", [1, 10, 42])
def test_truncated_signature_is_malformed(cut: int) -> None:
    text = sign(TOKEN, SECRET)
    with pytest.raises(MalformedLink) as caught:
        verify(text[:-cut], SECRET, now=NOW)
    assert str(caught.value) == INCOMPLETE
    assert caught.value.status == 400


def test_extra_characters_are_malformed() -> None:
    with pytest.raises(MalformedLink) as caught:
        verify(sign(TOKEN, SECRET) + "xyz", SECRET, now=NOW)
    assert str(caught.value) == (
        "this acknowledge link is not valid: it has extra characters at the end"
    )


def test_cut_before_the_dot_is_malformed() -> None:
    text = sign(TOKEN, SECRET)
    for cut in (text.split(".")[0], text.split(".")[0] + "."):
        with pytest.raises(MalformedLink, match=f"^{INCOMPLETE}$"):
            verify(cut, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "this acknowledge link is not valid: it is empty"),
        ("not a token", INCOMPLETE),
        ("abc.d!f", BAD_CHARS),
        ("ab=c.def", BAD_CHARS),
        ("a.b.c", BAD_CHARS),
        ("x" * 3000, "this acknowledge link is not valid: it is too long"),
    ],
)
def test_garbage_is_malformed(text: str, reason: str) -> None:
    with pytest.raises(MalformedLink) as caught:
        verify(text, SECRET, now=NOW)
    assert str(caught.value) == reason


def test_signed_but_unreadable_payload_is_malformed() -> None:
    payload = b'{"i":"INC-7"}'
    mac = hmac.new(SECRET, payload, hashlib.sha256).digest()
    with pytest.raises(MalformedLink, match=r"its contents are unreadable$"):
        verify(f"{_b64(payload)}.{_b64(mac)}", SECRET, now=NOW)


def test_expiry_boundary() -> None:
    text = sign(TOKEN, SECRET)
    assert verify(text, SECRET, now=EXPIRES - timedelta(seconds=1)) == TOKEN
    for now in (EXPIRES, EXPIRES + timedelta(days=3)):
        with pytest.raises(ExpiredLink) as caught:
            verify(text, SECRET, now=now)
        assert str(caught.value) == EXPIRED_REASON
        assert caught.value.status == 410


def test_expired_check_happens_after_signature() -> None:
    # An attacker must not learn anything about expiry from a forged token.
    text = _flip(sign(TOKEN, SECRET), 2)
    with pytest.raises(TamperedLink):
        verify(text, SECRET, now=EXPIRES + timedelta(days=1))


def test_empty_secret_is_rejected() -> None:
    with pytest.raises(ValueError, match="secret must not be empty"):
        sign(TOKEN, b"")
    with pytest.raises(ValueError, match="secret must not be empty"):
        verify(sign(TOKEN, SECRET), b"", now=NOW)
    with pytest.raises(ValueError, match="secret must not be empty"):
        ack_router(b"", _Recorder(AckResult.ACKNOWLEDGED), now=lambda: NOW)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"incident_id": "7"}, "incident_id: expected INC-<number>, got '7'"),
        ({"expires_at": datetime(2026, 11, 27, 14, 0)}, "expires_at: must be timezone-aware"),
        ({"user": ""}, "user: must be a handle or None, not empty"),
        ({"nonce": ""}, "nonce: must not be empty"),
    ],
)
def test_token_fields_are_validated(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "incident_id": "INC-7",
        "user": "mira",
        "expires_at": EXPIRES,
        "nonce": "n",
    }
    fields.update(kwargs)
    with pytest.raises(ValueError, match=r"^\w+: ") as caught:
        AckToken(**fields)  # type: ignore[arg-type]
    assert str(caught.value) == message


# --- secret ---------------------------------------------------------------------------------


def test_secret_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ack-secret"
    first = load_or_create_secret(path, None)
    assert len(first) == 64
    bytes.fromhex(first.decode())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path, None) == first
    assert [p.name for p in path.parent.iterdir()] == ["ack-secret"]


def test_fresh_secrets_differ(tmp_path: Path) -> None:
    assert load_or_create_secret(tmp_path / "a", None) != load_or_create_secret(
        tmp_path / "b", None
    )


def test_env_value_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ack-secret"
    load_or_create_secret(path, None)
    assert load_or_create_secret(path, "  from-the-env\n") == b"from-the-env"
    assert load_or_create_secret(tmp_path / "never", "from-the-env") == b"from-the-env"
    assert not (tmp_path / "never").exists()


def test_blank_env_value_falls_back_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ack-secret"
    assert load_or_create_secret(path, "") == load_or_create_secret(path, "   ")
    assert path.exists()


def test_existing_file_is_read_as_is(tmp_path: Path) -> None:
    path = tmp_path / "ack-secret"
    path.write_text("operator-chosen\n")
    assert load_or_create_secret(path, None) == b"operator-chosen"


def test_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ack-secret"
    path.write_text("\n")
    with pytest.raises(ValueError, match=r"the acknowledge-link secret file is empty; delete it$"):
        load_or_create_secret(path, None)


def test_secret_is_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    secret = load_or_create_secret(tmp_path / "ack-secret", None)
    assert "created a new acknowledge-link secret" in caplog.text
    assert secret.decode() not in caplog.text


# --- pages ----------------------------------------------------------------------------------


class _Recorder:
    """An ``acknowledge`` callback that records calls and answers or raises as told."""

    def __init__(
        self,
        result: AckResult,
        *,
        title: str | None = "Checkout latency",
        by: str | None = None,
        raises: Exception | None = None,
    ) -> None:
        self.result, self.title, self.by, self.raises = result, title, by, raises
        self.calls: list[tuple[str, str | None]] = []

    async def __call__(self, incident_id: str, user: str | None) -> AckOutcome:
        self.calls.append((incident_id, user))
        if self.raises is not None:
            raise self.raises
        return AckOutcome(self.result, incident_id, self.title, self.by)


def _client(recorder: _Recorder, now: datetime = NOW) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(ack_router(SECRET, recorder, now=lambda: now))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fireline")


@pytest.fixture
async def acked() -> AsyncIterator[tuple[httpx.AsyncClient, _Recorder]]:
    recorder = _Recorder(AckResult.ACKNOWLEDGED)
    async with _client(recorder) as client:
        yield client, recorder


URL = f"/v1/ack/{sign(TOKEN, SECRET)}"


async def test_get_shows_the_button_and_does_not_acknowledge(
    acked: tuple[httpx.AsyncClient, _Recorder],
) -> None:
    client, recorder = acked
    response = await client.get(URL)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<form method="post"><button type="submit">Acknowledge INC-7</button></form>' in page
    assert "<h1>Acknowledge INC-7?</h1>" in page
    assert "<p>You were paged for INC-7 as mira.</p>" in page
    assert "This link works until 2026-11-27 14:00 UTC." in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "http" not in page.split("<body>")[0]  # no external assets
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert recorder.calls == []


async def test_get_json(acked: tuple[httpx.AsyncClient, _Recorder]) -> None:
    client, recorder = acked
    response = await client.get(URL, headers=JSON)
    assert response.status_code == 200
    assert response.json() == {
        "incident_id": "INC-7",
        "user": "mira",
        "expires_at": "2026-11-27T14:00:00+00:00",
        "acknowledge": "POST to this URL",
    }
    assert recorder.calls == []


async def test_browser_accept_header_gets_html(acked: tuple[httpx.AsyncClient, _Recorder]) -> None:
    client, _ = acked
    accept = "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8"
    response = await client.get(URL, headers={"Accept": accept})
    assert response.headers["content-type"].startswith("text/html")


async def test_post_acknowledges_once_as_the_linked_user(
    acked: tuple[httpx.AsyncClient, _Recorder],
) -> None:
    client, recorder = acked
    response = await client.post(URL)
    assert response.status_code == 200
    assert recorder.calls == [("INC-7", "mira")]
    assert "<h1>Acknowledged INC-7</h1>" in response.text
    assert (
        "<p>INC-7 (Checkout latency) is acknowledged as mira; escalation stops.</p>"
        in response.text
    )
    assert "<form" not in response.text


async def test_post_without_user() -> None:
    token = AckToken(incident_id="INC-31", user=None, expires_at=EXPIRES, nonce="q")
    recorder = _Recorder(AckResult.ACKNOWLEDGED, title=None)
    async with _client(recorder) as client:
        response = await client.post(f"/v1/ack/{sign(token, SECRET)}", headers=JSON)
    assert recorder.calls == [("INC-31", None)]
    assert response.json()["message"] == "INC-31 is acknowledged; escalation stops."


@pytest.mark.parametrize(
    ("recorder", "heading", "message"),
    [
        (
            _Recorder(AckResult.ALREADY_ACKNOWLEDGED, by="tomas"),
            "INC-7 was already acknowledged",
            "INC-7 (Checkout latency) was already acknowledged by tomas; nothing changed.",
        ),
        (
            _Recorder(AckResult.ALREADY_ACKNOWLEDGED, title=None),
            "INC-7 was already acknowledged",
            "INC-7 was already acknowledged; nothing changed.",
        ),
        (
            _Recorder(AckResult.CLOSED),
            "INC-7 is closed",
            "INC-7 (Checkout latency) is closed; there is nothing to acknowledge.",
        ),
        (
            _Recorder(AckResult.UNKNOWN_INCIDENT, title=None),
            "Unknown incident INC-7",
            "fireline has no incident INC-7; check `fireline incident list` or the dashboard.",
        ),
    ],
)
async def test_outcome_pages(recorder: _Recorder, heading: str, message: str) -> None:
    async with _client(recorder) as client:
        page = await client.post(URL)
        as_json = await client.post(URL, headers=JSON)
    assert page.status_code == 200
    assert f"<h1>{heading}</h1>" in page.text
    assert f"<p>{message}</p>" in page.text
    assert as_json.status_code == 200
    assert as_json.json() == {
        "outcome": recorder.result.value,
        "incident_id": "INC-7",
        "title": recorder.title,
        "acknowledged_by": recorder.by,
        "message": message,
    }


async def test_titles_and_names_are_escaped() -> None:
    recorder = _Recorder(
        AckResult.ALREADY_ACKNOWLEDGED, title="<script>alert(1)</script>", by='"o&brien"'
    )
    async with _client(recorder) as client:
        response = await client.post(URL)
    assert "<script>" not in response.text
    assert (
        "INC-7 (&lt;script&gt;alert(1)&lt;/script&gt;) was already acknowledged by "
        "&quot;o&amp;brien&quot;; nothing changed." in response.text
    )


@pytest.mark.parametrize(
    ("path", "status", "heading", "code", "reason"),
    [
        ("/v1/ack/garbage", 400, "Link not valid", "malformed_link", INCOMPLETE),
        (URL[:-12], 400, "Link not valid", "malformed_link", INCOMPLETE),
        (_flip(URL, len(URL) - 3), 403, "Link altered", "tampered_link", ALTERED),
        (
            f"/v1/ack/{sign(TOKEN, b'someone-else')}",
            403,
            "Link altered",
            "tampered_link",
            ALTERED,
        ),
    ],
)
async def test_bad_links_get_clear_pages(
    acked: tuple[httpx.AsyncClient, _Recorder],
    path: str,
    status: int,
    heading: str,
    code: str,
    reason: str,
) -> None:
    client, recorder = acked
    for method in ("GET", "POST"):
        page = await client.request(method, path)
        assert page.status_code == status
        assert f"<h1>{heading}</h1>" in page.text
        assert f"<p>{reason}</p>" in page.text
        assert (
            "<p>Open the link from the newest page, or acknowledge with "
            "`fireline incident ack &lt;id&gt;` or in the dashboard.</p>" in page.text
        )
        as_json = await client.request(method, path, headers=JSON)
        assert as_json.status_code == status
        assert as_json.json() == {"error": code, "reason": reason}
    assert recorder.calls == []


async def test_expired_link_page() -> None:
    recorder = _Recorder(AckResult.ACKNOWLEDGED)
    async with _client(recorder, now=EXPIRES) as client:
        page = await client.get(URL)
        posted = await client.post(URL, headers=JSON)
    assert page.status_code == 410
    assert "<h1>Link expired</h1>" in page.text
    assert f"<p>{EXPIRED_REASON}</p>" in page.text
    assert "<form" not in page.text
    assert posted.status_code == 410
    assert posted.json() == {"error": "expired_link", "reason": EXPIRED_REASON}
    assert recorder.calls == []


async def test_callback_crash_is_a_503_page(caplog: pytest.LogCaptureFixture) -> None:
    recorder = _Recorder(AckResult.ACKNOWLEDGED, raises=RuntimeError("frontend unreachable"))
    reason = (
        "fireline could not reach the incident; try again or use the CLI: "
        "`fireline incident ack INC-7`"
    )
    async with _client(recorder) as client:
        page = await client.post(URL)
        as_json = await client.post(URL, headers=JSON)
    assert page.status_code == 503
    assert "<h1>Could not acknowledge</h1>" in page.text
    assert f"<p>{reason}</p>" in page.text
    assert "frontend unreachable" not in page.text
    assert as_json.status_code == 503
    assert as_json.json() == {"error": "unavailable", "reason": reason}
    assert "acknowledging INC-7 from a link failed" in caplog.text
    assert URL.rsplit("/", 1)[1] not in caplog.text


async def test_callback_refusal_keeps_its_status() -> None:
    recorder = _Recorder(AckResult.ACKNOWLEDGED, raises=Forbidden("unknown user 'mira'"))
    async with _client(recorder) as client:
        page = await client.post(URL)
        as_json = await client.post(URL, headers=JSON)
    assert page.status_code == 403
    assert "<h1>Could not acknowledge</h1>" in page.text
    assert "<p>unknown user &#x27;mira&#x27;</p>" in page.text
    assert as_json.json() == {"error": "forbidden", "reason": "unknown user 'mira'"}
