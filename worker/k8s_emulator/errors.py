"""API errors, rendered as the `Status` objects a real apiserver returns.

Exception tree::

    ApiError (500 InternalError)
    ├── BadRequestError (400)
    ├── NotFoundError (404)
    ├── MethodNotAllowedError (405)
    ├── AlreadyExistsError (409)
    ├── ConflictError (409)
    ├── UnsupportedMediaTypeError (415)
    ├── InvalidError (422)
    └── TooManyRequestsError (429)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from worker.k8s_emulator.resources import ResourceType


class ApiError(Exception):
    """An apiserver failure; `status()` is the body the client receives."""

    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        """The `Status` object for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequestError(ApiError):
    """The request could not be understood (bad JSON, bad selector, name mismatch)."""

    code = 400
    reason = "BadRequest"


class NotFoundError(ApiError):
    """The object, or the resource path, does not exist."""

    code = 404
    reason = "NotFound"

    @classmethod
    def of(cls, rt: ResourceType, name: str) -> NotFoundError:
        """The error for a missing object of type `rt`."""
        return cls(f'{rt.group_resource} "{name}" not found', _details(rt, name))


class MethodNotAllowedError(ApiError):
    """The verb is not served on this path."""

    code = 405
    reason = "MethodNotAllowed"


class AlreadyExistsError(ApiError):
    """A create named an object that exists."""

    code = 409
    reason = "AlreadyExists"

    @classmethod
    def of(cls, rt: ResourceType, name: str) -> AlreadyExistsError:
        """The error for creating `name` twice."""
        return cls(f'{rt.group_resource} "{name}" already exists', _details(rt, name))


class ConflictError(ApiError):
    """An optimistic-concurrency precondition (resourceVersion, uid) failed."""

    code = 409
    reason = "Conflict"

    @classmethod
    def stale(cls, rt: ResourceType, name: str) -> ConflictError:
        """The error for a write carrying an outdated resourceVersion."""
        return cls(
            f'Operation cannot be fulfilled on {rt.group_resource} "{name}": the object has '
            "been modified; please apply your changes to the latest version and try again",
            _details(rt, name),
        )


class UnsupportedMediaTypeError(ApiError):
    """The request body's content type is not one the endpoint accepts."""

    code = 415
    reason = "UnsupportedMediaType"


@dataclass(frozen=True)
class FieldError:
    """One validation failure, as listed in `Status.details.causes`."""

    field: str
    kind: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueForbidden
    detail: str

    def describe(self) -> str:
        """The `field: detail` form used inside the overall message."""
        return f"{self.field}: {self.detail}"


def required(field: str, why: str = "") -> FieldError:
    """A `Required value` field error."""
    return FieldError(field, "FieldValueRequired", "Required value" + (f": {why}" if why else ""))


def invalid(field: str, value: object, why: str) -> FieldError:
    """An `InvalidError value` field error."""
    return FieldError(field, "FieldValueInvalid", f"InvalidError value: {_go_repr(value)}: {why}")


def unsupported(field: str, value: object, supported: list[str]) -> FieldError:
    """An `Unsupported value` field error."""
    choices = ", ".join(f'"{s}"' for s in supported)
    return FieldError(
        field,
        "FieldValueNotSupported",
        f"Unsupported value: {_go_repr(value)}: supported values: {choices}",
    )


class InvalidError(ApiError):
    """The object failed validation (HTTP 422)."""

    code = 422
    reason = "Invalid"

    @classmethod
    def of(cls, rt: ResourceType, name: str, errors: list[FieldError]) -> InvalidError:
        """The error listing every field error, in the apiserver's message format."""
        listed = [e.describe() for e in errors]
        summary = listed[0] if len(listed) == 1 else "[" + ", ".join(listed) + "]"
        details = {
            "name": name,
            "kind": rt.kind,
            "causes": [{"reason": e.kind, "message": e.detail, "field": e.field} for e in errors],
        }
        if rt.group:
            details["group"] = rt.group
        return cls(f'{rt.qualified_kind} "{name}" is invalid: {summary}', details)


class TooManyRequestsError(ApiError):
    """Throttled; the response carries `Retry-After`."""

    code = 429
    reason = "TooManyRequests"


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return details


def _go_repr(value: object) -> str:
    # Quote strings the way Go's %q does, so messages read like the apiserver's.
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
