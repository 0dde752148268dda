"""The REST verbs, independent of HTTP: list, get, create, update, patch, delete, scale."""

from __future__ import annotations

import base64
import binascii
import copy
import json
from collections.abc import Callable
from typing import Any

from worker.k8s_emulator.errors import BadRequestError, ConflictError, InvalidError, invalid
from worker.k8s_emulator.patch import apply_patch
from worker.k8s_emulator.resources import ALL_RESOURCES, PODS, Obj, ResourceType, meta
from worker.k8s_emulator.selectors import FieldSelector, LabelSelector
from worker.k8s_emulator.store import Store


class ResourceApi:
    """The verbs a client can call; `on_write` runs after every committed write."""

    def __init__(self, store: Store, on_write: Callable[[], None]) -> None:
        self._store = store
        self._on_write = on_write

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        """GET one object (also the `status` subresource: the same body)."""
        return self._store.get(rt, namespace, name)

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
    ) -> Obj:
        """LIST, optionally filtered and paginated with `limit` / `continue`."""
        labels = LabelSelector.parse(label_selector) if label_selector else None
        fields = FieldSelector.parse(field_selector, rt.field_labels) if field_selector else None
        with self._store.lock:
            items = self._store.list(rt, namespace, labels, fields)
            version = self._store.resource_version
        if continue_token:
            after = _decode_continue(continue_token)
            items = [i for i in items if _sort_key(i) > after]
        metadata: Obj = {"resourceVersion": version}
        if limit and len(items) > limit:
            metadata["continue"] = _encode_continue(_sort_key(items[limit - 1]))
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        for item in items:
            # List items carry no kind/apiVersion on the wire; the list does.
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": metadata,
            "items": items,
        }

    def create(self, rt: ResourceType, namespace: str, body: Any, *, dry_run: bool) -> Obj:
        """POST a new object."""
        created = self._store.create(rt, namespace, _object(body), dry_run=dry_run)
        self._written(dry_run)
        return created

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str | None,
        dry_run: bool,
    ) -> Obj:
        """PUT the object or its status."""
        updated = self._store.update(
            rt, namespace, name, _object(body), subresource=subresource, dry_run=dry_run
        )
        self._written(dry_run)
        return updated

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        *,
        subresource: str | None,
        dry_run: bool,
    ) -> Obj:
        """PATCH the object or its status with any of the three patch formats."""
        with self._store.lock:
            current = self._store.get(rt, namespace, name)
            patched = apply_patch(content_type, current, body)
            if not isinstance(patched, dict):
                raise BadRequestError("the patch did not produce an object")
            # A patch may carry resourceVersion as a precondition; update() enforces it,
            # and an unchanged one is simply the current version.
            if not isinstance(patched.get("metadata"), dict):
                patched["metadata"] = {}
            patched["metadata"].setdefault("resourceVersion", meta(current)["resourceVersion"])
            updated = self._store.update(
                rt, namespace, name, patched, subresource=subresource, dry_run=dry_run
            )
        self._written(dry_run)
        return updated

    def delete(
        self, rt: ResourceType, namespace: str, name: str, options: Any, *, dry_run: bool
    ) -> Obj:
        """DELETE; returns the Pod for pods and a success `Status` otherwise, as upstream."""
        options = options if isinstance(options, dict) else {}
        preconditions = options.get("preconditions") or {}
        with self._store.lock:
            gone = self._store.delete(
                rt,
                namespace,
                name,
                uid=preconditions.get("uid"),
                resource_version=preconditions.get("resourceVersion"),
                dry_run=dry_run,
            )
            if options.get("propagationPolicy") == "Orphan" and not dry_run:
                self._orphan_dependents(meta(gone)["uid"], namespace)
        self._written(dry_run)
        if rt is PODS:
            return gone
        details: Obj = {"name": name, "kind": rt.plural, "uid": meta(gone)["uid"]}
        if rt.group:
            details["group"] = rt.group
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    def get_scale(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        """GET the `scale` subresource (autoscaling/v1 Scale)."""
        return _scale_view(self._store.get(rt, namespace, name))

    def update_scale(
        self, rt: ResourceType, namespace: str, name: str, body: Any, *, dry_run: bool
    ) -> Obj:
        """PUT the `scale` subresource."""
        scale = _object(body)
        with self._store.lock:
            current = self._store.get(rt, namespace, name)
            version = (scale.get("metadata") or {}).get("resourceVersion")
            if version and version != meta(current)["resourceVersion"]:
                raise ConflictError.stale(rt, name)
            updated = self._set_replicas(rt, current, scale, dry_run=dry_run)
        self._written(dry_run)
        return updated

    def patch_scale(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        *,
        dry_run: bool,
    ) -> Obj:
        """PATCH the `scale` subresource."""
        with self._store.lock:
            current = self._store.get(rt, namespace, name)
            scale = _object(apply_patch(content_type, _scale_view(current), body))
            version = (scale.get("metadata") or {}).get("resourceVersion")
            if version and version != meta(current)["resourceVersion"]:
                raise ConflictError.stale(rt, name)
            updated = self._set_replicas(rt, current, scale, dry_run=dry_run)
        self._written(dry_run)
        return updated

    def _set_replicas(self, rt: ResourceType, current: Obj, scale: Obj, *, dry_run: bool) -> Obj:
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise InvalidError.of(
                rt,
                meta(current)["name"],
                [invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
            )
        target = copy.deepcopy(current)
        target["spec"]["replicas"] = replicas
        updated = self._store.update(
            rt,
            meta(current)["namespace"],
            meta(current)["name"],
            target,
            subresource=None,
            dry_run=dry_run,
        )
        return _scale_view(updated)

    def _orphan_dependents(self, owner_uid: str, namespace: str) -> None:
        for rt in ALL_RESOURCES:
            for obj in self._store.list(rt, namespace if rt.namespaced else None):
                refs = meta(obj).get("ownerReferences") or []
                kept = [r for r in refs if r.get("uid") != owner_uid]
                if len(kept) != len(refs):
                    meta(obj)["ownerReferences"] = kept
                    self._store.write(rt, obj)

    def _written(self, dry_run: bool) -> None:
        if not dry_run:
            self._on_write()


def _object(body: Any) -> Obj:
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    return body


def _scale_view(obj: Obj) -> Obj:
    metadata = meta(obj)
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": metadata["resourceVersion"],
            "creationTimestamp": metadata["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"].get("replicas", 0)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": LabelSelector.from_object(obj["spec"].get("selector")).render(),
        },
    }


def _sort_key(obj: Obj) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return (str(metadata.get("namespace", "")), str(metadata["name"]))


def _encode_continue(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        namespace, name = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, TypeError) as error:
        raise BadRequestError(f"invalid continue token: {error}") from error
    return (str(namespace), str(name))
