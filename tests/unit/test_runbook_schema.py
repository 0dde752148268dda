"""The runbook language: loading, every validation error path, JSON round trip, JSON Schema.

Bad runbooks are data: each ``tests/runbooks/invalid/*.yaml`` says what it shows in its first
comment and lists the exact errors expected as ``# expect:`` lines (without the file name,
which the test adds); ``# known_actions:`` gives the worker's action names when that matters.
"""

from __future__ import annotations

import ast
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from runbooks.loader import (
    RunbookError,
    RunbookLoadError,
    json_schema,
    load_runbooks,
    parse_runbook,
    runbook_files,
    validate_runbooks,
)
from runbooks.schema import (
    ActionStep,
    ApprovalStep,
    CheckStep,
    Condition,
    FailureHandler,
    Goto,
    Reference,
    RoleName,
    Runbook,
    TemplateError,
    WaitStep,
    parse_template,
)
from worker.action_registry import KNOWN_ACTIONS
from workflows.contracts import Role

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "runbooks"
INVALID = ROOT / "tests" / "runbooks" / "invalid"

# Every error path the fixtures cover; a fixture added or lost shows up here.
FIXTURES = [
    "approval-without-approvers",
    "bad-condition",
    "bad-duration",
    "bad-matcher",
    "bad-on-failure",
    "bad-parameters",
    "bad-references",
    "check-without-query",
    "duplicate-step-id",
    "duplicate-yaml-key",
    "every-error",
    "goto-unknown-step",
    "not-a-mapping",
    "step-references",
    "unknown-action",
    "unknown-key",
    "unknown-parameter",
    "unknown-step-kind",
    "wait-rules",
    "yaml-syntax",
]

# Every action the example runbook uses, as a worker would register them.
# What the shipped library may call: exactly the actions the worker registers.
EXAMPLE_ACTIONS = set(KNOWN_ACTIONS)


def _expectations(path: Path) -> tuple[list[str], set[str] | None]:
    text = path.read_text()
    expected = [f"{path}: {line}" for line in re.findall(r"^# expect: (.*)$", text, re.M)]
    known = re.search(r"^# known_actions: (.*)$", text, re.M)
    actions = {name.strip() for name in known.group(1).split(",")} if known else None
    return expected, actions


def test_the_invalid_fixtures_are_the_listed_ones_and_each_expects_errors() -> None:
    found = sorted(path.stem for path in INVALID.glob("*.yaml"))
    assert found == FIXTURES
    for name in FIXTURES:
        assert _expectations(INVALID / f"{name}.yaml")[0], name


@pytest.mark.parametrize("name", FIXTURES)
def test_invalid_runbook_reports_exactly_the_expected_errors(name: str) -> None:
    path = INVALID / f"{name}.yaml"
    expected, known_actions = _expectations(path)
    errors = validate_runbooks([path], known_actions=known_actions)
    assert [str(error) for error in errors] == expected


def test_load_raises_with_every_error() -> None:
    path = INVALID / "step-references.yaml"
    with pytest.raises(RunbookLoadError) as caught:
        load_runbooks([path])
    assert [str(e) for e in caught.value.errors] == _expectations(path)[0]
    assert str(caught.value) == "\n".join(_expectations(path)[0])


# --- the shipped example -------------------------------------------------------------------


def test_the_example_library_is_valid_against_its_actions() -> None:
    assert validate_runbooks([LIBRARY], known_actions=EXAMPLE_ACTIONS) == []


def test_the_example_exercises_every_step_kind_and_runbook_failure_steps() -> None:
    runbook = load_runbooks([LIBRARY])["bad-deploy-rollback"]
    assert [(s.id, s.kind) for s in runbook.steps] == [
        ("inspect", "action"),
        ("approve-rollback", "approval"),
        ("rollback", "action"),
        ("wait-rollout", "action"),
        ("validate", "check"),
        ("alert-clears", "wait"),
    ]
    assert isinstance(runbook.on_failure, FailureHandler)
    assert runbook.on_failure.then == "escalate"
    assert [s.id for s in runbook.failure_steps] == ["page-owners"]
    assert runbook.index_of("validate") == 4
    with pytest.raises(KeyError):
        runbook.index_of("page-owners")


