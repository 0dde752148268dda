"""Silences on top of the SilenceStoreWorkflow, for the API, the CLI and alert intake."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from worker.errors import BadRequest, Conflict, FirelineError, NotFound, Unavailable
from workflows.silences import (
    INVALID_SILENCE,
    SILENCE_ALREADY_EXPIRED,
    SILENCE_NOT_FOUND,
    SilenceStoreWorkflow,
    silence_store_id,
)
from workflows.suppression import AddSilence, ExpireSilence, Silence, SilenceStoreInput

# A query needs a worker; intake must not wait long for one (see AlertIntake).
QUERY_TIMEOUT = timedelta(seconds=5)

_ERRORS: dict[str, type[FirelineError]] = {
    INVALID_SILENCE: BadRequest,
    SILENCE_NOT_FOUND: NotFound,
    SILENCE_ALREADY_EXPIRED: Conflict,
}


class SilenceService:
    """Add, list and expire silences."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.store_id = silence_store_id(task_queue)

    async def add(self, cmd: AddSilence, request_id: str | None = None) -> Silence:
        """Create a silence (starting the store on first use)."""
        start = WithStartWorkflowOperation(
            SilenceStoreWorkflow.run,
            SilenceStoreInput(),
            id=self.store_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            silence: Silence = await self.client.execute_update_with_start_workflow(
                SilenceStoreWorkflow.add_silence, cmd, start_workflow_operation=start, id=request_id
            )
        except (WorkflowUpdateFailedError, RPCError) as exc:
            raise _translate(exc) from None
        return silence

    async def expire(self, cmd: ExpireSilence) -> Silence:
        """End a silence now."""
        handle = self.client.get_workflow_handle(self.store_id)
        try:
            silence: Silence = await handle.execute_update(SilenceStoreWorkflow.expire_silence, cmd)
        except (WorkflowUpdateFailedError, RPCError) as exc:
            if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"unknown silence '{cmd.id}'") from None
            raise _translate(exc) from None
        return silence

    async def list(
        self, include_expired: bool = False, *, timeout: timedelta = QUERY_TIMEOUT
    ) -> list[Silence]:
        """Silences, newest first; none before the first one is added."""
        handle = self.client.get_workflow_handle(self.store_id)
        try:
            result: list[Silence] = await handle.query(
                SilenceStoreWorkflow.silences, include_expired, rpc_timeout=timeout
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return []
            raise Unavailable(f"Temporal did not answer for silences: {exc.message}") from None
        except WorkflowQueryFailedError as exc:
            raise Unavailable(f"silence store query failed: {exc.message}") from None
        return result


def _translate(exc: Any) -> FirelineError:
    if isinstance(exc, WorkflowUpdateFailedError) and isinstance(exc.cause, ApplicationError):
        return _ERRORS.get(exc.cause.type or "", Conflict)(exc.cause.message)
    if isinstance(exc, RPCError):
        return Unavailable(f"Temporal did not answer for silences: {exc.message}")
    return Unavailable(str(exc))
