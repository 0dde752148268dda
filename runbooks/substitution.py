"""Run-time values of a runbook: substitution, conditions, parameters and analysis. Pure.

Every function here depends only on its arguments (the run's :class:`RunContext` and a step
or condition from ``runbooks.schema``), so the RunbookWorkflow calls them in the sandbox and a
replay computes the same values. Syntax lives in ``runbooks.schema``; meaning lives here.

Substitution:

- a string that is exactly one reference becomes the referenced value with its own type:
  ``replicas: "{params.replicas}"`` is the integer 3, ``"{steps.get.output}"`` a mapping;
- a reference inside longer text is written as text: strings as they are, numbers and
  booleans as JSON writes them (``3``, ``0.5``, ``true``); a list or mapping there is
  :class:`NotText`;
- in ``with`` inputs only values are substituted, never mapping keys;
- a reference without a value is :class:`MissingValue`, never an empty string: a label the
  alert does not carry, a run started without an alert, an optional parameter not given, a
  step that has not run or was skipped, an output path that is not there, null inside text.

Conditions:

- ``equals`` / ``not_equals`` / ``in`` compare two numbers, or a number and text that reads
  as one, as numbers (label ``"500"`` equals ``500``); lists and mappings structurally;
  anything else by its text (``true``/``false`` for booleans);
- ``lt`` / ``le`` / ``gt`` / ``ge`` read both sides as numbers, text parsed, else
  :class:`ConditionError`;
- ``exists`` is false for a missing or null value; every other condition lets
  :class:`MissingValue` through, so a misspelt label fails the step with a reason instead of
  quietly making a condition false;
- ``all`` / ``any`` stop at the first deciding item, so ``all: [{exists: x}, {gt: [x, 3]}]``
  is safe.

Analysis follows Argo Rollouts. One measurement (:func:`assess_measurement`): with both
conditions, failed if the failure condition holds, successful if only the success condition
holds, else inconclusive; with only a success condition, failed when it does not hold; with
only a failure condition, successful when it does not hold. Reading ``result[N]`` past the
values the query returned makes that condition unknown, and an unknown that could decide the
outcome makes the measurement inconclusive: no data is neither healthy nor a breach. NaN
compares as IEEE 754 says (only ``!=`` holds). The analysis (:func:`assess_analysis`): failed
once failed measurements exceed ``failure_limit``, inconclusive once inconclusive ones exceed
``inconclusive_limit``, successful after ``count`` measurements, provided at least one of them
succeeded (unlike Argo, all-inconclusive is never a pass); otherwise measure again.

Exceptions::

    SubstitutionError (ValueError)    a value of this run cannot be computed
     ├── MissingValue                 a reference has no value
     ├── NotText                      a list or mapping referenced inside longer text
     ├── ConditionError               a condition's operands cannot be compared
     └── NoData                       an analysis condition reads past the values returned
    ParameterError (ValueError)       supplied parameters do not fit the declared ones
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from runbooks.schema import (
    ActionStep,
    AllOf,
    AnalysisExpr,
    AnyOf,
    CheckStep,
    Comparison,
    Condition,
    Equals,
    Exists,
    Ge,
    Gt,
    In,
    Le,
    Lt,
    Not,
    NotEquals,
    Parameter,
    Reference,
    Step,
    coerce_parameter,
    parse_analysis,
    parse_template,
    single_reference,
)

__all__ = [
    "AlertFacts",
    "AnalysisPhase",
    "ConditionError",
    "IncidentFacts",
    "MissingValue",
    "NoData",
    "NotText",
    "ParameterError",
    "RunContext",
    "StepResult",
    "SubstitutionError",
    "action_inputs",
    "assess_analysis",
    "assess_measurement",
    "evaluate",
    "evaluate_analysis",
    "resolve",
    "resolve_parameters",
    "should_run",
    "substitute",
    "substitute_text",
]


class SubstitutionError(ValueError):
    """A value of this run cannot be computed."""


class MissingValue(SubstitutionError):
    """A reference has no value in this run; names the reference and why."""

    def __init__(self, reference: str, reason: str) -> None:
        super().__init__(f"{reference} has no value: {reason}")
        self.reference = reference
        self.reason = reason


class NotText(SubstitutionError):
    """A list or mapping was referenced inside longer text."""


class ConditionError(SubstitutionError):
    """A condition's operands cannot be compared (``'abc' < 5``, ``in`` over a non-list)."""


