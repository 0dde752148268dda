"""Deployment status as the upstream controller reports it: replica counts and the
Available / Progressing conditions that `kubectl rollout status` and fireline's waits read."""

from __future__ import annotations

import copy
from datetime import timedelta

from worker.k8s_emulator.clock import Clock, parse_timestamp
from worker.k8s_emulator.resources import Obj, meta
from worker.k8s_emulator.schema import rolling_limits

DONE = "NewReplicaSetAvailable"


def rollout_status(
    stored: Obj,
    owned: list[Obj],
    new_rs: Obj | None,
    started: tuple[str, str] | None,
    clock: Clock,
) -> Obj:
    """The Deployment's new `status` from its ReplicaSets' statuses.

    `started` is the (reason, message) of a rollout that began in this sync: a new
    ReplicaSet created or an old one reused.
    """
    desired = int(stored["spec"].get("replicas", 0))
    _, max_unavailable = rolling_limits(stored)

    def total(field: str, replica_sets: list[Obj]) -> int:
        return sum(int((rs.get("status") or {}).get(field, 0)) for rs in replica_sets)

    new_set = [rs for rs in owned if new_rs is not None and meta(rs)["uid"] == meta(new_rs)["uid"]]
    counts = {
        "replicas": total("replicas", owned),
        "updatedReplicas": total("replicas", new_set),
        "readyReplicas": total("readyReplicas", owned),
        "availableReplicas": total("availableReplicas", owned),
        "unavailableReplicas": max(desired - total("availableReplicas", owned), 0),
    }
    old_status = stored.get("status") or {}
    status: Obj = {"observedGeneration": meta(stored).get("generation", 1)}
    # Zero counts are omitted on the wire, exactly like the apiserver's omitempty.
    status.update({k: v for k, v in counts.items() if v})
    conditions = copy.deepcopy(old_status.get("conditions") or [])
    now = clock.timestamp()
    available_ok = counts["availableReplicas"] >= desired - max_unavailable
    _set_condition(
        conditions,
        "Available",
        available_ok,
        "MinimumReplicasAvailable" if available_ok else "MinimumReplicasUnavailable",
        "Deployment has minimum availability."
        if available_ok
        else "Deployment does not have minimum availability.",
        now,
    )
    rs_name = meta(new_rs)["name"] if new_rs is not None else ""
    complete = (
        counts["updatedReplicas"] == desired
        and counts["replicas"] == desired
        and (counts["availableReplicas"] == desired)
    )
    progressing = _condition(stored, "Progressing")
    if stored["spec"].get("paused"):
        _set_condition(
            conditions, "Progressing", None, "DeploymentPaused", "Deployment is paused", now
        )
    elif started is not None:
        _set_condition(conditions, "Progressing", True, *started, now, touch=True)
    elif complete and new_rs is not None:
        _set_condition(
            conditions,
            "Progressing",
            True,
            DONE,
            f'ReplicaSet "{rs_name}" has successfully progressed.',
            now,
        )
    elif _made_progress(old_status, status):
        _set_condition(
            conditions,
            "Progressing",
            True,
            "ReplicaSetUpdated",
            f'ReplicaSet "{rs_name}" is progressing.',
            now,
            touch=True,
        )
    elif progressing is not None and _timed_out(stored, progressing, clock):
        _set_condition(
            conditions,
            "Progressing",
            False,
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs_name}" has timed out progressing.',
            now,
        )
    order = {"Available": 0, "Progressing": 1}
    status["conditions"] = sorted(conditions, key=lambda c: order.get(c["type"], 2))
    if "collisionCount" in old_status:
        status["collisionCount"] = old_status["collisionCount"]
    return status


def progress_deadline(deployment: Obj, clock: Clock) -> float | None:
    """The monotonic time an unfinished rollout will exceed its progress deadline, if any."""
    condition = _condition(deployment, "Progressing")
    if condition is None or condition.get("status") != "True" or condition.get("reason") == DONE:
        return None
    deadline = parse_timestamp(condition["lastUpdateTime"]) + timedelta(
        seconds=int(deployment["spec"]["progressDeadlineSeconds"])
    )
    # Just past the deadline, since the controller's test is strictly "later than".
    return clock.monotonic() + (deadline - clock.now()).total_seconds() + 0.001


def _condition(deployment: Obj, kind: str) -> Obj | None:
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            found: Obj = condition
            return found
    return None


def _set_condition(
    conditions: list[Obj],
    kind: str,
    ok: bool | None,
    reason: str,
    message: str,
    now: str,
    *,
    touch: bool = False,
) -> None:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    existing = next((c for c in conditions if c["type"] == kind), None)
    if (
        existing is not None
        and not touch
        and (existing["status"], existing.get("reason"), existing.get("message"))
        == (status, reason, message)
    ):
        return
    condition = {
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": existing["lastTransitionTime"]
        if existing is not None and existing["status"] == status
        else now,
        "reason": reason,
        "message": message,
    }
    conditions[:] = [c for c in conditions if c["type"] != kind] + [condition]


def _made_progress(old: Obj, new: Obj) -> bool:
    def count(status: Obj, field: str) -> int:
        return int(status.get(field, 0))

    old_leftover = count(old, "replicas") - count(old, "updatedReplicas")
    new_leftover = count(new, "replicas") - count(new, "updatedReplicas")
    return (
        count(new, "updatedReplicas") > count(old, "updatedReplicas")
        or new_leftover < old_leftover
        or count(new, "readyReplicas") > count(old, "readyReplicas")
        or count(new, "availableReplicas") > count(old, "availableReplicas")
    )


def _timed_out(deployment: Obj, progressing: Obj, clock: Clock) -> bool:
    if progressing.get("reason") in (DONE, "ProgressDeadlineExceeded"):
        return False
    deadline = parse_timestamp(progressing["lastUpdateTime"]) + timedelta(
        seconds=int(deployment["spec"]["progressDeadlineSeconds"])
    )
    return clock.now() > deadline
