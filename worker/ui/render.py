"""HTML for the dashboard: the Jinja environment and what templates need from the state.

Autoescaping is on for every template and never switched off: titles, notes, alert labels,
names and reasons all come from people or from alert senders. Links to elsewhere (war room,
status page, alert sources) are shown only when they are http(s), so a ``javascript:`` URL
in a label cannot become a clickable script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from workflows.contracts import (
    Audience,
    ComponentStatus,
    IncidentState,
    PublicStatus,
    Role,
    RunbookRunState,
    Severity,
    StatusImpact,
    TimelineEntry,
)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# Timeline kinds that record paging (PagingEvent signals, see IncidentWorkflow.paging_event).
PAGING_KINDS = ("page", "page_failed", "page_closed", "escalation")


def safe_url(url: object) -> str | None:
    """``url`` when it is an absolute http(s) URL, else None (never a script URL)."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def when(at: datetime | None) -> str:
    """A timestamp as people read it in an incident (UTC, to the second)."""
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""


def clock(at: datetime | None) -> str:
    """Just the time of day, for timeline rows."""
    return at.strftime("%H:%M:%S") if at else ""


def age(since: datetime | None, now: datetime) -> str:
    """How long ago ``since`` was: ``45s``, ``12m``, ``3h 05m``, ``2d 4h``."""
    if since is None:
        return ""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def paged_users(state: IncidentState) -> list[str]:
    """Everyone a page went out to, in the order they were first paged."""
    users: list[str] = []
    for entry in state.timeline:
        user = entry.data.get("user")
        if entry.kind == "page" and isinstance(user, str) and user not in users:
            users.append(user)
    return users


def paging_entries(state: IncidentState) -> list[TimelineEntry]:
    """The timeline's paging entries (sent, failed, closed, escalations), oldest first."""
    return [e for e in state.timeline if e.kind in PAGING_KINDS]


@dataclass
class IncidentView:
    """Everything the incident page shows besides the timeline."""

    state: IncidentState
    runs: dict[str, RunbookRunState]
    components: list[str]
    users: list[str]
    paged: list[str] = field(default_factory=list)
    pages: list[TimelineEntry] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        state: IncidentState,
        runs: dict[str, RunbookRunState],
        components: list[str],
        users: list[str],
    ) -> IncidentView:
        """The view of ``state`` with its paging facts pulled out of the timeline."""
        return cls(state, runs, components, users, paged_users(state), paging_entries(state))


def environment() -> Environment:
    """The dashboard's Jinja environment (autoescape on, undefined names are errors)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["clock"] = clock
    env.filters["safe_url"] = safe_url
    globals_: dict[str, Any] = {
        "ROLES": list(Role),
        "SEVERITIES": list(Severity),
        "PUBLIC_STATUSES": list(PublicStatus),
        "IMPACTS": list(StatusImpact),
        "COMPONENT_STATUSES": list(ComponentStatus),
        "AUDIENCES": list(Audience),
        "age": age,
    }
    env.globals.update(globals_)
    return env
