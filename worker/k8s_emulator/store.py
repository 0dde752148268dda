"""In-memory object storage with the apiserver's metadata rules.

Every successful write takes the next cluster-wide `resourceVersion`; a write that changes
nothing is a no-op (no new version), as on a real apiserver. `generation` counts `spec`
changes of the kinds that track it. Writes through `create`/`update` are defaulted and
validated; `write`/`remove` are the controllers' unchecked paths.
"""

from __future__ import annotations

import copy
import threading

from worker.k8s_emulator.clock import Clock, Ids
from worker.k8s_emulator.errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    InvalidError,
    NotFoundError,
    required,
)
from worker.k8s_emulator.resources import ALL_RESOURCES, Obj, ResourceType, meta
from worker.k8s_emulator.schema import apply_defaults, validate
from worker.k8s_emulator.selectors import FieldSelector, LabelSelector

# Metadata the server owns: ignored when a client sends it on create.
_SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "managedFields",
    "selfLink",
)
_IMMUTABLE_ON_UPDATE = ("uid", "creationTimestamp", "generation", "deletionTimestamp")


class Store:
    """Objects by resource type, namespace and name."""

    def __init__(self, clock: Clock, ids: Ids) -> None:
        # Re-entrant: the controllers hold it across a whole reconcile pass and write inside.
        self.lock = threading.RLock()
        self._clock = clock
        self._ids = ids
        self._version = 0
        self._objects: dict[ResourceType, dict[tuple[str, str], Obj]] = {
            rt: {} for rt in ALL_RESOURCES
        }

    @property
    def resource_version(self) -> str:
        """The cluster-wide resourceVersion of the latest write."""
        return str(self._version)

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def find(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        """A copy of the object, or None."""
        with self.lock:
            found = self._objects[rt].get(_key(rt, namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        """A copy of the object; raises `NotFoundError`."""
        found = self.find(rt, namespace, name)
        if found is None:
            raise NotFoundError.of(rt, name)
        return found

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
    ) -> list[Obj]:
        """Copies of matching objects ordered by namespace and name (all namespaces if None)."""
        with self.lock:
            found = []
            for (ns, _), obj in sorted(self._objects[rt].items()):
                if namespace is not None and rt.namespaced and ns != namespace:
                    continue
                if label_selector is not None and not label_selector.matches(
                    meta(obj).get("labels") or {}
                ):
                    continue
                if field_selector is not None and not field_selector.matches(obj):
                    continue
                found.append(copy.deepcopy(obj))
            return found

    def create(self, rt: ResourceType, namespace: str, body: Obj, *, dry_run: bool = False) -> Obj:
        """Default, validate and store a new object; returns the stored copy."""
        with self.lock:
            obj = _normalised(rt, body)
            metadata = meta(obj)
            for field in _SERVER_FIELDS:
                metadata.pop(field, None)
            _check_namespace(rt, metadata, namespace)
            if not metadata.get("name") and metadata.get("generateName"):
                metadata["name"] = f"{metadata['generateName']}{self._ids.suffix()}"
            if rt.reset_status_on_create:
                obj.pop("status", None)
            apply_defaults(rt, obj)
            name = str(metadata.get("name") or "")
            errors = validate(rt, obj, None)
            if errors:
                raise InvalidError.of(rt, name, errors)
            key = _key(rt, namespace, name)
            if key in self._objects[rt]:
                raise AlreadyExistsError.of(rt, name)
            metadata["uid"] = self._ids.uid()
            metadata["creationTimestamp"] = self._clock.timestamp()
            if rt.tracks_generation:
                metadata["generation"] = 1
            if dry_run:
                return copy.deepcopy(obj)
            metadata["resourceVersion"] = self._next_version()
            self._objects[rt][key] = obj
            return copy.deepcopy(obj)

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """A client's full replacement (PUT) of the object or of its `status`."""
        with self.lock:
            old = self._objects[rt].get(_key(rt, namespace, name))
            if old is None:
                raise NotFoundError.of(rt, name)
            sent: Obj = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
            if sent.get("name") not in (None, name):
                raise BadRequestError(
                    f"the name of the object ({sent['name']}) does not match the name on "
                    f"the URL ({name})"
                )
            _check_namespace(rt, sent, namespace)
            version = sent.get("resourceVersion")
            if version and version != meta(old)["resourceVersion"]:
                raise ConflictError.stale(rt, name)
            if subresource == "status":
                new = copy.deepcopy(old)
                if isinstance(body.get("status"), dict):
                    new["status"] = copy.deepcopy(body["status"])
            else:
                new = _normalised(rt, body)
                metadata = meta(new)
                metadata["name"] = name
                if rt.namespaced:
                    metadata["namespace"] = namespace
                for field in _IMMUTABLE_ON_UPDATE:
                    if field in meta(old):
                        metadata[field] = meta(old)[field]
                    else:
                        metadata.pop(field, None)
                if rt.has_status:
                    # The main resource cannot write status; the status subresource exists.
                    new.pop("status", None)
                    if "status" in old:
                        new["status"] = copy.deepcopy(old["status"])
                apply_defaults(rt, new)
                errors = validate(rt, new, old)
                if errors:
                    raise InvalidError.of(rt, name, errors)
            return self._commit(rt, old, new, dry_run=dry_run)

    def write(self, rt: ResourceType, obj: Obj) -> bool:
        """Store a controller's version of an existing object; False when nothing changed."""
        with self.lock:
            metadata = meta(obj)
            old = self._objects[rt].get(_key(rt, metadata.get("namespace", ""), metadata["name"]))
            if old is None:
                return False
            before = meta(old)["resourceVersion"]
            stored = self._commit(rt, old, copy.deepcopy(obj), dry_run=False)
            return bool(meta(stored)["resourceVersion"] != before)

    def _commit(self, rt: ResourceType, old: Obj, new: Obj, *, dry_run: bool) -> Obj:
        metadata = meta(new)
        metadata["resourceVersion"] = meta(old)["resourceVersion"]
        if rt.tracks_generation and new.get("spec") != old.get("spec"):
            metadata["generation"] = int(meta(old).get("generation", 1)) + 1
        if new == old or dry_run:
            return copy.deepcopy(new)
        metadata["resourceVersion"] = self._next_version()
        self._objects[rt][_key(rt, metadata.get("namespace", ""), metadata["name"])] = new
        return copy.deepcopy(new)

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        resource_version: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Remove the object, honouring DeleteOptions preconditions; returns its last state."""
        with self.lock:
            key = _key(rt, namespace, name)
            old = self._objects[rt].get(key)
            if old is None:
                raise NotFoundError.of(rt, name)
            if uid and uid != meta(old)["uid"]:
                raise ConflictError(
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                    f"{meta(old)['uid']}"
                )
            if resource_version and resource_version != meta(old)["resourceVersion"]:
                raise ConflictError(
                    "Precondition failed: ResourceVersion in precondition: "
                    f"{resource_version}, ResourceVersion in object meta: "
                    f"{meta(old)['resourceVersion']}"
                )
            if dry_run:
                return copy.deepcopy(old)
            del self._objects[rt][key]
            gone = copy.deepcopy(old)
            meta(gone)["resourceVersion"] = self._next_version()
            return gone

    def remove(self, rt: ResourceType, namespace: str, name: str) -> None:
        """A controller's delete; missing objects are ignored."""
        with self.lock:
            if self._objects[rt].pop(_key(rt, namespace, name), None) is not None:
                self._next_version()


def _key(rt: ResourceType, namespace: str, name: str) -> tuple[str, str]:
    return (namespace if rt.namespaced else "", name)


def _normalised(rt: ResourceType, body: Obj) -> Obj:
    if not isinstance(body, dict):
        raise BadRequestError(f"the body of a {rt.kind} must be a JSON object")
    sent_version = body.get("apiVersion")
    if sent_version not in (None, rt.api_version) or body.get("kind") not in (None, rt.kind):
        raise BadRequestError(
            f"the body is {sent_version} {body.get('kind')}; this endpoint serves "
            f"{rt.api_version} {rt.kind}"
        )
    rest = {k: copy.deepcopy(v) for k, v in body.items() if k not in ("apiVersion", "kind")}
    obj: Obj = {"apiVersion": rt.api_version, "kind": rt.kind, **rest}
    if not isinstance(obj.get("metadata"), dict):
        obj["metadata"] = {}
    return obj


def _check_namespace(rt: ResourceType, metadata: Obj, namespace: str) -> None:
    if not rt.namespaced:
        metadata.pop("namespace", None)
        return
    if not namespace:
        raise InvalidError.of(rt, str(metadata.get("name", "")), [required("metadata.namespace")])
    if metadata.get("namespace") not in (None, "", namespace):
        raise BadRequestError(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    metadata["namespace"] = namespace
