"""The postmortem draft: an incident's record → facts, template sections, and Markdown.

Pure and deterministic (no clock, no I/O): the workflow passes the time in, so the same
record always drafts the same postmortem, and golden files in
``tests/golden/postmortems/`` pin the output.

The template is blameless. Its prompts ask about systems, conditions and decisions — what
made an action reasonable at the time — never who caused the incident; the timeline names
who *did* what during the response, because that is the record of the response, not a
verdict. :func:`blameless_warnings` flags wording that drifts towards blame so an editor can
rephrase; it never refuses an edit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from workflows.contracts import (
    ActionItemSummary,
    AlertDigest,
    ApprovalDigest,
    CheckDigest,
    ImpactWindow,
    IncidentRecord,
    IncidentState,
    PostmortemFacts,
    PostmortemInput,
    PostmortemState,
    PostmortemStatus,
    Role,
    RunbookRunState,
    Section,
    SectionKey,
    TimelineEntry,
    TimelineItem,
)

TITLES: dict[SectionKey, str] = {
    SectionKey.SUMMARY: "Summary",
    SectionKey.IMPACT: "Impact",
    SectionKey.TRIGGER: "Trigger",
    SectionKey.DETECTION: "Detection",
    SectionKey.RESPONSE: "Response",
    SectionKey.RECOVERY: "Recovery",
    SectionKey.CONTRIBUTING_FACTORS: "Contributing factors",
    SectionKey.ROOT_CAUSE: "Root-cause analysis",
    SectionKey.WENT_WELL: "What went well",
    SectionKey.LUCKY: "Where we got lucky",
    SectionKey.ACTION_ITEMS: "Action items",
}

PROMPTS: dict[SectionKey, str] = {
    SectionKey.SUMMARY: "What happened, in two or three sentences a reader outside the team "
    "understands.",
    SectionKey.IMPACT: "Who was affected and how: customers, requests, data, SLAs, revenue.",
    SectionKey.TRIGGER: "Which change or condition set the incident off (a deploy, a "
    "configuration change, a traffic pattern, a dependency)? Describe the system and the "
    "change, not a person.",
    SectionKey.DETECTION: "How did we find out, and how could the system have told us sooner?",
    SectionKey.RESPONSE: "How did the response unfold: who was brought in, which decisions "
    "were made with the information available at the time?",
    SectionKey.RECOVERY: "What restored service, and how was recovery confirmed?",
    SectionKey.CONTRIBUTING_FACTORS: "Which conditions in the system, tooling or process "
    "made the incident possible or made it worse? List each one.",
    SectionKey.ROOT_CAUSE: "Five whys (ask 'why did the system allow this?' until you reach "
    "something the organisation can change) and/or a causal tree of the contributing "
    "factors. Why did it make sense at the time?",
    SectionKey.WENT_WELL: "What worked: tools, practices, and decisions worth keeping.",
    SectionKey.LUCKY: "Where did chance rather than design limit the damage?",
    SectionKey.ACTION_ITEMS: "Improvements, each tracked as an action item (prevent, detect, "
    "mitigate, process) with an owner and a due date.",
}

BLAMELESS_NOTE = (
    "This is a blameless review: it describes how our systems and processes allowed the "
    "incident and how decisions made sense with what was known at the time. It does not "
    "ask who caused it."
)

# Timeline kinds that are bookkeeping rather than part of the story.
_SKIPPED_KINDS = frozenset({"refused", "postmortem_started"})

_PHASES: dict[str, str] = {
    "declared": "declared",
    "drill": "declared",
    "acknowledged": "acknowledged",
    "alerts_acknowledged": "acknowledged",
    "page": "paging",
    "page_failed": "paging",
    "page_closed": "paging",
    "escalation": "paging",
    "escalation_requested": "paging",
    "role_assigned": "roles",
    "role_vacated": "roles",
    "severity_changed": "severity",
    "mitigated": "mitigated",
    "resolved": "resolved",
    "reopened": "reopened",
    "closed": "closed",
    "note": "note",
    "cascade": "alerts",
    "alerts_resolved": "alerts",
}


def _phase(kind: str) -> str:
    if kind in _PHASES:
        return _PHASES[kind]
    for prefix, phase in (
        ("alert", "alerts"),
        ("runbook", "runbook"),
        ("triage", "triage"),
        ("status", "comms"),
        ("update", "comms"),
        ("war_room", "comms"),
        ("postmortem", "review"),
    ):
        if kind.startswith(prefix):
            return phase
    return "other"


# --- facts ------------------------------------------------------------------------------


def facts_from_record(record: IncidentRecord) -> PostmortemFacts:
    """Everything the draft states as fact, derived from the incident's record."""
    s = record.incident
    return PostmortemFacts(
        incident_id=s.id,
        title=s.title,
        service=s.service,
        severity=s.severity,
        drill=s.drill,
        commander=s.roles.get(Role.COMMANDER),
        roles={role.value: user for role, user in s.roles.items()},
        window=impact_window(s),
        timeline=timeline(s),
        alerts=alerts(s),
        checks=[c for run in record.runs for c in checks(run)],
        approvals=[a for run in record.runs for a in approvals(run)],
        pages=sum(1 for e in s.timeline if e.kind == "page"),
        severity_changes=[e.text for e in s.timeline if e.kind == "severity_changed"],
        runbooks=[
            f"{r.runbook} ({r.run_id}): {r.status}" + (" (dry run)" if r.dry_run else "")
            for r in s.runs
        ],
    )


