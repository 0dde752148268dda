r"""The runbook language: what a ``runbooks/*.yaml`` file may say, as pydantic models.

One runbook per file::

    name: bad-deploy-rollback           # slug, unique across the library
    description: ...
    match: ['alertname="HighErrorRate"', 'deployment!=""']   # routing's matcher syntax
    parameters:
      deployment: {type: string, required: true}
      namespace: {type: string, default: default}
    timeout: 2h                         # the whole run; optional
    steps: [...]                        # run in order
    on_failure: abort                   # abort | escalate | {run: [steps], then: abort|escalate}

Steps are a union discriminated by ``kind``; every step has ``id`` (slug, unique), optional
``description`` and an optional ``if:`` condition (false: the step is skipped). Unknown keys
are errors everywhere.

- ``action``: ``action`` (a worker activity name such as ``k8s.rollback``), ``with`` (inputs,
  any JSON; strings may hold references), ``cluster`` (run on that cluster's task queue),
  ``timeout`` (5m), ``retries`` (3 attempts, 5s backoff doubling), ``on_failure``.
- ``approval``: ``approvers`` (``roles`` / ``users`` / ``groups``, at least one), ``prompt``,
  ``timeout`` (30m), ``on_timeout`` (reject | approve | escalate), ``on_reject`` (abort |
  continue | ``{goto: id}``).
- ``wait``: either ``duration``, or ``until`` (a condition over values that change during the
  run: ``{alert.status}``, ``{incident.status}``, ``{incident.severity}``) with ``timeout`` and
  a polling ``interval`` (30s).
- ``check``: a metrics analysis in Argo Rollouts' vocabulary: ``provider`` (prometheus),
  ``query``, ``success_condition`` / ``failure_condition`` (at least one), ``initial_delay``,
  ``interval``, ``count`` (1), ``failure_limit`` (0), ``inconclusive_limit`` (0), ``retries``,
  ``on_failure``.

Step ``on_failure``: ``abort`` (the default: the run fails and the runbook's ``on_failure``
applies), ``continue`` (record the failure, go on), ``escalate`` (like abort, and the incident
escalates), or ``{goto: id}`` (jump to another step of the same list, never itself).

Substitution, not templating. A reference is ``{`` dotted name ``}`` with no spaces:
``{alert.labels.<name>}``, ``{alert.annotations.<name>}``, ``{alert.status}``,
``{params.<name>}``, ``{steps.<id>.output}``, ``{steps.<id>.output.<key or index>...}``,
``{steps.<id>.status}``, ``{incident.id|title|service|severity|status}``. ``{{`` is a literal
``{``. Any other brace is literal text, so PromQL selectors (``{code=~"5.."}``) and regex
counts (``x{3}``) need no escaping, while a dotted name in braces that is not a reference
(``{alert.label.env}``) is an error, never silently left in. A ``steps.<id>`` reference must
name a step that comes before; a ``params.<name>`` reference a declared parameter.

Conditions (``if``, ``until``) are mappings with one key: ``equals`` / ``not_equals`` /
``lt`` / ``le`` / ``gt`` / ``ge`` ``[a, b]``, ``in: [a, [b, c]]``, ``exists: "{ref}"``,
``all: [...]``, ``any: [...]``, ``not: {...}``. ``success_condition`` and
``failure_condition`` use a deliberately tiny grammar, parsed here at load time::

    condition  := conjunct { "||" conjunct }          && binds tighter than ||
    conjunct   := comparison { "&&" comparison }      no parentheses, no functions
    comparison := subject ( < | <= | > | >= | == | != ) number
    subject    := result | result[N] | len(result)    result is result[0]

Validation is split in two. The models check each value's shape and the analysis grammar.
:func:`cross_check` checks what needs the whole runbook (unique ids, reference syntax, earlier
steps, declared parameters, goto targets); :class:`Runbook` runs it when validated, so a
recorded runbook is always sound, and the loader runs it over partly valid files so that one
pass reports every error.

A leaf module that is part of recorded workflow input: imports only the standard library,
pydantic, ``workflows.matchers`` and ``workflows.durations``; no I/O, no clock.

Exceptions::

    TemplateError (ValueError)         a {dotted.name} in text that is not a valid reference
    AnalysisSyntaxError (ValueError)   a success/failure condition outside the grammar above
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal, NamedTuple, NoReturn, Self, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from workflows.durations import Duration, format_duration, parse_duration
from workflows.matchers import Matcher, MatcherSyntaxError, parse_matchers

__all__ = [
    "DEFER_CROSS_CHECK",
    "DISCRIMINATOR_TAGS",
    "LIVE_REFERENCES",
    "ActionStep",
    "AllOf",
    "AnalysisExpr",
    "AnalysisSyntaxError",
    "AnyOf",
    "ApprovalStep",
    "Approvers",
    "CheckStep",
    "Comparison",
    "Condition",
    "Equals",
    "Exists",
    "FailureHandler",
    "Ge",
    "Goto",
    "Gt",
    "In",
    "Le",
    "Lt",
    "Not",
    "NotEquals",
    "Parameter",
    "Problem",
    "Reference",
    "Retries",
    "Runbook",
    "Step",
    "StepSlot",
    "TemplateError",
    "WaitStep",
    "coerce_parameter",
    "condition_references",
    "cross_check",
    "format_loc",
    "kind_of",
    "parse_analysis",
    "parse_template",
    "single_reference",
]


class TemplateError(ValueError):
    """Text holds a ``{dotted.name}`` that is not one of the allowed references."""


class AnalysisSyntaxError(ValueError):
    """A ``success_condition`` / ``failure_condition`` outside the comparison grammar."""


Loc: TypeAlias = tuple[str | int, ...]

# Validation context key: the loader runs cross_check itself, over partly valid files.
DEFER_CROSS_CHECK = "runbooks.defer_cross_check"

# Tags of the discriminated unions below. pydantic puts a tag in an error's location; the
# loader drops these so that paths read as the author wrote them (steps[2].with, not
# steps[2].kind=action.with). The '=' keeps them apart from any field name.
_STEP_TAGS = {kind: f"kind={kind}" for kind in ("action", "approval", "wait", "check")}
_CONDITION_KEYS = ("equals", "not_equals", "in", "exists", "lt", "le", "gt", "ge")
_COMBINATOR_KEYS = ("all", "any", "not")
_CONDITION_TAGS = {key: f"condition={key}" for key in (*_CONDITION_KEYS, *_COMBINATOR_KEYS)}
_POLICY_TAG = "policy=name"
_GOTO_TAG = "policy=goto"
_HANDLER_TAG = "policy=handler"
DISCRIMINATOR_TAGS = frozenset(
    [*_STEP_TAGS.values(), *_CONDITION_TAGS.values(), _POLICY_TAG, _GOTO_TAG, _HANDLER_TAG]
)

# Values that can change while a run waits; an `until` that reads none of them never changes.
LIVE_REFERENCES = frozenset({"{alert.status}", "{incident.status}", "{incident.severity}"})


def kind_of(value: object) -> str:
    """How a YAML author would name the type of ``value``: "a mapping", "a list", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def format_loc(loc: Loc) -> str:
    """Render a location the way authors read it: ``steps[2].with.revision``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# --- references (substitution syntax) ------------------------------------------------------

_CANDIDATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)\}")
_INCIDENT_FIELDS = ("id", "title", "service", "severity", "status")
_SHAPES = {
    "alert": "{alert.labels.<name>}, {alert.annotations.<name>} or {alert.status}",
    "params": "{params.<name>}",
    "steps": "{steps.<id>.output}, {steps.<id>.output.<path>} or {steps.<id>.status}",
    "incident": "{incident.id}, {incident.title}, {incident.service}, {incident.severity} "
    "or {incident.status}",
}


@dataclass(frozen=True)
class Reference:
    """One ``{root.path}`` reference, e.g. ``{steps.rollback.output.revision}``."""

    text: str
    root: Literal["alert", "params", "steps", "incident"]
    path: tuple[str, ...]

    @property
    def step_id(self) -> str | None:
        """The step a ``{steps.<id>...}`` reference reads, else None."""
        return self.path[0] if self.root == "steps" else None

    def __str__(self) -> str:
        return self.text


Template: TypeAlias = tuple[str | Reference, ...]


def parse_template(text: str) -> Template:
    """Split text into literal parts and references; ``{{`` is a literal ``{``."""
    parts: list[str | Reference] = []
    literal: list[str] = []
    pos = 0
    while pos < len(text):
        brace = text.find("{", pos)
        if brace < 0:
            literal.append(text[pos:])
            break
        literal.append(text[pos:brace])
        if text.startswith("{{", brace):
            literal.append("{")
            pos = brace + 2
            continue
        found = _CANDIDATE.match(text, brace)
        if found is None:
            literal.append("{")
            pos = brace + 1
            continue
        if "".join(literal):
            parts.append("".join(literal))
        literal = []
        parts.append(_reference(found.group(0), found.group(1).split(".")))
        pos = found.end()
    if "".join(literal):
        parts.append("".join(literal))
    return tuple(parts)


def single_reference(text: str) -> Reference | None:
    """The reference when ``text`` is exactly one reference and nothing else, else None."""
    parts = parse_template(text)
    if len(parts) == 1 and isinstance(parts[0], Reference):
        return parts[0]
    return None


def _reference(text: str, parts: list[str]) -> Reference:
    root, rest = parts[0], tuple(parts[1:])
    if root == "alert":
        valid = (len(rest) == 2 and rest[0] in ("labels", "annotations")) or rest == ("status",)
        return _shaped(text, "alert", rest, valid)
    if root == "params":
        return _shaped(text, "params", rest, len(rest) == 1)
    if root == "incident":
        return _shaped(text, "incident", rest, len(rest) == 1 and rest[0] in _INCIDENT_FIELDS)
    if root == "steps":
        output = len(rest) >= 2 and rest[1] == "output"
        return _shaped(text, "steps", rest, output or rest[1:] == ("status",))
    raise TemplateError(
        f"{text} is not a reference: references start with alert., params., steps. or "
        "incident. (write {{ for a literal '{')"
    )


def _shaped(
    text: str,
    root: Literal["alert", "params", "steps", "incident"],
    rest: tuple[str, ...],
    valid: bool,
) -> Reference:
    if not valid:
        raise TemplateError(f"{text} is not a reference: use {_SHAPES[root]}")
    return Reference(text=text, root=root, path=rest)


# --- analysis conditions (success_condition / failure_condition) -----------------------------

_ANALYSIS_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<length>len\(\s*result\s*\))
    | (?P<subject>result(?:\s*\[\s*(?P<index>\d+)\s*\])?)(?![A-Za-z0-9_])
    | (?P<op><=|>=|==|!=|<|>)
    | (?P<join>&&|\|\|)
    | (?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?![A-Za-z0-9_.])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_SUBJECTS = "result, result[N] or len(result)"
_OPERATOR_NAMES = "<, <=, >, >=, == or !="


@dataclass(frozen=True)
class Comparison:
    """``result[index] <op> value``, or ``len(result) <op> value`` when ``length``."""

    length: bool
    index: int
    op: str
    value: float

    def __str__(self) -> str:
        subject = "len(result)" if self.length else f"result[{self.index}]"
        return f"{subject} {self.op} {self.value:g}"


@dataclass(frozen=True)
class AnalysisExpr:
    """A parsed analysis condition: any of (all of comparisons)."""

    text: str
    any_of: tuple[tuple[Comparison, ...], ...]


class _Token(NamedTuple):
    kind: str
    text: str
    pos: int
    subscript: int | None


def parse_analysis(text: str) -> AnalysisExpr:
    """Parse ``result[0] < 0.05 && len(result) > 0`` style text; no eval, no functions."""
    tokens = [t for t in _analysis_tokens(text) if t.kind != "space"]
    if not tokens:
        raise AnalysisSyntaxError(f"cannot parse condition {text!r}: the condition is empty")
    groups: list[tuple[Comparison, ...]] = []
    current: list[Comparison] = []
    pos = 0
    while True:
        comparison, pos = _comparison(text, tokens, pos)
        current.append(comparison)
        if pos == len(tokens):
            break
        join = tokens[pos]
        if join.kind != "join":
            _analysis_fail(text, join.pos, f"expected && or || or the end, found {_found(join)}")
        if join.text == "||":
            groups.append(tuple(current))
            current = []
        pos += 1
        if pos == len(tokens):
            _analysis_fail(text, len(text), f"expected {_SUBJECTS} after {join.text}")
    groups.append(tuple(current))
    return AnalysisExpr(text=text, any_of=tuple(groups))


def _analysis_tokens(text: str) -> Iterator[_Token]:
    for found in _ANALYSIS_TOKEN.finditer(text):
        # lastgroup is the outermost group, so result[N] is "subject", never "index".
        kind = found.lastgroup or "other"
        index = found.group("index")
        yield _Token(kind, found.group(0), found.start(), int(index) if index else None)


def _comparison(text: str, tokens: list[_Token], pos: int) -> tuple[Comparison, int]:
    subject = tokens[pos]
    if subject.kind not in ("subject", "length"):
        _analysis_fail(text, subject.pos, f"expected {_SUBJECTS}, found {_found(subject)}")
    if pos + 1 == len(tokens):
        _analysis_fail(
            text, len(text), f"expected {_OPERATOR_NAMES} after {subject.text}, found the end"
        )
    op = tokens[pos + 1]
    if op.kind != "op":
        hint = "; write == to compare" if op.text == "=" else ""
        _analysis_fail(
            text,
            op.pos,
            f"expected {_OPERATOR_NAMES} after {subject.text}, found {_found(op)}{hint}",
        )
    if pos + 2 == len(tokens):
        _analysis_fail(text, len(text), f"expected a number after '{op.text}', found the end")
    number = tokens[pos + 2]
    if number.kind != "number":
        _analysis_fail(
            text, number.pos, f"expected a number after '{op.text}', found {_found(number)}"
        )
    comparison = Comparison(
        length=subject.kind == "length",
        index=subject.subscript or 0,
        op=op.text,
        value=float(number.text),
    )
    return comparison, pos + 3


def _found(token: _Token) -> str:
    if token.kind == "word" and token.text.lower() in ("and", "or"):
        return f"{token.text!r}; write && and || instead"
    if token.text in ("'", '"'):
        return "quoted text; conditions compare numbers only"
    if token.text == "(":
        return "'('; parentheses are not supported (&& binds tighter than ||)"
    if token.kind == "word":
        return f"{token.text!r}; functions and names other than result are not supported"
    return repr(token.text)


def _analysis_fail(text: str, pos: int, problem: str) -> NoReturn:
    raise AnalysisSyntaxError(f"cannot parse condition {text!r} at column {pos + 1}: {problem}")


def _valid_analysis(text: str) -> str:
    parse_analysis(text)
    return text


AnalysisCondition = Annotated[
    str,
    AfterValidator(_valid_analysis),
    WithJsonSchema(
        {
            "type": "string",
            "description": "comparisons of result, result[N] or len(result) with a number, "
            "joined by && and ||, e.g. 'result[0] < 0.05'",
        }
    ),
]


# --- small value types --------------------------------------------------------------------

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ACTION_NAME = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
_DURATION_PATTERN = r"^(0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$"


def _slug(value: str) -> str:
    if _SLUG.fullmatch(value) is None:
        raise ValueError(
            f"{value!r} is not a valid name: use lowercase letters, digits and '-', starting "
            "and ending with a letter or digit, at most 63 characters"
        )
    return value


def _param_name(value: str) -> str:
    if _PARAM_NAME.fullmatch(value) is None:
        raise ValueError(
            f"{value!r} is not a valid parameter name: use letters, digits and '_', "
            "not starting with a digit"
        )
    return value


def _action_name(value: str) -> str:
    if _ACTION_NAME.fullmatch(value) is None:
        raise ValueError(
            f"{value!r} is not a valid action name: lowercase words joined by dots, "
            "e.g. k8s.rollback"
        )
    return value


def _no_spaces(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a valid name: it must be non-empty, without spaces")
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


Slug = Annotated[
    str, AfterValidator(_slug), WithJsonSchema({"type": "string", "pattern": f"^{_SLUG.pattern}$"})
]
ParamName = Annotated[str, AfterValidator(_param_name)]
ActionName = Annotated[str, AfterValidator(_action_name)]
Name = Annotated[str, AfterValidator(_no_spaces)]
_DURATION_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "pattern": _DURATION_PATTERN,
        "description": "a number and a unit, largest unit first: 30s, 5m, 1h30m, 2d",
    }
)
PositiveDuration = Annotated[Duration, AfterValidator(_positive), _DURATION_SCHEMA]
NonNegativeDuration = Annotated[Duration, AfterValidator(_not_negative), _DURATION_SCHEMA]
RoleName = Literal["commander", "communications", "scribe", "sme"]
ParameterType = Literal["string", "int", "number", "bool", "duration"]
ParameterValue = str | bool | int | float


class _Model(BaseModel):
    """Base for runbook models: unknown keys are errors; aliases (with, if, in, not) in JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)


# --- conditions ----------------------------------------------------------------------------


def _operand(value: Any) -> Any:
    if isinstance(value, str | bool | int | float):
        return value
    raise ValueError(f"expected a string, number or boolean, found {kind_of(value)}")


Operand = Annotated[str | bool | int | float, BeforeValidator(_operand)]


def _pair(value: Any) -> Any:
    if isinstance(value, list | tuple) and len(value) == 2:
        return value
    if isinstance(value, list | tuple):
        found = f"{len(value)} value{'' if len(value) == 1 else 's'}"
    else:
        found = kind_of(value)
    raise ValueError(f"expected a list of two values [a, b], found {found}")


Pair = Annotated[tuple[Operand, Operand], BeforeValidator(_pair)]


def _membership(value: Any) -> Any:
    value = _pair(value)
    if not isinstance(value[1], list | str):
        raise ValueError(
            f'expected [value, [choices...]] or [value, "{{reference}}"], found {kind_of(value[1])}'
            " as the second item"
        )
    return value


class Equals(_Model):
    """True when both values are equal (numbers as numbers, anything else as text)."""

    equals: Pair


class NotEquals(_Model):
    """True when the values differ."""

    not_equals: Pair


class In(_Model):
    """True when the first value equals one of the choices (a list, or a reference to one)."""

    in_: Annotated[tuple[Operand, list[Operand] | str], BeforeValidator(_membership)] = Field(
        alias="in"
    )


class Exists(_Model):
    """True when the one reference has a non-null value."""

    exists: str


class Lt(_Model):
    """True when a < b, both read as numbers."""

    lt: Pair


class Le(_Model):
    """True when a <= b, both read as numbers."""

    le: Pair


class Gt(_Model):
    """True when a > b, both read as numbers."""

    gt: Pair


class Ge(_Model):
    """True when a >= b, both read as numbers."""

    ge: Pair


class AllOf(_Model):
    """True when every condition is true, evaluated left to right, stopping at the first false."""

    all: list[Condition] = Field(min_length=1)


class AnyOf(_Model):
    """True when some condition is true, evaluated left to right, stopping at the first true."""

    any: list[Condition] = Field(min_length=1)


class Not(_Model):
    """True when the condition is false."""

    not_: Condition = Field(alias="not")


_CONDITION_CLASSES: dict[str, type[_Model]] = {
    "equals": Equals,
    "not_equals": NotEquals,
    "in": In,
    "exists": Exists,
    "lt": Lt,
    "le": Le,
    "gt": Gt,
    "ge": Ge,
    "all": AllOf,
    "any": AnyOf,
    "not": Not,
}
_CONDITION_NAMES = ", ".join(_CONDITION_CLASSES)


def _check_condition(value: Any) -> Any:
    # One clear message instead of pydantic's "unable to extract tag".
    if isinstance(value, _Model):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(
            f"a condition is a mapping with one key ({_CONDITION_NAMES}), found {kind_of(value)}"
        )
    keys = list(value)
    if len(keys) != 1:
        raise ValueError(
            f"a condition has exactly one key ({_CONDITION_NAMES}), found {len(keys)}"
            + (f": {', '.join(map(str, keys))}; combine conditions with all or any" if keys else "")
        )
    if keys[0] not in _CONDITION_CLASSES:
        raise ValueError(f"unknown condition {keys[0]!r}: use one of {_CONDITION_NAMES}")
    return value


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, Mapping) and len(value) == 1:
        return _CONDITION_TAGS.get(next(iter(value)))
    for key, cls in _CONDITION_CLASSES.items():
        if isinstance(value, cls):
            return _CONDITION_TAGS[key]
    return None


Condition = Annotated[
    Annotated[Equals, Tag(_CONDITION_TAGS["equals"])]
    | Annotated[NotEquals, Tag(_CONDITION_TAGS["not_equals"])]
    | Annotated[In, Tag(_CONDITION_TAGS["in"])]
    | Annotated[Exists, Tag(_CONDITION_TAGS["exists"])]
    | Annotated[Lt, Tag(_CONDITION_TAGS["lt"])]
    | Annotated[Le, Tag(_CONDITION_TAGS["le"])]
    | Annotated[Gt, Tag(_CONDITION_TAGS["gt"])]
    | Annotated[Ge, Tag(_CONDITION_TAGS["ge"])]
    | Annotated[AllOf, Tag(_CONDITION_TAGS["all"])]
    | Annotated[AnyOf, Tag(_CONDITION_TAGS["any"])]
    | Annotated[Not, Tag(_CONDITION_TAGS["not"])],
    Discriminator(_condition_tag),
    BeforeValidator(_check_condition),
]
"""One of the fixed conditions; see the module docstring."""

AllOf.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


# --- failure policies -------------------------------------------------------------------------


class Goto(_Model):
    """Jump to the step with this id (in the same list of steps)."""

    goto: Slug


def _policy_checker(names: tuple[str, ...]) -> Callable[[Any], Any]:
    allowed = ", ".join(names)

    def check(value: Any) -> Any:
        if isinstance(value, str) and value not in names:
            hint = f"; write {{goto: {value[5:]}}}" if value.startswith("goto ") else ""
            raise ValueError(f"expected {allowed} or {{goto: <step id>}}, found {value!r}{hint}")
        if not isinstance(value, str | Mapping | Goto):
            raise ValueError(f"expected {allowed} or {{goto: <step id>}}, found {kind_of(value)}")
        return value

    return check


def _policy_tag(value: Any) -> str:
    return _POLICY_TAG if isinstance(value, str) else _GOTO_TAG


OnFailure = Annotated[
    Annotated[Literal["abort", "continue", "escalate"], Tag(_POLICY_TAG)]
    | Annotated[Goto, Tag(_GOTO_TAG)],
    Discriminator(_policy_tag),
    BeforeValidator(_policy_checker(("abort", "continue", "escalate"))),
]
"""What a failed step does: abort (default), continue, escalate, or {goto: <step id>}."""

OnReject = Annotated[
    Annotated[Literal["abort", "continue"], Tag(_POLICY_TAG)] | Annotated[Goto, Tag(_GOTO_TAG)],
    Discriminator(_policy_tag),
    BeforeValidator(_policy_checker(("abort", "continue"))),
]
"""What a rejected approval does: abort (default), continue, or {goto: <step id>}."""


class Retries(_Model):
    """How an action (or a check's query) is retried, as a Temporal retry policy."""

    max_attempts: int = Field(3, ge=1, le=100)
    backoff: PositiveDuration = timedelta(seconds=5)
    backoff_coefficient: float = Field(2.0, ge=1.0, le=10.0)
    max_backoff: PositiveDuration | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max_backoff is not None and self.max_backoff < self.backoff:
            raise ValueError(
                f"max_backoff {format_duration(self.max_backoff)} is shorter than backoff "
                f"{format_duration(self.backoff)}"
            )
        return self


# --- steps ---------------------------------------------------------------------------------


class _Step(_Model):
    id: Slug
    description: str = ""
    if_: Condition | None = Field(None, alias="if")


class ActionStep(_Step):
    """Run one worker activity by name with ``with`` inputs."""

    kind: Literal["action"]
    action: ActionName
    with_: dict[str, JsonValue] = Field(default_factory=dict, alias="with")
    # Run on this cluster's task queue, so the worker inside that cluster does the work.
    cluster: str | None = Field(None, min_length=1)
    timeout: PositiveDuration = timedelta(minutes=5)
    retries: Retries = Field(default_factory=Retries)
    on_failure: OnFailure = "abort"


class Approvers(_Model):
    """Who may approve: incident roles, named users, groups; at least one."""

    roles: list[RoleName] = Field(default_factory=list)
    users: list[Name] = Field(default_factory=list)
    groups: list[Name] = Field(default_factory=list)

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if not (self.roles or self.users or self.groups):
            raise ValueError("name at least one approver in roles, users or groups")
        return self


class ApprovalStep(_Step):
    """Wait for an allowed person to approve or reject; the timeout is a durable timer."""

    kind: Literal["approval"]
    approvers: Approvers
    prompt: str = Field(min_length=1)
    timeout: PositiveDuration = timedelta(minutes=30)
    # escalate: escalate the incident and keep waiting for one more timeout, then reject.
    on_timeout: Literal["reject", "approve", "escalate"] = "reject"
    on_reject: OnReject = "abort"


class WaitStep(_Step):
    """Wait a fixed ``duration``, or until a condition holds (polled every ``interval``)."""

    kind: Literal["wait"]
    duration: PositiveDuration | None = None
    until: Condition | None = None
    timeout: PositiveDuration | None = None
    interval: PositiveDuration | None = None
    on_failure: OnFailure = "abort"

    @model_validator(mode="after")
    def _one_way_to_end(self) -> Self:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a wait step has either duration or until, not both or neither")
        if self.until is not None and self.timeout is None:
            raise ValueError("a wait with until needs a timeout")
        if self.duration is not None and (self.timeout is not None or self.interval is not None):
            raise ValueError("timeout and interval apply to until; a duration wait ends by itself")
        return self

    @property
    def poll_interval(self) -> timedelta:
        """How often ``until`` is evaluated again."""
        return self.interval or timedelta(seconds=30)


class CheckStep(_Step):
    """A metrics analysis with Argo Rollouts' semantics (see ``substitution.assess_analysis``)."""

    kind: Literal["check"]
    provider: Slug = "prometheus"
    query: str = Field(min_length=1)
    success_condition: AnalysisCondition | None = None
    failure_condition: AnalysisCondition | None = None
    initial_delay: NonNegativeDuration = timedelta(0)
    interval: PositiveDuration | None = None
    count: int = Field(1, ge=1, le=1000)
    failure_limit: int = Field(0, ge=0)
    inconclusive_limit: int = Field(0, ge=0)
    retries: Retries = Field(default_factory=Retries)
    on_failure: OnFailure = "abort"

    @model_validator(mode="after")
    def _sound_analysis(self) -> Self:
        if self.success_condition is None and self.failure_condition is None:
            raise ValueError("a check needs success_condition, failure_condition or both")
        if self.count > 1 and self.interval is None:
            raise ValueError(f"count {self.count} needs an interval between measurements")
        if self.count == 1 and self.interval is not None:
            raise ValueError("interval has no effect with count 1; set count")
        if self.failure_limit >= self.count:
            raise ValueError(
                f"failure_limit {self.failure_limit} tolerates every one of {self.count} "
                "measurements failing, so the check can never fail; lower it or raise count"
            )
        return self


def _check_step(value: Any) -> Any:
    if isinstance(value, _Step):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"a step is a mapping with id and kind, found {kind_of(value)}")
    if "kind" not in value:
        raise ValueError("missing kind: one of action, approval, wait or check")
    if value["kind"] not in _STEP_TAGS:
        raise ValueError(
            f"unknown step kind {value['kind']!r}: use action, approval, wait or check"
        )
    return value


