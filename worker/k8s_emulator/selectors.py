"""Label selectors (query strings and `LabelSelector` objects) and field selectors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.k8s_emulator.errors import BadRequestError

_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")
_EQUALITY = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$")
_VALUE_ONLY = re.compile(rf"^{_VALUE}$")


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector."""

    key: str
    operator: str  # "In", "NotIn", "Exists", "DoesNotExist"
    values: frozenset[str] = frozenset()

    def matches(self, found: Mapping[str, str]) -> bool:
        """Whether a label set satisfies this clause."""
        if self.operator == "Exists":
            return self.key in found
        if self.operator == "DoesNotExist":
            return self.key not in found
        if self.operator == "In":
            return self.key in found and found[self.key] in self.values
        # NotIn, like the apiserver, also matches objects that lack the key.
        return self.key not in found or found[self.key] not in self.values

    def render(self) -> str:
        """The query-string form of this clause."""
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        if self.operator == "In" and len(self.values) == 1:
            return f"{self.key}={next(iter(self.values))}"
        if self.operator == "NotIn" and len(self.values) == 1:
            return f"{self.key}!={next(iter(self.values))}"
        word = "in" if self.operator == "In" else "notin"
        return f"{self.key} {word} ({','.join(sorted(self.values))})"


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, found: Mapping[str, str]) -> bool:
        """Whether a label set satisfies every requirement."""
        return all(r.matches(found) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """Whether this selector has no requirements."""
        return not self.requirements

    def render(self) -> str:
        """The query-string form, as in a Scale's `status.selector`."""
        return ",".join(r.render() for r in self.requirements)

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse the `labelSelector` query parameter; raises `BadRequestError` on bad syntax."""
        requirements = [_parse_requirement(part.strip()) for part in _split(text) if part.strip()]
        return cls(tuple(requirements))

    @classmethod
    def from_object(cls, selector: Mapping[str, Any] | None) -> LabelSelector:
        """Build from a `LabelSelector` object (`matchLabels`, `matchExpressions`)."""
        if not selector:
            return cls()
        requirements = [
            Requirement(key, "In", frozenset({value}))
            for key, value in sorted((selector.get("matchLabels") or {}).items())
        ]
        for expression in selector.get("matchExpressions") or []:
            requirements.append(
                Requirement(
                    expression["key"],
                    expression["operator"],
                    frozenset(expression.get("values") or ()),
                )
            )
        return cls(tuple(requirements))


def _split(text: str) -> list[str]:
    # Commas separate requirements except inside the parentheses of a set clause.
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _parse_requirement(part: str) -> Requirement:
    if match := _EQUALITY.match(part):
        key, op, value = match.groups()
        return Requirement(key, "NotIn" if op == "!=" else "In", frozenset({value}))
    if match := _SET.match(part):
        key, op, raw = match.groups()
        values = [v.strip() for v in raw.split(",")]
        if all(_VALUE_ONLY.match(v) for v in values):
            return Requirement(key, "In" if op == "in" else "NotIn", frozenset(values))
    if match := _EXISTS.match(part):
        negated, key = match.groups()
        return Requirement(key, "DoesNotExist" if negated else "Exists")
    raise BadRequestError(
        f"unable to parse requirement: {part!r} is not a valid label selector clause"
    )


@dataclass(frozen=True)
class FieldClause:
    """One `path=value` or `path!=value` clause of a field selector."""

    path: str
    value: str
    negated: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object's field (rendered as the apiserver renders it) matches."""
        return (field_value(obj, self.path) == self.value) != self.negated


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of field clauses."""

    clauses: tuple[FieldClause, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether every clause matches the object."""
        return all(c.matches(obj) for c in self.clauses)

    @classmethod
    def parse(cls, text: str, allowed: frozenset[str]) -> FieldSelector:
        """Parse `fieldSelector`; fields outside `allowed` are rejected like the apiserver."""
        clauses = []
        for raw in text.split(","):
            part = raw.strip()
            if not part:
                continue
            match = re.match(r"^([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*)$", part)
            if match is None:
                raise BadRequestError(f"invalid selector: '{text}'; can't understand '{part}'")
            path, op, value = match.groups()
            if path not in allowed:
                raise BadRequestError(f'field label not supported: "{path}"')
            clauses.append(FieldClause(path, value, op == "!="))
        return cls(tuple(clauses))


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """A field rendered as a selector compares it: missing is "", booleans lower-case."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    if isinstance(current, Mapping):
        # `source` on Events is compared by its component.
        return str(current.get("component", ""))
    return str(current)
