"""Server-side defaulting and validation for the emulated kinds (a useful subset of both)."""

from __future__ import annotations

import math
import re
from typing import Any

from worker.k8s_emulator.errors import FieldError, invalid, required, unsupported
from worker.k8s_emulator.resources import (
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    Obj,
    ResourceType,
    meta,
)
from worker.k8s_emulator.selectors import LabelSelector

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PERCENT = re.compile(r"^[0-9]+%$")


def apply_defaults(rt: ResourceType, obj: Obj) -> None:
    """Fill the fields the apiserver defaults, in place, so round trips compare equal."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if rt in (DEPLOYMENTS, REPLICASETS):
        spec.setdefault("replicas", 1)
        template = spec.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            _default_pod_spec(template["spec"])
    if rt is DEPLOYMENTS:
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        if not isinstance(spec.get("strategy"), dict):
            spec["strategy"] = {}
        strategy = spec["strategy"]
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            if not isinstance(strategy.get("rollingUpdate"), dict):
                strategy["rollingUpdate"] = {}
            rolling = strategy["rollingUpdate"]
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
    if rt is PODS:
        _default_pod_spec(spec)


def _default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or []:
            if not isinstance(container, dict):
                continue
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("imagePullPolicy", _pull_policy(str(container.get("image", ""))))
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def _pull_policy(image: str) -> str:
    # An untagged or `:latest` image is pulled every time; a pinned tag only when missing.
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def validate(rt: ResourceType, obj: Obj, old: Obj | None) -> list[FieldError]:
    """Every validation error of `obj` (an update when `old` is given)."""
    errors = _validate_name(rt, obj)
    if rt in (DEPLOYMENTS, REPLICASETS):
        errors += _validate_workload(rt, obj)
        if old is not None and obj.get("spec", {}).get("selector") != old.get("spec", {}).get(
            "selector"
        ):
            errors.append(invalid("spec.selector", _selector_text(obj), "field is immutable"))
    if rt is PODS:
        errors += _validate_pod_spec(obj.get("spec"), "spec")
    return errors


def _validate_name(rt: ResourceType, obj: Obj) -> list[FieldError]:
    name = meta(obj).get("name")
    if not name:
        return [required("metadata.name", "name or generateName is required")]
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        return [
            invalid(
                "metadata.name",
                name,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        ]
    return []


def _validate_workload(rt: ResourceType, obj: Obj) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    errors: list[FieldError] = []
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        errors.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    selector = spec.get("selector")
    template = spec.get("template")
    if not isinstance(selector, dict):
        errors.append(required("spec.selector"))
    elif LabelSelector.from_object(selector).empty:
        errors.append(invalid("spec.selector", _selector_text(obj), "empty selector is invalid"))
    if not isinstance(template, dict):
        errors.append(required("spec.template"))
        return errors
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if isinstance(selector, dict) and not LabelSelector.from_object(selector).matches(
        template_labels
    ):
        errors.append(
            invalid(
                "spec.template.metadata.labels",
                template_labels,
                "`selector` does not match template `labels`",
            )
        )
    pod_spec = template.get("spec")
    errors += _validate_pod_spec(pod_spec, "spec.template.spec")
    if isinstance(pod_spec, dict) and pod_spec.get("restartPolicy") != "Always":
        errors.append(
            unsupported(
                "spec.template.spec.restartPolicy", pod_spec.get("restartPolicy"), ["Always"]
            )
        )
    if rt is DEPLOYMENTS:
        errors += _validate_strategy(spec)
        for field in ("revisionHistoryLimit", "progressDeadlineSeconds", "minReadySeconds"):
            value = spec.get(field, 0)
            if not isinstance(value, int) or value < 0:
                errors.append(invalid(f"spec.{field}", value, "must be greater than or equal to 0"))
    return errors


def _validate_strategy(spec: Obj) -> list[FieldError]:
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type")
    if kind not in ("RollingUpdate", "Recreate"):
        return [unsupported("spec.strategy.type", kind, ["Recreate", "RollingUpdate"])]
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [
                FieldError(
                    "spec.strategy.rollingUpdate",
                    "FieldValueForbidden",
                    "Forbidden: may not be specified when strategy `type` is 'Recreate'",
                )
            ]
        return []
    rolling = rolling if isinstance(rolling, dict) else {}
    errors: list[FieldError] = []
    for field in ("maxSurge", "maxUnavailable"):
        value = rolling.get(field)
        if not (isinstance(value, int) and value >= 0) and not (
            isinstance(value, str) and _PERCENT.match(value)
        ):
            errors.append(
                invalid(
                    f"spec.strategy.rollingUpdate.{field}",
                    value,
                    "a valid percent string must be a numeric string followed by an ending '%'",
                )
            )
    if not errors and rolling["maxSurge"] in (0, "0%") and rolling["maxUnavailable"] in (0, "0%"):
        errors.append(
            invalid(
                "spec.strategy.rollingUpdate.maxUnavailable",
                rolling["maxUnavailable"],
                "may not be 0 when `maxSurge` is 0",
            )
        )
    return errors


def _validate_pod_spec(spec: Any, path: str) -> list[FieldError]:
    if not isinstance(spec, dict):
        return [required(path)]
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [required(f"{path}.containers")]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, container in enumerate(containers):
        where = f"{path}.containers[{index}]"
        if not isinstance(container, dict):
            errors.append(invalid(where, container, "must be an object"))
            continue
        name = container.get("name")
        if not name:
            errors.append(required(f"{where}.name"))
        elif not isinstance(name, str) or len(name) > 63 or not _LABEL.match(name):
            errors.append(invalid(f"{where}.name", name, "must be a lowercase RFC 1123 label"))
        elif name in seen:
            errors.append(
                FieldError(f"{where}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"')
            )
        else:
            seen.add(name)
        if not container.get("image"):
            errors.append(required(f"{where}.image"))
    return errors


def _selector_text(obj: Obj) -> str:
    return LabelSelector.from_object(obj.get("spec", {}).get("selector")).render()


def scaled_value(value: int | str, total: int, *, round_up: bool) -> int:
    """Resolve an int-or-percent (`maxSurge`, `maxUnavailable`) against a replica count."""
    if isinstance(value, int):
        return value
    fraction = int(value.rstrip("%")) * total / 100
    return math.ceil(fraction) if round_up else math.floor(fraction)


def rolling_limits(deployment: Obj) -> tuple[int, int]:
    """`(maxSurge, maxUnavailable)` as pod counts, with the controller's fencepost rule."""
    spec = deployment["spec"]
    replicas = int(spec["replicas"])
    strategy = spec.get("strategy") or {}
    if strategy.get("type") != "RollingUpdate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled_value(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        # Both rounding to zero would deadlock a rollout; the controller allows one.
        unavailable = 1
    return surge, min(unavailable, replicas)