def test_an_action_outside_known_actions_fails_the_example() -> None:
    errors = validate_runbooks(
        [LIBRARY / "bad-deploy-rollback.yaml"], known_actions=EXAMPLE_ACTIONS - {"page"}
    )
    assert [str(e) for e in errors] == [
        f"{LIBRARY / 'bad-deploy-rollback.yaml'}: on_failure.run[0] (page-owners).action: "
        "unknown action 'page': the worker has no such action"
    ]


# --- recorded in history: JSON round trip ---------------------------------------------------

EVERYTHING = """
name: everything
description: every field the language has
match: ['alertname="Down", env=~"prod|staging"', 'team!="db"']
parameters:
  replicas: {type: int, default: 3, description: target}
  ratio: {type: number, default: 1}
  enabled: {type: bool, default: "true"}
  window: {type: duration, default: 90s}
  region: {type: string, required: true}
timeout: 1h
steps:
  - id: get
    kind: action
    description: read first
    action: k8s.status
    cluster: "{alert.labels.cluster}"
    with: {deployment: "{params.region}", nested: [1, 2.5, true, null, {a: "{incident.id}"}]}
    timeout: 30s
    retries: {max_attempts: 5, backoff: 1s, backoff_coefficient: 1.5, max_backoff: 30s}
    on_failure: continue
  - id: ask
    kind: approval
    if:
      all:
        - {equals: ["{steps.get.status}", succeeded]}
        - {not_equals: ["{incident.severity}", info]}
        - {in: ["{alert.labels.env}", [prod, 1, true]]}
        - {in: ["{alert.labels.env}", "{steps.get.output.envs}"]}
        - {exists: "{steps.get.output.revision}"}
        - any: [{lt: [1, 2]}, {le: [1, 2]}, {gt: [2, 1]}, {ge: [2, 2]}]
        - not: {equals: [a, b]}
    approvers: {roles: [commander, sme], users: [alice], groups: [sre-leads]}
    prompt: "Scale to {params.replicas}?"
    timeout: 10m
    on_timeout: approve
    on_reject: {goto: get}
  - id: settle
    kind: wait
    duration: 2m
    on_failure: escalate
  - id: until
    kind: wait
    until: {equals: ["{incident.status}", mitigated]}
    timeout: 15m
    interval: 10s
    on_failure: {goto: settle}
  - id: verify
    kind: check
    provider: thanos
    query: 'up{job="{params.region}"}'
    success_condition: result == 1
    failure_condition: len(result) == 0 || result[0] < 1
    initial_delay: 30s
    interval: 1m
    count: 4
    failure_limit: 1
    inconclusive_limit: 2
    retries: {max_attempts: 2}
on_failure:
  run:
    - {id: tell, kind: action, action: page, with: {text: "{steps.verify.output.phase}"}}
  then: escalate
"""


def test_a_runbook_round_trips_through_temporals_data_converter() -> None:
    runbook = parse_runbook(EVERYTHING)
    converter = pydantic_data_converter.payload_converter
    payloads = converter.to_payloads([runbook])
    assert converter.from_payloads(payloads, [Runbook]) == [runbook]


@pytest.mark.parametrize("source", [EVERYTHING, (LIBRARY / "bad-deploy-rollback.yaml").read_text()])
def test_json_is_stable_and_validates_back_to_an_equal_runbook(source: str) -> None:
    runbook = parse_runbook(source)
    text = runbook.model_dump_json()
    again = Runbook.model_validate_json(text)
    assert again == runbook
    assert again.model_dump_json() == text


def test_json_uses_the_names_authors_write() -> None:
    data = parse_runbook(EVERYTHING).model_dump(mode="json")
    step = data["steps"][0]
    assert step["with"]["nested"] == [1, 2.5, True, None, {"a": "{incident.id}"}]
    assert step["timeout"] == "30s"
    assert data["steps"][1]["if"]["all"][2] == {"in": ["{alert.labels.env}", ["prod", 1, True]]}
    assert data["steps"][1]["if"]["all"][6] == {"not": {"equals": ["a", "b"]}}
    assert data["steps"][1]["on_reject"] == {"goto": "get"}
    assert data["match"][0] == {"name": "alertname", "type": "=", "value": "Down"}
    assert data["parameters"]["window"]["default"] == "1m30s"


