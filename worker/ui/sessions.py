"""Dashboard sessions: who is logged in, and proof that a form came from our own page.

A session is a signed cookie, not a server-side record, so any API replica sharing the
signing key reads it. It carries the user, an expiry, a random nonce (the CSRF token and
logout are bound to it) and, in token mode, a keyed fingerprint of the API token that
logged in: remove the token from ``auth.tokens`` and its sessions stop working too.

Who may log in is decided exactly as the API decides who a caller is
(``FirelineConfig.token_user``; local mode only without tokens and only from loopback).

::

    LoginRefused (ValueError)   a login attempt that names its reason; never a 500
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from worker.config import FirelineConfig
from worker.settings import is_loopback

SESSION_COOKIE = "fireline_session"
FLASH_COOKIE = "fireline_flash"
LOGIN_COOKIE = "fireline_login"
DEFAULT_TTL = timedelta(hours=12)
# A flash message lives across exactly one redirect; a minute is plenty.
FLASH_TTL = timedelta(minutes=1)
LOGIN_FORM_TTL = timedelta(hours=1)


class LoginRefused(ValueError):
    """Why a login attempt was refused, in words for the login page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def session_key(ack_secret: bytes) -> bytes:
    """The dashboard's signing key, derived from the acknowledge-link secret.

    Every API process already shares that secret (``wiring.ack_secret``: the setting, else
    the file kept in the state directory), so sessions work across replicas with nothing
    new to configure; the derivation keeps a session signature useless as an ack link.
    """
    if not ack_secret:
        raise ValueError("the dashboard needs a non-empty signing secret")
    return hmac.new(ack_secret, b"fireline dashboard sessions v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class Session:
    """A logged-in dashboard user."""

    user: str
    nonce: str
    expires_at: datetime
    token_mark: str | None
    csrf: str


@dataclass(frozen=True)
class Flash:
    """A one-shot message shown after a redirect: ``ok`` or ``error``."""

    kind: str
    text: str


def local_mode(config: FirelineConfig) -> bool:
    """No API tokens configured: people say who they are, from this machine only."""
    return not config.auth.tokens


def user_from_token(config: FirelineConfig, token: str) -> str:
    """The user an API token belongs to (the API's own check); refused otherwise."""
    token = token.strip()
    if not token:
        raise LoginRefused("token: paste your fireline API token")
    user = config.token_user(token)
    if user is None:
        raise LoginRefused("token: this token is not valid")
    return user


def local_user(config: FirelineConfig, user: str, client_host: str | None) -> str:
    """The user picked on a local-mode login form, if this request may pick one."""
    if not is_loopback(client_host or ""):
        raise LoginRefused("local mode answers only on this machine (loopback)")
    user = user.strip()
    if not user:
        raise LoginRefused("user: choose who you are")
    if config.users and user not in config.users:
        raise LoginRefused(f"user: unknown user '{user}'")
    return user


class SessionSigner:
    """Issues and checks session, CSRF, login-form and flash tokens with one key."""

    def __init__(
        self,
        key: bytes,
        config: FirelineConfig,
        *,
        ttl: timedelta = DEFAULT_TTL,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._key = key
        self._config = config
        self.ttl = ttl
        self._now = now
        # Logged-out nonces until they would have expired anyway. Per process: a replica
        # that did not see the logout honours the cookie until expiry (it is deleted from
        # the browser in any case).
        self._revoked: dict[str, datetime] = {}

    # --- sessions ----------------------------------------------------------------------------

    def issue(self, user: str, token: str | None = None) -> tuple[str, Session]:
        """A new session for ``user``: the cookie value and the session it carries."""
        nonce = secrets.token_urlsafe(18)
        expires = self._now() + self.ttl
        mark = self._token_mark(token) if token is not None else None
        body: dict[str, Any] = {"u": user, "n": nonce, "e": int(expires.timestamp())}
        if mark is not None:
            body["t"] = mark
        cookie = self._sign("session", body)
        return cookie, self._session(user, nonce, expires, mark)

    def read(self, cookie: str | None, client_host: str | None) -> Session | None:
        """The session in ``cookie`` if it is genuine, unexpired, and still allowed."""
        body = self._verify("session", cookie)
        if body is None:
            return None
        user, nonce, expiry, mark = body.get("u"), body.get("n"), body.get("e"), body.get("t")
        if not (isinstance(user, str) and isinstance(nonce, str) and isinstance(expiry, int)):
            return None
        if mark is not None and not isinstance(mark, str):
            return None
        expires = datetime.fromtimestamp(expiry, UTC)
        if expires <= self._now() or nonce in self._revoked:
            return None
        if local_mode(self._config):
            # A session made in local mode is worth nothing once tokens are configured (it
            # has no token mark), nor from another machine.
            if mark is not None or not is_loopback(client_host or ""):
                return None
        elif mark is None or not self._token_still_configured(user, mark):
            return None
        return self._session(user, nonce, expires, mark)

    def revoke(self, session: Session) -> None:
        """Log ``session`` out in this process."""
        now = self._now()
        self._revoked = {n: at for n, at in self._revoked.items() if at > now}
        self._revoked[session.nonce] = session.expires_at

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        """True when a form's CSRF field is the one bound to ``session``."""
        return presented is not None and hmac.compare_digest(presented, session.csrf)

    # --- login form --------------------------------------------------------------------------

    def login_form(self) -> tuple[str, str]:
        """A (cookie, form field) pair for the login form: both must come back together."""
        nonce = secrets.token_urlsafe(18)
        expires = int((self._now() + LOGIN_FORM_TTL).timestamp())
        return self._sign("login", {"n": nonce, "e": expires}), self._mac("login-form", nonce)

    def login_form_ok(self, cookie: str | None, presented: str | None) -> bool:
        """True when the login form was served by us to this browser, recently."""
        body = self._verify("login", cookie)
        if body is None or presented is None:
            return False
        nonce, expiry = body.get("n"), body.get("e")
        if not isinstance(nonce, str) or not isinstance(expiry, int):
            return False
        if datetime.fromtimestamp(expiry, UTC) <= self._now():
            return False
        return hmac.compare_digest(presented, self._mac("login-form", nonce))

    # --- flash messages ----------------------------------------------------------------------

    def flash(self, kind: str, text: str) -> str:
        """A signed one-shot message (signed so nobody can plant text on our pages)."""
        expires = int((self._now() + FLASH_TTL).timestamp())
        return self._sign("flash", {"k": kind, "m": text[:2000], "e": expires})

    def read_flash(self, cookie: str | None) -> Flash | None:
        """The message in ``cookie`` if we signed it and it is fresh."""
        body = self._verify("flash", cookie)
        if body is None:
            return None
        kind, text, expiry = body.get("k"), body.get("m"), body.get("e")
        if not (isinstance(kind, str) and isinstance(text, str) and isinstance(expiry, int)):
            return None
        if datetime.fromtimestamp(expiry, UTC) <= self._now():
            return None
        return Flash(kind, text)

    # --- plumbing ----------------------------------------------------------------------------

    def _session(self, user: str, nonce: str, expires: datetime, mark: str | None) -> Session:
        return Session(user, nonce, expires, mark, self._mac("csrf", nonce))

    def _token_mark(self, token: str) -> str:
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        return self._mac("token", digest)[:22]

    def _token_still_configured(self, user: str, mark: str) -> bool:
        for entry in self._config.auth.tokens:
            digest = entry.secret.digest()
            if entry.user != user or digest is None:
                continue
            if hmac.compare_digest(self._mac("token", digest)[:22], mark):
                return True
        return False

    def _mac(self, purpose: str, text: str) -> str:
        mac = hmac.new(self._key, f"{purpose}:{text}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def _sign(self, purpose: str, body: dict[str, Any]) -> str:
        payload = base64.urlsafe_b64encode(
            json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        )
        text = payload.rstrip(b"=").decode()
        return f"{text}.{self._mac(purpose, text)}"

    def _verify(self, purpose: str, value: str | None) -> dict[str, Any] | None:
        if not value or value.count(".") != 1:
            return None
        text, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(purpose, text)):
            return None
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) else None
