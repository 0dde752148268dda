"""The shipped runbook library: every file loads, follows the library's rules, and has rehearsals.

Rules beyond the schema: names match file names; approvals name approvers; a step that
changes something is followed by a check that validates it; no text reads identifier-looking
values (patient, account, card...), and the regulated runbooks read no alert text at all.
The loader's errors on broken copies of a library file name the file, step and field.
Rehearsal case data (``tests/rehearsals/<runbook>.yaml``) is checked here for consistency with
its runbook; running it against the real workflow is the rehearsal harness' job.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbooks.loader import load_runbooks, validate_runbooks
from runbooks.schema import (
    ActionStep,
    ApprovalStep,
    CheckStep,
    Reference,
    Runbook,
    Step,
    coerce_parameter,
    parse_template,
)
from worker.action_registry import KNOWN_ACTIONS
from workflows.matchers import match_all

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "runbooks"
REHEARSALS = ROOT / "tests" / "rehearsals"
FILES = sorted(LIBRARY.glob("*.yaml"))

CHANGING_ACTIONS = frozenset({"k8s.rollback", "k8s.scale", "k8s.restart", "k8s.cordon", "flag.set"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Notifications change no system a metric could validate; they are exempt from the check rule.
NOTIFY_ENDPOINTS = frozenset({"clinical-notify", "customer-notify"})
# Names a reference must never read: they would copy identifiers into history and pages.
IDENTIFIER_NAME = re.compile(
    r"patient|mrn|medical|encounter|account|acct|ssn|social|card|pan\b|iban|member|dob|birth"
    r"|email|phone",
    re.IGNORECASE,
)
# A long run of digits in text looks like a record or account number.
IDENTIFIER_LITERAL = re.compile(r"(?<![\w.])\d{6,}(?![\w.])")
# Regulated data nearby (PHI, cardholder data): text reads no alert labels or annotations.
NO_ALERT_TEXT = frozenset({"ehr-downtime-procedures", "payment-processor-failover"})

USERS = frozenset({"alice", "bob", "carol"})
STEP_STATUSES = frozenset({"succeeded", "failed", "skipped"})
RUN_STATUSES = frozenset({"succeeded", "failed", "aborted"})


def _library() -> dict[str, Runbook]:
    return load_runbooks(FILES, known_actions=KNOWN_ACTIONS)


def _all_steps(runbook: Runbook) -> list[Step]:
    return [slot.step for slot in runbook.step_slots() if slot.step is not None]


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string in raw YAML data with its path (keys included: they are text too)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{where}.{key}", str(key)
            yield from _strings(item, f"{where}.{key}")


def _references(text: str) -> list[Reference]:
    return [part for part in parse_template(text) if isinstance(part, Reference)]


def _changes(step: Step) -> bool:
    if not isinstance(step, ActionStep):
        return False
    if step.action in CHANGING_ACTIONS:
        return True
    if step.action != "http.request":
        return False
    method = str(step.with_.get("method", "GET")).upper()
    return method not in SAFE_METHODS and step.with_.get("endpoint") not in NOTIFY_ENDPOINTS


# --- the library -------------------------------------------------------------------------------


def test_the_library_holds_the_expected_runbooks() -> None:
    assert [path.stem for path in FILES] == [
        "bad-deploy-rollback",
        "crashloop-restart",
        "ehr-downtime-procedures",
        "market-data-feed-failover",
        "payment-processor-failover",
        "regional-traffic-shift",
        "saturation-scale-out",
        "tenant-db-degradation",
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_each_runbook_loads_with_the_known_actions(path: Path) -> None:
    assert [str(e) for e in validate_runbooks([path], known_actions=KNOWN_ACTIONS)] == []


def test_names_are_unique_and_match_the_file_names() -> None:
    names = [yaml.safe_load(path.read_text())["name"] for path in FILES]
    assert names == [path.stem for path in FILES]
    assert sorted(_library()) == [path.stem for path in FILES]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_approval_names_its_approvers(path: Path) -> None:
    runbook = _library()[path.stem]
    for step in _all_steps(runbook):
        if isinstance(step, ApprovalStep):
            approvers = step.approvers
            assert approvers.roles or approvers.users or approvers.groups, step.id
            assert step.prompt.strip(), step.id


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_change_is_followed_by_a_check(path: Path) -> None:
    steps = _library()[path.stem].steps
    changes = [i for i, step in enumerate(steps) if _changes(step)]
    assert changes, f"{path.stem} changes nothing"
    for i in changes:
        later = [s.id for s in steps[i + 1 :] if isinstance(s, CheckStep)]
        assert later, f"{path.stem}: {steps[i].id} changes something and no check follows it"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_no_text_reads_or_holds_identifiers(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    for name in raw.get("parameters") or {}:
        assert not IDENTIFIER_NAME.search(name), f"parameter {name}"
    for where, text in _strings(raw, raw["name"]):
        assert not IDENTIFIER_LITERAL.search(text), f"{where}: {text!r}"
        for ref in _references(text):
            assert not any(IDENTIFIER_NAME.search(part) for part in ref.path), f"{where}: {ref}"
            if raw["name"] in NO_ALERT_TEXT:
                assert ref.root != "alert" or ref.path == ("status",), f"{where}: {ref}"


def test_the_identifier_rules_catch_what_they_are_for() -> None:
    # The rules above would pass vacuously if the helpers found nothing.
    found = _references("bed for {alert.labels.patient_mrn} in {params.site}")
    assert [str(r) for r in found] == ["{alert.labels.patient_mrn}", "{params.site}"]
    assert IDENTIFIER_NAME.search(found[0].path[1])
    assert not IDENTIFIER_NAME.search("site")
    assert IDENTIFIER_LITERAL.search("MRN 00123456 was seen")
    assert not IDENTIFIER_LITERAL.search("timeout 3600s, PT2H, 0.005")


# --- the loader on broken copies ----------------------------------------------------------------

BROKEN_FILE = "saturation-scale-out.yaml"


def _unknown_action(raw: dict[str, Any]) -> None:
    raw["steps"][2]["action"] = "k8s.scael"


def _later_step_reference(raw: dict[str, Any]) -> None:
    raw["steps"][0]["with"]["deployment"] = "{steps.scale.output.deployment}"


def _approval_without_approvers(raw: dict[str, Any]) -> None:
    raw["steps"][1]["approvers"] = {}


@pytest.mark.parametrize(
    ("breakage", "step", "field", "message"),
    [
        (
            _unknown_action,
            "steps[2] (scale)",
            "action",
            "unknown action 'k8s.scael': the worker has no such action; did you mean 'k8s.scale'?",
        ),
        (
            _later_step_reference,
            "steps[0] (inspect)",
            "with.deployment",
            "{steps.scale.output.deployment} refers to step 'scale', which does not come "
            "before this step",
        ),
        (
            _approval_without_approvers,
            "steps[1] (approve-scale)",
            "approvers",
            "name at least one approver in roles, users or groups",
        ),
    ],
    ids=["unknown-action", "later-step-reference", "approval-without-approvers"],
)
def test_the_loader_names_file_step_and_field_of_a_broken_copy(
    tmp_path: Path, breakage: Any, step: str, field: str, message: str
) -> None:
    raw = yaml.safe_load((LIBRARY / BROKEN_FILE).read_text())
    breakage(raw)
    broken = tmp_path / BROKEN_FILE
    broken.write_text(yaml.safe_dump(raw, sort_keys=False))
    errors = validate_runbooks([broken], known_actions=KNOWN_ACTIONS)
    assert [(e.file, e.step, e.field, e.message) for e in errors] == [
        (str(broken), step, field, message)
    ]
    assert str(errors[0]) == f"{broken}: {step}.{field}: {message}"


# --- rehearsal case data --------------------------------------------------------------------------


def _rehearsals() -> list[Path]:
    return sorted(REHEARSALS.glob("*.yaml"))


def test_every_runbook_has_a_rehearsal_file_and_every_rehearsal_a_runbook() -> None:
    assert [p.stem for p in _rehearsals()] == [p.stem for p in FILES]


@pytest.mark.parametrize("path", _rehearsals(), ids=lambda p: p.stem)
def test_rehearsal_cases_fit_their_runbook(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    assert data["runbook"] == path.stem
    runbook = _library()[path.stem]
    steps = {step.id: step for step in _all_steps(runbook)}
    cases = data["cases"]
    assert len(cases) >= 2
    assert len({case["name"] for case in cases}) == len(cases)
    outcomes = {case["expect"]["status"] for case in cases}
    assert "succeeded" in outcomes, "no happy path"
    assert outcomes - {"succeeded"}, "no failure or rejection path"
    for case in cases:
        _check_case(runbook, steps, case)


def _check_case(runbook: Runbook, steps: dict[str, Step], case: dict[str, Any]) -> None:
    name = case["name"]
    params = case.get("params", {})
    for key, value in params.items():
        assert key in runbook.parameters, f"{name}: unknown parameter {key}"
        coerce_parameter(runbook.parameters[key].type, value)
    for key, parameter in runbook.parameters.items():
        assert not parameter.required or key in params, f"{name}: {key} is required"
    alert = case.get("alert")
    if alert is not None:
        assert match_all(runbook.match, alert["labels"]), f"{name}: the alert does not match"
        assert alert.get("status", "firing") in ("firing", "resolved")
    for step_id, results in case.get("actions", {}).items():
        assert isinstance(steps.get(step_id), ActionStep), f"{name}: {step_id} is no action"
        for result in results:
            assert ("output" in result) != ("error" in result), f"{name}: {step_id} {result}"
    for step_id, decision in case.get("decisions", {}).items():
        assert isinstance(steps.get(step_id), ApprovalStep), f"{name}: {step_id} is no approval"
        assert decision.get("timeout") is True or decision["by"] in USERS, f"{name}: {decision}"
    for step_id, measurements in case.get("measurements", {}).items():
        assert isinstance(steps.get(step_id), CheckStep), f"{name}: {step_id} is no check"
        assert all(isinstance(m, list) for m in measurements), f"{name}: {step_id}"
    expect = case["expect"]
    assert expect["status"] in RUN_STATUSES
    assert isinstance(expect["mitigated"], bool)
    for entry in expect["steps"]:
        ((step_id, status),) = entry.items()
        assert step_id in steps, f"{name}: unknown step {step_id}"
        assert status in STEP_STATUSES, f"{name}: {step_id}: {status}"
    ran = [next(iter(entry)) for entry in expect["steps"]]
    for step_id in case.get("decisions", {}):
        assert step_id in ran, f"{name}: decision for {step_id}, which never runs"
    for step_id in case.get("measurements", {}):
        assert step_id in ran, f"{name}: measurements for {step_id}, which never runs"