def impact_window(s: IncidentState) -> ImpactWindow:
    """From the first sign of trouble (first firing alert, else the declaration) to the
    mitigation (else the resolution)."""
    firing = [a.starts_at for a in s.alerts.values()]
    first_alert = min(firing) if firing else None
    start = min(first_alert, s.declared_at) if first_alert else s.declared_at
    end = s.mitigated_at or s.resolved_at

    def since(at: datetime | None, origin: datetime) -> timedelta | None:
        return at - origin if at is not None else None

    return ImpactWindow(
        start=start,
        end=end,
        first_alert_at=first_alert,
        declared_at=s.declared_at,
        acknowledged_at=s.acknowledged_at,
        mitigated_at=s.mitigated_at,
        resolved_at=s.resolved_at,
        time_to_detect=s.declared_at - first_alert if first_alert else None,
        time_to_acknowledge=since(s.acknowledged_at, s.declared_at),
        time_to_mitigate=since(s.mitigated_at, s.declared_at),
        time_to_resolve=since(s.resolved_at, s.declared_at),
        duration=since(end, start),
    )


def timeline(s: IncidentState) -> list[TimelineItem]:
    """The incident's timeline in the postmortem's words, with offsets from declaration."""
    items = [_item(s.declared_at, e) for e in s.timeline if e.kind not in _SKIPPED_KINDS]
    # Alerts that began before the declaration are where the story starts.
    for a in sorted(s.alerts.values(), key=lambda a: (a.starts_at, a.fingerprint)):
        if a.starts_at < s.declared_at:
            items.append(
                TimelineItem(
                    at=a.starts_at,
                    offset=a.starts_at - s.declared_at,
                    phase="alerts",
                    text=f"alert {a.alertname} started firing: {a.summary}",
                )
            )
    # Stable: entries recorded at the same instant keep the order they were recorded in.
    return sorted(items, key=lambda i: i.at)


def _item(origin: datetime, e: TimelineEntry) -> TimelineItem:
    return TimelineItem(at=e.at, offset=e.at - origin, phase=_phase(e.kind), text=e.text)


def alerts(s: IncidentState) -> list[AlertDigest]:
    """The incident's alerts, first to fire first."""
    ordered = sorted(s.alerts.values(), key=lambda a: (a.starts_at, a.alertname, a.fingerprint))
    return [
        AlertDigest(
            alertname=a.alertname,
            status=a.status.value,
            summary=a.summary,
            starts_at=a.starts_at,
            ends_at=a.ends_at,
        )
        for a in ordered
    ]


def checks(run: RunbookRunState) -> list[CheckDigest]:
    """A run's steps that measured something (metrics checks)."""
    return [
        CheckDigest(
            run_id=run.run_id,
            runbook=run.runbook,
            step_id=step.step_id,
            status=step.status,
            summary=step.summary or step.error,
            measurements=len(step.measurements),
            last_values=step.measurements[-1].values if step.measurements else [],
        )
        for step in run.steps
        if step.measurements or step.kind == "check"
    ]