class NoData(SubstitutionError):
    """An analysis condition reads ``result[N]`` past the values the query returned."""


class ParameterError(ValueError):
    """Supplied parameters do not fit the runbook's declarations; one problem per line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


# --- the run's values ---------------------------------------------------------------------


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IncidentFacts(_Facts):
    """The incident a run belongs to: ``{incident.*}``."""

    id: str
    title: str
    service: str
    severity: str
    status: str


class AlertFacts(_Facts):
    """The alert that started a run: ``{alert.*}``."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    status: Literal["firing", "resolved"] = "firing"


StepStatus = Literal["succeeded", "failed", "skipped"]


class StepResult(_Facts):
    """What a finished step left for later steps: ``{steps.<id>.status}`` and ``.output``."""

    status: StepStatus
    output: JsonValue = None


class RunContext(_Facts):
    """Everything references can read at one point of a run."""

    incident: IncidentFacts
    # None when a person started the run by hand, without an alert.
    alert: AlertFacts | None = None
    params: dict[str, JsonValue] = Field(default_factory=dict)
    steps: dict[str, StepResult] = Field(default_factory=dict)

    def with_result(self, step_id: str, result: StepResult) -> RunContext:
        """A copy that also knows ``result`` for ``step_id``."""
        return self.model_copy(update={"steps": {**self.steps, step_id: result}})


# --- substitution ----------------------------------------------------------------------------


def resolve(ref: Reference, ctx: RunContext) -> JsonValue:
    """The value of one reference; MissingValue if it has none in this run."""
    if ref.root == "alert":
        return _alert_value(ref, ctx.alert)
    if ref.root == "params":
        if ref.path[0] not in ctx.params:
            raise MissingValue(
                ref.text, f"parameter {ref.path[0]!r} was not given and has no default"
            )
        return ctx.params[ref.path[0]]
    if ref.root == "incident":
        value: str = getattr(ctx.incident, ref.path[0])
        return value
    return _step_value(ref, ctx.steps)


def _alert_value(ref: Reference, alert: AlertFacts | None) -> JsonValue:
    if alert is None:
        raise MissingValue(ref.text, "the run has no alert (it was started by hand)")
    if ref.path == ("status",):
        return alert.status
    where, name = ref.path
    found = alert.labels if where == "labels" else alert.annotations
    if name not in found:
        noun = "label" if where == "labels" else "annotation"
        raise MissingValue(ref.text, f"the alert has no {noun} {name!r}")
    return found[name]


def _step_value(ref: Reference, steps: Mapping[str, StepResult]) -> JsonValue:
    step_id, field, *path = ref.path
    result = steps.get(step_id)
    if result is None:
        raise MissingValue(ref.text, f"step {step_id!r} has not run")
    if field == "status":
        return result.status
    if result.status == "skipped":
        raise MissingValue(ref.text, f"step {step_id!r} was skipped")
    value = result.output
    for depth, segment in enumerate(path, start=1):
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif (
            isinstance(value, list) and re.fullmatch(r"\d+", segment) and int(segment) < len(value)
        ):
            value = value[int(segment)]
        else:
            walked = ".".join(path[:depth])
            raise MissingValue(ref.text, f"the output of step {step_id!r} has no {walked!r}")
    return value


def substitute_text(text: str, ctx: RunContext) -> str:
    """Text with every reference written in, and ``{{`` read as ``{``."""
    return "".join(
        part if isinstance(part, str) else _as_text(part, resolve(part, ctx))
        for part in parse_template(text)
    )


