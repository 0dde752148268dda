"""Signed, expiring one-click acknowledge links (``/v1/ack/<token>``).

A token is ``base64url(payload) + "." + base64url(HMAC-SHA256(secret, payload))`` without
padding, where the payload is compact JSON with sorted keys, so the same fields always sign
to the same text. The token is a bearer capability for exactly one incident until it
expires; it holds no secret, only the incident id, the paged person's handle, the expiry
and a random nonce that keeps two pages for the same incident from sharing a link.

::

    AckLinkError        (ValueError) base; ``reason`` is what the person reading the page sees
    ├── MalformedLink   400  not a token at all: garbage, cut short, wrong shape
    ├── TamperedLink    403  well-formed, but the signature does not match (or another secret)
    └── ExpiredLink     410  genuine, but past its ``expires_at``
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("fireline.ack_links")

DEFAULT_TTL = timedelta(hours=24)
# Far above any real token (~150 chars); bounds the work a hostile URL can cause.
MAX_TOKEN_CHARS = 2048
INCIDENT_ID = re.compile(r"^INC-[0-9]+$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
# Unpadded base64url of a 32-byte HMAC-SHA256 digest.
_SIGNATURE_CHARS = 43


class AckLinkError(ValueError):
    """Base: an acknowledge link that cannot be honoured, with a reason for the page."""

    status = 400
    code = "invalid_link"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedLink(AckLinkError):
    """The text is not an acknowledge token at all."""

    status = 400
    code = "malformed_link"

    def __init__(self, detail: str) -> None:
        super().__init__(f"this acknowledge link is not valid: {detail}")


class TamperedLink(AckLinkError):
    """The signature does not match the payload under this secret."""

    status = 403
    code = "tampered_link"

    def __init__(self) -> None:
        super().__init__("this acknowledge link has been altered")


class ExpiredLink(AckLinkError):
    """A genuine link past its expiry."""

    status = 410
    code = "expired_link"

    def __init__(self, incident_id: str, expires_at: datetime) -> None:
        super().__init__(
            f"this acknowledge link expired at {expires_at:%Y-%m-%d %H:%M} UTC; "
            f"acknowledge with `fireline incident ack {incident_id}` or in the dashboard"
        )
        self.incident_id = incident_id
        self.expires_at = expires_at


def _new_nonce() -> str:
    return secrets.token_urlsafe(9)


@dataclass(frozen=True)
class AckToken:
    """What a link authorises: acknowledging one incident, as one person, until a time."""

    incident_id: str
    user: str | None
    expires_at: datetime
    nonce: str = field(default_factory=_new_nonce)

    def __post_init__(self) -> None:
        if not INCIDENT_ID.match(self.incident_id):
            raise ValueError(f"incident_id: expected INC-<number>, got {self.incident_id!r}")
        if self.expires_at.tzinfo is None or self.expires_at.utcoffset() is None:
            raise ValueError("expires_at: must be timezone-aware")
        if self.user is not None and not self.user:
            raise ValueError("user: must be a handle or None, not empty")
        if not self.nonce:
            raise ValueError("nonce: must not be empty")
        # The token carries whole epoch seconds; normalising here makes a round trip equal.
        normalised = datetime.fromtimestamp(int(self.expires_at.timestamp()), tz=UTC)
        object.__setattr__(self, "expires_at", normalised)


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    # The alphabet check matters: the stdlib decoder silently skips characters outside it.
    if not _B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _require_secret(secret: bytes) -> None:
    if not secret:
        raise ValueError("the acknowledge-link secret must not be empty")


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()


def sign(token: AckToken, secret: bytes) -> str:
    """The URL-safe text of ``token`` signed with ``secret``."""
    _require_secret(secret)
    fields: dict[str, Any] = {
        "e": int(token.expires_at.timestamp()),
        "i": token.incident_id,
        "n": token.nonce,
        "u": token.user,
    }
    payload = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64encode(payload)}.{_b64encode(_mac(secret, payload))}"


def verify(text: str, secret: bytes, *, now: datetime) -> AckToken:
    """The token ``text`` stands for, if genuine and unexpired; else an ``AckLinkError``."""
    _require_secret(secret)
    if not text:
        raise MalformedLink("it is empty")
    if len(text) > MAX_TOKEN_CHARS:
        raise MalformedLink("it is too long")
    encoded_payload, dot, encoded_signature = text.partition(".")
    if not dot or not encoded_payload or not encoded_signature:
        raise MalformedLink("it is incomplete; open the whole link from the page")
    if not _B64URL.match(encoded_payload) or not _B64URL.match(encoded_signature):
        raise MalformedLink("it contains characters a link cannot have")
    # Mail clients wrap long lines; a short signature is a cut link, not an attack.
    if len(encoded_signature) < _SIGNATURE_CHARS:
        raise MalformedLink("it is incomplete; open the whole link from the page")
    if len(encoded_signature) > _SIGNATURE_CHARS:
        raise MalformedLink("it has extra characters at the end")
    try:
        payload = _b64decode(encoded_payload)
        signature = _b64decode(encoded_signature)
    except (ValueError, binascii.Error):
        raise MalformedLink("it is incomplete; open the whole link from the page") from None
    if not hmac.compare_digest(signature, _mac(secret, payload)):
        raise TamperedLink()
    token = _parse(payload)
    if now >= token.expires_at:
        raise ExpiredLink(token.incident_id, token.expires_at)
    return token


def _parse(payload: bytes) -> AckToken:
    """The token in a payload whose signature already checked out."""
    try:
        fields = json.loads(payload)
        expires = fields["e"]
        if not isinstance(expires, int) or isinstance(expires, bool):
            raise TypeError("e")
        user = fields["u"]
        if user is not None and not isinstance(user, str):
            raise TypeError("u")
        return AckToken(
            incident_id=str(fields["i"]),
            user=user,
            expires_at=datetime.fromtimestamp(expires, tz=UTC),
            nonce=str(fields["n"]),
        )
    except (ValueError, TypeError, KeyError, OverflowError, OSError):
        # Only reachable if something with the secret signed a bad payload.
        raise MalformedLink("its contents are unreadable") from None


def link_for(
    base_url: str,
    incident_id: str,
    user: str | None,
    secret: bytes,
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> str:
    """A fresh acknowledge link for one page of ``incident_id`` to ``user``."""
    if ttl <= timedelta(0):
        raise ValueError("ttl: must be positive")
    token = AckToken(incident_id=incident_id, user=user, expires_at=now + ttl)
    return f"{base_url.rstrip('/')}/v1/ack/{sign(token, secret)}"


def load_or_create_secret(path: Path, env_value: str | None) -> bytes:
    """The signing secret: ``env_value`` if set, else the file at ``path``, created once."""
    if env_value is not None and env_value.strip():
        return env_value.strip().encode()
    if path.exists():
        return _read_secret(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = secrets.token_bytes(32).hex()
    # Write aside, then hard-link into place: link() fails if the file appeared meanwhile, so
    # two processes starting at once agree on one secret and nobody reads a half-written file.
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text + "\n")
        try:
            os.link(scratch, path)
        except FileExistsError:
            return _read_secret(path)
    finally:
        scratch.unlink(missing_ok=True)
    log.info("created a new acknowledge-link secret at %s", path)
    return text.encode()


def _read_secret(path: Path) -> bytes:
    if path.stat().st_mode & 0o077:
        log.warning("acknowledge-link secret %s is readable by others; chmod 600 it", path)
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        # Regenerating would silently break every link already sent; make a person decide.
        raise ValueError(f"{path}: the acknowledge-link secret file is empty; delete it")
    return text.encode()