def test_values_are_read_with_their_types() -> None:
    runbook = parse_runbook(EVERYTHING)
    assert [str(m) for m in runbook.match] == [
        'alertname="Down"',
        'env=~"prod|staging"',
        'team!="db"',
    ]
    assert {name: p.default for name, p in runbook.parameters.items()} == {
        "replicas": 3,
        "ratio": 1.0,
        "enabled": True,
        "window": "1m30s",
        "region": None,
    }
    get, ask, settle, until, verify = runbook.steps
    assert isinstance(get, ActionStep)
    assert get.retries.max_backoff == timedelta(seconds=30)
    assert isinstance(ask, ApprovalStep)
    assert ask.on_reject == Goto(goto="get")
    assert isinstance(settle, WaitStep)
    assert settle.duration == timedelta(minutes=2)
    assert settle.on_failure == "escalate"
    assert isinstance(until, WaitStep)
    assert until.poll_interval == timedelta(seconds=10)
    assert isinstance(verify, CheckStep)
    assert verify.initial_delay == timedelta(seconds=30)


def test_defaults_of_a_minimal_runbook() -> None:
    runbook = parse_runbook(
        """
name: minimal
steps:
  - {id: restart, kind: action, action: k8s.restart}
  - {id: ok, kind: approval, approvers: {roles: [commander]}, prompt: "Go?"}
  - {id: calm, kind: wait, until: {equals: ["{alert.status}", resolved]}, timeout: 5m}
  - {id: up, kind: check, query: up, success_condition: result == 1}
"""
    )
    restart, ok, calm, up = runbook.steps
    assert runbook.on_failure == "abort"
    assert runbook.timeout is None
    assert runbook.match == []
    assert isinstance(restart, ActionStep)
    assert (restart.timeout, restart.on_failure, restart.cluster) == (
        timedelta(minutes=5),
        "abort",
        None,
    )
    assert restart.retries.model_dump(mode="json") == {
        "max_attempts": 3,
        "backoff": "5s",
        "backoff_coefficient": 2.0,
        "max_backoff": None,
    }
    assert isinstance(ok, ApprovalStep)
    assert (ok.timeout, ok.on_timeout, ok.on_reject) == (timedelta(minutes=30), "reject", "abort")
    assert isinstance(calm, WaitStep)
    assert calm.poll_interval == timedelta(seconds=30)
    assert isinstance(up, CheckStep)
    assert (up.provider, up.count, up.failure_limit, up.inconclusive_limit) == (
        "prometheus",
        1,
        0,
        0,
    )


def test_a_runbook_validated_directly_runs_the_cross_checks() -> None:
    # Recorded input is validated without the loader, and must be just as sound.
    data: dict[str, Any] = {
        "name": "direct",
        "steps": [
            {"id": "a", "kind": "action", "action": "x", "with": {"v": "{steps.b.output}"}},
            {"id": "b", "kind": "action", "action": "x", "on_failure": {"goto": "nope"}},
        ],
    }
    with pytest.raises(ValidationError) as caught:
        Runbook.model_validate(data)
    assert [e["msg"] for e in caught.value.errors()] == [
        "Value error, steps[0].with.v: {steps.b.output} refers to step 'b', which does not "
        "come before this step\n"
        "steps[1].on_failure.goto: goto 'nope': there is no step 'nope' in steps"
    ]


def test_dates_stay_text_and_unknown_yaml_tags_are_refused() -> None:
    runbook = parse_runbook(
        "name: dated\nsteps: [{id: a, kind: action, action: x, with: {since: 2024-05-01}}]\n"
    )
    step = runbook.steps[0]
    assert isinstance(step, ActionStep)
    assert step.with_ == {"since": "2024-05-01"}
    with pytest.raises(RunbookLoadError) as caught:
        parse_runbook("name: !!python/name:os.system x\n", file="evil.yaml")
    assert str(caught.value).startswith(
        "evil.yaml: invalid YAML at line 1, column 7: could not determine a constructor"
    )


