"""OverrideStoreWorkflow: add, list, remove, and the validators' refusals."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from worker.runner import build_worker
from workflows.contracts import AddOverride, OverrideStoreInput, RemoveOverride
from workflows.overrides import OverrideStoreWorkflow


async def test_overrides_are_stored_listed_and_removed(
    time_env: WorkflowEnvironment, client: Client, task_queue: str
) -> None:
    now = await time_env.get_current_time()
    async with build_worker(client, task_queue):
        handle = await client.start_workflow(
            OverrideStoreWorkflow.run,
            OverrideStoreInput(),
            id=f"overrides-{uuid.uuid4()}",
            task_queue=task_queue,
        )

        async def add(schedule: str, user: str, start: int, end: int) -> str:
            stored = await handle.execute_update(
                OverrideStoreWorkflow.add_override,
                AddOverride(
                    schedule=schedule,
                    user=user,
                    start=now + timedelta(hours=start),
                    end=now + timedelta(hours=end),
                    created_by="alice",
                    reason="covering",
                ),
            )
            return stored.id

        later = await add("primary", "carol", 2, 4)
        sooner = await add("primary", "bob", 0, 1)
        other = await add("secondary", "bob", 0, 1)
        listed = await handle.query(OverrideStoreWorkflow.overrides, "primary")
        assert [o.id for o in listed] == [sooner, later]  # soonest first
        assert len(await handle.query(OverrideStoreWorkflow.overrides, None)) == 3

        async def refused(update: object, arg: object) -> ApplicationError:
            with pytest.raises(WorkflowUpdateFailedError) as caught:
                await handle.execute_update(update, arg)  # type: ignore[call-overload]
            assert isinstance(caught.value.cause, ApplicationError)
            return caught.value.cause

        backwards = AddOverride(
            schedule="primary",
            user="bob",
            start=now + timedelta(hours=2),
            end=now + timedelta(hours=1),
            created_by="alice",
        )
        assert (await refused(OverrideStoreWorkflow.add_override, backwards)).message.startswith(
            "end "
        )
        past = AddOverride(
            schedule="primary",
            user="bob",
            start=now - timedelta(hours=3),
            end=now - timedelta(hours=2),
            created_by="alice",
        )
        assert (await refused(OverrideStoreWorkflow.add_override, past)).message.endswith(
            "which has already passed"
        )
        missing = await refused(
            OverrideStoreWorkflow.remove_override, RemoveOverride(id="nope", actor="alice")
        )
        assert (missing.type, missing.message) == ("OverrideNotFound", "unknown override 'nope'")

        removed = await handle.execute_update(
            OverrideStoreWorkflow.remove_override, RemoveOverride(id=other, actor="bob")
        )
        assert removed.schedule == "secondary"
        assert [o.id for o in await handle.query(OverrideStoreWorkflow.overrides, None)] == [
            sooner,
            later,
        ]
        with contextlib.suppress(RPCError):
            await handle.terminate("test finished")