def substitute(value: JsonValue, ctx: RunContext) -> JsonValue:
    """Substitute through strings, lists and mapping values; a lone reference keeps its type."""
    if isinstance(value, str):
        ref = single_reference(value)
        return resolve(ref, ctx) if ref is not None else substitute_text(value, ctx)
    if isinstance(value, list):
        return [substitute(item, ctx) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, ctx) for key, item in value.items()}
    return value


def action_inputs(step: ActionStep, ctx: RunContext) -> dict[str, JsonValue]:
    """An action step's ``with`` inputs for this run."""
    return {key: substitute(item, ctx) for key, item in step.with_.items()}


def _as_text(ref: Reference, value: JsonValue) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        raise MissingValue(ref.text, "it is null")
    if isinstance(value, list | dict):
        noun = "a list" if isinstance(value, list) else "a mapping"
        raise NotText(
            f"{ref.text} is {noun}, which cannot be written into text; "
            "use the reference as the whole value instead"
        )
    return json.dumps(value)


# --- conditions ------------------------------------------------------------------------------

_ORDER: dict[type[BaseModel], tuple[str, Callable[[float, float], bool]]] = {
    Lt: ("lt", operator.lt),
    Le: ("le", operator.le),
    Gt: ("gt", operator.gt),
    Ge: ("ge", operator.ge),
}


def should_run(step: Step, ctx: RunContext) -> bool:
    """Whether a step's ``if:`` holds (a step without one always runs)."""
    return step.if_ is None or evaluate(step.if_, ctx)


def evaluate(condition: Condition, ctx: RunContext) -> bool:
    """Evaluate one of the fixed conditions against the run's values."""
    if isinstance(condition, AllOf):
        return all(evaluate(item, ctx) for item in condition.all)
    if isinstance(condition, AnyOf):
        return any(evaluate(item, ctx) for item in condition.any)
    if isinstance(condition, Not):
        return not evaluate(condition.not_, ctx)
    if isinstance(condition, Exists):
        return _exists(condition.exists, ctx)
    if isinstance(condition, Equals | NotEquals):
        pair = condition.equals if isinstance(condition, Equals) else condition.not_equals
        same = _same(_operand(pair[0], ctx), _operand(pair[1], ctx))
        return same if isinstance(condition, Equals) else not same
    if isinstance(condition, In):
        value = _operand(condition.in_[0], ctx)
        return any(_same(value, choice) for choice in _choices(condition.in_[1], ctx))
    key, compare = _ORDER[type(condition)]
    left, right = getattr(condition, key)
    return compare(_number(left, ctx), _number(right, ctx))


def _operand(operand: str | bool | int | float, ctx: RunContext) -> JsonValue:
    return substitute(operand, ctx) if isinstance(operand, str) else operand


def _exists(text: str, ctx: RunContext) -> bool:
    ref = single_reference(text)
    if ref is None:
        raise ConditionError(f"exists takes one reference, not {text!r}")
    try:
        return resolve(ref, ctx) is not None
    except MissingValue:
        return False


def _choices(choices: list[str | bool | int | float] | str, ctx: RunContext) -> list[JsonValue]:
    if isinstance(choices, list):
        return [_operand(choice, ctx) for choice in choices]
    found = substitute(choices, ctx)
    if not isinstance(found, list):
        raise ConditionError(f"in: {choices} is {_kind(found)}, not a list of choices")
    return found


def _same(left: JsonValue, right: JsonValue) -> bool:
    if _is_number(left) or _is_number(right):
        a, b = _read_number(left), _read_number(right)
        if a is not None and b is not None:
            return a == b
    if isinstance(left, list | dict) or isinstance(right, list | dict):
        return left == right
    if left is None or right is None:
        return left is right
    return _text_form(left) == _text_form(right)


def _number(operand: str | bool | int | float, ctx: RunContext) -> float:
    value = _operand(operand, ctx)
    number = _read_number(value)
    if number is None:
        shown = f"{operand} is {value!r}, which" if value != operand else repr(value)
        raise ConditionError(f"{shown} is not a number")
    return number