def test_the_schema_is_a_leaf_module() -> None:
    # Recorded workflow input: it may import only what is safe in the workflow sandbox.
    tree = ast.parse((LIBRARY / "schema.py").read_text())
    modules = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    outside = {
        m for m in modules if m and m.split(".")[0] not in sys.stdlib_module_names | {"__future__"}
    }
    assert outside == {"pydantic", "workflows.durations", "workflows.matchers"}


def test_the_roles_approvers_may_name_are_the_incident_roles() -> None:
    assert set(get_args(RoleName)) == {role.value for role in Role}


# --- files and names ---------------------------------------------------------------------------


def _write(path: Path, name: str) -> Path:
    path.write_text(f"name: {name}\nsteps: [{{id: a, kind: action, action: x}}]\n")
    return path


def test_runbook_names_are_unique_across_files(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.yaml", "restart")
    second = _write(tmp_path / "b.yaml", "restart")
    _write(tmp_path / "c.yaml", "scale")
    assert [str(e) for e in validate_runbooks([tmp_path])] == [
        f"{second}: name: runbook name 'restart' is already used by {first}"
    ]
    with pytest.raises(RunbookLoadError):
        load_runbooks([tmp_path])
    assert sorted(load_runbooks([first, tmp_path / "c.yaml"])) == ["restart", "scale"]


def test_paths_expand_to_sorted_yaml_files_and_report_missing_ones(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "empty").mkdir()
    b = _write(tmp_path / "lib" / "b.yaml", "b")
    a = _write(tmp_path / "lib" / "a.yaml", "a")
    (tmp_path / "lib" / "notes.txt").write_text("not a runbook")
    files, errors = runbook_files([tmp_path / "lib", tmp_path / "empty", tmp_path / "gone.yaml"])
    assert files == [a, b]
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'empty'}: no *.yaml runbook files here",
        f"{tmp_path / 'gone.yaml'}: no such file or directory",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a runbook file holds one mapping (name, steps, ...); the file is empty"),
        ("just text", "a runbook file holds one mapping (name, steps, ...); found a string"),
        ("name: x\nsteps: []\n", "steps: List should have at least 1 item after validation, not 0"),
        ("name: x\nsteps: {}\n", "steps: expected a list, found a mapping"),
        (
            "name: x\nsteps: [{id: a, kind: action, action: x, with: []}]\n",
            "steps[0] (a).with: expected a mapping, found a list",
        ),
    ],
)
def test_file_level_problems(text: str, message: str) -> None:
    with pytest.raises(RunbookLoadError) as caught:
        parse_runbook(text, file="x.yaml")
    assert str(caught.value) == f"x.yaml: {message}"


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            RunbookError("a.yaml", "steps[2] (rollback)", "with.revision", "bad"),
            "a.yaml: steps[2] (rollback).with.revision: bad",
        ),
        (RunbookError("a.yaml", "steps[0] (wait)", "", "bad"), "a.yaml: steps[0] (wait): bad"),
        (RunbookError("a.yaml", None, "match[1]", "bad"), "a.yaml: match[1]: bad"),
        (RunbookError("a.yaml", None, "", "bad"), "a.yaml: bad"),
    ],
)
def test_error_text_names_file_step_and_field(error: RunbookError, text: str) -> None:
    assert str(error) == text


# --- JSON Schema ---------------------------------------------------------------------------


