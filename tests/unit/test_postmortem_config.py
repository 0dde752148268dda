"""The ``postmortems`` config section: validation, managers, reminder channels, snapshot."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from activities.contracts import ContactKind
from tests.postmortem_support import config
from worker.incident_service import IncidentService
from worker.postmortem_config import (
    PostmortemConfig,
    manager_of,
    postmortem_problems,
    postmortem_snapshot,
)
from worker.settings import Settings
from workflows.contracts import Severity


def pm(**fields: Any) -> PostmortemConfig:
    return PostmortemConfig.model_validate(fields)


def test_the_example_section_loads_and_snapshots_per_severity() -> None:
    section = pm(
        reviewers={"SEV1": ["carol"], "SEV2": ["carol", "alice"]},
        due_after={"SEV1": "3d", "SEV2": "5d"},
        default_due_after="14d",
        required_sections=["summary", "root_cause"],
        export_dir="docs/postmortems",
        action_items={"before": ["2d"], "overdue_every": "1d", "escalate_after": "4d"},
        managers={"dave": "carol"},
    )
    snap = postmortem_snapshot(config(), section)
    assert snap.reviewers_for(Severity.SEV2) == ["carol", "alice"]
    assert snap.reviewers_for(Severity.SEV3) == []
    assert snap.due_offset(Severity.SEV1) == timedelta(days=3)
    assert snap.due_offset(Severity.SEV4) == timedelta(days=14)
    assert [k.value for k in snap.required_sections] == ["summary", "root_cause"]
    # Relative stays relative: the declaring service puts it under the state directory.
    assert snap.export_dir == "docs/postmortems"
    assert snap.action_items.escalate_after == timedelta(days=4)
    assert snap.tracker is None
    # Managers: the explicit entry, else the team's manager, else none (the commander).
    assert {h: p.manager for h, p in snap.people.items()} == {
        "alice": "carol",
        "bob": "carol",
        "carol": None,
        "dave": "carol",
    }


def test_reminders_use_a_low_urgency_channel_never_a_pager() -> None:
    snap = postmortem_snapshot(config(), pm())
    # bob has pagerduty first and slack second: reminders go to Slack.
    assert (snap.people["bob"].contact.kind, snap.people["bob"].contact.address) == (
        ContactKind.SLACK,
        "U2",
    )
    assert snap.people["alice"].contact.kind is ContactKind.CONSOLE
    only_pager = postmortem_snapshot(config(), pm(reminder_channels=["console"]))
    assert only_pager.people["bob"].contact.kind is ContactKind.CONSOLE


def test_a_manager_never_is_the_user_themselves() -> None:
    cfg = config().model_copy(
        update={
            "teams": {
                "leads": type(config().teams["payments"])(members=["carol"], manager="carol"),
            }
        }
    )
    assert manager_of(cfg, pm(), "carol") is None


def test_unknown_users_are_problems_named_by_path() -> None:
    problems = list(
        postmortem_problems(
            config(),
            pm(reviewers={"SEV1": ["carol", "zed"]}, managers={"bob": "yan", "xi": "carol"}),
        )
    )
    assert problems == [
        "postmortems.reviewers.SEV1[1]: unknown user 'zed'",
        "postmortems.managers.bob: unknown user 'yan'",
        "postmortems.managers: unknown user 'xi'",
    ]


def test_a_tracker_without_its_token_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    section = pm(tracker={"kind": "github", "repo": "acme/infra", "token_env": "PM_TEST_TOKEN"})
    monkeypatch.delenv("PM_TEST_TOKEN", raising=False)
    assert list(postmortem_problems(config(), section)) == [
        "postmortems.tracker.token_env: environment variable PM_TEST_TOKEN is not set"
    ]
    monkeypatch.setenv("PM_TEST_TOKEN", "x")
    assert list(postmortem_problems(config(), section)) == []
    assert postmortem_snapshot(config(), section).tracker == "github"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"due_after": {"SEV2": "0s"}}, "due_after.SEV2 must be more than 0"),
        ({"overdue_every": "0s"}, "the duration must be more than 0"),
        ({"action_items": {"before": ["0s"]}}, "each offset must be more than 0"),
        ({"required_sections": ["summary", "vibes"]}, "Input should be 'summary'"),
        ({"reviewers": {"SEV9": ["carol"]}}, "Input should be 'SEV1'"),
        ({"tracker": {"kind": "github", "repo": "not a repo", "token_env": "T"}}, "pattern"),
        ({"surprise": True}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_rejected_naming_the_problem(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PostmortemConfig.model_validate(fields)


def test_a_relative_export_directory_lands_in_the_state_directory(tmp_path: Path) -> None:
    service = IncidentService.__new__(IncidentService)
    service.settings = Settings(state_dir=tmp_path)
    relative = postmortem_snapshot(config(), PostmortemConfig(export_dir=Path("postmortems")))
    placed = service._with_export_dir(relative)
    assert placed is not None
    assert placed.export_dir == str((tmp_path / "postmortems").resolve())
    absolute = postmortem_snapshot(config(), PostmortemConfig(export_dir=tmp_path / "pm"))
    assert service._with_export_dir(absolute) == absolute
    assert service._with_export_dir(None) is None