def _step_tag(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, Mapping) else getattr(value, "kind", None)
    return _STEP_TAGS.get(kind) if isinstance(kind, str) else None


Step = Annotated[
    Annotated[ActionStep, Tag(_STEP_TAGS["action"])]
    | Annotated[ApprovalStep, Tag(_STEP_TAGS["approval"])]
    | Annotated[WaitStep, Tag(_STEP_TAGS["wait"])]
    | Annotated[CheckStep, Tag(_STEP_TAGS["check"])],
    Discriminator(_step_tag),
    BeforeValidator(_check_step),
]
"""One step; ``kind`` picks the model."""


# --- parameters -------------------------------------------------------------------------------


def coerce_parameter(type_: ParameterType, value: object) -> ParameterValue:
    """Read ``value`` as a parameter of ``type_``, parsing text (from a CLI); else ValueError."""
    if type_ == "string":
        if isinstance(value, str):
            return value
        raise ValueError(f"expected a string, found {kind_of(value)} (quote it in YAML)")
    if isinstance(value, bool) and type_ != "bool":
        raise ValueError(f"expected {_TYPE_NAMES[type_]}, found a boolean")
    if type_ == "int":
        return _as_int(value)
    if type_ == "number":
        return _as_number(value)
    if type_ == "bool":
        return _as_bool(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s or 5m, found {kind_of(value)}")
    return format_duration(parse_duration(value))


_TYPE_NAMES = {"int": "an integer", "number": "a number", "bool": "true or false"}


def _as_int(value: object) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value.strip()):
        return int(value)
    raise ValueError(f"expected an integer, found {value!r}")


