"""Stamp every runbook action's result with the attempt that produced it.

The RunbookWorkflow records each step's attempts on the timeline; a successful activity's
result is the only place the workflow can learn how many tries it took. One interceptor
does it for every action, so no action has to remember to.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from activities.contracts import ActionResult


class AttemptStamp(Interceptor):
    """Worker interceptor: ``ActionResult.attempt`` = the activity's attempt number."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Wrap every activity; only ActionResults are touched."""
        return _Stamp(next)


class _Stamp(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        result = await self.next.execute_activity(input)
        if isinstance(result, ActionResult):
            return result.model_copy(update={"attempt": activity.info().attempt})
        return result
