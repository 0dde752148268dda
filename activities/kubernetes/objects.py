"""Small readers over the apiserver's JSON objects (Deployments, ReplicaSets, Events)."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

Obj = dict[str, Any]

# Names the deployment controller and kubectl use.
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
POD_TEMPLATE_HASH = "pod-template-hash"
CHANGE_CAUSE = "kubernetes.io/change-cause"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def metadata(obj: Obj) -> Obj:
    """The object's metadata (empty when absent)."""
    found: Obj = obj.get("metadata") or {}
    return found


def annotations_of(obj: Obj) -> dict[str, str]:
    """The object's annotations (empty when absent)."""
    found: dict[str, str] = metadata(obj).get("annotations") or {}
    return found


def name_of(obj: Obj) -> str:
    """The object's name."""
    return str(metadata(obj).get("name", ""))


def revision_of(obj: Obj) -> int:
    """The ``deployment.kubernetes.io/revision`` annotation as a number (0 when unset)."""
    value = annotations_of(obj).get(REVISION, "")
    return int(value) if value.isdigit() else 0


def revision_history(obj: Obj) -> list[int]:
    """Revisions a ReplicaSet held before rollbacks reused it, oldest first."""
    raw = annotations_of(obj).get(REVISION_HISTORY, "")
    return [int(part) for part in raw.split(",") if part.strip().isdigit()]


def template_of(obj: Obj) -> Obj:
    """The pod template of a Deployment or ReplicaSet."""
    found: Obj = (obj.get("spec") or {}).get("template") or {}
    return found


def images(obj: Obj) -> dict[str, str]:
    """Container name to image, from the object's pod template."""
    containers = (template_of(obj).get("spec") or {}).get("containers") or []
    return {str(c.get("name", "")): str(c.get("image", "")) for c in containers}


def first_image(obj: Obj) -> str:
    """The first container's image (most Deployments run one), or empty."""
    return next(iter(images(obj).values()), "")


def without_hash(template: Obj) -> Obj:
    """A copy of a pod template without the controller's ``pod-template-hash`` label."""
    stripped = copy.deepcopy(template)
    labels = (stripped.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return stripped


def same_template(a: Obj, b: Obj) -> bool:
    """Whether two pod templates are equal once ``pod-template-hash`` is ignored (kubectl)."""
    return bool(_pruned(without_hash(a)) == _pruned(without_hash(b)))


def _pruned(value: Any) -> Any:
    # The apiserver omits empty maps and lists; a template that went through a ReplicaSet
    # may carry `labels: {}` where the Deployment's has none. Both mean the same.
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def controller_uid(obj: Obj) -> str | None:
    """The uid of the object's managing controller, from its owner references."""
    for ref in metadata(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid", ""))
    return None


def controller_ref(obj: Obj) -> Obj | None:
    """The object's controller owner reference, if any."""
    for ref in metadata(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            found: Obj = ref
            return found
    return None


def owned_by(items: list[Obj], owner: Obj) -> list[Obj]:
    """The items whose controller is ``owner`` (selectors alone can overlap)."""
    uid = metadata(owner).get("uid")
    return [item for item in items if controller_uid(item) == uid]


def selector_text(selector: Obj | None) -> str:
    """A ``LabelSelector`` object in the query-string form ``labelSelector`` takes."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = ",".join(sorted(expression.get("values") or []))
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp as the apiserver writes it, or None."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
