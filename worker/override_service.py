"""Runtime on-call overrides on top of the OverrideStoreWorkflow."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from temporalio.client import Client

from worker.errors import BadRequest, FirelineError, NotFound
from worker.store_client import StoreClient
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
        self.store = StoreClient(
            client,
            workflow_id=override_store_id(task_queue),
            task_queue=task_queue,
            run=OverrideStoreWorkflow.run,
            start_input=OverrideStoreInput(),
            what="overrides",
            errors={INVALID_OVERRIDE: BadRequest, OVERRIDE_NOT_FOUND: NotFound},
            default_error=BadRequest,
        )

    async def add(self, cmd: AddOverride) -> StoredOverride:
        """Store an override (starting the store on first use)."""
        stored: StoredOverride = await self.store.update_with_start(
            OverrideStoreWorkflow.add_override, cmd
        )
        return stored

    async def remove(self, cmd: RemoveOverride) -> StoredOverride:
        """Take an override back."""
        removed: StoredOverride = await self.store.update(
            OverrideStoreWorkflow.remove_override, cmd, missing=f"unknown override '{cmd.id}'"
        )
        return removed

    async def list(
        self, schedule: str | None = None, *, timeout: timedelta | None = None
    ) -> list[StoredOverride]:
        """Overrides not yet over (by this process's clock); none before the first is added."""
        stored: list[StoredOverride] = await self.store.query(
            OverrideStoreWorkflow.overrides, schedule, timeout=timeout
        )
        now = datetime.now(UTC)
        return [o for o in stored if o.override.end > now]

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