def approvals(run: RunbookRunState) -> list[ApprovalDigest]:
    """A run's approval steps and how each was decided."""
    found = []
    for step in run.steps:
        if step.kind != "approval":
            continue
        decision = {
            "succeeded": "approved",
            "failed": "rejected",
            "waiting_approval": "pending",
            "skipped": "skipped",
        }.get(step.status, step.status)
        found.append(
            ApprovalDigest(
                run_id=run.run_id,
                runbook=run.runbook,
                step_id=step.step_id,
                decision=decision,
                actor=step.actor,
                comment=step.comment,
                at=step.ended_at,
            )
        )
    return found


# --- the draft --------------------------------------------------------------------------


def initial_state(inp: PostmortemInput, now: datetime) -> PostmortemState:
    """The postmortem before its facts are gathered: every section empty."""
    return PostmortemState(
        id=inp.incident_id,
        incident_id=inp.incident_id,
        title=inp.title,
        service=inp.service,
        severity=inp.severity,
        author=inp.commander,
        reviewers=inp.settings.reviewers_for(inp.severity),
        required_sections=list(inp.settings.required_sections),
        created_at=now,
        due_at=inp.resolved_at + inp.settings.due_offset(inp.severity),
        sections=[Section(key=k, title=TITLES[k], prompt=PROMPTS[k]) for k in SectionKey],
    )


def with_draft(state: PostmortemState, record: IncidentRecord, now: datetime) -> PostmortemState:
    """``state`` with the facts and the drafted sections from ``record``.

    A section someone already edited keeps its text: gathering never overwrites people.
    """
    facts = facts_from_record(record)
    drafted = draft_texts(facts, record)
    sections = []
    for section in state.sections:
        text = drafted.get(section.key, "")
        if section.edited_by is None and text:
            section = section.model_copy(update={"text": text, "drafted": True})
        sections.append(section)
    return state.model_copy(
        update={
            "facts": facts,
            "sections": sections,
            "drafted_at": now,
            # A refresh during the review keeps the review where it is.
            "status": PostmortemStatus.DRAFT
            if state.status is PostmortemStatus.GATHERING
            else state.status,
            "author": state.author or facts.commander,
        }
    )


def draft_texts(facts: PostmortemFacts, record: IncidentRecord) -> dict[SectionKey, str]:
    """The sections fireline can write from the record; the rest need people."""
    s = record.incident
    w = facts.window
    texts: dict[SectionKey, str] = {}
    kind = "drill" if facts.drill else "incident"
    summary = (
        f"{facts.severity.value} {kind} on {facts.service}: {facts.title}. "
        f"Declared {_when(w.declared_at)}"
    )
    if w.resolved_at is not None and w.time_to_resolve is not None:
        summary += f", resolved {_when(w.resolved_at)} ({_span(w.time_to_resolve)} later)"
    summary += "."
    if s.resolution_summary:
        summary += f" Resolution: {s.resolution_summary}."
    if s.summary:
        summary += f"\n\n{s.summary}"
    texts[SectionKey.SUMMARY] = summary

    impact = f"Impact window: {_when(w.start)} to " + (
        f"{_when(w.end)} ({_span(w.duration)})." if w.end and w.duration else "not recorded."
    )
    service = f" Affected service: {facts.service}"
    tiers = s.labels.get("customer_tier")
    texts[SectionKey.IMPACT] = impact + service + (f" (customer tier {tiers})." if tiers else ".")

    texts[SectionKey.DETECTION] = _detection(facts, s)
    texts[SectionKey.RESPONSE] = _response(facts, s)
    texts[SectionKey.RECOVERY] = _recovery(facts, s)
    return texts


def _detection(facts: PostmortemFacts, s: IncidentState) -> str:
    w = facts.window
    declarer = s.declared_by or "fireline (from alerts)"
    if facts.alerts:
        first = facts.alerts[0]
        text = f"The first alert, {first.alertname}, fired {_when(first.starts_at)}"
        if w.time_to_detect is not None and w.time_to_detect > timedelta(0):
            text += f"; the incident was declared {_span(w.time_to_detect)} later"
        text += f" by {declarer}. {len(facts.alerts)} alert(s) were attached."
        return text
    return (
        f"No alert was attached: {declarer} declared the incident {_when(w.declared_at)}. "
        "Could monitoring have detected this before people did?"
    )


