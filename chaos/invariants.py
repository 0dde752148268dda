"""The invariants a chaos run must keep, each checked against real recorded state.

Every check takes what the run observed (the vendor fakes' records, the emulator's
cluster, the workflows' query results) and returns an :class:`Invariant` that says whether
it held and, when it did not, exactly what broke. Checks never raise on a violation: the
table shows every invariant, and the caller decides to fail.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.pagerduty import Alert
from workflows.contracts import IncidentState, RunbookRunState


@dataclass(frozen=True)
class Invariant:
    """One invariant's verdict; ``problems`` lists each violation found."""

    name: str
    checked: int
    problems: tuple[str, ...] = field(default=())

    @property
    def held(self) -> bool:
        """True when no violation was found in a non-empty check."""
        return not self.problems and self.checked > 0


def _verdict(name: str, checked: int, problems: Iterable[str]) -> Invariant:
    found = tuple(problems)
    if checked == 0:
        # An invariant over nothing proves nothing: say so instead of passing.
        found += ("nothing was checked",)
    return Invariant(name, checked, found)


def incidents_reached_state(states: Mapping[str, IncidentState | None], expected: str) -> Invariant:
    """Every incident the run opened ended in ``expected`` (e.g. ``resolved``)."""
    problems = [
        f"{key}: no incident" if s is None else f"{s.id}: {s.status.value}, want {expected}"
        for key, s in states.items()
        if s is None or s.status.value != expected
    ]
    return _verdict("incidents reached their final state", len(states), problems)


def pages_delivered_once(alerts: Sequence[Alert], incident_ids: Iterable[str]) -> Invariant:
    """One vendor alert per dedup key, and one per (incident, recipient), for each incident.

    PagerDuty folds a retried trigger with the same key into the open alert, so a second
    alert means a retry used another key: the responder was paged twice.
    """
    wanted = set(incident_ids)
    by_key = Counter(a.dedup_key for a in alerts)
    problems = [f"dedup key {k}: {n} alerts opened" for k, n in sorted(by_key.items()) if n > 1]
    by_target: dict[tuple[str, str], set[str]] = defaultdict(set)
    for alert in alerts:
        details = _details(alert)
        by_target[(details.get("incident_id", "?"), details.get("recipient", "?"))].add(
            alert.dedup_key
        )
    for (incident, recipient), keys in sorted(by_target.items()):
        if len(keys) > 1:
            problems.append(f"{incident} → {recipient}: paged under {len(keys)} keys")
    paged = {incident for incident, _ in by_target}
    problems += [f"{i}: never paged" for i in sorted(wanted - paged)]
    return _verdict("every page delivered exactly once per dedup key", len(wanted), problems)


def pages_closed_on_resolve(alerts: Sequence[Alert]) -> Invariant:
    """Every vendor alert the run opened was resolved at the vendor."""
    problems = [f"{a.dedup_key}: {a.status}" for a in alerts if a.status != "resolved"]
    return _verdict("every external page opened was closed on resolve", len(alerts), problems)


def rollback_took_effect_once(
    revision_before: int, revision_after: int, image: str, expected_image: str
) -> Invariant:
    """A rollback makes exactly one new revision; a repeated one would make two."""
    problems = []
    if revision_after != revision_before + 1:
        problems.append(f"revision {revision_before} → {revision_after}, want +1")
    if image != expected_image:
        problems.append(f"image {image}, want {expected_image}")
    return _verdict("every Kubernetes action took effect exactly once", 1, problems)


def approvals_decided_once(run: RunbookRunState | None, step_id: str) -> Invariant:
    """The approval step was decided once, approved, and the run finished."""
    if run is None:
        return _verdict("every approval decided once", 1, ["runbook run never started"])
    decided = [s for s in run.steps if s.step_id == step_id]
    problems = []
    if len(decided) != 1:
        problems.append(f"{step_id}: {len(decided)} step records, want 1")
    problems += [f"{step_id}: {s.status}" for s in decided if s.status != "succeeded"]
    if run.status != "succeeded":
        problems.append(f"run {run.run_id}: {run.status} ({run.error})")
    return _verdict("every approval decided once", 1, problems)


def timeline_intact(
    states: Mapping[str, IncidentState | None], required_kinds: Iterable[str]
) -> Invariant:
    """No timeline entry duplicated (ids unique), none of the expected kinds missing.

    ``required_kinds``: kinds every incident's timeline must hold (declared, resolved...).
    Kinds like ``alert`` may legitimately repeat; an id may not.
    """
    required = set(required_kinds)
    problems: list[str] = []
    entries = 0
    for key, state in states.items():
        if state is None:
            problems.append(f"{key}: no incident")
            continue
        entries += len(state.timeline)
        ids = Counter(e.id for e in state.timeline)
        problems += [f"{state.id}: entry {i} x{n}" for i, n in ids.items() if n > 1]
        kinds = {e.kind for e in state.timeline}
        problems += [f"{state.id}: no {k!r} entry" for k in sorted(required - kinds)]
        same = Counter((e.kind, e.text, e.actor) for e in state.timeline if e.kind in required)
        problems += [
            f"{state.id}: {kind} recorded {n} times" for (kind, _, _), n in same.items() if n > 1
        ]
    return _verdict("no timeline entry lost or duplicated", entries, problems)


def _details(alert: Alert) -> dict[str, str]:
    trigger = next((e for e in alert.events if e.get("event_action") == "trigger"), None)
    payload: dict[str, Any] = (trigger or {}).get("payload") or {}
    details = payload.get("custom_details") or {}
    return {str(k): str(v) for k, v in details.items()}
