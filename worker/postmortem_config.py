"""The ``postmortems`` section of fireline.yaml: reviewers, due dates, reminders, managers.

::

    postmortems:
      reviewers: {SEV1: [carol], SEV2: [carol]}
      due_after: {SEV1: 3d, SEV2: 5d, SEV3: 10d}
      default_due_after: 14d
      required_sections: [summary, impact, trigger, contributing_factors, root_cause]
      export_dir: docs/postmortems
      remind_before: [2d]
      overdue_every: 2d
      action_items:
        {before: [3d, 1d], overdue_every: 2d, escalate_after: 3d, notify_on_assign: true}
      managers: {bob: carol}
      reminder_channels: [slack, email, console]
      tracker: {kind: github, repo: acme/infra, token_env: FIRELINE_GITHUB_TOKEN}

A user's manager is the ``managers`` entry if there is one, else the manager of the first
team (by name) the user is a member of. Reminders go to the first contact method of a
kind in ``reminder_channels`` (never a pager by default), else to the console inbox.

The incident freezes :func:`postmortem_snapshot` into its config snapshot, so a config edit
never changes a postmortem already under way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from activities.contracts import ContactKind, ContactMethod
from workflows.contracts import (
    DEFAULT_REQUIRED_SECTIONS,
    Person,
    PostmortemSnapshot,
    ReminderPolicy,
    SectionKey,
)
from workflows.durations import Duration
from workflows.severity import Severity

if TYPE_CHECKING:
    # Only for annotations: worker.config will import this module for its ``postmortems``.
    from worker.config import FirelineConfig, User

# Low-urgency channels: a reminder about a document must not wake anyone up.
DEFAULT_REMINDER_CHANNELS = [ContactKind.SLACK, ContactKind.EMAIL, ContactKind.CONSOLE]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _positive(value: timedelta, field: str) -> timedelta:
    if value <= timedelta(0):
        raise ValueError(f"{field} must be more than 0, got {value}")
    return value


class ActionItemReminders(_Strict):
    """When action-item owners are reminded, and when an overdue item escalates."""

    before: list[Duration] = Field(default_factory=lambda: [timedelta(days=3), timedelta(days=1)])
    overdue_every: Duration = timedelta(days=2)
    escalate_after: Duration = timedelta(days=3)
    # Tell the owner at once when an item is created for them or handed to them.
    notify_on_assign: bool = True

    @field_validator("before")
    @classmethod
    def _check_before(cls, value: list[timedelta]) -> list[timedelta]:
        return [_positive(v, "each offset") for v in value]

    @field_validator("overdue_every")
    @classmethod
    def _check_every(cls, value: timedelta) -> timedelta:
        return _positive(value, "overdue_every")

    @field_validator("escalate_after")
    @classmethod
    def _check_escalate(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError(f"escalate_after must not be negative, got {value}")
        return value


class GitHubTracker(_Strict):
    """Action items as GitHub issues in one repository."""

    kind: Literal["github"] = "github"
    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    # The environment variable holding a token with Issues read/write on the repository.
    token_env: str = Field(min_length=1)
    base_url: str = Field("https://api.github.com", pattern=r"^https?://")
    label: str = Field("fireline", min_length=1, max_length=50)


class PostmortemConfig(_Strict):
    """How postmortems are reviewed and action items followed up."""

    reviewers: dict[Severity, list[str]] = Field(default_factory=dict)
    due_after: dict[Severity, Duration] = Field(default_factory=dict)
    default_due_after: Duration = timedelta(days=7)
    required_sections: list[SectionKey] = Field(
        default_factory=lambda: list(DEFAULT_REQUIRED_SECTIONS)
    )
    # Markdown + JSON per postmortem land here (e.g. a docs repository's checkout).
    export_dir: Path | None = None
    remind_before: list[Duration] = Field(default_factory=lambda: [timedelta(days=2)])
    overdue_every: Duration = timedelta(days=2)
    action_items: ActionItemReminders = Field(default_factory=ActionItemReminders)
    # user → manager, overriding the manager of the user's team.
    managers: dict[str, str] = Field(default_factory=dict)
    reminder_channels: list[ContactKind] = Field(
        default_factory=lambda: list(DEFAULT_REMINDER_CHANNELS)
    )
    # Open a ticket per action item and close it when the item is done or dropped.
    tracker: GitHubTracker | None = None

    @field_validator("default_due_after", "overdue_every")
    @classmethod
    def _check_positive(cls, value: timedelta) -> timedelta:
        return _positive(value, "the duration")

    @field_validator("due_after")
    @classmethod
    def _check_due_after(cls, value: dict[Severity, timedelta]) -> dict[Severity, timedelta]:
        return {k: _positive(v, f"due_after.{k.value}") for k, v in value.items()}

    @field_validator("remind_before")
    @classmethod
    def _check_remind_before(cls, value: list[timedelta]) -> list[timedelta]:
        return [_positive(v, "each offset") for v in value]


def postmortem_settings(config: FirelineConfig) -> PostmortemConfig:
    """The ``postmortems`` section, or its defaults when the config has none."""
    return config.postmortems or PostmortemConfig()


def postmortem_problems(config: FirelineConfig, pm: PostmortemConfig) -> Iterable[str]:
    """Dangling user references, as ``postmortems.<path>: unknown user 'x'``."""
    users = config.users
    if pm.tracker is not None and not os.environ.get(pm.tracker.token_env):
        yield (
            f"postmortems.tracker.token_env: environment variable {pm.tracker.token_env} is not set"
        )
    if not users:
        return
    for severity, handles in pm.reviewers.items():
        for i, handle in enumerate(handles):
            if handle not in users:
                yield f"postmortems.reviewers.{severity.value}[{i}]: unknown user '{handle}'"
    for handle, manager in pm.managers.items():
        if handle not in users:
            yield f"postmortems.managers: unknown user '{handle}'"
        if manager not in users:
            yield f"postmortems.managers.{handle}: unknown user '{manager}'"


def manager_of(config: FirelineConfig, pm: PostmortemConfig, handle: str) -> str | None:
    """Who ``handle`` reports to: the explicit entry, else their team's manager."""
    if handle in pm.managers:
        return pm.managers[handle]
    for name in sorted(config.teams):
        team = config.teams[name]
        if handle in team.members and team.manager and team.manager != handle:
            return team.manager
    return None


