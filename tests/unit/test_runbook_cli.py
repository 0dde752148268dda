"""The runbook commands: schema, offline validation, runs, and approve/reject arguments."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from worker import cli
from worker.cli import EXIT_REFUSED, EXIT_USAGE, CliError, render_run, render_runs, waiting_run

Handler = Callable[[httpx.Request], httpx.Response]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(list(argv))
    out = capsys.readouterr()
    code = done.value.code
    assert isinstance(code, int)
    return code, out.out, out.err


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], list[httpx.Request]]:
    """Answer the CLI's requests with ``handler``; returns the requests sent, in order."""

    def install(handler: Handler) -> list[httpx.Request]:
        sent: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            assert request.headers["X-Fireline-User"] == "alice"
            return handler(request)

        def client(args: Any) -> cli.ApiClient:
            return cli.ApiClient(
                args.url, args.token, args.as_user, transport=httpx.MockTransport(record)
            )

        monkeypatch.setattr(cli, "_api", client)
        return sent

    return install


# --- schema and validate (offline) --------------------------------------------------------------


def test_schema_is_json_schema_of_a_runbook(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "runbook", "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "fireline runbook"
    assert schema["required"] == ["name", "steps"]
    assert schema["additionalProperties"] is False


BAD = """\
name: restart-web
parameters:
  replicas: {type: int, default: 3}
steps:
  - id: restart
    kind: action
    action: k8s.restat
    with: {namespace: web, replicas: "{params.replicas}"}
  - id: wait
    kind: wait
    colour: red
    duration: 1m
  - id: approve
    kind: approval
    prompt: "{params.replica} ok?"
    approvers: {roles: [commander]}
"""


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "restart-web.yaml"
    path.write_text(BAD)
    return path


def test_validate_prints_every_problem_with_file_step_and_field(
    capsys: pytest.CaptureFixture[str], bad_file: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.yaml"
    code, out, err = run(capsys, "runbook", "validate", str(bad_file), str(missing))
    assert code == EXIT_REFUSED
    assert out.splitlines() == [
        f"{missing}: no such file or directory",
        f"{bad_file}: steps[0] (restart).action: unknown action 'k8s.restat': the worker has "
        "no such action; did you mean 'k8s.restart'?",
        f"{bad_file}: steps[1] (wait).colour: unknown key 'colour'",
        f"{bad_file}: steps[2] (approve).prompt: {{params.replica}} refers to parameter "
        "'replica', which is not declared (declared: replicas)",
    ]
    assert err == "fireline: 4 problem(s) found\n"


def test_validate_json_lists_the_problems(
    capsys: pytest.CaptureFixture[str], bad_file: Path
) -> None:
    code, out, _ = run(capsys, "runbook", "validate", "--json", str(bad_file))
    assert code == EXIT_REFUSED
    problems = json.loads(out)
    assert problems[1] == {
        "file": str(bad_file),
        "step": "steps[1] (wait)",
        "field": "colour",
        "message": "unknown key 'colour'",
    }
    assert len(problems) == 3


def test_validate_a_good_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nsteps:\n  - {id: p, kind: action, action: page}\n")
    (tmp_path / "b.yaml").write_text(
        "name: b\nsteps:\n  - {id: s, kind: action, action: k8s.status, with: {namespace: x}}\n"
    )
    assert run(capsys, "runbook", "validate", str(tmp_path)) == (
        0,
        "2 runbook file(s) valid\n",
        "",
    )


def test_validate_needs_a_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "runbook", "validate")
    assert code == EXIT_USAGE
    assert "the following arguments are required: PATH" in err


# --- runs -------------------------------------------------------------------------------------

AT = "2026-11-27T12:00:00+00:00"


def summary(run_id: str, runbook: str, waiting: str | None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "workflow_id": f"runbook-{run_id}",
        "runbook": runbook,
        "status": "running",
        "dry_run": False,
        "started_by": "alice",
        "started_at": AT,
        "waiting_step": waiting,
    }


def run_state(run_id: str = "INC-7-r1", status: str = "running") -> dict[str, Any]:
    return {
        "run_id": run_id,
        "runbook": "bad-deploy-rollback",
        "incident_id": "INC-7",
        "status": status,
        "dry_run": True,
        "started_by": "alice",
        "started_at": AT,
        "pending": {
            "step_id": "approve-rollback",
            "prompt": "Roll back api?",
            "roles": ["commander"],
            "users": [],
            "groups": ["sre-leads"],
            "deadline": AT,
        },
        "steps": [
            {
                "step_id": "inspect",
                "kind": "action",
                "visit": 1,
                "status": "succeeded",
                "attempts": 1,
                "summary": "api on revision 4",
                "actor": None,
            },
            {
                "step_id": "approve-rollback",
                "kind": "approval",
                "visit": 1,
                "status": "waiting_approval",
                "attempts": 0,
                "summary": "",
            },
        ],
    }


def test_render_run_shows_the_pending_approval_and_steps() -> None:
    lines = render_run(run_state()).splitlines()
    assert lines[0] == "INC-7-r1  RUNNING  bad-deploy-rollback  (dry run)"
    assert lines[3].startswith("  waiting on   approve-rollback: Roll back api?")
    assert lines[4].startswith("  approvers    role commander, group sre-leads (until ")
    assert lines[-3].split() == ["STEP", "KIND", "STATUS", "ATTEMPTS", "ACTOR", "SUMMARY"]
    assert lines[-2].split() == [
        "inspect",
        "action",
        "succeeded",
        "1",
        "-",
        *["api", "on", "revision", "4"],
    ]
    assert lines[-1].split() == ["approve-rollback", "approval", "waiting_approval", "0", "-"]


def test_render_runs() -> None:
    assert render_runs([]) == "no runbook runs"
    rows = render_runs([summary("INC-7-r1", "bad-deploy-rollback", "approve-rollback")])
    assert rows.splitlines()[1].split()[:5] == [
        "INC-7-r1",
        "bad-deploy-rollback",
        "running",
        "approve-rollback",
        "alice",
    ]


def test_run_sends_runbook_params_and_dry_run(
    capsys: pytest.CaptureFixture[str], api: Callable[[Handler], list[httpx.Request]]
) -> None:
    sent = api(lambda r: httpx.Response(201, json=summary("INC-7-r2", "scale", None)))
    code, out, _ = run(
        capsys,
        "runbook",
        "run",
        "INC-7",
        "scale",
        "--param",
        "replicas=5",
        "--param",
        "note=a=b",
        "--dry-run",
        "--as",
        "alice",
    )
    assert code == 0
    assert out.splitlines()[0] == "started INC-7-r2: runbook scale"
    assert [(r.method, r.url.path) for r in sent] == [("POST", "/v1/incidents/INC-7/runs")]
    assert json.loads(sent[0].content) == {
        "runbook": "scale",
        "params": {"replicas": "5", "note": "a=b"},
        "dry_run": True,
    }


def test_a_malformed_param_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "runbook", "run", "INC-7", "scale", "--param", "replicas", "--as", "alice"
    )
    assert code == EXIT_USAGE
    assert err == "fireline: --param 'replicas': expected KEY=VALUE\n"


