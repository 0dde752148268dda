"""The control plane loop: garbage collection, the Deployment and ReplicaSet controllers and
the kubelet, run to a fixed point after every write and on a background tick."""

from __future__ import annotations

import asyncio

from worker.k8s_emulator.clock import Clock, Ids
from worker.k8s_emulator.deployments import DeploymentController
from worker.k8s_emulator.events import EventRecorder
from worker.k8s_emulator.kubelet import Kubelet
from worker.k8s_emulator.replicasets import ReplicaSetController
from worker.k8s_emulator.resources import (
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    Obj,
    ResourceType,
    meta,
)
from worker.k8s_emulator.settings import Settings
from worker.k8s_emulator.store import Store

# A pass that keeps changing things this many times in a row would be a controller bug;
# stopping keeps one bug from hanging the HTTP request that triggered it.
_MAX_PASSES = 50


class ControlPlane:
    """Runs every controller until the cluster stops changing."""

    def __init__(self, store: Store, clock: Clock, ids: Ids, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.recorder = EventRecorder(store, clock, ids)
        self.kubelet = Kubelet(store, clock, self.recorder, settings)
        self.replicasets = ReplicaSetController(store, clock, self.recorder)
        self.deployments = DeploymentController(store, clock, self.recorder)

    def reconcile(self) -> None:
        """Run all controllers to a fixed point."""
        with self.store.lock:
            for _ in range(_MAX_PASSES):
                changed = self._collect_garbage()
                changed |= self.deployments.sync()
                changed |= self.replicasets.sync()
                changed |= self.kubelet.sync()
                if not changed:
                    return

    def advance(self, seconds: float) -> None:
        """Move emulator time forward, reconciling at every moment something falls due."""
        with self.store.lock:
            target = self.clock.monotonic() + seconds
            self.reconcile()
            while True:
                now = self.clock.monotonic()
                due = [
                    t
                    for t in (self.kubelet.next_due(), self.deployments.next_deadline())
                    if t is not None and now < t <= target
                ]
                step_to = min(due, default=target)
                self.clock.advance(max(step_to - now, 0.0))
                self.reconcile()
                if not due:
                    return

    async def run(self) -> None:
        """Reconcile every `settings.tick` seconds until cancelled."""
        while True:
            self.reconcile()
            await asyncio.sleep(self.settings.tick)

    def _collect_garbage(self) -> bool:
        # Background cascading deletion: dependents whose controller is gone are deleted.
        changed = self._orphans(REPLICASETS, DEPLOYMENTS)
        return self._orphans(PODS, REPLICASETS) or changed

    def _orphans(self, dependent: ResourceType, owner: ResourceType) -> bool:
        owners = {meta(o)["uid"] for o in self.store.list(owner)}
        changed = False
        for obj in self.store.list(dependent):
            ref = _controller_ref(obj)
            if ref is not None and ref.get("kind") == owner.kind and ref["uid"] not in owners:
                self.store.remove(dependent, meta(obj)["namespace"], meta(obj)["name"])
                changed = True
        return changed


def _controller_ref(obj: Obj) -> Obj | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            found: Obj = ref
            return found
    return None
