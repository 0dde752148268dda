"""The node side of the emulated cluster: scheduling, pod lifecycle and node status.

A pod is bound to the schedulable node with the fewest pods, starts `rollout_delay` seconds
later and becomes Ready, unless one of its images is in `bad_images`: then its container
crash-loops (restartCount grows every `crash_interval`, a Warning `BackOff` event counts up)
and the pod never becomes Ready. With no Node objects at all, pods run unbound, so tests
that do not care about nodes need not create any.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from worker.k8s_emulator.clock import Clock, parse_timestamp
from worker.k8s_emulator.events import EventRecorder
from worker.k8s_emulator.resources import NODES, PODS, UNSCHEDULABLE_TAINT, Obj, meta
from worker.k8s_emulator.settings import Settings
from worker.k8s_emulator.store import Store

_KUBELET_VERSION = "v1.31.0"
# The kubelet's crash back-off doubles from 10 s up to 300 s: a cap of 30 base intervals.
_BACKOFF_CAP = 30


@dataclass
class _PodClock:
    """When a pod was bound, first ran, and last crashed (per uid, kubelet-private)."""

    bound: float
    bound_at: str
    host: str | None
    running_at: str | None = None
    restarts: int = 0
    last_crash_at: str | None = None


def pod_ready_since(pod: Obj) -> datetime | None:
    """When the pod's Ready condition last turned True, or None if it is not Ready."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return parse_timestamp(condition["lastTransitionTime"])
    return None


