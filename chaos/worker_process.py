"""``python -m chaos.worker_process``: ``fireline worker``, optionally with a planted bug.

With ``CHAOS_BREAK_DEDUP_KEYS=1`` every PagerDuty event gets a fresh dedup key, the bug
of deriving the key from the attempt instead of the page. The chaos run then must report
a duplicate page: that is how the suite proves its checker can fail.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from activities.contracts import Page
from activities.providers.pagerduty import PagerDutyNotifier
from worker.cli import main

BREAK_DEDUP_KEYS = "CHAOS_BREAK_DEDUP_KEYS"


def break_dedup_keys() -> None:
    """Make every PagerDuty event carry a key of its own (deliberately wrong)."""
    original = PagerDutyNotifier.event

    def salted(self: PagerDutyNotifier, page: Page) -> dict[str, Any]:
        body = original(self, page)
        body["dedup_key"] = f"{page.dedup_key}-{uuid.uuid4().hex[:8]}"
        return body

    PagerDutyNotifier.event = salted  # type: ignore[method-assign]


if __name__ == "__main__":
    if os.environ.get(BREAK_DEDUP_KEYS) == "1":
        break_dedup_keys()
    main(["worker"])
