"""The ReplicaSet controller: keeps each ReplicaSet's pod count at `spec.replicas`."""

from __future__ import annotations

import copy
from datetime import timedelta

from worker.k8s_emulator.clock import Clock
from worker.k8s_emulator.errors import AlreadyExistsError
from worker.k8s_emulator.events import EventRecorder
from worker.k8s_emulator.kubelet import pod_ready_since
from worker.k8s_emulator.resources import (
    PODS,
    REPLICASETS,
    Obj,
    controller_uid,
    meta,
    owner_reference,
)
from worker.k8s_emulator.selectors import LabelSelector
from worker.k8s_emulator.store import Store


class ReplicaSetController:
    """Creates and deletes pods from each ReplicaSet's template and reports its status."""

    def __init__(self, store: Store, clock: Clock, recorder: EventRecorder) -> None:
        self._store = store
        self._clock = clock
        self._recorder = recorder

    def sync(self) -> bool:
        """One pass over every ReplicaSet; True when anything was written."""
        by_owner: dict[str, list[Obj]] = {}
        for pod in self._store.list(PODS):
            owner = controller_uid(pod)
            if owner is not None:
                by_owner.setdefault(owner, []).append(pod)
        changed = False
        for replica_set in self._store.list(REPLICASETS):
            changed |= self._sync_one(replica_set, by_owner.get(meta(replica_set)["uid"], []))
        return changed

    def _sync_one(self, replica_set: Obj, pods: list[Obj]) -> bool:
        desired = int(replica_set["spec"].get("replicas", 1))
        changed = False
        if len(pods) < desired:
            for _ in range(desired - len(pods)):
                pods.append(self._create_pod(replica_set))
            changed = True
        elif len(pods) > desired:
            for pod in _deletion_order(pods)[: len(pods) - desired]:
                self._store.remove(PODS, meta(pod)["namespace"], meta(pod)["name"])
                self._recorder.record(
                    replica_set,
                    REPLICASETS,
                    reason="SuccessfulDelete",
                    message=f"Deleted pod: {meta(pod)['name']}",
                    component="replicaset-controller",
                )
                pods.remove(pod)
            changed = True
        return self._write_status(replica_set, pods) or changed

    def _create_pod(self, replica_set: Obj) -> Obj:
        template = replica_set["spec"]["template"]
        name = meta(replica_set)["name"]
        namespace = meta(replica_set)["namespace"]
        template_meta = template.get("metadata") or {}
        pod: Obj = {
            "metadata": {
                "generateName": f"{name}-",
                "labels": dict(template_meta.get("labels") or {}),
                "ownerReferences": [owner_reference(replica_set, REPLICASETS)],
            },
            "spec": copy.deepcopy(template["spec"]),
        }
        if template_meta.get("annotations"):
            pod["metadata"]["annotations"] = dict(template_meta["annotations"])
        while True:
            try:
                created = self._store.create(PODS, namespace, pod)
                break
            except AlreadyExistsError:  # a generated suffix collided; draw another
                continue
        self._recorder.record(
            replica_set,
            REPLICASETS,
            reason="SuccessfulCreate",
            message=f"Created pod: {meta(created)['name']}",
            component="replicaset-controller",
        )
        return created

    def _write_status(self, replica_set: Obj, pods: list[Obj]) -> bool:
        spec = replica_set["spec"]
        template_labels = (spec["template"].get("metadata") or {}).get("labels") or {}
        labelled = LabelSelector.from_object({"matchLabels": template_labels})
        min_ready = timedelta(seconds=int(spec.get("minReadySeconds", 0)))
        now = self._clock.now()
        ready = [p for p in pods if pod_ready_since(p) is not None]
        available = [p for p in ready if (since := pod_ready_since(p)) and since + min_ready <= now]
        status: Obj = {"replicas": len(pods)}
        counts = {
            "fullyLabeledReplicas": sum(
                1 for p in pods if labelled.matches(meta(p).get("labels") or {})
            ),
            "readyReplicas": len(ready),
            "availableReplicas": len(available),
        }
        # Like the apiserver, zero counts are omitted (the client reads them as None).
        status.update({k: v for k, v in counts.items() if v})
        status["observedGeneration"] = meta(replica_set).get("generation", 1)
        if replica_set.get("status") == status:
            return False
        replica_set["status"] = status
        return self._store.write(REPLICASETS, replica_set)


def _deletion_order(pods: list[Obj]) -> list[Obj]:
    # Like the controller: unscheduled, then not running, then not ready go first; among
    # equals, the newest pod goes first.
    newest_first = sorted(pods, key=lambda p: meta(p).get("creationTimestamp", ""), reverse=True)
    return sorted(
        newest_first,
        key=lambda p: (
            bool(p.get("spec", {}).get("nodeName")),
            (p.get("status") or {}).get("phase") == "Running",
            pod_ready_since(p) is not None,
        ),
    )
