"""What ``kubectl rollout undo`` does, as pure functions over the apiserver's JSON.

kubectl finds the ReplicaSet owned by the Deployment whose ``revision`` annotation is the
target, and sends one JSON patch replacing ``spec.template`` with that ReplicaSet's template
(without ``pod-template-hash``) and ``metadata.annotations`` with the ReplicaSet's
annotations, keeping the Deployment's own values of the annotations that describe a
ReplicaSet rather than a release. It skips the patch when the templates already match.

Revisions are renumbered by a rollback: the controller gives the reused ReplicaSet the next
number and keeps the old one in ``revision-history``. Targets are therefore looked up in the
history too, so "go back to revision 1" (or "to the one before 2") still names the same
ReplicaSet after it became revision 3, and a retried rollback finds its work already done.
"""

from __future__ import annotations

from dataclasses import dataclass

from activities.kubernetes.errors import RevisionNotFound
from activities.kubernetes.objects import (
    REVISION,
    REVISION_HISTORY,
    Obj,
    annotations_of,
    metadata,
    revision_history,
    revision_of,
    template_of,
    without_hash,
)

# The Deployment keeps its own values of these; every other annotation comes from the
# ReplicaSet being restored (kubectl's `annotationsToSkip`).
ANNOTATIONS_TO_SKIP = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)


@dataclass(frozen=True)
class Target:
    """The ReplicaSet to restore and the revision number it was asked for by."""

    revision: int
    replica_set: Obj


def revision_table(replica_sets: list[Obj]) -> dict[int, Obj]:
    """Every revision number, current or from ``revision-history``, to its ReplicaSet."""
    table: dict[int, Obj] = {}
    for rs in replica_sets:
        for number in revision_history(rs):
            table.setdefault(number, rs)
    # A current number always wins over a history entry that claims the same number.
    for rs in replica_sets:
        if revision_of(rs) > 0:
            table[revision_of(rs)] = rs
    return table


def existing_revisions(replica_sets: list[Obj]) -> list[int]:
    """The revisions ``kubectl rollout history`` would list, ascending."""
    return sorted({revision_of(rs) for rs in replica_sets if revision_of(rs) > 0})


def resolve_target(
    what: str, replica_sets: list[Obj], *, to_revision: int | None, from_revision: int | None
) -> Target:
    """The ReplicaSet for ``to_revision``, or for the revision before ``from_revision``."""
    table = revision_table(replica_sets)
    listed = ", ".join(str(n) for n in existing_revisions(replica_sets)) or "none"
    if to_revision is not None:
        if to_revision not in table:
            raise RevisionNotFound(
                f"{what} has no revision {to_revision} (existing revisions: {listed})",
                {"existing_revisions": existing_revisions(replica_sets)},
            )
        return Target(to_revision, table[to_revision])
    if from_revision is None:
        raise ValueError("resolve_target needs to_revision or from_revision")
    if from_revision not in table:
        raise RevisionNotFound(
            f"{what} has no revision {from_revision} to roll back from "
            f"(existing revisions: {listed})",
            {"existing_revisions": existing_revisions(replica_sets)},
        )
    earlier = [n for n in table if n < from_revision]
    if not earlier:
        raise RevisionNotFound(
            f"{what} has no revision before {from_revision} (existing revisions: {listed})",
            {"existing_revisions": existing_revisions(replica_sets)},
        )
    number = max(earlier)
    return Target(number, table[number])


def previous_revision(deployment: Obj, replica_sets: list[Obj]) -> Obj | None:
    """The ReplicaSet ``kubectl rollout undo`` (no revision) would restore: second newest."""
    current = revision_of(deployment)
    older = [rs for rs in replica_sets if 0 < revision_of(rs) < current]
    return max(older, key=revision_of, default=None)


def restored_annotations(deployment: Obj, replica_set: Obj) -> dict[str, str]:
    """The Deployment's annotations after restoring ``replica_set`` (kubectl's rule)."""
    merged = {k: v for k, v in annotations_of(deployment).items() if k in ANNOTATIONS_TO_SKIP}
    merged.update(
        {k: v for k, v in annotations_of(replica_set).items() if k not in ANNOTATIONS_TO_SKIP}
    )
    return merged


def rollback_patch(deployment: Obj, replica_set: Obj) -> list[Obj]:
    """The JSON patch restoring ``replica_set``'s template, guarded by resourceVersion."""
    return [
        # A precondition: if the Deployment changed since we decided, the apiserver answers
        # 409 and the decision is made again from a fresh read.
        {
            "op": "replace",
            "path": "/metadata/resourceVersion",
            "value": metadata(deployment).get("resourceVersion", ""),
        },
        {
            "op": "replace",
            "path": "/spec/template",
            "value": without_hash(template_of(replica_set)),
        },
        # "add" replaces an existing member and also works on a Deployment that has no
        # annotations at all, where kubectl's "replace" would fail.
        {
            "op": "add",
            "path": "/metadata/annotations",
            "value": restored_annotations(deployment, replica_set),
        },
    ]