class Kubelet:
    """Binds pods to nodes and plays their containers' lifecycle."""

    def __init__(
        self, store: Store, clock: Clock, recorder: EventRecorder, settings: Settings
    ) -> None:
        self._store = store
        self._clock = clock
        self._recorder = recorder
        self._settings = settings
        self._pods: dict[str, _PodClock] = {}
        self._node_numbers: dict[str, int] = {}
        self._addresses = 0

    def sync(self) -> bool:
        """One pass over nodes and pods; True when anything was written."""
        changed = self._sync_nodes()
        nodes = self._store.list(NODES)
        pods = self._store.list(PODS)
        load: dict[str, int] = {}
        for pod in pods:
            node_name = pod.get("spec", {}).get("nodeName")
            if node_name:
                load[node_name] = load.get(node_name, 0) + 1
        live = set()
        for pod in pods:
            uid = meta(pod)["uid"]
            live.add(uid)
            changed |= self._sync_pod(pod, nodes, load)
        for uid in set(self._pods) - live:
            del self._pods[uid]
        return changed

    def next_due(self) -> float | None:
        """The monotonic time the next bound pod starts running, if any is waiting."""
        delay = self._settings.rollout_delay
        return min((c.bound + delay for c in self._pods.values() if not c.running_at), default=None)

    # --- nodes ---------------------------------------------------------------------------

    def _sync_nodes(self) -> bool:
        changed = False
        for node in self._store.list(NODES):
            name = meta(node)["name"]
            number = self._node_numbers.setdefault(name, len(self._node_numbers) + 1)
            status = node.setdefault("status", {})
            if not status.get("conditions"):
                # A node object without status has not been "registered" by a kubelet yet;
                # the emulated one registers it as Ready.
                status.update(_registered_status(name, number, self._clock.timestamp()))
            spec = node.setdefault("spec", {})
            taints = [t for t in spec.get("taints") or [] if t.get("key") != UNSCHEDULABLE_TAINT]
            if spec.get("unschedulable"):
                previous = next(
                    (t for t in spec.get("taints") or [] if t.get("key") == UNSCHEDULABLE_TAINT),
                    None,
                )
                taints.append(
                    previous
                    or {
                        "key": UNSCHEDULABLE_TAINT,
                        "effect": "NoSchedule",
                        "timeAdded": self._clock.timestamp(),
                    }
                )
            if taints:
                spec["taints"] = taints
            else:
                spec.pop("taints", None)
            changed |= self._store.write(NODES, node)
        return changed

    # --- pods ----------------------------------------------------------------------------

    def _sync_pod(self, pod: Obj, nodes: list[Obj], load: dict[str, int]) -> bool:
        uid = meta(pod)["uid"]
        spec = pod.setdefault("spec", {})
        clock = self._pods.get(uid)
        if clock is None:
            host = spec.get("nodeName")
            if not host and nodes:
                host = _pick_node(nodes, load)
                if host is None:
                    return self._write_status(pod, _unschedulable_status(nodes))
                spec["nodeName"] = host
                load[host] = load.get(host, 0) + 1
            clock = _PodClock(self._clock.monotonic(), self._clock.timestamp(), host)
            self._pods[uid] = clock
            self._addresses += 1
            pod.setdefault("status", {})["podIP"] = _pod_ip(self._addresses)
            if host:
                self._recorder.record(
                    pod,
                    PODS,
                    reason="Scheduled",
                    message=f"Successfully assigned {meta(pod)['namespace']}/"
                    f"{meta(pod)['name']} to {host}",
                    component="default-scheduler",
                )
        return self._write_status(pod, self._lifecycle(pod, clock, nodes))

    def _lifecycle(self, pod: Obj, clock: _PodClock, nodes: list[Obj]) -> Obj:
        now = self._clock.monotonic()
        containers = pod["spec"].get("containers") or []
        started = now - clock.bound >= self._settings.rollout_delay
        status: Obj = {
            "phase": "Running" if started else "Pending",
            "hostIP": _host_ip(nodes, clock.host),
            "podIP": (pod.get("status") or {}).get("podIP", ""),
            "startTime": clock.bound_at,
            "qosClass": "BestEffort",
        }
        if not clock.host:
            status.pop("hostIP")
        if not started:
            statuses = [_waiting(c, "ContainerCreating", "") for c in containers]
            return self._with_conditions(status, statuses, clock)
        if clock.running_at is None:
            clock.running_at = self._clock.timestamp()
            for c in containers:
                if c.get("image") not in self._settings.bad_images:
                    self._container_event(pod, c, "Started", f"Started container {c['name']}")
        crashed = [c for c in containers if c.get("image") in self._settings.bad_images]
        if crashed:
            elapsed = now - clock.bound - self._settings.rollout_delay
            restarts = restarts_after(elapsed, self._settings.crash_interval)
            if restarts > clock.restarts:
                clock.restarts = restarts
                clock.last_crash_at = self._clock.timestamp()
                for c in crashed:
                    self._container_event(
                        pod,
                        c,
                        "BackOff",
                        f"Back-off restarting failed container {c['name']} in pod "
                        f"{meta(pod)['name']}_{meta(pod)['namespace']}({meta(pod)['uid']})",
                        warning=True,
                    )
        statuses = [
            self._crash_looping(pod, c, clock)
            if c.get("image") in self._settings.bad_images
            else _running(pod, c, clock.running_at)
            for c in containers
        ]
        return self._with_conditions(status, statuses, clock)

    def _crash_looping(self, pod: Obj, container: Obj, clock: _PodClock) -> Obj:
        backoff = min(10 * 2 ** max(clock.restarts - 1, 0), 10 * _BACKOFF_CAP)
        status = _waiting(
            container,
            "CrashLoopBackOff",
            f"back-off {backoff}s restarting failed container={container['name']} "
            f"pod={meta(pod)['name']}_{meta(pod)['namespace']}({meta(pod)['uid']})",
        )
        status["restartCount"] = clock.restarts
        status["lastState"] = {
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "startedAt": clock.last_crash_at,
                "finishedAt": clock.last_crash_at,
                "containerID": _container_id(pod, container),
            }
        }
        return status

    def _with_conditions(self, status: Obj, statuses: list[Obj], clock: _PodClock) -> Obj:
        unready = [s["name"] for s in statuses if not s["ready"]]
        ready = not unready and clock.running_at is not None
        since = (clock.running_at or clock.bound_at) if ready else clock.bound_at
        status["conditions"] = [
            _condition("Initialized", True, clock.bound_at),
            _condition("Ready", ready, since, unready),
            _condition("ContainersReady", ready, since, unready),
            _condition("PodScheduled", True, clock.bound_at),
        ]
        status["containerStatuses"] = statuses
        return status

    def _container_event(
        self, pod: Obj, container: Obj, reason: str, message: str, *, warning: bool = False
    ) -> None:
        self._recorder.record(
            pod,
            PODS,
            reason=reason,
            message=message,
            component="kubelet",
            warning=warning,
            field_path=f"spec.containers{{{container['name']}}}",
            host=pod["spec"].get("nodeName"),
        )

    def _write_status(self, pod: Obj, status: Obj) -> bool:
        pod["status"] = status
        return self._store.write(PODS, pod)


