"""How workflows put an activity's failure into words for people."""

from __future__ import annotations

from temporalio.exceptions import ActivityError


def activity_failure_reason(err: ActivityError) -> str:
    """The activity's own reason (its ApplicationError's message), not Temporal's wrapper."""
    return str(err.cause) if err.cause is not None else str(err)
