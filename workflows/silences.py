"""SilenceStoreWorkflow: the durable list of silences, one per namespace.

People add and expire silences through Updates, whose validators refuse bad requests before
anything is written to history; the API, CLI and alert workflows read them with the
``silences`` query. Started lazily by the first ``add_silence`` (update-with-start), it lives
forever and continues as new when its history grows, dropping silences that ended more than
the retention ago (Alertmanager's ``--data.retention``, 120h by default).
"""

from __future__ import annotations

import contextlib

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.history import history_is_long
    from workflows.suppression import (
        AddSilence,
        ExpireSilence,
        Silence,
        SilenceRejected,
        SilenceState,
        SilenceStoreInput,
        build_silence,
        next_transition,
        prune_silences,
        sort_silences,
    )

SILENCE_STORE_WORKFLOW_ID = "fireline-silences"


def silence_store_id(task_queue: str) -> str:
    """One store per task queue: a store left on a queue nobody polls any more (the task
    queue setting changed) must not hold up alert intake."""
    return f"{SILENCE_STORE_WORKFLOW_ID}-{task_queue}"


# ApplicationError types the API maps to HTTP statuses; tests assert them.
INVALID_SILENCE = "InvalidSilence"
SILENCE_NOT_FOUND = "SilenceNotFound"
SILENCE_ALREADY_EXPIRED = "SilenceAlreadyExpired"

# Validators run before an id exists, and must not draw from workflow.uuid4(): validators do
# not run on replay, so drawing there would shift every later id.
_PROVISIONAL_ID = "provisional"


def _refuse(message: str, error_type: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=True)


@workflow.defn
class SilenceStoreWorkflow:
    """Holds every silence until it has been over for longer than the retention."""

    @workflow.init
    def __init__(self, inp: SilenceStoreInput) -> None:
        # Built here, not in run(), so Updates in the first activation after
        # continue-as-new see the carried silences.
        self._input = inp
        self._silences: dict[str, Silence] = {s.id: s for s in inp.silences}
        # Set by Updates: a new or expired silence may move the next state change.
        self._changed = False

    @workflow.run
    async def run(self, inp: SilenceStoreInput) -> None:
        """Serve Updates and queries until history is long, then continue as new."""
        while not self._history_is_long():
            await self._wait_for_change()
        await workflow.wait_condition(workflow.all_handlers_finished)
        kept = prune_silences(self._silences.values(), workflow.now(), self._input.retention)
        workflow.logger.info(
            "continuing as new with %d silences (%d pruned)",
            len(kept),
            len(self._silences) - len(kept),
        )
        workflow.continue_as_new(self._input.model_copy(update={"silences": kept}))

    async def _wait_for_change(self) -> None:
        # A query answers with the time of the last workflow task, so the workflow wakes
        # when a silence changes state; otherwise a quiet store would list ended silences.
        self._changed = False
        wake = next_transition(self._silences.values(), workflow.now())
        timeout = None if wake is None else wake - workflow.now()
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._changed or self._history_is_long(), timeout=timeout
            )

    def _history_is_long(self) -> bool:
        return history_is_long(self._input.max_history_events)

    # --- queries -------------------------------------------------------------------------

    @workflow.query
    def silences(self, include_expired: bool = False) -> list[Silence]:
        """Silences in Alertmanager's order: active, pending, then (if asked) expired."""
        now = workflow.now()
        listed = sort_silences(self._silences.values(), now)
        if include_expired:
            return listed
        return [s for s in listed if s.state(now) is not SilenceState.EXPIRED]

    # --- updates -------------------------------------------------------------------------

    @workflow.update
    def add_silence(self, cmd: AddSilence) -> Silence:
        """Create a silence; it starts now unless it asks for a later start."""
        silence = self._build(cmd, str(workflow.uuid4()))
        self._silences[silence.id] = silence
        self._changed = True
        if not workflow.unsafe.is_replaying():
            workflow.logger.info("silence %s added by %s", silence.id, silence.created_by)
        return silence

    @add_silence.validator
    def _validate_add_silence(self, cmd: AddSilence) -> None:
        self._build(cmd, _PROVISIONAL_ID)

    @workflow.update
    def expire_silence(self, cmd: ExpireSilence) -> Silence:
        """End a pending or active silence now, recording who did it."""
        current = self._silences[cmd.id]
        # Validated, not model_copy'd, so the recorded silence keeps its invariants.
        expired = Silence.model_validate(
            {**current.model_dump(), "expired_at": workflow.now(), "expired_by": cmd.actor}
        )
        self._silences[cmd.id] = expired
        self._changed = True
        if not workflow.unsafe.is_replaying():
            workflow.logger.info("silence %s expired by %s", cmd.id, cmd.actor)
        return expired

    @expire_silence.validator
    def _validate_expire_silence(self, cmd: ExpireSilence) -> None:
        silence = self._silences.get(cmd.id)
        if silence is None:
            raise _refuse(f"unknown silence '{cmd.id}'", SILENCE_NOT_FOUND)
        now = workflow.now()
        if silence.state(now) is SilenceState.EXPIRED:
            raise _refuse(
                f"silence '{cmd.id}' already expired at {silence.ended_at.isoformat()}",
                SILENCE_ALREADY_EXPIRED,
            )

    def _build(self, cmd: AddSilence, silence_id: str) -> Silence:
        try:
            return build_silence(cmd, id=silence_id, now=workflow.now())
        except SilenceRejected as rejected:
            raise _refuse(str(rejected), INVALID_SILENCE) from None
