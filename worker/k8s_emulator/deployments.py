"""The Deployment controller, with the upstream controller's revision and rollout rules.

Each distinct pod template gets a ReplicaSet `<deployment>-<pod-template-hash>`. A template
change creates a ReplicaSet whose revision is the highest old revision + 1, or — when the
template equals an old ReplicaSet's (a `rollout undo`) — reuses that ReplicaSet and moves
its revision to max + 1, keeping the previous number in `revision-history`. RollingUpdate
scales the new ReplicaSet up within `maxSurge` and old ones down within `maxUnavailable`;
Recreate scales old ones to zero first. Status is computed in `rollout_status`.
"""

from __future__ import annotations

import copy
import hashlib
import json

from worker.k8s_emulator.clock import SAFE_ALPHABET, Clock
from worker.k8s_emulator.errors import AlreadyExistsError
from worker.k8s_emulator.events import EventRecorder
from worker.k8s_emulator.resources import (
    DEPLOYMENTS,
    DESIRED_REPLICAS,
    LAST_APPLIED,
    MAX_REPLICAS,
    POD_TEMPLATE_HASH,
    REPLICASETS,
    REVISION,
    REVISION_HISTORY,
    Obj,
    annotations_of,
    controller_uid,
    meta,
    owner_reference,
    revision_of,
)
from worker.k8s_emulator.rollout_status import progress_deadline, rollout_status
from worker.k8s_emulator.schema import rolling_limits
from worker.k8s_emulator.store import Store