def _as_number(value: object) -> float:
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"expected a number, found {value!r}") from None
    else:
        raise ValueError(f"expected a number, found {kind_of(value)}")
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, found {value!r}")
    return number


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"expected true or false, found {value!r}")


class Parameter(_Model):
    """A runbook parameter: its type, default, and whether a run must supply it."""

    type: ParameterType = "string"
    default: ParameterValue | None = None
    description: str = ""
    required: bool = False

    @field_validator("default")
    @classmethod
    def _default_fits(cls, value: ParameterValue | None, info: ValidationInfo) -> Any:
        type_ = info.data.get("type")
        if value is None or type_ is None:
            return value
        return coerce_parameter(type_, value)

    @model_validator(mode="after")
    def _required_without_default(self) -> Self:
        if self.required and self.default is not None:
            raise ValueError("a required parameter has no default; drop one of them")
        return self


# --- the runbook ------------------------------------------------------------------------------


class FailureHandler(_Model):
    """Runbook-level on_failure: steps to run after a failure, then abort or escalate."""

    run: list[Step] = Field(min_length=1)
    then: Literal["abort", "escalate"] = "abort"


def _check_runbook_failure(value: Any) -> Any:
    if isinstance(value, str) and value not in ("abort", "escalate"):
        raise ValueError(
            f"expected abort, escalate or {{run: [steps], then: abort|escalate}}, found {value!r}"
        )
    return value


