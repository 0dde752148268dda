"""core/v1 Events as the controllers and the kubelet record them."""

from __future__ import annotations

from worker.k8s_emulator.clock import Clock, Ids
from worker.k8s_emulator.resources import EVENTS, Obj, ResourceType, meta
from worker.k8s_emulator.store import Store


class EventRecorder:
    """Writes Events; a repeat of the same event bumps `count` like the client-go recorder."""

    def __init__(self, store: Store, clock: Clock, ids: Ids) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        # (involved uid, reason, message) -> event name, for aggregation.
        self._seen: dict[tuple[str, str, str], str] = {}

    def record(
        self,
        involved: Obj,
        rt: ResourceType,
        *,
        reason: str,
        message: str,
        component: str,
        warning: bool = False,
        field_path: str | None = None,
        host: str | None = None,
    ) -> None:
        """Record (or re-count) one event about `involved`."""
        involved_meta = meta(involved)
        namespace = involved_meta.get("namespace") or "default"
        key = (str(involved_meta.get("uid")), reason, message)
        now = self._clock.timestamp()
        existing = self._seen.get(key)
        if existing is not None:
            seen = self._store.find(EVENTS, namespace, existing)
            if seen is not None:
                seen["count"] = int(seen.get("count", 1)) + 1
                seen["lastTimestamp"] = now
                self._store.write(EVENTS, seen)
                return
        reference: Obj = {
            "apiVersion": rt.api_version,
            "kind": rt.kind,
            "name": involved_meta["name"],
            "uid": involved_meta.get("uid", ""),
            "resourceVersion": involved_meta.get("resourceVersion", ""),
        }
        if rt.namespaced:
            reference["namespace"] = namespace
        if field_path:
            reference["fieldPath"] = field_path
        source: Obj = {"component": component}
        if host:
            source["host"] = host
        name = f"{involved_meta['name']}.{self._ids.hex()}"
        event: Obj = {
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": reference,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": "Warning" if warning else "Normal",
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        self._store.create(EVENTS, namespace, event)
        self._seen[key] = name