# Annotations that describe a ReplicaSet itself and are never copied between the
# Deployment and its ReplicaSets.
_NOT_COPIED = frozenset(
    {
        LAST_APPLIED,
        REVISION,
        REVISION_HISTORY,
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    }
)


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """The `pod-template-hash` of a pod template (stable for equal templates)."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{canonical}/{collision_count}".encode()).digest()
    number = str(int.from_bytes(digest[:4], "big"))
    # Spelled with the safe alphabet so the hash can never form a word.
    return "".join(SAFE_ALPHABET[ord(digit) % len(SAFE_ALPHABET)] for digit in number)


def same_template(a: Obj, b: Obj) -> bool:
    """Whether two pod templates are equal once `pod-template-hash` is ignored."""
    return _without_hash(a) == _without_hash(b)


def _without_hash(template: Obj) -> Obj:
    stripped = copy.deepcopy(template)
    template_labels = (stripped.get("metadata") or {}).get("labels")
    if isinstance(template_labels, dict):
        template_labels.pop(POD_TEMPLATE_HASH, None)
    return stripped


def _replicas(obj: Obj) -> int:
    return int(obj["spec"].get("replicas", 0))


def _available(obj: Obj) -> int:
    return int((obj.get("status") or {}).get("availableReplicas", 0))


def _oldest_first(replica_sets: list[Obj]) -> list[Obj]:
    return sorted(replica_sets, key=lambda rs: (meta(rs)["creationTimestamp"], meta(rs)["name"]))


class DeploymentController:
    """Rolls each Deployment's ReplicaSets towards its template and reports status."""

    def __init__(self, store: Store, clock: Clock, recorder: EventRecorder) -> None:
        self._store = store
        self._clock = clock
        self._recorder = recorder

    def sync(self) -> bool:
        """One pass over every Deployment; True when anything was written."""
        changed = False
        for deployment in self._store.list(DEPLOYMENTS):
            changed |= self._sync_one(deployment)
        return changed

    def next_deadline(self) -> float | None:
        """The monotonic time the next unfinished rollout exceeds its progress deadline."""
        due = [progress_deadline(d, self._clock) for d in self._store.list(DEPLOYMENTS)]
        return min((t for t in due if t is not None), default=None)

    def _sync_one(self, deployment: Obj) -> bool:
        uid = meta(deployment)["uid"]
        namespace = meta(deployment)["namespace"]
        owned = [rs for rs in self._store.list(REPLICASETS, namespace) if controller_uid(rs) == uid]
        template = deployment["spec"]["template"]
        new_rs = next(
            (rs for rs in _oldest_first(owned) if same_template(rs["spec"]["template"], template)),
            None,
        )
        old = [rs for rs in owned if rs is not new_rs]
        paused = bool(deployment["spec"].get("paused"))
        changed = False
        started: tuple[str, str] | None = None
        next_revision = max((revision_of(rs) for rs in old), default=0) + 1
        if new_rs is None and not paused:
            new_rs = self._create_replica_set(deployment, old, next_revision)
            started = ("NewReplicaSetCreated", f'Created new replica set "{meta(new_rs)["name"]}"')
            changed = True
        elif new_rs is not None and revision_of(new_rs) < next_revision:
            self._promote(deployment, new_rs, next_revision)
            started = ("FoundNewReplicaSet", f'Found new replica set "{meta(new_rs)["name"]}"')
            changed = True
        if new_rs is not None:
            if annotations_of(deployment).get(REVISION) != str(revision_of(new_rs)):
                annotations_of(deployment)[REVISION] = str(revision_of(new_rs))
                changed |= self._store.write(DEPLOYMENTS, deployment)
            if not paused:
                if deployment["spec"]["strategy"]["type"] == "Recreate":
                    changed |= self._recreate(deployment, new_rs, old)
                else:
                    changed |= self._roll(deployment, new_rs, old)
        changed |= self._clean_up(deployment, old)
        return self._write_status(deployment, new_rs, started) or changed

    # --- ReplicaSets ---------------------------------------------------------------------

    def _create_replica_set(self, deployment: Obj, old: list[Obj], revision: int) -> Obj:
        spec = deployment["spec"]
        collisions = int((deployment.get("status") or {}).get("collisionCount", 0))
        while True:
            pod_hash = template_hash(spec["template"], collisions)
            template = copy.deepcopy(spec["template"])
            template.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH] = (
                pod_hash
            )
            selector = copy.deepcopy(spec["selector"])
            selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = pod_hash
            replicas = self._initial_replicas(deployment, old)
            surge, _ = rolling_limits(deployment)
            rs_annotations = self._copied_annotations(deployment)
            rs_annotations[REVISION] = str(revision)
            rs_annotations[DESIRED_REPLICAS] = str(_replicas(deployment))
            rs_annotations[MAX_REPLICAS] = str(_replicas(deployment) + surge)
            body: Obj = {
                "metadata": {
                    "name": f"{meta(deployment)['name']}-{pod_hash}",
                    "labels": dict(template["metadata"]["labels"]),
                    "annotations": rs_annotations,
                    "ownerReferences": [owner_reference(deployment, DEPLOYMENTS)],
                },
                "spec": {"replicas": replicas, "selector": selector, "template": template},
            }
            if spec.get("minReadySeconds"):
                body["spec"]["minReadySeconds"] = spec["minReadySeconds"]
            try:
                created = self._store.create(REPLICASETS, meta(deployment)["namespace"], body)
                break
            except AlreadyExistsError:
                # Same name, different template: bump the collision count and rehash.
                collisions += 1
                deployment.setdefault("status", {})["collisionCount"] = collisions
                self._store.write(DEPLOYMENTS, deployment)
        if replicas:
            self._scaled_event(deployment, created, 0, replicas)
        return created

    def _initial_replicas(self, deployment: Obj, old: list[Obj]) -> int:
        desired = _replicas(deployment)
        if deployment["spec"]["strategy"]["type"] == "Recreate":
            return 0 if any(_replicas(rs) for rs in old) else desired
        surge, _ = rolling_limits(deployment)
        current = sum(_replicas(rs) for rs in old)
        return max(0, min(desired + surge - current, desired))

    def _promote(self, deployment: Obj, replica_set: Obj, revision: int) -> None:
        # A rollback: the reused ReplicaSet takes the next revision and remembers its old one.
        rs_annotations = annotations_of(replica_set)
        previous = rs_annotations.get(REVISION)
        copied = self._copied_annotations(deployment)
        for key in [k for k in rs_annotations if k not in _NOT_COPIED]:
            del rs_annotations[key]
        rs_annotations.update(copied)
        if previous:
            history = [h for h in rs_annotations.get(REVISION_HISTORY, "").split(",") if h]
            rs_annotations[REVISION_HISTORY] = ",".join([*history, previous])
        rs_annotations[REVISION] = str(revision)
        self._store.write(REPLICASETS, replica_set)

    def _copied_annotations(self, deployment: Obj) -> dict[str, str]:
        return {k: v for k, v in annotations_of(deployment).items() if k not in _NOT_COPIED}

    def _scale(self, deployment: Obj, replica_set: Obj, replicas: int) -> bool:
        before = _replicas(replica_set)
        surge, _ = rolling_limits(deployment)
        rs_annotations = annotations_of(replica_set)
        rs_annotations[DESIRED_REPLICAS] = str(_replicas(deployment))
        rs_annotations[MAX_REPLICAS] = str(_replicas(deployment) + surge)
        replica_set["spec"]["replicas"] = replicas
        written = self._store.write(REPLICASETS, replica_set)
        if before != replicas:
            self._scaled_event(deployment, replica_set, before, replicas)
        return written

    def _scaled_event(self, deployment: Obj, replica_set: Obj, before: int, after: int) -> None:
        direction = "up" if after > before else "down"
        self._recorder.record(
            deployment,
            DEPLOYMENTS,
            reason="ScalingReplicaSet",
            message=f"Scaled {direction} replica set {meta(replica_set)['name']} "
            f"to {after} from {before}",
            component="deployment-controller",
        )

    # --- strategies ----------------------------------------------------------------------

    def _roll(self, deployment: Obj, new_rs: Obj, old: list[Obj]) -> bool:
        desired = _replicas(deployment)
        surge, max_unavailable = rolling_limits(deployment)
        changed = False
        current_new = _replicas(new_rs)
        target = current_new
        if current_new > desired:
            target = desired
        elif current_new < desired:
            total = current_new + sum(_replicas(rs) for rs in old)
            room = desired + surge - total
            if room > 0:
                target = current_new + min(room, desired - current_new)
        if target != current_new:
            changed |= self._scale(deployment, new_rs, target)

        if not any(_replicas(rs) for rs in old):
            return changed
        min_available = desired - max_unavailable
        all_pods = _replicas(new_rs) + sum(_replicas(rs) for rs in old)
        new_unavailable = _replicas(new_rs) - _available(new_rs)
        budget = all_pods - min_available - new_unavailable
        if budget <= 0:
            return changed
        # First remove old pods that are not available anyway: they cost no availability.
        for rs in _oldest_first(old):
            unhealthy = _replicas(rs) - _available(rs)
            if budget <= 0:
                break
            if _replicas(rs) == 0 or unhealthy <= 0:
                continue
            step = min(budget, unhealthy)
            changed |= self._scale(deployment, rs, _replicas(rs) - step)
            budget -= step
        # Then available old pods, as far as the availability floor allows.
        available = _available(new_rs) + sum(_available(rs) for rs in old)
        excess = available - min_available
        for rs in _oldest_first(old):
            if excess <= 0:
                break
            if _replicas(rs) == 0:
                continue
            step = min(_replicas(rs), excess)
            changed |= self._scale(deployment, rs, _replicas(rs) - step)
            excess -= step
        return changed

    def _recreate(self, deployment: Obj, new_rs: Obj, old: list[Obj]) -> bool:
        active = [rs for rs in old if _replicas(rs)]
        if active:
            changed = False
            for rs in active:
                changed |= self._scale(deployment, rs, 0)
            return changed
        if any((rs.get("status") or {}).get("replicas", 0) for rs in old):
            return False  # old pods still exist; Recreate never overlaps versions
        if _replicas(new_rs) != _replicas(deployment):
            return self._scale(deployment, new_rs, _replicas(deployment))
        return False

    def _clean_up(self, deployment: Obj, old: list[Obj]) -> bool:
        limit = int(deployment["spec"].get("revisionHistoryLimit", 10))
        idle = [
            rs
            for rs in old
            if _replicas(rs) == 0 and not (rs.get("status") or {}).get("replicas", 0)
        ]
        idle.sort(key=revision_of)
        excess = idle[: max(len(idle) - limit, 0)]
        for rs in excess:
            self._store.remove(REPLICASETS, meta(rs)["namespace"], meta(rs)["name"])
        return bool(excess)

    def _write_status(
        self, deployment: Obj, new_rs: Obj | None, started: tuple[str, str] | None
    ) -> bool:
        stored = self._store.find(
            DEPLOYMENTS, meta(deployment)["namespace"], meta(deployment)["name"]
        )
        if stored is None:
            return False
        uid = meta(stored)["uid"]
        owned = [
            rs
            for rs in self._store.list(REPLICASETS, meta(stored)["namespace"])
            if controller_uid(rs) == uid
        ]
        status = rollout_status(stored, owned, new_rs, started, self._clock)
        if status == stored.get("status"):
            return False
        stored["status"] = status
        return self._store.write(DEPLOYMENTS, stored)
