"""The three patch formats the apiserver accepts for built-in types.

* JSON Patch (RFC 6902), `application/json-patch+json`: a list of operations.
* JSON Merge Patch (RFC 7386), `application/merge-patch+json`: objects merge, lists replace.
* Strategic merge patch, `application/strategic-merge-patch+json`: like merge patch, but lists
  that the Kubernetes schema declares mergeable (containers by `name`, ports by
  `containerPort`, ...) merge element by element, and `$patch` directives apply.
"""

from __future__ import annotations

import copy
from typing import Any

from worker.k8s_emulator.errors import BadRequestError, InvalidError, UnsupportedMediaTypeError

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_MERGE_PATCH)

# patchMergeKey of the list fields in the types the emulator serves; any list not named here
# is atomic (replaced whole), as in the Kubernetes OpenAPI schema.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "resourceClaims": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "conditions": "type",
    "topologySpreadConstraints": "topologyKey",
}
# Lists of scalars with the `merge` strategy: patches add to them instead of replacing.
MERGED_SCALAR_LISTS = frozenset({"finalizers"})


class PatchFailedError(InvalidError):
    """A well-formed patch that cannot be applied to this object (422)."""


def apply_patch(content_type: str, target: Any, patch: Any) -> Any:
    """Apply a patch of the given media type; returns a new document."""
    if content_type == JSON_PATCH:
        return json_patch(target, patch)
    if content_type == MERGE_PATCH:
        return merge_patch(target, patch)
    if content_type == STRATEGIC_MERGE_PATCH:
        if not isinstance(patch, dict):
            raise BadRequestError("strategic merge patch body must be a JSON object")
        return strategic_merge_patch(target, patch)
    if content_type == APPLY_PATCH:
        raise UnsupportedMediaTypeError("server-side apply is not emulated")
    raise UnsupportedMediaTypeError(
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(PATCH_TYPES)
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- JSON Patch ------------------------------------------------------------------------------


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 operations applied in order; any failure leaves the target untouched."""
    if not isinstance(operations, list):
        raise BadRequestError("json patch body must be a list of operations")
    document = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise BadRequestError(f"invalid json patch operation: {operation!r}")
        document = _apply_operation(document, operation)
    return document


def _apply_operation(document: Any, operation: dict[str, Any]) -> Any:
    op = operation["op"]
    path = _pointer(operation["path"])
    if op == "add":
        return _add(document, path, copy.deepcopy(_value(operation)))
    if op == "remove":
        return _remove(document, path)[0]
    if op == "replace":
        _get(document, path)  # must exist
        return _add(_remove(document, path)[0], path, copy.deepcopy(_value(operation)))
    if op == "move":
        source = _pointer(_from(operation))
        document, moved = _remove(document, source)
        return _add(document, path, moved)
    if op == "copy":
        return _add(document, path, copy.deepcopy(_get(document, _pointer(_from(operation)))))
    if op == "test":
        if _get(document, path) != _value(operation):
            raise PatchFailedError(f"testing value {operation['path']} failed")
        return document
    raise BadRequestError(f"unexpected json patch operation {op!r}")


def _value(operation: dict[str, Any]) -> Any:
    if "value" not in operation:
        raise BadRequestError(f"json patch {operation['op']} operation has no value")
    return operation["value"]


def _from(operation: dict[str, Any]) -> str:
    source = operation.get("from")
    if not isinstance(source, str):
        raise BadRequestError(f"json patch {operation['op']} operation has no from")
    return source


def _pointer(text: Any) -> list[str]:
    if not isinstance(text, str) or (text and not text.startswith("/")):
        raise BadRequestError(f"invalid json pointer {text!r}")
    if text == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in text[1:].split("/")]


def _index(container: list[Any], token: str, *, for_insert: bool) -> int:
    limit = len(container) if for_insert else len(container) - 1
    if token == "-" and for_insert:
        return len(container)
    if not token.isdigit() or int(token) > limit:
        raise PatchFailedError(f"index {token!r} is out of bounds for a list of {len(container)}")
    return int(token)


def _get(document: Any, path: list[str]) -> Any:
    current = document
    for token in path:
        if isinstance(current, dict):
            if token not in current:
                raise PatchFailedError(f"doc is missing path: /{'/'.join(path)}")
            current = current[token]
        elif isinstance(current, list):
            current = current[_index(current, token, for_insert=False)]
        else:
            raise PatchFailedError(f"doc is missing path: /{'/'.join(path)}")
    return current


def _add(document: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _get(document, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, for_insert=True), value)
    else:
        raise PatchFailedError(f"cannot add at /{'/'.join(path)}: parent is not a container")
    return document


def _remove(document: Any, path: list[str]) -> tuple[Any, Any]:
    if not path:
        raise PatchFailedError("cannot remove the whole document")
    parent = _get(document, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchFailedError(f"doc is missing path: /{'/'.join(path)}")
        return document, parent.pop(token)
    if isinstance(parent, list):
        return document, parent.pop(_index(parent, token, for_insert=False))
    raise PatchFailedError(f"doc is missing path: /{'/'.join(path)}")


# --- strategic merge patch -------------------------------------------------------------------

_DELETE = object()


def strategic_merge_patch(target: Any, patch: dict[str, Any]) -> Any:
    """Strategic merge of `patch` into `target` using the emulated types' merge keys."""
    merged = _merge_map(target if isinstance(target, dict) else {}, patch)
    return {} if merged is _DELETE else merged


def _merge_map(target: dict[str, Any], patch: dict[str, Any]) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    body = {k: v for k, v in patch.items() if not k.startswith("$")}
    if directive == "replace":
        return _strip_directives(body)
    if directive not in (None, "merge"):
        raise BadRequestError(f"unknown patch directive {directive!r}")
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
    for key, value in body.items():
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        if isinstance(value, dict):
            merged = _merge_map(current if isinstance(current, dict) else {}, value)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, current if isinstance(current, list) else [], value)
        else:
            result[key] = value
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(field: str, target: list[Any], patch: list[Any]) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(i) for i in patch if not _is_directive(i, "replace")]
    if field in MERGED_SCALAR_LISTS:
        return target + [v for v in patch if v not in target]
    merge_key = MERGE_KEYS.get(field)
    if merge_key is None:
        return _strip_directives(patch)  # type: ignore[no-any-return]
    result = copy.deepcopy(target)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise BadRequestError(f"map: {item!r} does not contain declared merge key: {merge_key}")
        position = next(
            (i for i, old in enumerate(result) if old.get(merge_key) == item[merge_key]), None
        )
        if item.get("$patch") == "delete":
            if position is not None:
                result.pop(position)
            continue
        if position is None:
            result.append(_strip_directives(item))
        else:
            result[position] = _merge_map(result[position], item)
    return result


def _is_directive(item: Any, name: str) -> bool:
    return isinstance(item, dict) and item.get("$patch") == name and len(item) == 1


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value