# --- approve / reject -------------------------------------------------------------------------


def test_waiting_run_picks_the_only_run_waiting_on_the_step() -> None:
    runs = [
        summary("INC-7-r1", "bad-deploy-rollback", "approve-rollback"),
        summary("INC-7-r2", "saturation-scale-out", "approve-scale"),
    ]
    assert waiting_run("INC-7", "approve-scale", runs) == "INC-7-r2"


def test_waiting_run_none_says_what_waits() -> None:
    runs = [summary("INC-7-r1", "bad-deploy-rollback", "approve-rollback")]
    with pytest.raises(CliError) as caught:
        waiting_run("INC-7", "approve-scale", runs)
    assert caught.value.code == EXIT_REFUSED
    assert str(caught.value) == (
        "no run of INC-7 is waiting on step 'approve-scale'; waiting: INC-7-r1 (approve-rollback)"
    )
    with pytest.raises(CliError, match=r"^no run of INC-7 is waiting on step 'x'$"):
        waiting_run("INC-7", "x", [summary("INC-7-r1", "a", None)])


def test_waiting_run_ambiguous_asks_for_run() -> None:
    runs = [
        summary("INC-7-r1", "bad-deploy-rollback", "approve"),
        summary("INC-7-r3", "crashloop-restart", "approve"),
    ]
    with pytest.raises(CliError) as caught:
        waiting_run("INC-7", "approve", runs)
    assert caught.value.code == EXIT_USAGE
    assert str(caught.value) == (
        "2 runs of INC-7 wait on step 'approve': INC-7-r1 (bad-deploy-rollback), "
        "INC-7-r3 (crashloop-restart); say which with --run"
    )


