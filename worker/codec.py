"""Payload encryption: what fireline writes to Temporal is AES-256-GCM ciphertext.

Every payload (workflow and activity inputs and results, Update arguments, memos, failure
messages) passes through :class:`EncryptionCodec` on its way to the server, so neither the
Temporal server nor its database sees incident contents in clear. Search attributes are the
exception Temporal makes by design: they are indexed, so keep contents out of them.

An encrypted payload is ``metadata = {encoding: binary/encrypted, encryption-key-id: ID}``
and ``data = nonce (12 bytes) || ciphertext+tag`` where the plaintext is the whole original
payload (its serialized protobuf, metadata included) and the associated data binds the key
id, so a payload cannot be relabelled as another key's.

Keys come from settings only (``FIRELINE_ENCRYPTION_KEYS`` or
``FIRELINE_ENCRYPTION_KEYS_FILE``): ``key-id=base64key`` entries, one a line or comma
separated, the first (or ``FIRELINE_ENCRYPTION_ACTIVE_KEY``) active. The active key
encrypts; every listed key decrypts, so a rotated-out key stays listed until no history that
matters was written with it. Payloads that are not encrypted pass through decode unchanged,
so histories recorded before encryption was switched on still read and replay.

Exceptions::

    EncryptionError (ValueError)  base
    ├── EncryptionKeyError        the key settings are wrong; raised at start, says what to fix
    └── DecryptionError           a payload cannot be decrypted (unknown key id, wrong key,
                                  altered ciphertext)
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from worker.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, the GCM standard nonce
# Versioned so a future format change cannot be confused with this one.
_AAD_PREFIX = b"fireline-payload-v1:"
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_BAD_ID = (
    "the key id is not valid: use 1-64 letters, digits, '.', '_' or '-', starting with a "
    "letter or digit"
)

KEYS_ENV = "FIRELINE_ENCRYPTION_KEYS"
KEYS_FILE_ENV = "FIRELINE_ENCRYPTION_KEYS_FILE"
ACTIVE_ENV = "FIRELINE_ENCRYPTION_ACTIVE_KEY"


class EncryptionError(ValueError):
    """Base of the encryption errors."""


class EncryptionKeyError(EncryptionError):
    """The encryption key settings are wrong; the message says what to fix."""


class DecryptionError(EncryptionError):
    """A payload cannot be decrypted with the configured keys."""


@dataclass(frozen=True)
class Keyring:
    """Named AES-256 keys: ``active`` encrypts, all of them decrypt."""

    active: str
    # Key material never appears in a repr, a log line or an error message.
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise EncryptionKeyError(
                f"{ACTIVE_ENV}: key id '{self.active}' is not among the listed keys "
                f"({', '.join(self.keys) or 'none'})"
            )
        for key_id, key in self.keys.items():
            if len(key) != KEY_BYTES:
                raise EncryptionKeyError(
                    f"key '{key_id}' is {len(key)} bytes; AES-256-GCM needs {KEY_BYTES}"
                )

    @property
    def ids(self) -> list[str]:
        """The key ids, in the order they were listed."""
        return list(self.keys)


def generate_key_line(key_id: str) -> str:
    """A new random key as a ``key-id=base64key`` line."""
    if not _KEY_ID.match(key_id):
        raise EncryptionKeyError(f"key id '{key_id[:64]}': {_BAD_ID}")
    return f"{key_id}={base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def parse_keys(text: str, *, source: str = KEYS_ENV, active: str | None = None) -> Keyring:
    """Parse ``key-id=base64key`` entries (lines or commas; ``#`` comments in files)."""
    entries = [
        entry.strip()
        for line in text.splitlines()
        if not line.strip().startswith("#")
        for entry in line.split(",")
        if entry.strip()
    ]
    if not entries:
        raise EncryptionKeyError(
            f"{source} holds no keys; expected 'key-id=base64key' entries "
            "(create one with `fireline keys generate`)"
        )
    keys: dict[str, bytes] = {}
    for number, entry in enumerate(entries, start=1):
        key_id, sep, encoded = entry.partition("=")
        key_id = key_id.strip()
        if not sep or not key_id:
            raise EncryptionKeyError(
                f"{source}: entry {number} is not 'key-id=base64key' "
                "(create one with `fireline keys generate`)"
            )
        if not encoded.strip():
            # Most likely a bare base64 key, whose '=' padding looks like a separator.
            raise EncryptionKeyError(
                f"{source}: entry {number} has no key after 'key-id=' (a bare key needs an "
                "id in front: 'key-id=base64key')"
            )
        if not _KEY_ID.match(key_id):
            # Not echoed: a malformed entry may be key material.
            raise EncryptionKeyError(f"{source}: entry {number}: {_BAD_ID}")
        if key_id in keys:
            raise EncryptionKeyError(
                f"{source}: key id '{key_id}' is listed more than once; every key needs its "
                "own id, or old payloads could not say which key decrypts them"
            )
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise EncryptionKeyError(
                f"{source}: key '{key_id}' is not valid base64 "
                "(create one with `fireline keys generate`)"
            ) from None
        if len(key) != KEY_BYTES:
            raise EncryptionKeyError(
                f"{source}: key '{key_id}' is {len(key)} bytes; AES-256-GCM needs "
                f"{KEY_BYTES} (create one with `fireline keys generate`)"
            )
        keys[key_id] = key
    return Keyring(active=active or next(iter(keys)), keys=keys)


def keyring_from_settings(settings: Settings) -> Keyring | None:
    """The configured keyring, or None when encryption is off; raises on a bad setting."""
    keys, path = settings.encryption_keys, settings.encryption_keys_file
    active = settings.encryption_active_key
    if keys is not None and path is not None:
        raise EncryptionKeyError(f"set {KEYS_ENV} or {KEYS_FILE_ENV}, not both")
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise EncryptionKeyError(f"{KEYS_FILE_ENV}: {path} is not UTF-8 text") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise EncryptionKeyError(f"{KEYS_FILE_ENV}: cannot read {path}: {reason}") from None
        return parse_keys(text, source=f"{KEYS_FILE_ENV} ({path})", active=active)
    if keys is not None:
        return parse_keys(keys.get_secret_value(), source=KEYS_ENV, active=active)
    if active is not None:
        raise EncryptionKeyError(
            f"{ACTIVE_ENV} is set but no keys are: set {KEYS_ENV} or {KEYS_FILE_ENV}"
        )
    return None


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM for every payload; unencrypted payloads decode as themselves."""

    def __init__(self, keyring: Keyring) -> None:
        """Encrypt with the keyring's active key; decrypt with any of its keys."""
        self._keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    @property
    def active_key_id(self) -> str:
        """The id new payloads are encrypted under."""
        return self._keyring.active

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload, whole, under the active key."""
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt encrypted payloads; return the others unchanged."""
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """One payload, encrypted."""
        key_id = self._keyring.active
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), _aad(key_id))
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """One payload, decrypted (or as it is, if it was never encrypted)."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA)
        if raw_id is None:
            raise DecryptionError(f"encrypted payload has no '{KEY_ID_METADATA}' metadata")
        key_id = raw_id.decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise DecryptionError(
                f"payload was encrypted with key '{key_id}', which is not configured "
                f"(configured: {', '.join(self._keyring.ids)}); add it back to {KEYS_ENV} "
                f"or {KEYS_FILE_ENV}"
            )
        if len(payload.data) <= NONCE_BYTES:
            raise DecryptionError(f"payload encrypted with key '{key_id}' is truncated")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, _aad(key_id))
        except InvalidTag:
            raise DecryptionError(
                f"payload encrypted with key '{key_id}' failed authentication: the key "
                f"configured as '{key_id}' is not the one that encrypted it, or the payload "
                "was altered"
            ) from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def _aad(key_id: str) -> bytes:
    return _AAD_PREFIX + key_id.encode()
