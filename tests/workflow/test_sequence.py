"""IncidentSequenceWorkflow: numbers in order, never reused, and a floor after collisions."""

from __future__ import annotations

import uuid

from temporalio.client import Client

from worker.runner import build_worker
from workflows.contracts import AllocateNumber, SequenceInput
from workflows.sequence import IncidentSequenceWorkflow, sequence_workflow_id


async def test_numbers_are_sequential_and_jump_to_a_floor(client: Client, task_queue: str) -> None:
    async with build_worker(client, task_queue):
        handle = await client.start_workflow(
            IncidentSequenceWorkflow.run,
            SequenceInput(),
            id=f"seq-{uuid.uuid4()}",
            task_queue=task_queue,
        )

        async def allocate(at_least: int = 0) -> int:
            result = await handle.execute_update(
                IncidentSequenceWorkflow.allocate,
                AllocateNumber(requested_by="alice", at_least=at_least),
            )
            return result.number

        assert [await allocate(), await allocate()] == [1, 2]
        assert await allocate(at_least=10) == 10
        assert await allocate() == 11
        assert await allocate(at_least=5) == 12  # a floor below the counter changes nothing
        assert await handle.query(IncidentSequenceWorkflow.peek) == 13
        await handle.terminate("test finished")


def test_each_task_queue_has_its_own_counter() -> None:
    assert sequence_workflow_id("fireline") == "fireline-incident-sequence-fireline"
    assert sequence_workflow_id("a") != sequence_workflow_id("b")
