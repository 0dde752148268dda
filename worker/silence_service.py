"""Silences on top of the SilenceStoreWorkflow, for the API, the CLI and alert intake."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client

from worker.errors import BadRequest, Conflict, NotFound
from worker.store_client import StoreClient
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


class SilenceService:
    """Add, list and expire silences."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.store = StoreClient(
            client,
            workflow_id=silence_store_id(task_queue),
            task_queue=task_queue,
            run=SilenceStoreWorkflow.run,
            start_input=SilenceStoreInput(),
            what="silences",
            errors={
                INVALID_SILENCE: BadRequest,
                SILENCE_NOT_FOUND: NotFound,
                SILENCE_ALREADY_EXPIRED: Conflict,
            },
            default_error=Conflict,
        )

    async def add(self, cmd: AddSilence, request_id: str | None = None) -> Silence:
        """Create a silence (starting the store on first use)."""
        silence: Silence = await self.store.update_with_start(
            SilenceStoreWorkflow.add_silence, cmd, request_id=request_id
        )
        return silence

    async def expire(self, cmd: ExpireSilence) -> Silence:
        """End a silence now."""
        silence: Silence = await self.store.update(
            SilenceStoreWorkflow.expire_silence, cmd, missing=f"unknown silence '{cmd.id}'"
        )
        return silence

    async def list(
        self, include_expired: bool = False, *, timeout: timedelta = QUERY_TIMEOUT
    ) -> list[Silence]:
        """Silences, newest first; none before the first one is added."""
        return await self.store.query(
            SilenceStoreWorkflow.silences, include_expired, timeout=timeout
        )