RunbookOnFailure = Annotated[
    Annotated[Literal["abort", "escalate"], Tag(_POLICY_TAG)]
    | Annotated[FailureHandler, Tag(_HANDLER_TAG)],
    Discriminator(lambda v: _POLICY_TAG if isinstance(v, str) else _HANDLER_TAG),
    BeforeValidator(_check_runbook_failure),
]

# A stand-in for a good matcher while a bad one in the same list is reported at its index.
_STAND_IN = {"name": "_", "type": "=", "value": ""}


class Runbook(_Model):
    """One runbook file."""

    name: Slug
    description: str = ""
    match: Annotated[
        list[Matcher], WithJsonSchema({"type": "array", "items": {"type": "string"}})
    ] = Field(default_factory=list)
    parameters: dict[ParamName, Parameter] = Field(default_factory=dict)
    timeout: PositiveDuration | None = None
    steps: list[Step] = Field(min_length=1)
    on_failure: RunbookOnFailure = "abort"

    @field_validator("match", mode="before")
    @classmethod
    def _expand_matchers(cls, value: Any) -> Any:
        # As in routing, one item may hold several matchers ("a=b, c=d").
        if not isinstance(value, list):
            return value
        expanded: list[Any] = []
        bad = False
        for item in value:
            if not isinstance(item, str):
                expanded.append(item)
                continue
            try:
                expanded.extend(parse_matchers(item))
            except MatcherSyntaxError:
                bad = True
        if bad:
            # Keep one entry per item so the bad text is reported at the index written.
            return [item if _bad_matcher(item) else _STAND_IN for item in value]
        return expanded

    @model_validator(mode="after")
    def _whole_runbook(self, info: ValidationInfo) -> Self:
        if isinstance(info.context, Mapping) and info.context.get(DEFER_CROSS_CHECK):
            return self
        problems = cross_check(self.step_slots(), self.parameters)
        if problems:
            raise ValueError("\n".join(f"{format_loc(p.loc)}: {p.message}" for p in problems))
        return self

    @property
    def failure_steps(self) -> list[Step]:
        """The steps of a runbook-level ``on_failure: {run: [...]}``, else []."""
        return list(self.on_failure.run) if isinstance(self.on_failure, FailureHandler) else []

    def step_slots(self) -> list[StepSlot]:
        """Every step with its location: ``steps`` first, then ``on_failure.run``."""
        slots = [StepSlot(("steps", i), s.id, s) for i, s in enumerate(self.steps)]
        slots += [
            StepSlot(("on_failure", "run", i), s.id, s) for i, s in enumerate(self.failure_steps)
        ]
        return slots

    def index_of(self, step_id: str) -> int:
        """Position of a main step by id (for goto); KeyError if there is none."""
        for i, step in enumerate(self.steps):
            if step.id == step_id:
                return i
        raise KeyError(step_id)