def restarts_after(elapsed: float, interval: float) -> int:
    """Restart count of a container crashing since `elapsed` seconds, under the kubelet's
    back-off: restarts after 1, 2, 4, ... `interval`s, the gap capped at 30 intervals."""
    if elapsed < 0:
        return 0
    interval = max(interval, 1e-3)
    restarts, spent, gap = 1, 0.0, interval
    while gap < interval * _BACKOFF_CAP:
        if spent + gap > elapsed:
            return restarts
        spent += gap
        restarts += 1
        gap *= 2
    gap = interval * _BACKOFF_CAP
    return restarts + int((elapsed - spent) // gap)


def _pick_node(nodes: list[Obj], load: dict[str, int]) -> str | None:
    candidates = [meta(n)["name"] for n in nodes if _schedulable(n)]
    if not candidates:
        return None
    chosen: str = min(candidates, key=lambda name: (load.get(name, 0), name))
    return chosen


def _schedulable(node: Obj) -> bool:
    if node.get("spec", {}).get("unschedulable"):
        return False
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _unschedulable_status(nodes: list[Obj]) -> Obj:
    cordoned = sum(1 for n in nodes if n.get("spec", {}).get("unschedulable"))
    not_ready = len(nodes) - cordoned
    reasons = []
    if cordoned:
        reasons.append(f"{cordoned} node(s) were unschedulable")
    if not_ready:
        reasons.append(
            f"{not_ready} node(s) had untolerated taint {{node.kubernetes.io/not-ready: }}"
        )
    return {
        "phase": "Pending",
        "qosClass": "BestEffort",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": f"0/{len(nodes)} nodes are available: {', '.join(reasons)}.",
            }
        ],
    }


def _condition(kind: str, ok: bool, since: str, unready: list[str] | None = None) -> Obj:
    condition: Obj = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastTransitionTime": since,
    }
    if not ok and unready:
        condition["reason"] = "ContainersNotReady"
        condition["message"] = f"containers with unready status: [{' '.join(unready)}]"
    return condition


def _waiting(container: Obj, reason: str, message: str) -> Obj:
    state: Obj = {"reason": reason}
    if message:
        state["message"] = message
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "ready": False,
        "started": False,
        "restartCount": 0,
        "state": {"waiting": state},
    }


def _running(pod: Obj, container: Obj, since: str | None) -> Obj:
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": f"docker.io/{container.get('image', '')}",
        "containerID": _container_id(pod, container),
        "ready": True,
        "started": True,
        "restartCount": 0,
        "state": {"running": {"startedAt": since}},
    }


def _container_id(pod: Obj, container: Obj) -> str:
    seed = f"{meta(pod)['uid']}/{container.get('name', '')}".encode()
    return f"containerd://{hashlib.sha256(seed).hexdigest()[:32]}"


def _pod_ip(number: int) -> str:
    return f"10.244.{number // 250}.{number % 250 + 2}"


def _host_ip(nodes: list[Obj], host: str | None) -> str:
    for node in nodes:
        if meta(node)["name"] == host:
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == "InternalIP":
                    return str(address["address"])
    return ""


def _registered_status(name: str, number: int, now: str) -> Obj:
    resources = {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
        ],
        "addresses": [
            {"type": "InternalIP", "address": f"10.0.0.{number + 10}"},
            {"type": "Hostname", "address": name},
        ],
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "nodeInfo": {
            "architecture": "amd64",
            "bootID": f"boot-{number}",
            "containerRuntimeVersion": "containerd://1.7.0",
            "kernelVersion": "6.1.0",
            "kubeProxyVersion": _KUBELET_VERSION,
            "kubeletVersion": _KUBELET_VERSION,
            "machineID": f"machine-{number}",
            "operatingSystem": "linux",
            "osImage": "fireline emulated node",
            "systemUUID": f"system-{number}",
        },
    }
