"""Dashboard forms → the incident Updates the CLI and API send.

Each button posts an ordinary URL-encoded form; this module turns it into the same Update
argument the API builds, so the workflow's validators and timeline apply unchanged. Bad
input is a ``FormError`` naming the field (shown as a message on the page), never a 500.
Forms are parsed here rather than by Starlette, which would need python-multipart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar
from urllib.parse import parse_qs

from pydantic import BaseModel, ValidationError

from workflows.contracts import (
    Acknowledge,
    AddNote,
    AssignRole,
    Audience,
    ComponentStatus,
    MarkMitigated,
    PostUpdate,
    PublicStatus,
    Resolve,
    Role,
    SetSeverity,
    Severity,
    StatusImpact,
)

# Larger than any field the Updates accept (20 000 characters), small enough to refuse junk.
MAX_FORM_BYTES = 256 * 1024
COMPONENT_FIELD = "component."

E = TypeVar("E", bound=StrEnum)


class FormError(ValueError):
    """A form that cannot become an Update; ``reason`` names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Form:
    """A parsed URL-encoded form body."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields

    @classmethod
    def parse(cls, body: bytes) -> Form:
        """Parse ``body``; refuse oversized or non-UTF-8 ones."""
        if len(body) > MAX_FORM_BYTES:
            raise FormError(f"the form is larger than {MAX_FORM_BYTES // 1024} KiB")
        try:
            text = body.decode("utf-8")
            return cls(parse_qs(text, keep_blank_values=True, max_num_fields=200))
        except (UnicodeDecodeError, ValueError):
            raise FormError("the form could not be read (not URL-encoded UTF-8)") from None

    def get(self, name: str, default: str = "") -> str:
        """The first value of ``name``, stripped of surrounding whitespace."""
        values = self.fields.get(name)
        return values[0].strip() if values else default

    def all(self, name: str) -> list[str]:
        """Every value of ``name`` (checkboxes)."""
        return [v.strip() for v in self.fields.get(name, [])]

    def required(self, name: str, label: str | None = None) -> str:
        """The value of ``name``; FormError when missing or blank."""
        value = self.get(name)
        if not value:
            raise FormError(f"{label or name}: required")
        return value


@dataclass(frozen=True)
class IncidentAction:
    """One dashboard button: the incident Update it runs and how its form becomes the arg."""

    update: str
    label: str
    build: Callable[[Form, str], BaseModel]


def _choice(kind: type[E], value: str, field: str) -> E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise FormError(f"{field}: '{value}' is not one of {allowed}") from None


def _role(form: Form, actor: str) -> AssignRole:
    role = _choice(Role, form.required("role"), "role")
    # An empty user vacates the role, as ``user: null`` does in the API.
    return AssignRole(actor=actor, role=role, user=form.get("user") or None)


def _severity(form: Form, actor: str) -> SetSeverity:
    severity = _choice(Severity, form.required("severity"), "severity")
    return SetSeverity(actor=actor, severity=severity, reason=form.required("reason"))


def _post_update(form: Form, actor: str) -> PostUpdate:
    status = form.get("status")
    impact = form.get("impact")
    components: dict[str, ComponentStatus] = {}
    for name, values in form.fields.items():
        if name.startswith(COMPONENT_FIELD) and values and values[0].strip():
            component = name.removeprefix(COMPONENT_FIELD)
            components[component] = _choice(
                ComponentStatus, values[0].strip(), f"component {component}"
            )
    audiences = [_choice(Audience, a, "audiences") for a in form.all("audiences") if a]
    if not audiences:
        raise FormError("audiences: choose at least one audience")
    return PostUpdate(
        actor=actor,
        text=form.required("text"),
        status=_choice(PublicStatus, status, "status") if status else None,
        impact=_choice(StatusImpact, impact, "impact") if impact else None,
        components=components or None,
        audiences=audiences,
    )


ACTIONS: dict[str, IncidentAction] = {
    "acknowledge": IncidentAction("acknowledge", "Acknowledge", lambda f, a: Acknowledge(actor=a)),
    "role": IncidentAction("assign_role", "Assign role", _role),
    "severity": IncidentAction("set_severity", "Change severity", _severity),
    "note": IncidentAction(
        "add_note", "Add note", lambda f, a: AddNote(actor=a, text=f.required("text"))
    ),
    "update": IncidentAction("post_update", "Post update", _post_update),
    "mitigate": IncidentAction(
        "mark_mitigated",
        "Mark mitigated",
        lambda f, a: MarkMitigated(actor=a, summary=f.get("summary")),
    ),
    "resolve": IncidentAction(
        "resolve", "Resolve", lambda f, a: Resolve(actor=a, summary=f.required("summary"))
    ),
}


def build_update(action: str, form: Form, actor: str) -> tuple[str, BaseModel]:
    """The Update name and argument for the dashboard ``action``; FormError if unusable."""
    found = ACTIONS.get(action)
    if found is None:
        raise FormError(f"unknown action '{action}'")
    try:
        return found.update, found.build(form, actor)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err.get("loc", ())) or "form"
            problems.append(f"{field}: {err.get('msg', 'invalid')}")
        raise FormError("; ".join(problems)) from None