def test_approve_finds_the_run_and_sends_the_comment(
    capsys: pytest.CaptureFixture[str], api: Callable[[Handler], list[httpx.Request]]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(
                200, json=[summary("INC-7-r1", "bad-deploy-rollback", "approve-rollback")]
            )
        return httpx.Response(200, json=run_state())

    sent = api(handler)
    code, out, _ = run(
        capsys, "approve", "INC-7", "approve-rollback", "--comment", "go", "--as", "alice"
    )
    assert code == 0
    assert out == "approved approve-rollback in INC-7-r1 [running]\n"
    assert [(r.method, r.url.path) for r in sent] == [
        ("GET", "/v1/incidents/INC-7/runs"),
        ("POST", "/v1/incidents/INC-7/runs/INC-7-r1/steps/approve-rollback/approve"),
    ]
    assert json.loads(sent[1].content) == {"comment": "go"}


def test_reject_with_run_goes_straight_to_it(
    capsys: pytest.CaptureFixture[str], api: Callable[[Handler], list[httpx.Request]]
) -> None:
    sent = api(lambda r: httpx.Response(200, json=run_state("INC-7-r2", "aborted")))
    code, out, _ = run(
        capsys, "reject", "INC-7", "approve-rollback", "--run", "INC-7-r2", "--as", "alice"
    )
    assert code == 0
    assert out == "rejected approve-rollback in INC-7-r2 [aborted]\n"
    assert [(r.method, r.url.path) for r in sent] == [
        ("POST", "/v1/incidents/INC-7/runs/INC-7-r2/steps/approve-rollback/reject")
    ]
    assert json.loads(sent[0].content) == {"comment": ""}


def test_approve_refused_prints_the_reason(
    capsys: pytest.CaptureFixture[str], api: Callable[[Handler], list[httpx.Request]]
) -> None:
    reason = "carol may not approve approve-rollback: allowed are the commander (bob)"
    api(lambda r: httpx.Response(403, json={"error": "forbidden", "reason": reason}))
    code, _, err = run(
        capsys, "approve", "INC-7", "approve-rollback", "--run", "INC-7-r1", "--as", "alice"
    )
    assert code == EXIT_REFUSED
    assert err == f"fireline: {reason} (HTTP 403)\n"


def test_approve_needs_incident_and_step(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "approve", "INC-7")
    assert code == EXIT_USAGE
    assert "the following arguments are required: STEP" in err


@pytest.mark.parametrize("command", ["pause", "resume", "abort"])
def test_run_control_posts_the_reason(
    command: str,
    capsys: pytest.CaptureFixture[str],
    api: Callable[[Handler], list[httpx.Request]],
) -> None:
    sent = api(lambda r: httpx.Response(200, json=run_state()))
    code, out, _ = run(
        capsys, "runbook", command, "INC-7", "INC-7-r1", "--reason", "wait for db", "--as", "alice"
    )
    assert code == 0
    assert out == f"INC-7-r1 [running] {command} requested\n"
    assert sent[0].url.path == f"/v1/incidents/INC-7/runs/INC-7-r1/{command}"
    assert json.loads(sent[0].content) == {"reason": "wait for db"}
