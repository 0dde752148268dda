"""The resource types the emulator serves and small accessors for their JSON objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

# Labels and annotations the deployment controller owns, with the names the real one uses.
POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"

_COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives, what it is called and how writes treat it."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()
    tracks_generation: bool = False
    reset_status_on_create: bool = False
    field_labels: frozenset[str] = _COMMON_FIELDS

    @property
    def api_version(self) -> str:
        """The `apiVersion` of objects of this type, e.g. `apps/v1` or `v1`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """The name error messages use, e.g. `deployments.apps` or `pods`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """The kind as validation messages name it, e.g. `Deployment.apps`."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def has_status(self) -> bool:
        """Whether `status` is written only through the status subresource."""
        return "status" in self.subresources


DEPLOYMENTS = ResourceType(
    group="apps",
    version="v1",
    kind="Deployment",
    plural="deployments",
    singular="deployment",
    namespaced=True,
    subresources=frozenset({"status", "scale"}),
    tracks_generation=True,
    reset_status_on_create=True,
)
REPLICASETS = ResourceType(
    group="apps",
    version="v1",
    kind="ReplicaSet",
    plural="replicasets",
    singular="replicaset",
    namespaced=True,
    subresources=frozenset({"status", "scale"}),
    tracks_generation=True,
    reset_status_on_create=True,
)
PODS = ResourceType(
    group="",
    version="v1",
    kind="Pod",
    plural="pods",
    singular="pod",
    namespaced=True,
    subresources=frozenset({"status"}),
    reset_status_on_create=True,
    field_labels=_COMMON_FIELDS
    | {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
)
EVENTS = ResourceType(
    group="",
    version="v1",
    kind="Event",
    plural="events",
    singular="event",
    namespaced=True,
    field_labels=_COMMON_FIELDS
    | {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
)
NODES = ResourceType(
    group="",
    version="v1",
    kind="Node",
    plural="nodes",
    singular="node",
    namespaced=False,
    subresources=frozenset({"status"}),
    field_labels=_COMMON_FIELDS | {"spec.unschedulable"},
)

ALL_RESOURCES: tuple[ResourceType, ...] = (DEPLOYMENTS, REPLICASETS, PODS, EVENTS, NODES)
_BY_PATH = {(rt.group, rt.version, rt.plural): rt for rt in ALL_RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource type served at `/apis/<group>/<version>/<plural>`, if any."""
    return _BY_PATH.get((group, version, plural))


def meta(obj: Obj) -> Obj:
    """The object's `metadata`, created empty when missing."""
    metadata: Obj = obj.setdefault("metadata", {})
    return metadata


def labels(obj: Obj) -> dict[str, str]:
    """The object's labels (a live dict; empty when absent)."""
    found: dict[str, str] = meta(obj).get("labels") or {}
    return found


def annotations_of(obj: Obj) -> dict[str, str]:
    """The object's annotations, created empty when missing so callers can write to them."""
    found: dict[str, str] = meta(obj).setdefault("annotations", {})
    return found


def controller_uid(obj: Obj) -> str | None:
    """The uid of the object's managing controller, from its owner references."""
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            uid: str = ref["uid"]
            return uid
    return None


def owner_reference(owner: Obj, rt: ResourceType) -> Obj:
    """A controller owner reference pointing at `owner`."""
    return {
        "apiVersion": rt.api_version,
        "kind": rt.kind,
        "name": meta(owner)["name"],
        "uid": meta(owner)["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def revision_of(obj: Obj) -> int:
    """The `deployment.kubernetes.io/revision` annotation as a number (0 when unset)."""
    value = (meta(obj).get("annotations") or {}).get(REVISION, "")
    return int(value) if str(value).isdigit() else 0
