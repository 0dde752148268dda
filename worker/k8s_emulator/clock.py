"""Emulator time and identifiers, both controllable so tests are deterministic."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

# The alphabet Kubernetes uses for generated name suffixes: no vowels (no accidental words)
# and no look-alike characters.
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class Clock:
    """Monotonic and wall time that tests can move forward without sleeping."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """Seconds on a monotonic scale, including every `advance`."""
        return time.monotonic() + self._offset

    def now(self) -> datetime:
        """Current wall time in UTC, including every `advance`."""
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def timestamp(self) -> str:
        """Current wall time as a Kubernetes `metav1.Time` string (second precision)."""
        return format_timestamp(self.now())

    def advance(self, seconds: float) -> None:
        """Move both time scales forward."""
        if seconds < 0:
            raise ValueError("the emulator clock cannot go backwards")
        with self._lock:
            self._offset += seconds


def format_timestamp(moment: datetime) -> str:
    """Render a datetime the way the apiserver does: RFC 3339, UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp as written by the apiserver or by a client."""
    return datetime.fromisoformat(text).astimezone(UTC)


class Ids:
    """Seeded source of uids and generated-name suffixes."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def uid(self) -> str:
        """A random (version 4 layout) UUID drawn from the seeded generator."""
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def suffix(self, length: int = 5) -> str:
        """A generated-name suffix such as the `x7k2q` of `checkout-5d8f9c7b4-x7k2q`."""
        with self._lock:
            return "".join(self._rng.choice(SAFE_ALPHABET) for _ in range(length))

    def hex(self, length: int = 16) -> str:
        """Lower-case hex digits, as in event names."""
        with self._lock:
            return "".join(self._rng.choice("0123456789abcdef") for _ in range(length))