def _bad_matcher(item: Any) -> bool:
    if not isinstance(item, str):
        return True
    try:
        parse_matchers(item)
    except MatcherSyntaxError:
        return True
    return False


# --- checks across the whole runbook ----------------------------------------------------------


class Problem(NamedTuple):
    """One cross-check problem: where (a pydantic-style location) and what."""

    loc: Loc
    message: str


class StepSlot(NamedTuple):
    """A step and where it sits; ``step`` is None when the step itself did not validate."""

    loc: Loc
    id: str | None
    step: Step | None


def cross_check(slots: Sequence[StepSlot], parameters: Collection[str] | None) -> list[Problem]:
    """Problems that need the whole runbook: ids, references, goto targets.

    ``slots`` are in run order (``steps``, then ``on_failure.run``); ``parameters`` are the
    declared names, or None when unknown (then parameter references are not checked).
    """
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for position, slot in enumerate(slots):
        if slot.id is None:
            continue
        if slot.id in first:
            earlier = slots[first[slot.id]].loc
            problems.append(
                Problem(
                    (*slot.loc, "id"),
                    f"duplicate step id {slot.id!r}: {format_loc(earlier)} already has it",
                )
            )
        else:
            first[slot.id] = position
    for position, slot in enumerate(slots):
        if slot.step is None:
            continue
        problems += _check_gotos(slot, slots)
        for loc, text, need in _templated(slot.step):
            problems += _check_text((*slot.loc, *loc), text, need, position, first, parameters)
        if isinstance(slot.step, WaitStep) and slot.step.until is not None:
            problems += _check_live(slot.loc, slot.step.until)
    return problems