def _response(facts: PostmortemFacts, s: IncidentState) -> str:
    w = facts.window
    parts = []
    if w.acknowledged_at is not None and w.time_to_acknowledge is not None:
        who = f" by {s.acknowledged_by}" if s.acknowledged_by else ""
        parts.append(f"Acknowledged{who} {_span(w.time_to_acknowledge)} after declaration.")
    else:
        parts.append("No acknowledgement was recorded.")
    if facts.pages:
        parts.append(f"{facts.pages} page(s) went out.")
    if facts.roles:
        parts.append(
            "Roles: " + ", ".join(f"{role} {user}" for role, user in facts.roles.items()) + "."
        )
    if facts.severity_changes:
        parts.append("Severity changes: " + "; ".join(facts.severity_changes) + ".")
    if facts.runbooks:
        parts.append("Runbooks: " + "; ".join(facts.runbooks) + ".")
    for a in facts.approvals:
        by = f" by {a.actor}" if a.actor else ""
        note = f" ({a.comment})" if a.comment else ""
        parts.append(f"Step {a.step_id} of {a.run_id} was {a.decision}{by}{note}.")
    return " ".join(parts)


def _recovery(facts: PostmortemFacts, s: IncidentState) -> str:
    w = facts.window
    parts = []
    if w.mitigated_at is not None and w.time_to_mitigate is not None:
        parts.append(f"Mitigated {_span(w.time_to_mitigate)} after declaration.")
    mitigation = next((e for e in reversed(s.timeline) if e.kind == "mitigated"), None)
    if mitigation is not None:
        parts.append(f"({mitigation.text})")
    for c in facts.checks:
        parts.append(f"Check {c.step_id} of {c.run_id} {c.status}: {c.summary}".rstrip(": ") + ".")
    if w.resolved_at is not None and w.time_to_resolve is not None:
        parts.append(f"Resolved {_span(w.time_to_resolve)} after declaration.")
        if s.resolution_summary:
            parts.append(f"Resolution: {s.resolution_summary}.")
    return " ".join(parts)


# --- blameless wording ------------------------------------------------------------------

_BLAME_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"\bhuman error\b", re.IGNORECASE),
        "'human error' ends the inquiry; describe what made the action easy to get wrong",
    ),
    (
        re.compile(r"\b(?:blame[sd]?|fault of|at fault|whose fault)\b", re.IGNORECASE),
        "assigning fault is out of scope; describe the conditions and decisions instead",
    ),
    (
        re.compile(r"\bwho (?:caused|broke)\b", re.IGNORECASE),
        "ask what allowed it, not who caused it",
    ),
    (
        re.compile(r"\bshould have (?:known|noticed|checked)\b", re.IGNORECASE),
        "hindsight: say what information was available at the time",
    ),
    (
        re.compile(r"\b(?:careless(?:ly|ness)?|negligen(?:t|ce)|incompeten(?:t|ce))\b", re.I),
        "judging people; describe the system that allowed the mistake",
    ),
]


def blameless_warnings(text: str) -> list[str]:
    """Phrases in ``text`` that point at people rather than systems, each with a hint."""
    found = []
    for pattern, hint in _BLAME_PATTERNS:
        match = pattern.search(text)
        if match:
            found.append(f"'{match.group(0)}': {hint}")
    return found


# --- rendering --------------------------------------------------------------------------


def export_basename(state: PostmortemState) -> str:
    """``2026-11-28-INC-42-checkout-errors``: sortable by date in a docs repository."""
    day = state.facts.window.declared_at if state.facts else state.created_at
    slug = re.sub(r"[^a-z0-9]+", "-", state.title.lower()).strip("-")[:60].rstrip("-")
    return f"{day.astimezone(UTC):%Y-%m-%d}-{state.incident_id}" + (f"-{slug}" if slug else "")


