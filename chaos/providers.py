"""Vendor fakes that misbehave on a seeded fraction of calls (429, 5xx, resets, timeouts)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable

from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.server import Fault, RecordedRequest

# httpx in worker.wiring gives a vendor 10 s: a reply slower than that is a client timeout
# (the vendor still acted, so a retry must not page twice).
TIMEOUT_DELAY = 11.0

FAULTS: dict[str, Fault] = {
    "429": Fault("status", status=429, retry_after="1"),
    "500": Fault("status", status=500),
    "503": Fault("status", status=503),
    "reset": Fault("reset"),
    # The vendor acted and the answer was lost: the nastiest case for idempotency.
    "reset-after-processing": Fault("reset", process=True),
    "timeout": Fault("slow", delay=TIMEOUT_DELAY),
}


class FlakyPagerDuty(FakePagerDuty):
    """FakePagerDuty failing ``rate`` of its calls with a seeded choice of :data:`FAULTS`."""

    def __init__(
        self,
        routing_keys: Iterable[str],
        *,
        rate: float,
        seed: int,
        kinds: Iterable[str] = tuple(FAULTS),
    ) -> None:
        """Fail ``rate`` of the requests; draws come from ``seed``."""
        super().__init__(routing_keys)
        self.rate = rate
        self.kinds = tuple(kinds)
        self.injected: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._draws = threading.Lock()

    def lose_answers(self, times: int) -> None:
        """The next ``times`` requests are acted on, then their connection is reset."""
        self.inject(FAULTS["reset-after-processing"], times)
        with self._draws:
            self.injected["reset-after-processing"] += times

    def admit(self, request: RecordedRequest) -> Fault | None:
        """Record the request; a fault queued by a test wins over a random one."""
        queued = super().admit(request)
        if queued is not None:
            return queued
        with self._draws:
            if self._rng.random() >= self.rate:
                return None
            kind = self._rng.choice(self.kinds)
            self.injected[kind] += 1
        return FAULTS[kind]