def reminder_contact(user: User | None, channels: list[ContactKind]) -> ContactMethod:
    """The user's first contact method of an allowed kind, else the console inbox."""
    for kind in channels:
        for method in user.contact_methods if user else []:
            if method.kind is kind:
                return method
    return ContactMethod(kind=ContactKind.CONSOLE)


def postmortem_snapshot(
    config: FirelineConfig, pm: PostmortemConfig | None = None
) -> PostmortemSnapshot:
    """The frozen postmortem settings an incident passes to its PostmortemWorkflow."""
    pm = pm or postmortem_settings(config)
    return PostmortemSnapshot(
        reviewers={s.value: list(h) for s, h in pm.reviewers.items()},
        due_after={s.value: d for s, d in pm.due_after.items()},
        default_due_after=pm.default_due_after,
        required_sections=list(pm.required_sections),
        # A relative directory is the state directory's (resolved by the declaring service).
        export_dir=str(pm.export_dir) if pm.export_dir else None,
        remind_before=list(pm.remind_before),
        overdue_every=pm.overdue_every,
        action_items=ReminderPolicy(
            before=list(pm.action_items.before),
            overdue_every=pm.action_items.overdue_every,
            escalate_after=pm.action_items.escalate_after,
            notify_on_assign=pm.action_items.notify_on_assign,
        ),
        people={
            handle: Person(
                handle=handle,
                name=user.name,
                email=user.email,
                manager=manager_of(config, pm, handle),
                contact=reminder_contact(user, pm.reminder_channels),
            )
            for handle, user in config.users.items()
        },
        tracker=pm.tracker.kind if pm.tracker else None,
    )
