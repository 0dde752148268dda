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

from activities.providers.slack_channels import ENTRY_EVENT, SUMMARY_EVENT, marker
from activities.providers.statuspage import METADATA_KEY
from tests.fakes.pagerduty import Alert
from tests.fakes.slack import FakeChannel, SlackMessage
from workflows.contracts import Audience, IncidentState, RunbookRunState


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


def incidents_reached_state(
    states: Mapping[str, IncidentState | None], expected: Mapping[str, str] | str
) -> Invariant:
    """Every incident the run opened ended in its expected status (``resolved``, ...)."""
    problems = []
    for key, s in states.items():
        want = expected if isinstance(expected, str) else expected.get(key, "?")
        if s is None:
            problems.append(f"{key}: no incident")
        elif s.status.value != want:
            problems.append(f"{s.id}: {s.status.value}, want {want}")
    return _verdict("every incident reached the state it should", len(states), problems)


def pages_delivered_once(alerts: Sequence[Alert], incident_ids: Iterable[str]) -> Invariant:
    """One vendor alert per dedup key, and one per (incident, recipient), for each incident.

    PagerDuty folds a retried trigger with the same key into the open alert, so a second
    alert means a retry used another key: the responder was paged twice. A page for an
    incident the run never declared (a stale delivery opening a second incident) counts too.
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
    problems += [
        f"{i}: paged, but the run declared no such incident" for i in sorted(paged - wanted)
    ]
    return _verdict("every page delivered exactly once per dedup key", len(wanted), problems)


def pages_closed_on_resolve(
    alerts: Sequence[Alert], expected: Mapping[str, str] | None = None
) -> Invariant:
    """Every vendor alert the run opened was resolved at the vendor when its incident was.

    ``expected``: the vendor status wanted per incident id (``resolved`` by default; an
    incident kept open on purpose wants ``acknowledged``).
    """
    problems = []
    checked = 0
    for alert in alerts:
        incident = _details(alert).get("incident_id", "?")
        if expected is not None and incident not in expected:
            continue  # a page for an incident nobody declared: pages_delivered_once says so
        checked += 1
        want = (expected or {}).get(incident, "resolved")
        if alert.status != want:
            problems.append(f"{incident} page {alert.dedup_key}: {alert.status}, want {want}")
    return _verdict("every external page opened was closed on resolve", checked, problems)


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
    states: Mapping[str, IncidentState | None],
    required_kinds: Iterable[str] | Mapping[str, Iterable[str]],
) -> Invariant:
    """No timeline entry duplicated (ids unique), none of the expected kinds missing.

    ``required_kinds``: kinds every incident's timeline must hold (declared, resolved...),
    or those kinds per incident id. Kinds like ``alert`` may legitimately repeat; an id
    may not, and neither may a required kind with the same text and actor.
    """
    problems: list[str] = []
    entries = 0
    for key, state in states.items():
        if state is None:
            problems.append(f"{key}: no incident")
            continue
        required = set(
            required_kinds.get(key, ()) if isinstance(required_kinds, Mapping) else required_kinds
        )
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


def status_page_opened_once_and_closed(
    vendor_incidents: Iterable[Mapping[str, Any]],
    states: Mapping[str, IncidentState | None],
    resolved: Iterable[str],
) -> Invariant:
    """One Statuspage incident per fireline incident, one vendor update per customer update,
    closed when (and only when) the incident resolved.

    ``vendor_incidents``: the fake's incidents; their ``metadata.fireline.incident_id``
    names the fireline incident (the provider's own idempotency marker).
    """
    should_resolve = set(resolved)
    by_incident: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for found in vendor_incidents:
        metadata = found.get("metadata") or {}
        ours = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
        key = str(ours.get("incident_id")) if isinstance(ours, Mapping) else "?"
        by_incident[key].append(found)
    problems = [
        f"{key}: {len(found)} status page incident(s) for an incident the run did not open"
        for key, found in sorted(by_incident.items())
        if key not in states
    ]
    for key, state in states.items():
        opened = by_incident.get(key, [])
        if len(opened) != 1:
            problems.append(f"{key}: {len(opened)} status page incidents opened, want 1")
        if state is None or not opened:
            continue
        page = opened[0]
        status = page.get("status")
        if key in should_resolve and status != "resolved":
            problems.append(f"{key}: status page incident {page.get('id')} left {status}")
        if key not in should_resolve and status == "resolved":
            problems.append(f"{key}: status page incident {page.get('id')} resolved, still open")
        told = [u for u in state.updates if Audience.CUSTOMERS in u.audiences]
        posted = len(page.get("incident_updates") or [])
        if posted != len(told):
            problems.append(
                f"{key}: {posted} status page updates for {len(told)} customer updates "
                f"({', '.join(u.id for u in told)})"
            )
        if state.status_page is None or state.status_page.external_id != page.get("id"):
            recorded = state.status_page.external_id if state.status_page else None
            problems.append(f"{key}: incident records {recorded}, the vendor {page.get('id')}")
    return _verdict(
        "every status page incident opened once and closed on resolve", len(states), problems
    )


def wants_war_room(state: IncidentState) -> bool:
    """False when communications started only after the incident was over (every worker was
    down until then): it opens no room then, and says so on the timeline."""
    return not any(e.kind == "comms_after_resolve" for e in state.timeline)


def war_room_entries(state: IncidentState, mirror_kinds: Iterable[str]) -> dict[str, str]:
    """What should be in the incident's war room thread: message entry id → what it is.

    Each timeline entry of a mirrored kind (keyed by entry id, as the Slack provider's
    message metadata is), and each stakeholder update for responders (entry id
    ``update-<update id>``, their delivered copy). An update's own timeline entry is
    mirrored only when responders were not among its audiences: their copy already says it.
    """
    if not wants_war_room(state):
        return {}
    to_responders = {u.id for u in state.updates if Audience.RESPONDERS in u.audiences}
    wanted = {
        e.id: e.kind
        for e in state.timeline
        if e.kind in set(mirror_kinds)
        and not (e.kind == "stakeholder_update" and e.data.get("update_id") in to_responders)
    }
    wanted.update({f"update-{u}": "stakeholder update" for u in sorted(to_responders)})
    return wanted


def war_rooms_opened_once(
    rooms: Iterable[FakeChannel],
    messages: Iterable[SlackMessage],
    states: Mapping[str, IncidentState | None],
    mirror_kinds: Iterable[str],
) -> Invariant:
    """One channel and one summary per incident; every mirrored entry posted exactly once.

    What is expected in a room comes from the incident's own record (``war_room_entries``).
    """
    mirrored = list(mirror_kinds)
    room_list = list(rooms)
    message_list = list(messages)
    problems: list[str] = []
    checked = 0
    for key, state in states.items():
        if state is None:
            problems.append(f"{key}: no incident")
            continue
        own = [r for r in room_list if r.topic.startswith(marker(key))]
        checked += 1
        want = 1 if wants_war_room(state) else 0
        if len(own) != want:
            problems.append(f"{key}: {len(own)} war room channels opened, want {want}")
        if state.war_room is None:
            if want:
                problems.append(f"{key}: the incident records no war room")
        elif own and state.war_room.channel_id not in {r.id for r in own}:
            problems.append(f"{key}: incident records room {state.war_room.channel_id}")
        summaries = [
            m
            for m in message_list
            if _event(m) == SUMMARY_EVENT and _payload(m).get("incident_id") == key
        ]
        if len(summaries) != want:
            problems.append(f"{key}: {len(summaries)} war room summaries posted, want {want}")
        posted = Counter(
            str(_payload(m).get("entry_id"))
            for m in message_list
            if _event(m) == ENTRY_EVENT and _payload(m).get("incident_id") == key
        )
        wanted = war_room_entries(state, mirrored)
        checked += len(wanted)
        problems += [
            f"{key}: {wanted.get(entry, 'unexpected')} entry {entry} posted {n} times"
            for entry, n in sorted(posted.items())
            if n > 1
        ]
        problems += [
            f"{key}: {kind} entry {entry} never reached the war room"
            for entry, kind in sorted(wanted.items())
            if entry not in posted
        ]
        problems += [
            f"{key}: entry {entry} posted but not on the timeline"
            for entry in sorted(set(posted) - set(wanted))
        ]
        problems += [f"{key}: {e.text}" for e in state.timeline if e.kind == "comms_failed"]
    return _verdict(
        "every war room opened once, each mirrored entry posted once", checked, problems
    )


def recovery_validated_once(
    run: RunbookRunState | None, step_id: str, measurements: int
) -> Invariant:
    """The runbook's check against Prometheus ran once, measured ``measurements`` times,
    every measurement successful (faults are retried, never counted as evidence), and the
    run reached ``succeeded``."""
    name = "every recovery validation decided once"
    if run is None:
        return _verdict(name, 1, ["runbook run never started"])
    records = [s for s in run.steps if s.step_id == step_id]
    problems = []
    if len(records) != 1:
        problems.append(f"{step_id}: {len(records)} step records, want 1")
    for record in records:
        if record.status != "succeeded":
            problems.append(f"{step_id}: {record.status} ({record.error or record.summary})")
        if len(record.measurements) != measurements:
            problems.append(
                f"{step_id}: {len(record.measurements)} measurements, want {measurements}"
            )
        problems += [
            f"{step_id}: measurement at {m.at:%H:%M:%S} {m.phase} {m.values} {m.error}".rstrip()
            for m in record.measurements
            if m.phase != "successful"
        ]
    if run.status != "succeeded":
        problems.append(f"run {run.run_id}: {run.status} ({run.error})")
    return _verdict(name, max(len(records), 1), problems)


def stale_firing_ignored(
    incidents_by_service: Mapping[str, Sequence[str]],
    states: Mapping[str, IncidentState | None],
) -> Invariant:
    """A ``firing`` re-delivered after ``resolved`` neither reopened nor re-declared.

    Per service, exactly one incident was ever declared; no incident was reopened; and no
    incident's timeline has an alert firing again after it resolved (the stale state did not
    win; the scenario never fires an alert again, so any firing after its resolution is a
    stale copy). An incident closed before its alerts' resolution reached it keeps them firing in
    its record: a closed incident takes no more alert changes, which is not a stale firing.
    """
    problems = [
        f"{service}: {len(ids)} incidents declared ({', '.join(ids)}), want 1"
        for service, ids in sorted(incidents_by_service.items())
        if len(ids) != 1
    ]
    for key, state in states.items():
        if state is None:
            continue
        problems += [f"{key}: {e.text}" for e in state.timeline if e.kind == "reopened"]
        resolved: set[str] = set()
        for entry in state.timeline:
            fingerprint = str((entry.data or {}).get("fingerprint", ""))
            if entry.kind == "alert_resolved":
                resolved.add(fingerprint)
            elif entry.kind == "alert_firing" and fingerprint in resolved:
                problems.append(f"{key}: alert {fingerprint} recorded firing after it resolved")
                resolved.discard(fingerprint)
    return _verdict(
        "a stale firing after resolve reopened or re-paged nothing",
        len(incidents_by_service),
        problems,
    )


def no_workflow_failed(executions: Mapping[str, str]) -> Invariant:
    """No fireline workflow ended failed, terminated or timed out.

    ``executions``: workflow id → execution status name (Temporal visibility). A failed
    escalation or communications child stops closing pages or posting, silently.
    """
    bad = ("FAILED", "TERMINATED", "TIMED_OUT")
    problems = [
        f"{workflow_id}: {status}"
        for workflow_id, status in sorted(executions.items())
        if status in bad
    ]
    return _verdict("no workflow failed", len(executions), problems)


def _event(message: SlackMessage) -> str:
    return str((message.metadata or {}).get("event_type") or "")


def _payload(message: SlackMessage) -> dict[str, Any]:
    payload = (message.metadata or {}).get("event_payload")
    return payload if isinstance(payload, dict) else {}


def _details(alert: Alert) -> dict[str, str]:
    trigger = next((e for e in alert.events if e.get("event_action") == "trigger"), None)
    payload: dict[str, Any] = (trigger or {}).get("payload") or {}
    details = payload.get("custom_details") or {}
    return {str(k): str(v) for k, v in details.items()}
