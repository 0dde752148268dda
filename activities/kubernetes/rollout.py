"""Whether a Deployment's rollout is done, still going, or failed: ``kubectl rollout status``.

kubectl's test, in order: the controller must have observed the latest spec
(``observedGeneration >= generation``); a ``Progressing`` condition with reason
``ProgressDeadlineExceeded`` is a failure; then every desired replica must be updated, no old
replica may remain, and every updated replica must be available. With a revision asked for,
another revision having taken over is a failure too (kubectl refuses that case outright).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from activities.kubernetes.objects import Obj, metadata, name_of, revision_of

PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


class Phase(StrEnum):
    """Where a rollout stands."""

    PROGRESSING = "progressing"
    COMPLETE = "complete"
    FAILED = "failed"


@dataclass(frozen=True)
class RolloutState:
    """One observation of a rollout, with kubectl's wording for it."""

    phase: Phase
    message: str
    revision: int
    desired: int
    updated: int
    replicas: int
    available: int


def rollout_state(deployment: Obj, revision: int | None = None) -> RolloutState:
    """Judge one read of ``deployment`` as ``kubectl rollout status`` would."""
    name = name_of(deployment)
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    current = revision_of(deployment)
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)

    def state(phase: Phase, message: str) -> RolloutState:
        return RolloutState(phase, message, current, desired, updated, replicas, available)

    if revision is not None and current > revision:
        return state(
            Phase.FAILED,
            f'deployment "{name}" moved on to revision {current} while waiting for '
            f"revision {revision}",
        )
    generation = int(metadata(deployment).get("generation") or 0)
    if int(status.get("observedGeneration") or 0) < generation or (
        revision is not None and current < revision
    ):
        return state(Phase.PROGRESSING, "Waiting for deployment spec update to be observed...")
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == PROGRESS_DEADLINE_EXCEEDED
        ):
            detail = condition.get("message") or ""
            return state(
                Phase.FAILED,
                f'deployment "{name}" exceeded its progress deadline'
                + (f": {detail}" if detail else ""),
            )
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < desired:
        return state(
            Phase.PROGRESSING,
            f"{waiting}{updated} out of {desired} new replicas have been updated...",
        )
    if replicas > updated:
        return state(
            Phase.PROGRESSING,
            f"{waiting}{replicas - updated} old replicas are pending termination...",
        )
    if available < updated:
        return state(
            Phase.PROGRESSING,
            f"{waiting}{available} of {updated} updated replicas are available...",
        )
    return state(Phase.COMPLETE, f'deployment "{name}" successfully rolled out')