def test_json_schema_describes_the_file_authors_write() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "fireline runbook"
    assert schema["required"] == ["name", "steps"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["match"]["items"] == {"type": "string"}
    steps = schema["properties"]["steps"]["items"]["oneOf"]
    assert [ref["$ref"] for ref in steps] == [
        "#/$defs/ActionStep",
        "#/$defs/ApprovalStep",
        "#/$defs/WaitStep",
        "#/$defs/CheckStep",
    ]
    action = schema["$defs"]["ActionStep"]["properties"]
    assert {"with", "if", "cluster", "retries", "on_failure"} <= set(action)
    assert action["timeout"]["pattern"].startswith("^(0|")
    assert schema["$defs"]["In"]["properties"].keys() == {"in"}
    # Every key the example uses is one the schema offers, so editors will not flag it.
    example = yaml.safe_load((LIBRARY / "bad-deploy-rollback.yaml").read_text())
    assert set(example) <= set(schema["properties"])


# --- reference syntax ---------------------------------------------------------------------------


def _ref(text: str) -> Reference:
    parts = parse_template(text)
    assert len(parts) == 1
    assert isinstance(parts[0], Reference)
    return parts[0]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("plain", ("plain",)),
        ("", ()),
        ("{alert.labels.service}", (_ref("{alert.labels.service}"),)),
        ("a {params.x}b", ("a ", _ref("{params.x}"), "b")),
        ("{{params.x}", ("{params.x}",)),
        ("{{{params.x}", ("{", _ref("{params.x}"))),
        ("{{params.x}}", ("{params.x}}",)),
        ('up{job="api"}', ('up{job="api"}',)),
        ("x{3} {} { params.x }", ("x{3} {} { params.x }",)),
        ("{steps.get.output.items.0.name}", (_ref("{steps.get.output.items.0.name}"),)),
    ],
)
def test_templates_split_into_text_and_references(text: str, parts: tuple[Any, ...]) -> None:
    assert parse_template(text) == parts


def test_references_know_their_parts() -> None:
    ref = _ref("{steps.roll-back.output.spec.replicas}")
    assert (ref.root, ref.path, ref.step_id) == (
        "steps",
        ("roll-back", "output", "spec", "replicas"),
        "roll-back",
    )
    assert _ref("{incident.severity}").step_id is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{foo}",
            "{foo} is not a reference: references start with alert., params., steps. or "
            "incident. (write {{ for a literal '{')",
        ),
        (
            "{alert}",
            "{alert} is not a reference: use {alert.labels.<name>}, "
            "{alert.annotations.<name>} or {alert.status}",
        ),
        (
            "{alert.labels}",
            "{alert.labels} is not a reference: use {alert.labels.<name>}, "
            "{alert.annotations.<name>} or {alert.status}",
        ),
        ("{params.a.b}", "{params.a.b} is not a reference: use {params.<name>}"),
        (
            "{steps.a.result}",
            "{steps.a.result} is not a reference: use {steps.<id>.output}, "
            "{steps.<id>.output.<path>} or {steps.<id>.status}",
        ),
        (
            "{steps.a.status.x}",
            "{steps.a.status.x} is not a reference: use {steps.<id>.output}, "
            "{steps.<id>.output.<path>} or {steps.<id>.status}",
        ),
        (
            "{incident.owner}",
            "{incident.owner} is not a reference: use {incident.id}, "
            "{incident.title}, {incident.service}, {incident.severity} or {incident.status}",
        ),
    ],
)
def test_bad_references_are_errors_not_text(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        parse_template(f"before {text} after")
    assert str(caught.value) == message


# --- condition shapes --------------------------------------------------------------------------

CONDITION = TypeAdapter[Condition](Condition)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "x",
            "a condition is a mapping with one key (equals, not_equals, in, exists, lt, le, gt, "
            "ge, all, any, not), found a string",
        ),
        (
            {},
            "a condition has exactly one key (equals, not_equals, in, exists, lt, le, gt, ge, "
            "all, any, not), found 0",
        ),
        (
            {"in": ["a", 3]},
            'expected [value, [choices...]] or [value, "{reference}"], found a '
            "number as the second item",
        ),
        ({"all": []}, "List should have at least 1 item after validation, not 0"),
        ({"equals": "a"}, "expected a list of two values [a, b], found a string"),
    ],
)
def test_condition_shapes(data: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CONDITION.validate_python(data)
    assert [str(e["msg"]).removeprefix("Value error, ") for e in caught.value.errors()] == [message]