# How a templated string is used: free text, or a value that must be exactly one reference
# (the operand of exists, or the choices of in given as a reference to a list).
_Need = Literal["text", "exists", "choices"]
_ONE_REFERENCE = {
    "exists": "exists takes exactly one reference such as {steps.<id>.output.revision}",
    "choices": "the choices of in are a list, or exactly one reference to a list",
}


def _templated(step: Step) -> Iterator[tuple[Loc, str, _Need]]:
    if step.if_ is not None:
        yield from _condition_strings(step.if_, ("if",))
    if isinstance(step, ActionStep):
        yield from _json_strings(step.with_, ("with",))
        if step.cluster is not None:
            yield ("cluster",), step.cluster, "text"
    elif isinstance(step, ApprovalStep):
        yield ("prompt",), step.prompt, "text"
    elif isinstance(step, WaitStep):
        if step.until is not None:
            yield from _condition_strings(step.until, ("until",))
    else:
        yield ("query",), step.query, "text"


def _json_strings(value: JsonValue, loc: Loc) -> Iterator[tuple[Loc, str, _Need]]:
    if isinstance(value, str):
        yield loc, value, "text"
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_strings(item, (*loc, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _json_strings(item, (*loc, key))


def _condition_strings(condition: Condition, loc: Loc) -> Iterator[tuple[Loc, str, _Need]]:
    if isinstance(condition, AllOf | AnyOf):
        key = "all" if isinstance(condition, AllOf) else "any"
        items = condition.all if isinstance(condition, AllOf) else condition.any
        for i, item in enumerate(items):
            yield from _condition_strings(item, (*loc, key, i))
    elif isinstance(condition, Not):
        yield from _condition_strings(condition.not_, (*loc, "not"))
    elif isinstance(condition, Exists):
        yield (*loc, "exists"), condition.exists, "exists"
    elif isinstance(condition, In):
        value, choices = condition.in_
        if isinstance(value, str):
            yield (*loc, "in", 0), value, "text"
        if isinstance(choices, str):
            yield (*loc, "in", 1), choices, "choices"
        else:
            for i, choice in enumerate(choices):
                if isinstance(choice, str):
                    yield (*loc, "in", 1, i), choice, "text"
    else:
        key, pair = _pair_of(condition)
        for i, operand in enumerate(pair):
            if isinstance(operand, str):
                yield (*loc, key, i), operand, "text"


def _pair_of(condition: Condition) -> tuple[str, tuple[Operand, Operand]]:
    for key in ("equals", "not_equals", "lt", "le", "gt", "ge"):
        pair = getattr(condition, key, None)
        if pair is not None:
            return key, pair
    raise AssertionError(f"not a comparison: {condition!r}")  # the union is closed


def condition_references(condition: Condition) -> list[Reference]:
    """Every reference a condition reads, in order (its text must already be valid)."""
    found: list[Reference] = []
    for _loc, text, _need in _condition_strings(condition, ()):
        found += [p for p in parse_template(text) if isinstance(p, Reference)]
    return found


def _check_text(
    loc: Loc,
    text: str,
    need: _Need,
    position: int,
    first: Mapping[str, int],
    parameters: Collection[str] | None,
) -> list[Problem]:
    try:
        parts = parse_template(text)
    except TemplateError as exc:
        return [Problem(loc, str(exc))]
    if need != "text" and not (len(parts) == 1 and isinstance(parts[0], Reference)):
        return [Problem(loc, f"{_ONE_REFERENCE[need]}, found {text!r}")]
    problems = []
    for ref in parts:
        if not isinstance(ref, Reference):
            continue
        message = _unresolvable(ref, position, first, parameters)
        if message is not None:
            problems.append(Problem(loc, message))
    return problems


def _unresolvable(
    ref: Reference, position: int, first: Mapping[str, int], parameters: Collection[str] | None
) -> str | None:
    if ref.root == "params" and parameters is not None and ref.path[0] not in parameters:
        declared = ", ".join(sorted(parameters)) or "none"
        return (
            f"{ref} refers to parameter {ref.path[0]!r}, which is not declared "
            f"(declared: {declared})"
        )
    step_id = ref.step_id
    if step_id is None:
        return None
    if step_id not in first:
        return f"{ref} refers to step {step_id!r}, which does not exist"
    if first[step_id] >= position:
        return f"{ref} refers to step {step_id!r}, which does not come before this step"
    return None


def _check_gotos(slot: StepSlot, slots: Sequence[StepSlot]) -> list[Problem]:
    step = slot.step
    targets: list[tuple[str, Goto]] = []
    if isinstance(step, ApprovalStep) and isinstance(step.on_reject, Goto):
        targets.append(("on_reject", step.on_reject))
    if isinstance(step, ActionStep | WaitStep | CheckStep) and isinstance(step.on_failure, Goto):
        targets.append(("on_failure", step.on_failure))
    siblings = {s.id for s in slots if s.loc[:-1] == slot.loc[:-1]}
    problems = []
    for field, goto in targets:
        if goto.goto == slot.id:
            message = f"goto {goto.goto!r} jumps to this same step; use retries to try again"
        elif goto.goto not in siblings:
            where = format_loc(slot.loc[:-1])
            message = f"goto {goto.goto!r}: there is no step {goto.goto!r} in {where}"
        else:
            continue
        problems.append(Problem((*slot.loc, field, "goto"), message))
    return problems


def _check_live(loc: Loc, until: Condition) -> list[Problem]:
    try:
        refs = condition_references(until)
    except TemplateError:
        return []  # reported against the operand already
    if any(ref.text in LIVE_REFERENCES for ref in refs):
        return []
    *others, last = sorted(LIVE_REFERENCES)
    live = f"{', '.join(others)} or {last}"
    return [
        Problem(
            (*loc, "until"),
            f"until reads only values fixed for the run, so it would never change; refer to {live}",
        )
    ]
