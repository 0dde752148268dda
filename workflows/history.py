"""When a long-lived workflow should continue as new. Called from workflow code only."""

from __future__ import annotations

from temporalio import workflow


def history_is_long(limit: int | None = None) -> bool:
    """The server suggests continue-as-new, or history reached ``limit`` events (tests)."""
    info = workflow.info()
    return info.is_continue_as_new_suggested() or (
        limit is not None and info.get_current_history_length() >= limit
    )