def render_markdown(state: PostmortemState) -> str:
    """The postmortem as a Markdown document, ready to commit to a docs repository."""
    f = state.facts
    lines = [f"# Postmortem: {state.incident_id} — {_inline(state.title)}", ""]
    rows = [
        ("Incident", state.incident_id),
        ("Severity", state.severity.value),
        ("Service", state.service),
        ("Status", state.status.value.replace("_", " ")),
        ("Author", state.author or "-"),
        ("Reviewers", ", ".join(state.reviewers) or "-"),
        ("Due", _when(state.due_at)),
    ]
    if state.published_at:
        rows.append(("Published", f"{_when(state.published_at)} by {state.published_by}"))
    if f is not None:
        w = f.window
        end = _when(w.end) if w.end else "open"
        rows.append(("Impact window", f"{_when(w.start)} to {end}"))
        if w.duration is not None:
            rows.append(("Duration", _span(w.duration)))
    lines += ["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in rows), ""]
    lines += [f"> {BLAMELESS_NOTE}", ""]
    if state.gather_error:
        lines += [f"> Note: the incident record could not be read: {state.gather_error}", ""]
    for section in state.sections:
        lines += [f"## {section.title}", ""]
        if section.empty and not (section.key is SectionKey.ACTION_ITEMS and state.action_items):
            required = " (required)" if section.key in state.required_sections else ""
            lines += [f"_To write{required}: {section.prompt}_", ""]
        elif not section.empty:
            lines += [section.text.strip(), ""]
        if f is not None:
            lines += _section_extras(section.key, state, f)
    return "\n".join(lines).rstrip() + "\n"


def _section_extras(key: SectionKey, state: PostmortemState, f: PostmortemFacts) -> list[str]:
    lines: list[str] = []
    if key is SectionKey.IMPACT:
        w = f.window
        lines += [
            "### Key times",
            "",
            "| Moment | Time (UTC) | Since declaration |",
            "|---|---|---|",
        ]
        for label, at in (
            ("First alert", w.first_alert_at),
            ("Declared", w.declared_at),
            ("Acknowledged", w.acknowledged_at),
            ("Mitigated", w.mitigated_at),
            ("Resolved", w.resolved_at),
        ):
            if at is not None:
                lines.append(f"| {label} | {_when(at)} | {_offset(at - w.declared_at)} |")
        lines += ["", "## Timeline", "", "| Time (UTC) | T | Phase | What happened |"]
        lines.append("|---|---|---|---|")
        lines += [
            f"| {_when(i.at)} | {_offset(i.offset)} | {i.phase} | {_cell(i.text)} |"
            for i in f.timeline
        ]
        lines.append("")
    elif key is SectionKey.DETECTION and f.alerts:
        lines += ["### Alerts", "", "| Alert | Status | Started | Ended | Summary |"]
        lines.append("|---|---|---|---|---|")
        lines += [
            f"| {_cell(a.alertname)} | {a.status} | {_when(a.starts_at)} | "
            f"{_when(a.ends_at) if a.ends_at else '-'} | {_cell(a.summary)} |"
            for a in f.alerts
        ]
        lines.append("")
    elif key is SectionKey.RESPONSE and f.approvals:
        lines += ["### Runbook approvals", "", "| Run | Step | Decision | By | Comment |"]
        lines.append("|---|---|---|---|---|")
        lines += [
            f"| {a.run_id} | {a.step_id} | {a.decision} | {a.actor or '-'} | "
            f"{_cell(a.comment) or '-'} |"
            for a in f.approvals
        ]
        lines.append("")
    elif key is SectionKey.RECOVERY and f.checks:
        lines += ["### Metrics checks", "", "| Run | Step | Result | Measurements | Last values |"]
        lines.append("|---|---|---|---|---|")
        lines += [
            f"| {c.run_id} | {c.step_id} | {c.status} | {c.measurements} | "
            f"{', '.join(_number(v) for v in c.last_values) or '-'} |"
            for c in f.checks
        ]
        lines.append("")
    elif key is SectionKey.ACTION_ITEMS and state.action_items:
        lines += _action_item_table(state.action_items)
    return lines


def _action_item_table(items: list[ActionItemSummary]) -> list[str]:
    lines = ["| ID | Action | Kind | Priority | Owner | Due | Status |"]
    lines.append("|---|---|---|---|---|---|---|")
    for i in items:
        title = f"[{_cell(i.title)}]({i.link})" if i.link else _cell(i.title)
        lines.append(
            f"| {i.id} | {title} | {i.kind.value} | {i.priority.value} | {i.owner} | "
            f"{i.due_at.astimezone(UTC):%Y-%m-%d} | {i.status} |"
        )
    lines.append("")
    return lines


def _when(at: datetime | None) -> str:
    if at is None:
        return "-"
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(d: timedelta | None) -> str:
    if d is None:
        return "-"
    seconds = int(d.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if secs and not days:
        parts.append(f"{secs}s")
    return "".join(parts)


def _offset(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{secs:02d}"


def _number(v: float) -> str:
    return f"{v:g}"


def _inline(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return _inline(text).replace("|", "\\|")
