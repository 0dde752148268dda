"""The runbook library: action names, matching alerts, parameters from labels, loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.http_actions import ACTION_NAMES as HTTP_ACTIONS
from activities.kubernetes.actions import ACTION_NAMES as K8S_ACTIONS
from runbooks.loader import RunbookLoadError, parse_runbook
from runbooks.schema import Runbook
from runbooks.substitution import ParameterError
from worker.action_registry import KNOWN_ACTIONS
from worker.cli import main
from worker.runbook_library import (
    SHIPPED_RUNBOOKS,
    library_dir,
    load_library,
    matching,
    params_from_alert,
)
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def runbook(name: str, match: str = "", parameters: str = "{}") -> Runbook:
    return parse_runbook(
        f"""
name: {name}
match: {match or "[]"}
parameters: {parameters}
steps:
  - {{id: look, kind: action, action: k8s.status, with: {{namespace: web}}}}
"""
    )


def test_known_actions_are_every_module_action_and_page() -> None:
    assert {*K8S_ACTIONS, *HTTP_ACTIONS, "page"} == KNOWN_ACTIONS
    assert {"k8s.rollback", "http.request", "temporal.run_workflow", "page"} <= KNOWN_ACTIONS


LIBRARY = {
    r.name: r
    for r in (
        runbook("rollback", """['alertname=~"HighErrorRate|HighLatency"', 'deployment!=""']"""),
        runbook("db", """['alertname="DBSlow", tier="gold"']"""),
        runbook("by-hand"),
    )
}


@pytest.mark.parametrize(
    ("labels", "names"),
    [
        ({"alertname": "HighErrorRate", "deployment": "api"}, ["rollback"]),
        ({"alertname": "HighLatency", "deployment": "api"}, ["rollback"]),
        # A regex matches the whole value, and a missing label is "".
        ({"alertname": "HighErrorRateX", "deployment": "api"}, []),
        ({"alertname": "HighErrorRate"}, []),
        ({"alertname": "DBSlow", "tier": "gold"}, ["db"]),
        ({"alertname": "DBSlow", "tier": "silver"}, []),
        # A runbook without matchers is for runs by hand, never offered for an alert.
        ({}, []),
    ],
)
def test_matching_needs_every_matcher(labels: dict[str, str], names: list[str]) -> None:
    assert [r.name for r in matching(LIBRARY, labels)] == names


def test_matching_lists_every_fit_by_name() -> None:
    library = {
        "b": runbook("b", "['service=\"web\"']"),
        "a": runbook("a", "['service=~\"w.*\"']"),
    }
    assert [r.name for r in matching(library, {"service": "web"})] == ["a", "b"]


DECLARED = runbook(
    "scale",
    parameters=(
        "{deployment: {required: true}, replicas: {type: int, default: 3}, "
        "namespace: {default: default}}"
    ),
)


@pytest.mark.parametrize(
    ("labels", "explicit", "expected"),
    [
        # Defaults fill what nobody gave.
        ({}, {"deployment": "api"}, {"deployment": "api", "replicas": 3, "namespace": "default"}),
        # An alert label named like a parameter beats the default, and is read by type.
        (
            {"deployment": "api", "replicas": "5", "pod": "api-1"},
            {},
            {"deployment": "api", "replicas": 5, "namespace": "default"},
        ),
        # Explicit parameters beat labels.
        (
            {"deployment": "api", "namespace": "prod"},
            {"namespace": "staging", "replicas": "7"},
            {"deployment": "api", "replicas": 7, "namespace": "staging"},
        ),
    ],
)
def test_params_explicit_then_labels_then_defaults(
    labels: dict[str, str], explicit: dict[str, object], expected: dict[str, object]
) -> None:
    assert params_from_alert(DECLARED, labels, explicit) == expected


def test_params_problems_name_the_parameter() -> None:
    with pytest.raises(ParameterError) as caught:
        params_from_alert(DECLARED, {"replicas": "many"}, {"colour": "red"})
    assert caught.value.problems == (
        "unknown parameter 'colour' (declared: deployment, namespace, replicas)",
        "parameter 'deployment' is required",
        "parameter 'replicas': expected an integer, found 'many'",
    )


def test_default_library_is_the_shipped_one_and_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIRELINE_RUNBOOKS_DIR", raising=False)
    settings = Settings()
    assert library_dir(settings) == SHIPPED_RUNBOOKS == ROOT / "runbooks"
    library = load_library(settings)
    assert "bad-deploy-rollback" in library
    assert set(library) == {p.stem for p in SHIPPED_RUNBOOKS.glob("*.yaml")}


def test_library_dir_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "one.yaml").write_text(
        "name: one\nsteps:\n  - {id: p, kind: action, action: page}\n"
    )
    monkeypatch.setenv("FIRELINE_RUNBOOKS_DIR", str(tmp_path))
    assert list(load_library(Settings())) == ["one"]


def test_library_load_errors_name_file_step_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nsteps:\n"
        "  - {id: post, kind: action, action: statuspage.post}\n"
        "  - {id: wait, kind: wait, duration: soon}\n"
    )
    (tmp_path / "good.yaml").write_text(
        "name: good\nsteps:\n  - {id: p, kind: action, action: page}\n"
    )
    with pytest.raises(RunbookLoadError) as caught:
        load_library(Settings(runbooks_dir=tmp_path))
    assert [str(e) for e in caught.value.errors] == [
        f"{bad}: steps[0] (post).action: unknown action 'statuspage.post': "
        "the worker has no such action",
        f"{bad}: steps[1] (wait).duration: 'soon' is not a duration: use a number and a "
        "unit, largest unit first, e.g. 30s, 5m, 1h30m, 2d (units: ms s m h d w y)",
    ]


def test_an_empty_library_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RunbookLoadError) as caught:
        load_library(Settings(runbooks_dir=tmp_path))
    assert str(caught.value) == f"{tmp_path}: no *.yaml runbook files here"


def validate(*paths: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["runbook", "validate", *paths])
    out = capsys.readouterr()
    code = done.value.code
    assert isinstance(code, int)
    return code, out.out, out.err


def test_validate_the_shipped_library(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(SHIPPED_RUNBOOKS.glob("*.yaml"))
    code, out, err = validate(*map(str, files), capsys=capsys)
    assert (code, err) == (0, "")
    assert out == f"{len(files)} runbook file(s) valid\n"


def test_validate_reports_every_invalid_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(
        str(ROOT / "tests/runbooks/invalid/unknown-action.yaml"), capsys=capsys
    )
    assert code == 1
    assert out.splitlines() == [
        f"{ROOT}/tests/runbooks/invalid/unknown-action.yaml: steps[0] (rollback).action: "
        "unknown action 'k8s.rolback': the worker has no such action; "
        "did you mean 'k8s.rollback'?",
        f"{ROOT}/tests/runbooks/invalid/unknown-action.yaml: steps[2] (reboot).action: "
        "unknown action 'node.reboot': the worker has no such action",
    ]
    assert err == "fireline: 2 problem(s) found\n"
