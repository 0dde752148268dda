"""IncidentSequenceWorkflow: hands out human-sized incident numbers (INC-1, INC-2, ...).

One long-lived workflow per task queue serialises allocation, so two declarations never get
the same number; it is started lazily by the first allocation (update-with-start) and
continues as new when its history grows. A number that is already taken (another counter,
a reset) is reported back as ``at_least`` and the counter jumps past it.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import AllocatedNumber, AllocateNumber, SequenceInput

SEQUENCE_WORKFLOW_ID = "fireline-incident-sequence"


def sequence_workflow_id(task_queue: str) -> str:
    """One counter per task queue: a counter left on a queue nobody polls any more (the
    task queue setting changed) must not stop every declaration."""
    return f"{SEQUENCE_WORKFLOW_ID}-{task_queue}"


@workflow.defn
class IncidentSequenceWorkflow:
    """A durable counter."""

    @workflow.init
    def __init__(self, inp: SequenceInput) -> None:
        self._next = inp.next_number

    @workflow.run
    async def run(self, inp: SequenceInput) -> None:
        """Live until history is long, then continue with the next number."""
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(SequenceInput(next_number=self._next))

    @workflow.update
    def allocate(self, req: AllocateNumber) -> AllocatedNumber:
        """Reserve the next number."""
        number = max(self._next, req.at_least)
        self._next = number + 1
        return AllocatedNumber(number=number)

    @workflow.query
    def peek(self) -> int:
        """The number the next allocation will return."""
        return self._next
