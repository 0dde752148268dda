"""Where fireline's secrets live: never in the config file, only a reference to them.

Its own module so that config sections in other modules (status page, war room) can use
the types without importing the whole config, which imports them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SecretRef(BaseModel):
    """Where a secret is: its SHA-256 (safe to commit), an environment variable, or a file.

    The secret itself is never written in the config file.
    """

    model_config = ConfigDict(extra="forbid")

    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if sum(s is not None for s in (self.sha256, self.env, self.file)) != 1:
            raise ValueError("give exactly one of sha256, env, file")
        return self

    def value(self) -> bytes | None:
        """The secret's bytes (None when only its digest is known)."""
        if self.env:
            text = os.environ.get(self.env)
            return text.encode() if text else None
        if self.file:
            return self.file.read_text().strip().encode()
        return None

    def digest(self) -> str | None:
        """SHA-256 hex of the secret."""
        if self.sha256:
            return self.sha256
        raw = self.value()
        return hashlib.sha256(raw).hexdigest() if raw else None

    def matches(self, presented: str) -> bool:
        """Constant-time check of a presented secret."""
        expected = self.digest()
        given = hashlib.sha256(presented.encode()).hexdigest()
        return expected is not None and hmac.compare_digest(given, expected)

    def problem(self) -> str | None:
        """Why this secret cannot be read now, if it cannot."""
        if self.env and not os.environ.get(self.env):
            return f"environment variable {self.env} is not set"
        if self.file and not self.file.is_file():
            return f"{self.file} does not exist"
        return None


class ReadableSecret(SecretRef):
    """A secret fireline must send, so a digest will not do."""

    @model_validator(mode="after")
    def _readable(self) -> Self:
        if self.sha256:
            raise ValueError("give env or file: fireline must send this secret, not just check it")
        return self
