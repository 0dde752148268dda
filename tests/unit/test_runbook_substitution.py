"""Run-time meaning of runbooks: substitution, conditions, the analysis grammar, parameters."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import JsonValue, TypeAdapter

from runbooks.schema import (
    ActionStep,
    AnalysisSyntaxError,
    CheckStep,
    Comparison,
    Condition,
    Parameter,
    ParameterType,
    Step,
    coerce_parameter,
    parse_analysis,
)
from runbooks.substitution import (
    AlertFacts,
    AnalysisPhase,
    ConditionError,
    IncidentFacts,
    MissingValue,
    NoData,
    NotText,
    ParameterError,
    RunContext,
    StepResult,
    action_inputs,
    assess_analysis,
    assess_measurement,
    evaluate,
    evaluate_analysis,
    resolve_parameters,
    should_run,
    substitute,
    substitute_text,
)

CTX = RunContext(
    incident=IncidentFacts(
        id="INC-42",
        title="Checkout errors",
        service="checkout",
        severity="critical",
        status="acknowledged",
    ),
    alert=AlertFacts(
        labels={"alertname": "HighErrorRate", "env": "production", "code": "500", "empty": ""},
        annotations={"summary": "5xx above 5%"},
        status="firing",
    ),
    params={"replicas": 3, "ratio": 0.5, "dry": False, "window": "5m", "ns": "shop"},
    steps={
        "get": StepResult(
            status="succeeded",
            output={
                "revision": 7,
                "spec": {"containers": [{"image": "checkout:1.2"}, {"image": "sidecar:3"}]},
                "envs": ["production", "staging"],
                "note": None,
                "ready": "2",
            },
        ),
        "scale": StepResult(status="failed", output={"error": "quota"}),
        "maybe": StepResult(status="skipped"),
    },
)

STEP = TypeAdapter[Step](Step)
CONDITION = TypeAdapter[Condition](Condition)


# --- substitution --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("{alert.labels.alertname} in {alert.labels.env}", "HighErrorRate in production"),
        ("{alert.annotations.summary}", "5xx above 5%"),
        ("alert is {alert.status}", "alert is firing"),
        ("[{alert.labels.empty}]", "[]"),
        ("{params.replicas} replicas", "3 replicas"),
        (
            "ratio {params.ratio}, dry {params.dry}, every {params.window}",
            "ratio 0.5, dry false, every 5m",
        ),
        (
            "{incident.id} {incident.title} {incident.service} {incident.severity} "
            "{incident.status}",
            "INC-42 Checkout errors checkout critical acknowledged",
        ),
        ("rev {steps.get.output.revision}", "rev 7"),
        ("{steps.get.output.spec.containers.1.image}", "sidecar:3"),
        (
            "{steps.get.status}/{steps.scale.status}/{steps.maybe.status}",
            "succeeded/failed/skipped",
        ),
        ("{steps.scale.output.error}", "quota"),
        ("{params.ns}{params.ns}", "shopshop"),
        ("{{alert.labels.env} is {alert.labels.env}", "{alert.labels.env} is production"),
        ('rate(x{ns="{params.ns}",code=~"5.."}[5m])', 'rate(x{ns="shop",code=~"5.."}[5m])'),
    ],
)
def test_substitute_text(text: str, expected: str) -> None:
    assert substitute_text(text, CTX) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{params.replicas}", 3),
        ("{params.ratio}", 0.5),
        ("{params.dry}", False),
        ("{steps.get.output.note}", None),
        ("{steps.get.output.envs}", ["production", "staging"]),
        ("{steps.get.output.spec.containers.0}", {"image": "checkout:1.2"}),
        (" {params.replicas}", " 3"),
        (
            {"n": "{params.replicas}", "{params.ns}": ["{incident.id}", 1, None, True]},
            {"n": 3, "{params.ns}": ["INC-42", 1, None, True]},
        ),
        (7, 7),
    ],
)
def test_a_lone_reference_keeps_its_type_and_keys_are_never_substituted(
    value: JsonValue, expected: JsonValue
) -> None:
    assert substitute(value, CTX) == expected


def test_action_inputs_substitute_the_with_mapping() -> None:
    step = STEP.validate_python(
        {
            "id": "scale",
            "kind": "action",
            "action": "k8s.scale",
            "with": {"namespace": "{params.ns}", "replicas": "{params.replicas}", "keep": 1},
        }
    )
    assert isinstance(step, ActionStep)
    assert action_inputs(step, CTX) == {"namespace": "shop", "replicas": 3, "keep": 1}


@pytest.mark.parametrize(
    ("text", "context", "message"),
    [
        (
            "{alert.labels.cluster}",
            CTX,
            "{alert.labels.cluster} has no value: the alert has no label 'cluster'",
        ),
        (
            "x {alert.annotations.runbook}",
            CTX,
            "{alert.annotations.runbook} has no value: the alert has no annotation 'runbook'",
        ),
        (
            "{alert.status}",
            CTX.model_copy(update={"alert": None}),
            "{alert.status} has no value: the run has no alert (it was started by hand)",
        ),
        (
            "{params.region}",
            CTX,
            "{params.region} has no value: parameter 'region' was not given and has no default",
        ),
        (
            "{steps.later.output}",
            CTX,
            "{steps.later.output} has no value: step 'later' has not run",
        ),
        (
            "{steps.later.status}",
            CTX,
            "{steps.later.status} has no value: step 'later' has not run",
        ),
        (
            "{steps.maybe.output.x}",
            CTX,
            "{steps.maybe.output.x} has no value: step 'maybe' was skipped",
        ),
        (
            "{steps.get.output.replicas}",
            CTX,
            "{steps.get.output.replicas} has no value: the output of step 'get' has no 'replicas'",
        ),
        (
            "{steps.get.output.spec.containers.2.image}",
            CTX,
            "{steps.get.output.spec.containers.2.image} has no value: the output of step 'get' has "
            "no 'spec.containers.2'",
        ),
        (
            "{steps.get.output.revision.major}",
            CTX,
            "{steps.get.output.revision.major} has no value: the output of step 'get' has no "
            "'revision.major'",
        ),
        (
            "{steps.get.output.envs.first}",
            CTX,
            "{steps.get.output.envs.first} has no value: the output of step 'get' has no "
            "'envs.first'",
        ),
        ("note: {steps.get.output.note}", CTX, "{steps.get.output.note} has no value: it is null"),
    ],
)
def test_a_missing_value_is_an_error_naming_the_reference(
    text: str, context: RunContext, message: str
) -> None:
    with pytest.raises(MissingValue) as caught:
        substitute(text, context)
    assert str(caught.value) == message
    assert caught.value.reference in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "envs: {steps.get.output.envs}",
            "{steps.get.output.envs} is a list, which cannot be "
            "written into text; use the reference as the whole value instead",
        ),
        (
            "spec: {steps.get.output.spec}",
            "{steps.get.output.spec} is a mapping, which cannot be "
            "written into text; use the reference as the whole value instead",
        ),
    ],
)
def test_lists_and_mappings_cannot_be_written_into_text(text: str, message: str) -> None:
    with pytest.raises(NotText) as caught:
        substitute_text(text, CTX)
    assert str(caught.value) == message


def test_with_result_returns_a_new_context() -> None:
    after = CTX.with_result("check", StepResult(status="succeeded", output={"phase": "ok"}))
    assert substitute_text("{steps.check.output.phase}", after) == "ok"
    assert "check" not in CTX.steps


# --- conditions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"equals": ["{alert.labels.env}", "production"]}, True),
        ({"equals": ["{alert.labels.env}", "staging"]}, False),
        ({"equals": ["{alert.labels.code}", 500]}, True),
        ({"equals": ["{alert.labels.code}", 500.0]}, True),
        ({"equals": ["{params.ratio}", "0.50"]}, True),
        ({"equals": ["{params.dry}", "false"]}, True),
        ({"equals": ["{params.dry}", False]}, True),
        ({"equals": ["{params.replicas}", "three"]}, False),
        ({"equals": ["{steps.get.output.envs}", "production"]}, False),
        ({"equals": ["{steps.get.output.note}", "{steps.get.output.note}"]}, True),
        ({"equals": ["{steps.get.output.note}", ""]}, False),
        ({"not_equals": ["{incident.severity}", "info"]}, True),
        ({"not_equals": ["{steps.get.status}", "succeeded"]}, False),
        ({"in": ["{alert.labels.env}", ["staging", "production"]]}, True),
        ({"in": ["{alert.labels.code}", [404, 500]]}, True),
        ({"in": ["{alert.labels.env}", ["dev"]]}, False),
        ({"in": ["{alert.labels.env}", "{steps.get.output.envs}"]}, True),
        ({"in": ["{incident.service}", "{steps.get.output.envs}"]}, False),
        ({"exists": "{steps.get.output.revision}"}, True),
        ({"exists": "{alert.labels.empty}"}, True),
        ({"exists": "{steps.get.output.note}"}, False),
        ({"exists": "{steps.get.output.nothing}"}, False),
        ({"exists": "{steps.maybe.output}"}, False),
        ({"exists": "{params.region}"}, False),
        ({"lt": ["{steps.get.output.ready}", "{params.replicas}"]}, True),
        ({"le": [3, "{params.replicas}"]}, True),
        ({"gt": ["{params.ratio}", 0.5]}, False),
        ({"ge": ["{params.ratio}", "0.5"]}, True),
        ({"all": [{"equals": [1, 1]}, {"equals": [1, 2]}]}, False),
        ({"all": [{"equals": [1, 1]}, {"exists": "{params.ns}"}]}, True),
        ({"any": [{"equals": [1, 2]}, {"equals": [2, 2]}]}, True),
        ({"any": [{"equals": [1, 2]}]}, False),
        ({"not": {"equals": ["{steps.scale.status}", "failed"]}}, False),
        # all / any stop at the deciding item, so a guarded read never raises.
        ({"all": [{"exists": "{params.region}"}, {"gt": ["{params.region}", 1]}]}, False),
        ({"any": [{"equals": [1, 1]}, {"gt": ["{params.region}", 1]}]}, True),
    ],
)
def test_conditions(condition: Any, expected: bool) -> None:
    assert evaluate(CONDITION.validate_python(condition), CTX) is expected


@pytest.mark.parametrize(
    ("condition", "error", "message"),
    [
        (
            {"lt": ["{alert.labels.env}", 5]},
            ConditionError,
            "{alert.labels.env} is 'production', which is not a number",
        ),
        ({"gt": ["many", 5]}, ConditionError, "'many' is not a number"),
        ({"ge": [True, 1]}, ConditionError, "True is not a number"),
        (
            {"in": ["a", "{params.ns}"]},
            ConditionError,
            "in: {params.ns} is 'shop', not a list of choices",
        ),
        (
            {"in": ["a", "{steps.get.output.spec}"]},
            ConditionError,
            "in: {steps.get.output.spec} is a mapping, not a list of choices",
        ),
        (
            {"equals": ["{alert.labels.envv}", "production"]},
            MissingValue,
            "{alert.labels.envv} has no value: the alert has no label 'envv'",
        ),
        (
            {"not": {"equals": ["{params.region}", "eu"]}},
            MissingValue,
            "{params.region} has no value: parameter 'region' was not given and has no default",
        ),
    ],
)
def test_conditions_that_cannot_be_decided_raise(
    condition: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        evaluate(CONDITION.validate_python(condition), CTX)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("condition", "runs"),
    [
        (None, True),
        ({"equals": ["{incident.severity}", "critical"]}, True),
        ({"equals": ["{incident.severity}", "info"]}, False),
    ],
)
def test_should_run_follows_if(condition: Any, runs: bool) -> None:
    data: dict[str, Any] = {"id": "a", "kind": "action", "action": "x"}
    if condition is not None:
        data["if"] = condition
    assert should_run(STEP.validate_python(data), CTX) is runs


# --- the analysis grammar --------------------------------------------------------------------


def _cmp(op: str, value: float, index: int = 0, length: bool = False) -> Comparison:
    return Comparison(length=length, index=index, op=op, value=value)


@pytest.mark.parametrize(
    ("text", "any_of"),
    [
        ("result < 0.05", ((_cmp("<", 0.05),),)),
        ("result[0] >= 0.95", ((_cmp(">=", 0.95),),)),
        ("result[ 2 ]==1", ((_cmp("==", 1, index=2),),)),
        ("len(result) != 0", ((_cmp("!=", 0, length=True),),)),
        ("len( result )>-1.5e2", ((_cmp(">", -150, length=True),),)),
        ("result <= .5 && result[1] > 0", ((_cmp("<=", 0.5), _cmp(">", 0, index=1)),)),
        ("result > 1 || result < -1", ((_cmp(">", 1),), (_cmp("<", -1),))),
        (
            "len(result) == 0 || result[0] > 3 && result[1] > 4 || result[2] < +1",
            (
                (_cmp("==", 0, length=True),),
                (_cmp(">", 3), _cmp(">", 4, index=1)),
                (_cmp("<", 1, index=2),),
            ),
        ),
    ],
)
def test_analysis_grammar_parses(text: str, any_of: tuple[tuple[Comparison, ...], ...]) -> None:
    parsed = parse_analysis(text)
    assert parsed.any_of == any_of
    assert parsed.text == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "cannot parse condition '': the condition is empty"),
        ("   ", "cannot parse condition '   ': the condition is empty"),
        (
            "result",
            "cannot parse condition 'result' at column 7: expected <, <=, >, >=, == or != "
            "after result, found the end",
        ),
        (
            "result <",
            "cannot parse condition 'result <' at column 9: expected a number after '<', "
            "found the end",
        ),
        (
            "result = 1",
            "cannot parse condition 'result = 1' at column 8: expected <, <=, >, >=, == "
            "or != after result, found '='; write == to compare",
        ),
        (
            "0.05 > result",
            "cannot parse condition '0.05 > result' at column 1: expected result, "
            "result[N] or len(result), found '0.05'",
        ),
        (
            "result < 1 and result > 0",
            "cannot parse condition 'result < 1 and result > 0' at "
            "column 12: expected && or || or the end, found 'and'; write && and || instead",
        ),
        (
            "(result < 1)",
            "cannot parse condition '(result < 1)' at column 1: expected result, "
            "result[N] or len(result), found '('; parentheses are not supported (&& binds tighter "
            "than ||)",
        ),
        (
            "asFloat(result) > 1",
            "cannot parse condition 'asFloat(result) > 1' at column 1: "
            "expected result, result[N] or len(result), found 'asFloat'; functions and names other "
            "than result are not supported",
        ),
        (
            "result == 'true'",
            "cannot parse condition \"result == 'true'\" at column 11: expected "
            "a number after '==', found quoted text; conditions compare numbers only",
        ),
        (
            "result[-1] > 0",
            "cannot parse condition 'result[-1] > 0' at column 7: expected <, <=, >, "
            ">=, == or != after result, found '['",
        ),
        (
            "result > 1 ||",
            "cannot parse condition 'result > 1 ||' at column 14: expected result, "
            "result[N] or len(result) after ||",
        ),
        (
            "result > 1 result < 2",
            "cannot parse condition 'result > 1 result < 2' at column 12: "
            "expected && or || or the end, found 'result'",
        ),
        (
            "results > 1",
            "cannot parse condition 'results > 1' at column 1: expected result, "
            "result[N] or len(result), found 'results'; functions and names other than result are "
            "not supported",
        ),
        (
            "result > 1 & result < 2",
            "cannot parse condition 'result > 1 & result < 2' at column "
            "12: expected && or || or the end, found '&'",
        ),
    ],
)
def test_analysis_grammar_errors(text: str, message: str) -> None:
    with pytest.raises(AnalysisSyntaxError) as caught:
        parse_analysis(text)
    assert str(caught.value) == message


NAN = float("nan")


@pytest.mark.parametrize(
    ("text", "result", "expected"),
    [
        ("result < 0.05", [0.01], True),
        ("result < 0.05", [0.05], False),
        ("result <= 0.05", [0.05], True),
        ("result[1] > 2", [0, 3], True),
        ("result == 1", [1.0], True),
        ("result != 1", [2], True),
        ("len(result) == 0", [], True),
        ("len(result) >= 2", [1], False),
        ("len(result) == 0 || result[0] > 0.2", [], True),
        ("len(result) > 0 && result[0] < 0.05", [], False),
        ("result > 5 || result < 1 && result[1] < 1", [0, 0], True),
        ("result > 5 || result < 1 && result[1] < 1", [0, 2], False),
        ("result < 1", [NAN], False),
        ("result >= 1", [NAN], False),
        ("result == 1", [NAN], False),
        ("result != 1", [NAN], True),
    ],
)
def test_analysis_evaluation(text: str, result: list[float], expected: bool) -> None:
    assert evaluate_analysis(text, result) is expected
    assert evaluate_analysis(parse_analysis(text), result) is expected


@pytest.mark.parametrize(
    ("text", "result", "message"),
    [
        ("result < 1", [], "result[0] does not exist: the query returned 0 values"),
        ("result[1] < 1", [0.5], "result[1] does not exist: the query returned 1 value"),
        (
            "len(result) > 5 || result[3] > 0",
            [1, 2],
            "result[3] does not exist: the query returned 2 values",
        ),
    ],
)
def test_reading_past_the_returned_values_is_no_data(
    text: str, result: list[float], message: str
) -> None:
    with pytest.raises(NoData) as caught:
        evaluate_analysis(text, result)
    assert str(caught.value) == message


def _check(**fields: Any) -> CheckStep:
    step = STEP.validate_python({"id": "verify", "kind": "check", "query": "up", **fields})
    assert isinstance(step, CheckStep)
    return step


OK, BAD, UNSURE = AnalysisPhase.SUCCESSFUL, AnalysisPhase.FAILED, AnalysisPhase.INCONCLUSIVE
BOTH = {"success_condition": "result < 0.05", "failure_condition": "result > 0.2"}


@pytest.mark.parametrize(
    ("conditions", "result", "phase"),
    [
        ({"success_condition": "result < 0.05"}, [0.01], OK),
        ({"success_condition": "result < 0.05"}, [0.10], BAD),
        ({"success_condition": "result < 0.05"}, [], UNSURE),
        ({"failure_condition": "result > 0.2"}, [0.5], BAD),
        ({"failure_condition": "result > 0.2"}, [0.1], OK),
        ({"failure_condition": "result > 0.2"}, [], UNSURE),
        (BOTH, [0.01], OK),
        (BOTH, [0.5], BAD),
        (BOTH, [0.1], UNSURE),
        (BOTH, [], UNSURE),
        # Failure decided without the missing value: failed, not inconclusive.
        (
            {"success_condition": "result[0] < 0.05", "failure_condition": "len(result) == 0"},
            [],
            BAD,
        ),
        # Success holds, but the failure condition could not be judged: inconclusive.
        ({"success_condition": "len(result) >= 0", "failure_condition": "result > 1"}, [], UNSURE),
        # Both hold: failure wins.
        ({"success_condition": "result > 0", "failure_condition": "result > 0"}, [1], BAD),
    ],
)
def test_assess_measurement(conditions: dict[str, str], result: list[float], phase: Any) -> None:
    assert assess_measurement(_check(**conditions), result) is phase


@pytest.mark.parametrize(
    ("limits", "phases", "outcome"),
    [
        ({}, [], None),
        ({}, [OK], OK),
        ({}, [BAD], BAD),
        ({}, [UNSURE], UNSURE),
        ({"count": 3, "interval": "1m"}, [OK, OK], None),
        ({"count": 3, "interval": "1m"}, [OK, OK, OK], OK),
        ({"count": 3, "interval": "1m"}, [OK, BAD], BAD),
        ({"count": 3, "interval": "1m", "failure_limit": 1}, [BAD, OK], None),
        ({"count": 3, "interval": "1m", "failure_limit": 1}, [BAD, OK, OK], OK),
        ({"count": 3, "interval": "1m", "failure_limit": 1}, [BAD, OK, BAD], BAD),
        ({"count": 3, "interval": "1m", "inconclusive_limit": 1}, [UNSURE, OK, OK], OK),
        ({"count": 3, "interval": "1m", "inconclusive_limit": 1}, [UNSURE, UNSURE], UNSURE),
        (
            {"count": 3, "interval": "1m", "failure_limit": 2, "inconclusive_limit": 1},
            [BAD, UNSURE, BAD],
            UNSURE,
        ),
        # No measurement succeeded: no data is never a pass.
        (
            {"count": 2, "interval": "1m", "failure_limit": 1, "inconclusive_limit": 1},
            [BAD, UNSURE],
            UNSURE,
        ),
    ],
)
def test_assess_analysis(limits: dict[str, Any], phases: list[AnalysisPhase], outcome: Any) -> None:
    check = _check(success_condition="result < 1", **limits)
    assert assess_analysis(check, phases) is outcome


# --- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        ("string", "3", "3"),
        ("int", 3, 3),
        ("int", " -4 ", -4),
        ("number", 2, 2.0),
        ("number", "0.05", 0.05),
        ("bool", True, True),
        ("bool", "False", False),
        ("duration", "90s", "1m30s"),
        ("duration", "1h", "1h"),
    ],
)
def test_coerce_parameter(type_: ParameterType, value: object, expected: object) -> None:
    coerced = coerce_parameter(type_, value)
    assert coerced == expected
    assert type(coerced) is type(expected)


@pytest.mark.parametrize(
    ("type_", "value", "message"),
    [
        ("string", 1.1, "expected a string, found a number (quote it in YAML)"),
        ("int", "3.5", "expected an integer, found '3.5'"),
        ("int", True, "expected an integer, found a boolean"),
        ("number", "nan", "expected a finite number, found 'nan'"),
        ("number", "lots", "expected a number, found 'lots'"),
        ("bool", "yes", "expected true or false, found 'yes'"),
        ("duration", 30, "expected a duration such as 30s or 5m, found a number"),
        (
            "duration",
            "5 min",
            "'5 min' is not a duration: use a number and a unit, largest unit "
            "first, e.g. 30s, 5m, 1h30m, 2d (units: ms s m h d w y)",
        ),
    ],
)
def test_coerce_parameter_errors(type_: ParameterType, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        coerce_parameter(type_, value)


DECLARED = {
    "namespace": Parameter(type="string", required=True),
    "replicas": Parameter(type="int", default=3),
    "window": Parameter(type="duration", default="5m"),
    "note": Parameter(type="string"),
}


def test_resolve_parameters_types_supplied_values_and_fills_defaults() -> None:
    assert resolve_parameters(DECLARED, {"namespace": "shop", "replicas": "5"}) == {
        "namespace": "shop",
        "replicas": 5,
        "window": "5m",
    }


def test_resolve_parameters_reports_every_problem() -> None:
    with pytest.raises(ParameterError) as caught:
        resolve_parameters(DECLARED, {"replicas": "many", "zone": "a", "window": "soon"})
    assert caught.value.problems == (
        "unknown parameter 'zone' (declared: namespace, note, replicas, window)",
        "parameter 'namespace' is required",
        "parameter 'replicas': expected an integer, found 'many'",
        "parameter 'window': 'soon' is not a duration: use a number and a unit, largest unit "
        "first, e.g. 30s, 5m, 1h30m, 2d (units: ms s m h d w y)",
    )
