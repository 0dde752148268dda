"""Runtime on-call overrides on top of the OverrideStoreWorkflow."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from worker.errors import BadRequest, FirelineError, NotFound, Unavailable
from workflows.contracts import AddOverride, OverrideStoreInput, RemoveOverride, StoredOverride
from workflows.escalation import EscalationSnapshot
from workflows.oncall import with_override
from workflows.overrides import (
    INVALID_OVERRIDE,
    OVERRIDE_NOT_FOUND,
    OverrideStoreWorkflow,
    override_store_id,
)

log = logging.getLogger("fireline.oncall")
# Declaration must not wait long on a store whose worker is gone; see list().
LOOKUP_TIMEOUT = timedelta(seconds=2)

_ERRORS: dict[str, type[FirelineError]] = {
    INVALID_OVERRIDE: BadRequest,
    OVERRIDE_NOT_FOUND: NotFound,
}


class OverrideService:
    """Add, list and remove runtime overrides; merge them into escalation snapshots."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.store_id = override_store_id(task_queue)

    async def add(self, cmd: AddOverride) -> StoredOverride:
        """Store an override (starting the store on first use)."""
        start = WithStartWorkflowOperation(
            OverrideStoreWorkflow.run,
            OverrideStoreInput(),
            id=self.store_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            stored: StoredOverride = await self.client.execute_update_with_start_workflow(
                OverrideStoreWorkflow.add_override, cmd, start_workflow_operation=start
            )
        except (WorkflowUpdateFailedError, RPCError) as exc:
            raise _translate(exc) from None
        return stored

    async def remove(self, cmd: RemoveOverride) -> StoredOverride:
        """Take an override back."""
        handle = self.client.get_workflow_handle(self.store_id)
        try:
            removed: StoredOverride = await handle.execute_update(
                OverrideStoreWorkflow.remove_override, cmd
            )
        except (WorkflowUpdateFailedError, RPCError) as exc:
            if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"unknown override '{cmd.id}'") from None
            raise _translate(exc) from None
        return removed

    async def list(
        self, schedule: str | None = None, *, timeout: timedelta | None = None
    ) -> list[StoredOverride]:
        """Overrides not yet over (by this process's clock); none before the first is added."""
        handle = self.client.get_workflow_handle(self.store_id)
        try:
            result: list[StoredOverride] = await handle.query(
                OverrideStoreWorkflow.overrides, schedule, rpc_timeout=timeout
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return []
            raise Unavailable(f"Temporal did not answer for overrides: {exc.message}") from None
        now = datetime.now(UTC)
        return [o for o in result if o.override.end > now]

    async def merged(self, snapshot: EscalationSnapshot | None) -> EscalationSnapshot | None:
        """The snapshot with the runtime overrides of its schedules added.

        Better to page from the planned schedule than not at all: if the store cannot
        answer in time, the snapshot is used as configured and the log says so.
        """
        if snapshot is None or not snapshot.schedules:
            return snapshot
        try:
            stored = await self.list(timeout=LOOKUP_TIMEOUT)
        except FirelineError as exc:
            log.warning("overrides unavailable, paging from the configured schedules: %s", exc)
            return snapshot
        schedules = dict(snapshot.schedules)
        for item in stored:
            if item.schedule in schedules:
                schedules[item.schedule] = with_override(schedules[item.schedule], item.override)
        return snapshot.model_copy(update={"schedules": schedules})


def _translate(exc: Any) -> FirelineError:
    if isinstance(exc, WorkflowUpdateFailedError) and isinstance(exc.cause, ApplicationError):
        return _ERRORS.get(exc.cause.type or "", BadRequest)(exc.cause.message)
    if isinstance(exc, RPCError):
        return Unavailable(f"Temporal did not answer for overrides: {exc.message}")
    return Unavailable(str(exc))
