"""OverrideStoreWorkflow: on-call overrides and shift swaps made at run time, durably.

Config holds the planned schedule; this holds "Bob covers for Alice tonight". Escalations
take the overrides in force when their incident is declared (their snapshot), so an
override added later applies to the next incident, never rewrites a running one's past.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        AddOverride,
        OverrideStoreInput,
        RemoveOverride,
        StoredOverride,
    )
    from workflows.history import history_is_long
    from workflows.oncall import Override

OVERRIDE_STORE_WORKFLOW_ID = "fireline-overrides"
INVALID_OVERRIDE = "InvalidOverride"
OVERRIDE_NOT_FOUND = "OverrideNotFound"
# Ended overrides are kept this long (for `list --all` and reviews), then pruned.
RETENTION = timedelta(days=7)


def override_store_id(task_queue: str) -> str:
    """One store per task queue, like the incident counter and the silences."""
    return f"{OVERRIDE_STORE_WORKFLOW_ID}-{task_queue}"


def _refuse(message: str, error_type: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=True)


@workflow.defn
class OverrideStoreWorkflow:
    """Holds runtime overrides until they have been over for a week."""

    @workflow.init
    def __init__(self, inp: OverrideStoreInput) -> None:
        self._input = inp
        self._overrides: dict[str, StoredOverride] = {o.id: o for o in inp.overrides}

    @workflow.run
    async def run(self, inp: OverrideStoreInput) -> None:
        """Serve Updates and queries until history is long, then continue as new."""
        await workflow.wait_condition(self._history_is_long)
        await workflow.wait_condition(workflow.all_handlers_finished)
        cutoff = workflow.now() - RETENTION
        kept = [o for o in self._overrides.values() if o.override.end > cutoff]
        workflow.continue_as_new(self._input.model_copy(update={"overrides": kept}))

    def _history_is_long(self) -> bool:
        return history_is_long(self._input.max_history_events)

    @workflow.query
    def overrides(self, schedule: str | None = None) -> list[StoredOverride]:
        """Every stored override, soonest first (optionally for one schedule).

        Ended ones are included until pruned: a query answers with the clock of the last
        workflow task, which a quiet store does not advance, so callers filter by theirs.
        """
        held = [o for o in self._overrides.values() if schedule is None or o.schedule == schedule]
        return sorted(held, key=lambda o: (o.override.start, o.id))

    @workflow.update
    def add_override(self, cmd: AddOverride) -> StoredOverride:
        """Store an override; the id comes from the workflow (deterministic)."""
        stored = StoredOverride(
            id=str(workflow.uuid4()), schedule=cmd.schedule, override=_override(cmd)
        )
        self._overrides[stored.id] = stored
        return stored

    @add_override.validator
    def _validate_add(self, cmd: AddOverride) -> None:
        try:
            override = _override(cmd)
        except ValidationError as exc:
            message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise _refuse(message, INVALID_OVERRIDE) from None
        if override.end <= workflow.now():
            raise _refuse(
                f"the override ends at {override.end.isoformat()}, which has already passed",
                INVALID_OVERRIDE,
            )

    @workflow.update
    def remove_override(self, cmd: RemoveOverride) -> StoredOverride:
        """Take an override back."""
        return self._overrides.pop(cmd.id)

    @remove_override.validator
    def _validate_remove(self, cmd: RemoveOverride) -> None:
        if cmd.id not in self._overrides:
            raise _refuse(f"unknown override '{cmd.id}'", OVERRIDE_NOT_FOUND)


def _override(cmd: AddOverride) -> Override:
    return Override(
        user=cmd.user, start=cmd.start, end=cmd.end, created_by=cmd.created_by, reason=cmd.reason
    )