def _is_number(value: JsonValue) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _read_number(value: JsonValue) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text_form(value: str | bool | int | float) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _kind(value: JsonValue) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "null"
    return repr(value)


# --- analysis --------------------------------------------------------------------------------


class AnalysisPhase(StrEnum):
    """Outcome of one measurement, or of the whole analysis."""

    SUCCESSFUL = "successful"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


def evaluate_analysis(expr: AnalysisExpr | str, result: Sequence[float]) -> bool:
    """Evaluate an analysis condition over a query's values; NoData past their end."""
    parsed = parse_analysis(expr) if isinstance(expr, str) else expr
    return any(all(_holds(c, result) for c in group) for group in parsed.any_of)


def _holds(comparison: Comparison, result: Sequence[float]) -> bool:
    if comparison.length:
        subject = float(len(result))
    elif comparison.index < len(result):
        subject = result[comparison.index]
    else:
        raise NoData(
            f"result[{comparison.index}] does not exist: the query returned "
            f"{len(result)} value{'' if len(result) == 1 else 's'}"
        )
    compare = {
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
        "==": operator.eq,
        "!=": operator.ne,
    }[comparison.op]
    return bool(compare(subject, comparison.value))


def _judge(condition: str | None, result: Sequence[float]) -> bool | None:
    """True / False, or None when the condition reads values the query did not return."""
    assert condition is not None
    try:
        return evaluate_analysis(condition, result)
    except NoData:
        return None


def assess_measurement(check: CheckStep, result: Sequence[float]) -> AnalysisPhase:
    """Judge one measurement (a query's values) by the check's conditions."""
    has_success = check.success_condition is not None
    has_failure = check.failure_condition is not None
    failure = _judge(check.failure_condition, result) if has_failure else None
    if failure is True:
        return AnalysisPhase.FAILED
    if not has_failure:
        success = _judge(check.success_condition, result)
        if success is None:
            return AnalysisPhase.INCONCLUSIVE
        return AnalysisPhase.SUCCESSFUL if success else AnalysisPhase.FAILED
    if failure is None:
        return AnalysisPhase.INCONCLUSIVE
    if not has_success:
        return AnalysisPhase.SUCCESSFUL
    success = _judge(check.success_condition, result)
    return AnalysisPhase.SUCCESSFUL if success is True else AnalysisPhase.INCONCLUSIVE


def assess_analysis(check: CheckStep, phases: Sequence[AnalysisPhase]) -> AnalysisPhase | None:
    """The analysis outcome after these measurements, or None to measure again."""
    if phases.count(AnalysisPhase.FAILED) > check.failure_limit:
        return AnalysisPhase.FAILED
    if phases.count(AnalysisPhase.INCONCLUSIVE) > check.inconclusive_limit:
        return AnalysisPhase.INCONCLUSIVE
    if len(phases) < check.count:
        return None
    if AnalysisPhase.SUCCESSFUL not in phases:
        return AnalysisPhase.INCONCLUSIVE
    return AnalysisPhase.SUCCESSFUL


# --- parameters ------------------------------------------------------------------------------


def resolve_parameters(
    declared: Mapping[str, Parameter], supplied: Mapping[str, object]
) -> dict[str, JsonValue]:
    """Typed values for a run: supplied (text is parsed), else defaults; every problem at once."""
    problems = [
        f"unknown parameter {name!r} (declared: {', '.join(sorted(declared)) or 'none'})"
        for name in supplied
        if name not in declared
    ]
    values: dict[str, JsonValue] = {}
    for name, parameter in declared.items():
        if name in supplied:
            try:
                values[name] = coerce_parameter(parameter.type, supplied[name])
            except ValueError as exc:
                problems.append(f"parameter {name!r}: {exc}")
        elif parameter.default is not None:
            values[name] = parameter.default
        elif parameter.required:
            problems.append(f"parameter {name!r} is required")
    if problems:
        raise ParameterError(problems)
    return values
