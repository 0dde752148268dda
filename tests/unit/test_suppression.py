"""Noise controls as tables: inhibition, silences and maintenance windows (Alertmanager rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from workflows.alerts import Alert, AlertSource, AlertStatus, fingerprint
from workflows.matchers import parse_matchers
from workflows.suppression import (
    DEFAULT_RETENTION,
    AddSilence,
    ExpireSilence,
    InhibitRule,
    MaintenanceWindow,
    Silence,
    SilenceRejected,
    SilenceState,
    SilenceStoreInput,
    SuppressionKind,
    SuppressionReason,
    build_silence,
    check_interval_names,
    check_names,
    in_maintenance,
    inhibition,
    is_inhibit_source,
    next_transition,
    prune_silences,
    silence_problems,
    silenced_by,
    sort_silences,
    suppression,
)
from workflows.time_intervals import TimeInterval

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)  # a Sunday


def alert(status: AlertStatus = AlertStatus.FIRING, /, **labels: str) -> Alert:
    """An alert with exactly ``labels``, fingerprinted as Alertmanager would."""
    return Alert(
        fingerprint=fingerprint(labels),
        status=status,
        labels=labels,
        starts_at=NOW - timedelta(minutes=5),
        ends_at=NOW if status is AlertStatus.RESOLVED else None,
        source=AlertSource.ALERTMANAGER,
    )


def errors(exc: ValidationError) -> list[tuple[tuple[Any, ...], str]]:
    """(location, message) pairs, without pydantic's prefix."""
    return [(e["loc"], str(e["msg"]).removeprefix("Value error, ")) for e in exc.errors()]


# --- inhibition ----------------------------------------------------------------------------

CLUSTER_DOWN = InhibitRule(
    name="cluster-down-mutes-pods",
    source_matchers=['alertname="ClusterDown"'],
    target_matchers=['alertname=~"Pod.+"'],
    equal=["cluster"],
)
# Alertmanager's classic: a critical alert mutes warnings about the same thing.
CRITICAL_MUTES_WARNING = InhibitRule(
    source_matchers=['severity="critical"'],
    target_matchers=['severity="warning"'],
    equal=["alertname", "instance"],
)

# (case, rule, target labels, firing alerts' labels, inhibited?)
INHIBIT_CASES: list[tuple[str, InhibitRule, dict[str, str], list[dict[str, str]], bool]] = [
    (
        "source fires with the same equal label",
        CLUSTER_DOWN,
        {"alertname": "PodCrashLooping", "cluster": "eu1"},
        [{"alertname": "ClusterDown", "cluster": "eu1"}],
        True,
    ),
    (
        "equal label differs",
        CLUSTER_DOWN,
        {"alertname": "PodCrashLooping", "cluster": "eu1"},
        [{"alertname": "ClusterDown", "cluster": "us1"}],
        False,
    ),
    (
        "equal label missing from both counts as equal",
        CLUSTER_DOWN,
        {"alertname": "PodCrashLooping"},
        [{"alertname": "ClusterDown"}],
        True,
    ),
    (
        "equal label missing from the source only",
        CLUSTER_DOWN,
        {"alertname": "PodCrashLooping", "cluster": "eu1"},
        [{"alertname": "ClusterDown"}],
        False,
    ),
    (
        "equal label missing from the target only",
        CLUSTER_DOWN,
        {"alertname": "PodCrashLooping"},
        [{"alertname": "ClusterDown", "cluster": "eu1"}],
        False,
    ),
    (
        "an empty value equals a missing label",
        CLUSTER_DOWN,
        {"alertname": "PodCrashLooping", "cluster": ""},
        [{"alertname": "ClusterDown"}],
        True,
    ),
    (
        "target regex is anchored: Pod.+ does not match Pod",
        CLUSTER_DOWN,
        {"alertname": "Pod", "cluster": "eu1"},
        [{"alertname": "ClusterDown", "cluster": "eu1"}],
        False,
    ),
    (
        "target regex is anchored: no match in the middle",
        CLUSTER_DOWN,
        {"alertname": "KubePodCrash", "cluster": "eu1"},
        [{"alertname": "ClusterDown", "cluster": "eu1"}],
        False,
    ),
    (
        "a firing alert that does not match the source matchers inhibits nothing",
        CLUSTER_DOWN,
        {"alertname": "PodCrashLooping", "cluster": "eu1"},
        [{"alertname": "NodeDown", "cluster": "eu1"}],
        False,
    ),
    (
        "no firing alerts",
        CLUSTER_DOWN,
        {"alertname": "PodCrashLooping", "cluster": "eu1"},
        [],
        False,
    ),
    (
        "several equal labels all agree",
        CRITICAL_MUTES_WARNING,
        {"alertname": "DiskFull", "instance": "db-1", "severity": "warning"},
        [{"alertname": "DiskFull", "instance": "db-1", "severity": "critical"}],
        True,
    ),
    (
        "one of several equal labels disagrees",
        CRITICAL_MUTES_WARNING,
        {"alertname": "DiskFull", "instance": "db-1", "severity": "warning"},
        [{"alertname": "DiskFull", "instance": "db-2", "severity": "critical"}],
        False,
    ),
    (
        "an alert that matches source and target cannot inhibit itself",
        InhibitRule(source_matchers=["team=db"], target_matchers=["team=db"]),
        {"alertname": "ReplicaLag", "team": "db"},
        [{"alertname": "ReplicaLag", "team": "db"}],
        False,
    ),
    (
        "two-sided: a peer that also matches both sides is disregarded",
        InhibitRule(source_matchers=["team=db"], target_matchers=["team=db"]),
        {"alertname": "ReplicaLag", "team": "db"},
        [{"alertname": "ReplicaLag", "team": "db"}, {"alertname": "DiskFull", "team": "db"}],
        False,
    ),
    (
        "two-sided: a source that is not also a target still inhibits",
        InhibitRule(source_matchers=["team=db"], target_matchers=['severity="warning"']),
        {"alertname": "ReplicaLag", "team": "db", "severity": "warning"},
        [{"alertname": "DbDown", "team": "db", "severity": "critical"}],
        True,
    ),
    (
        "one-sided target: a source that also matches the target still inhibits",
        InhibitRule(source_matchers=["team=db"], target_matchers=['severity="warning"']),
        {"alertname": "ReplicaLag", "severity": "warning"},
        [{"alertname": "DbSlow", "team": "db", "severity": "warning"}],
        True,
    ),
    (
        "source regex with alternation and inline flags",
        InhibitRule(
            source_matchers=['severity=~"(?i)critical|page"'],
            target_matchers=['severity!~"(?i)critical|page"'],
        ),
        {"alertname": "Latency", "severity": "info"},
        [{"alertname": "Outage", "severity": "PAGE"}],
        True,
    ),
    (
        "negative target matcher selects alerts without the label",
        InhibitRule(source_matchers=["alertname=Maintenance"], target_matchers=['env!="prod"']),
        {"alertname": "Latency"},
        [{"alertname": "Maintenance"}],
        True,
    ),
]


@pytest.mark.parametrize(
    ("rule", "target", "firing", "inhibited"),
    [case[1:] for case in INHIBIT_CASES],
    ids=[case[0] for case in INHIBIT_CASES],
)
def test_inhibition_follows_alertmanager(
    rule: InhibitRule,
    target: dict[str, str],
    firing: list[dict[str, str]],
    inhibited: bool,
) -> None:
    reason = inhibition(alert(**target), [alert(**labels) for labels in firing], [rule])
    assert (reason is not None) is inhibited


def test_inhibition_reason_names_the_source_and_rule() -> None:
    source = alert(alertname="ClusterDown", cluster="eu1")
    reason = inhibition(alert(alertname="PodCrashLooping", cluster="eu1"), [source], [CLUSTER_DOWN])
    assert reason == SuppressionReason(
        kind=SuppressionKind.INHIBITED,
        ref="cluster-down-mutes-pods",
        text="inhibited by ClusterDown{cluster=\"eu1\"} (rule 'cluster-down-mutes-pods')",
        source=source.fingerprint,
    )


def test_unnamed_rule_is_cited_by_its_index_and_without_equal_only_the_name_shows() -> None:
    rules = [
        CLUSTER_DOWN,
        InhibitRule(source_matchers=["alertname=Outage"], target_matchers=["severity=info"]),
    ]
    reason = inhibition(
        alert(alertname="Slow", severity="info"), [alert(alertname="Outage")], rules
    )
    assert reason is not None
    assert (reason.ref, reason.text) == (
        "inhibit_rules[1]",
        "inhibited by Outage (inhibit_rules[1])",
    )


def test_first_matching_rule_is_reported() -> None:
    first = InhibitRule(name="first", source_matchers=["alertname=A"], target_matchers=["x=1"])
    second = InhibitRule(name="second", source_matchers=["alertname=B"], target_matchers=["x=1"])
    reason = inhibition(
        alert(alertname="T", x="1"), [alert(alertname="B"), alert(alertname="A")], [first, second]
    )
    assert reason is not None
    assert reason.ref == "first"


def test_resolved_source_inhibits_nothing() -> None:
    resolved = alert(AlertStatus.RESOLVED, alertname="ClusterDown", cluster="eu1")
    target = alert(alertname="PodCrashLooping", cluster="eu1")
    assert inhibition(target, [resolved], [CLUSTER_DOWN]) is None


def test_is_inhibit_source() -> None:
    rules = [CLUSTER_DOWN]
    assert is_inhibit_source(alert(alertname="ClusterDown"), rules)
    assert not is_inhibit_source(alert(AlertStatus.RESOLVED, alertname="ClusterDown"), rules)
    assert not is_inhibit_source(alert(alertname="PodCrashLooping"), rules)


def test_inhibit_rule_from_config_text_round_trips_through_json() -> None:
    rule = InhibitRule.model_validate(
        {
            "name": "db",
            "source_matchers": ['{alertname="DbDown", env=~"prod|staging"}'],
            "target_matchers": ["team=db", 'severity!="critical"'],
            "equal": ["cluster"],
        }
    )
    assert rule.source_matchers == parse_matchers('alertname="DbDown", env=~"prod|staging"')
    assert [str(m) for m in rule.target_matchers] == ['team="db"', 'severity!="critical"']
    assert InhibitRule.model_validate_json(rule.model_dump_json()) == rule


@pytest.mark.parametrize(
    ("config", "problems"),
    [
        (
            {"source_matchers": ["a=b"], "target_matchers": []},
            [
                (
                    ("target_matchers",),
                    "at least one target matcher is required: an empty list would inhibit "
                    "every alert",
                )
            ],
        ),
        (
            {"source_matchers": ["a=b"]},
            [(("target_matchers",), "Field required")],
        ),
        (
            {"target_matchers": ["a=b, c=d", 'x=~"("']},
            [
                (
                    ("target_matchers", 1),
                    'invalid regular expression in matcher x=~"(": missing ), unterminated '
                    "subpattern at position 0",
                )
            ],
        ),
        (
            {"target_matchers": ["a=b"], "equal": ["cluster", ""]},
            [(("equal",), "equal[1] is empty: name a label")],
        ),
        (
            {"target_matchers": ["a=b"], "source_match": {"a": "b"}},
            [(("source_match",), "Extra inputs are not permitted")],
        ),
    ],
)
def test_inhibit_rule_validation(config: dict[str, Any], problems: list[Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        InhibitRule.model_validate(config)
    assert errors(caught.value) == problems


# --- silences ------------------------------------------------------------------------------


def silence(
    matchers: str = 'service="orders-db"',
    *,
    starts: timedelta = timedelta(hours=-1),
    ends: timedelta = timedelta(hours=2),
    id: str = "3f2a9c1e-5b7d-4e0f-9a8b-1c2d3e4f5a6b",
    comment: str = "DB failover drill",
    **fields: Any,
) -> Silence:
    """A silence relative to NOW, by alice."""
    return Silence(
        id=id,
        matchers=parse_matchers(matchers),
        starts_at=NOW + starts,
        ends_at=NOW + ends,
        created_by="alice@example.com",
        comment=comment,
        created_at=NOW + starts,
        **fields,
    )


@pytest.mark.parametrize(
    ("case", "sil", "state"),
    [
        ("before start", silence(starts=timedelta(seconds=1)), SilenceState.PENDING),
        ("at start", silence(starts=timedelta(0)), SilenceState.ACTIVE),
        ("between", silence(), SilenceState.ACTIVE),
        # Alertmanager: expired only once now is *after* ends_at.
        ("at end", silence(ends=timedelta(0)), SilenceState.ACTIVE),
        ("after end", silence(ends=timedelta(seconds=-1)), SilenceState.EXPIRED),
        (
            "expired early, at that instant",
            silence(expired_at=NOW, expired_by="bob@example.com"),
            SilenceState.EXPIRED,
        ),
        (
            "expiry recorded for later",
            silence(expired_at=NOW + timedelta(minutes=1), expired_by="bob@example.com"),
            SilenceState.ACTIVE,
        ),
        (
            "pending, expired before it started",
            silence(
                starts=timedelta(hours=1),
                expired_at=NOW - timedelta(minutes=1),
                expired_by="bob@example.com",
            ),
            SilenceState.EXPIRED,
        ),
    ],
)
def test_silence_states(case: str, sil: Silence, state: SilenceState) -> None:
    assert sil.state(NOW) is state


def test_active_matching_silence_silences_with_a_readable_reason() -> None:
    reason = silenced_by(alert(alertname="ReplicaLag", service="orders-db"), [silence()], NOW)
    assert reason == SuppressionReason(
        kind=SuppressionKind.SILENCED,
        ref="3f2a9c1e-5b7d-4e0f-9a8b-1c2d3e4f5a6b",
        text='silenced by 3f2a9c1e… (alice@example.com: "DB failover drill", until 14:00 UTC)',
        until=NOW + timedelta(hours=2),
    )


@pytest.mark.parametrize(
    ("case", "sil", "labels"),
    [
        ("pending", silence(starts=timedelta(minutes=1)), {"service": "orders-db"}),
        ("expired", silence(ends=timedelta(minutes=-1)), {"service": "orders-db"}),
        (
            "expired early",
            silence(expired_at=NOW - timedelta(minutes=1), expired_by="bob@example.com"),
            {"service": "orders-db"},
        ),
        ("labels differ", silence(), {"service": "checkout"}),
        ("label missing", silence(), {}),
        ("regex is anchored", silence('service=~"orders"'), {"service": "orders-db"}),
        (
            "every matcher must match",
            silence('service="orders-db", env="prod"'),
            {"service": "orders-db"},
        ),
    ],
)
def test_silence_does_not_apply(case: str, sil: Silence, labels: dict[str, str]) -> None:
    assert silenced_by(alert(alertname="ReplicaLag", **labels), [sil], NOW) is None


@pytest.mark.parametrize(
    ("matchers", "labels"),
    [
        ('service=~"orders-.*"', {"service": "orders-db"}),
        ('service=~"(?i)ORDERS-DB"', {"service": "orders-db"}),
        ('service=~"orders-db|checkout", env!="staging"', {"service": "checkout"}),
        ('alertname="ReplicaLag", env!~"dev|staging"', {"env": "prod"}),
    ],
)
def test_silence_matchers_apply(matchers: str, labels: dict[str, str]) -> None:
    reason = silenced_by(alert(alertname="ReplicaLag", **labels), [silence(matchers)], NOW)
    assert reason is not None


def test_longest_lasting_silence_is_reported_with_its_date_when_not_today() -> None:
    short = silence(id="aaaa1111-short", ends=timedelta(hours=1))
    long = silence(id="bbbb2222-long", ends=timedelta(days=1, hours=3), comment="x" * 100)
    reason = silenced_by(alert(alertname="A", service="orders-db"), [short, long], NOW)
    assert reason is not None
    assert reason.ref == "bbbb2222-long"
    assert reason.text == (
        f'silenced by bbbb2222… (alice@example.com: "{"x" * 79}…", until 2026-03-16 15:00 UTC)'
    )


def test_early_expiry_shortens_until() -> None:
    sil = silence(expired_at=NOW + timedelta(minutes=30), expired_by="bob@example.com")
    assert sil.ended_at == NOW + timedelta(minutes=30)
    reason = silenced_by(alert(alertname="A", service="orders-db"), [sil], NOW)
    assert reason is not None
    assert reason.until == NOW + timedelta(minutes=30)
    assert reason.text.endswith("until 12:30 UTC)")


@pytest.mark.parametrize(
    ("matchers", "problem"),
    [
        ("", "at least one matcher required"),
        (
            'a=""',
            'at least one matcher must not match the empty string: {a=""} would also silence '
            "every alert without those labels",
        ),
        (
            'a=~".*", b=~"x*", c=~""',
            "at least one matcher must not match the empty string: "
            '{a=~".*", b=~"x*", c=~""} would also silence every alert without those labels',
        ),
    ],
)
def test_silence_must_not_match_everything(matchers: str, problem: str) -> None:
    assert silence_problems(parse_matchers(matchers), NOW, NOW + timedelta(hours=1)) == [problem]


@pytest.mark.parametrize(
    "matchers",
    [
        'a="", b="x"',
        'a=~".+"',
        'a=~"x|y"',
        # Alertmanager's rule counts only = and =~: a lone != or !~ is accepted even though
        # it matches alerts without the label.
        'a!="x"',
        'a!~"x"',
        'a!=""',
    ],
)
def test_silence_matchers_accepted(matchers: str) -> None:
    assert silence_problems(parse_matchers(matchers), NOW, NOW + timedelta(hours=1)) == []


def test_silence_end_must_follow_start() -> None:
    problems = silence_problems(parse_matchers("a=b"), NOW, NOW)
    assert problems == [
        "ends_at 2026-03-15T12:00:00+00:00 must be after starts_at 2026-03-15T12:00:00+00:00"
    ]


def test_silence_model_enforces_invariants() -> None:
    with pytest.raises(ValidationError) as caught:
        silence('a=""', ends=timedelta(hours=-2))
    assert errors(caught.value) == [
        (
            (),
            'at least one matcher must not match the empty string: {a=""} would also silence '
            "every alert without those labels; ends_at 2026-03-15T10:00:00+00:00 must be after "
            "starts_at 2026-03-15T11:00:00+00:00",
        )
    ]
    with pytest.raises(ValidationError) as caught:
        silence(expired_at=NOW)
    assert errors(caught.value) == [((), "expired_at and expired_by are set together")]


def test_silence_round_trips_through_json() -> None:
    sil = silence('service=~"orders-.*", env!="dev"', expired_at=NOW, expired_by="bob@example.com")
    assert Silence.model_validate_json(sil.model_dump_json()) == sil


def request(**fields: Any) -> AddSilence:
    """An AddSilence by alice; override any field."""
    values: dict[str, Any] = {
        "matchers": ['service="orders-db"'],
        "created_by": "alice@example.com",
        "comment": "DB failover drill",
    }
    values.update(fields)
    return AddSilence.model_validate(values)


def test_build_silence_with_duration_starts_now() -> None:
    sil = build_silence(request(duration="2h"), id="s1", now=NOW)
    assert (sil.starts_at, sil.ends_at, sil.created_at) == (NOW, NOW + timedelta(hours=2), NOW)
    assert sil.state(NOW) is SilenceState.ACTIVE


def test_build_silence_later_start_is_pending_and_duration_counts_from_it() -> None:
    sil = build_silence(
        request(starts_at="2026-03-15T14:00:00+01:00", duration="30m"), id="s1", now=NOW
    )
    assert sil.starts_at == NOW + timedelta(hours=1)
    assert sil.ends_at == NOW + timedelta(hours=1, minutes=30)
    assert sil.state(NOW) is SilenceState.PENDING


def test_build_silence_start_in_the_past_starts_now() -> None:
    sil = build_silence(
        request(starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(hours=1)),
        id="s1",
        now=NOW,
    )
    assert sil.starts_at == NOW


def test_build_silence_expands_several_matchers_per_item() -> None:
    sil = build_silence(
        request(matchers=['{service="orders-db", env=~"prod|dr"}', "team=db"], duration="1h"),
        id="s1",
        now=NOW,
    )
    assert [str(m) for m in sil.matchers] == [
        'service="orders-db"',
        'env=~"prod|dr"',
        'team="db"',
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "give ends_at or duration"),
        (
            {"duration": "1h", "ends_at": NOW + timedelta(hours=1)},
            "give ends_at or duration, not both",
        ),
        ({"duration": "0s"}, "duration must be longer than zero"),
        ({"ends_at": NOW}, "ends_at 2026-03-15T12:00:00+00:00 is not in the future"),
        (
            {"starts_at": NOW + timedelta(hours=2), "ends_at": NOW + timedelta(hours=1)},
            "ends_at 2026-03-15T13:00:00+00:00 must be after starts_at 2026-03-15T14:00:00+00:00",
        ),
        ({"matchers": [], "duration": "1h"}, "at least one matcher required"),
        (
            {"matchers": ["team=db", 'env=~"prod|[dr"'], "duration": "1h"},
            'matchers[1]: invalid regular expression in matcher env=~"prod|[dr": '
            "unterminated character set at position 5",
        ),
        (
            {"matchers": ["team=db", "env=='x'"], "duration": "1h"},
            "matchers[1]: cannot parse matchers \"env=='x'\" at column 5: expected a label "
            "value, found '='",
        ),
        (
            {"matchers": ['service=~".*"'], "duration": "1h"},
            "at least one matcher must not match the empty string: "
            '{service=~".*"} would also silence every alert without those labels',
        ),
    ],
)
def test_build_silence_refusals(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(SilenceRejected) as caught:
        build_silence(request(**fields), id="s1", now=NOW)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (AddSilence, {"matchers": ["a=b"], "created_by": "alice", "comment": ""}),
        (AddSilence, {"matchers": ["a=b"], "created_by": "alice", "comment": "c", "by": "x"}),
        (
            AddSilence,
            {
                "matchers": ["a=b"],
                "created_by": "alice",
                "comment": "c",
                "starts_at": "2026-03-15T12:00:00",
            },
        ),
        (ExpireSilence, {"id": "s1", "actor": ""}),
    ],
)
def test_update_arguments_reject_bad_shapes(model: type[Any], data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_update_arguments_and_store_input_round_trip_through_json() -> None:
    add = request(duration="1h30m", starts_at=NOW)
    assert add.model_dump(mode="json")["duration"] == "1h30m"
    assert AddSilence.model_validate_json(add.model_dump_json()) == add
    store = SilenceStoreInput(silences=[silence()], max_history_events=40)
    assert store.model_dump(mode="json")["retention"] == "5d"
    assert SilenceStoreInput.model_validate_json(store.model_dump_json()) == store
    assert timedelta(days=5) == DEFAULT_RETENTION


def test_listing_order_is_alertmanagers() -> None:
    ends_soon = silence(id="active-ends-soon", ends=timedelta(hours=1))
    ends_late = silence(id="active-ends-late", ends=timedelta(hours=5))
    starts_soon = silence(id="pending-soon", starts=timedelta(hours=1))
    starts_late = silence(id="pending-late", starts=timedelta(hours=3), ends=timedelta(hours=4))
    ended_recently = silence(id="expired-recently", ends=timedelta(minutes=-1))
    ended_long_ago = silence(
        id="expired-long-ago", starts=timedelta(days=-2), ends=timedelta(days=-1)
    )
    shuffled = [ended_long_ago, starts_late, ends_late, ended_recently, starts_soon, ends_soon]
    assert [s.id for s in sort_silences(shuffled, NOW)] == [
        "active-ends-soon",
        "active-ends-late",
        "pending-soon",
        "pending-late",
        "expired-recently",
        "expired-long-ago",
    ]


def test_prune_drops_silences_ended_a_retention_ago() -> None:
    retention = timedelta(days=5)
    just_kept = silence(
        id="kept", starts=-retention - timedelta(hours=1), ends=-retention + timedelta(seconds=1)
    )
    just_gone = silence(id="gone", starts=-retention - timedelta(hours=1), ends=-retention)
    expired_early = silence(
        id="expired-early",
        starts=-retention - timedelta(hours=1),
        ends=timedelta(days=1),
        expired_at=NOW - retention,
        expired_by="bob@example.com",
    )
    active = silence(id="active")
    kept = prune_silences([just_kept, just_gone, expired_early, active], NOW, retention)
    assert [s.id for s in kept] == ["kept", "active"]


# --- maintenance windows -------------------------------------------------------------------

INTERVALS = {
    i.name: i
    for i in [
        TimeInterval.model_validate(
            {
                "name": "sunday-night-new-york",
                "time_intervals": [
                    {
                        "weekdays": ["sunday"],
                        "times": [{"start_time": "02:00", "end_time": "04:00"}],
                        "location": "America/New_York",
                    }
                ],
            }
        ),
        TimeInterval.model_validate(
            {
                "name": "first-of-month",
                "time_intervals": [{"days_of_month": ["1"]}],
            }
        ),
    ]
}
DB_PATCHING = MaintenanceWindow(
    name="sunday-db-patching",
    matchers=['service=~"orders-db|payments-db"'],
    time_intervals=["first-of-month", "sunday-night-new-york"],
    description="Weekly PostgreSQL minor upgrades",
)


@pytest.mark.parametrize(
    ("case", "now", "labels", "open_"),
    [
        # New York is on EDT (UTC-4) from 8 March 2026.
        (
            "Sunday 02:30 EDT",
            datetime(2026, 3, 15, 6, 30, tzinfo=UTC),
            {"service": "orders-db"},
            True,
        ),
        (
            "Sunday 03:59 EDT",
            datetime(2026, 3, 15, 7, 59, tzinfo=UTC),
            {"service": "payments-db"},
            True,
        ),
        (
            "Sunday 04:00 EDT: the end is exclusive",
            datetime(2026, 3, 15, 8, 0, tzinfo=UTC),
            {"service": "orders-db"},
            False,
        ),
        # Sunday 02:30 UTC is still Saturday evening in New York.
        (
            "Saturday 22:30 EDT",
            datetime(2026, 3, 15, 2, 30, tzinfo=UTC),
            {"service": "orders-db"},
            False,
        ),
        (
            "open, but labels differ",
            datetime(2026, 3, 15, 6, 30, tzinfo=UTC),
            {"service": "checkout"},
            False,
        ),
        (
            "regex is anchored",
            datetime(2026, 3, 15, 6, 30, tzinfo=UTC),
            {"service": "orders-db-2"},
            False,
        ),
    ],
)
def test_maintenance_window_in_its_own_time_zone(
    case: str, now: datetime, labels: dict[str, str], open_: bool
) -> None:
    reason = in_maintenance(alert(alertname="ReplicaLag", **labels), [DB_PATCHING], INTERVALS, now)
    assert (reason is not None) is open_


def test_maintenance_reason_names_window_and_interval() -> None:
    reason = in_maintenance(
        alert(alertname="ReplicaLag", service="orders-db"),
        [DB_PATCHING],
        INTERVALS,
        datetime(2026, 3, 15, 6, 30, tzinfo=UTC),
    )
    assert reason == SuppressionReason(
        kind=SuppressionKind.MAINTENANCE,
        ref="sunday-db-patching",
        text="in maintenance window 'sunday-db-patching' (time interval 'sunday-night-new-york')",
    )
    first = in_maintenance(
        alert(alertname="ReplicaLag", service="orders-db"),
        [DB_PATCHING],
        INTERVALS,
        datetime(2026, 4, 1, 12, 0, tzinfo=UTC),
    )
    assert first is not None
    assert (
        first.text == "in maintenance window 'sunday-db-patching' (time interval 'first-of-month')"
    )


def test_unknown_interval_is_skipped_at_evaluation_and_reported_at_load() -> None:
    window = MaintenanceWindow(
        name="typo", matchers=["service=orders-db"], time_intervals=["sundy", "first-of-month"]
    )
    at = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
    reason = in_maintenance(alert(alertname="A", service="orders-db"), [window], INTERVALS, at)
    assert reason is not None
    assert reason.text == "in maintenance window 'typo' (time interval 'first-of-month')"
    assert check_interval_names([DB_PATCHING, window], INTERVALS) == [
        "maintenance_windows[1].time_intervals[0]: undefined time interval 'sundy' used in "
        "maintenance window 'typo' (defined: first-of-month, sunday-night-new-york)"
    ]
    assert check_interval_names([window], {}) == [
        "maintenance_windows[0].time_intervals[0]: undefined time interval 'sundy' used in "
        "maintenance window 'typo' (defined: none)",
        "maintenance_windows[0].time_intervals[1]: undefined time interval 'first-of-month' "
        "used in maintenance window 'typo' (defined: none)",
    ]


@pytest.mark.parametrize(
    ("config", "problems"),
    [
        (
            {"name": "w", "matchers": [], "time_intervals": ["x"]},
            [
                (
                    ("matchers",),
                    'at least one matcher is required; to mute every alert, write alertname=~".+"',
                )
            ],
        ),
        (
            {"name": "w", "matchers": ["a=b"], "time_intervals": []},
            [(("time_intervals",), "at least one time interval is required")],
        ),
        (
            {"name": "", "matchers": ["a=b"], "time_intervals": ["x"]},
            [(("name",), "String should have at least 1 character")],
        ),
    ],
)
def test_maintenance_window_validation(config: dict[str, Any], problems: list[Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        MaintenanceWindow.model_validate(config)
    assert errors(caught.value) == problems


def test_maintenance_window_round_trips_through_json() -> None:
    assert MaintenanceWindow.model_validate_json(DB_PATCHING.model_dump_json()) == DB_PATCHING


def test_repeated_names_are_reported() -> None:
    rules = [CLUSTER_DOWN, CRITICAL_MUTES_WARNING, CLUSTER_DOWN, CRITICAL_MUTES_WARNING]
    windows = [DB_PATCHING, DB_PATCHING]
    assert check_names(rules, windows) == [
        "inhibit_rules[2].name: 'cluster-down-mutes-pods' is already used by inhibit_rules[0]",
        "maintenance_windows[1].name: 'sunday-db-patching' is already used by "
        "maintenance_windows[0]",
    ]
    assert check_names([CLUSTER_DOWN, CRITICAL_MUTES_WARNING], [DB_PATCHING]) == []


# --- all together --------------------------------------------------------------------------


def test_precedence_maintenance_then_silence_then_inhibition() -> None:
    during_window = datetime(2026, 3, 15, 6, 30, tzinfo=UTC)
    target = alert(alertname="PodCrashLooping", cluster="eu1", service="orders-db")
    source = alert(alertname="ClusterDown", cluster="eu1")
    sil = silence(starts=timedelta(days=-1), ends=timedelta(days=1))
    everything: dict[str, Any] = {
        "silences": [sil],
        "firing": [source],
        "inhibit_rules": [CLUSTER_DOWN],
        "windows": [DB_PATCHING],
        "intervals": INTERVALS,
    }

    def kind(now: datetime, **drop: Any) -> SuppressionKind | None:
        reason = suppression(target, now=now, **{**everything, **drop})
        return None if reason is None else reason.kind

    assert kind(during_window) is SuppressionKind.MAINTENANCE
    assert kind(NOW) is SuppressionKind.SILENCED
    assert kind(during_window, windows=[]) is SuppressionKind.SILENCED
    assert kind(NOW, silences=[]) is SuppressionKind.INHIBITED
    assert kind(NOW, silences=[], firing=[]) is None
    assert suppression(target, now=NOW) is None


@pytest.mark.parametrize(
    ("case", "silences", "wake"),
    [
        ("nothing to wait for", [], None),
        ("only expired", [silence(ends=timedelta(minutes=-1))], None),
        (
            "pending wakes at its start",
            [silence(starts=timedelta(hours=1))],
            NOW + timedelta(hours=1),
        ),
        # Active through ends_at inclusive: the first instant that reads expired is later.
        (
            "active wakes after its end",
            [silence(ends=timedelta(hours=2))],
            NOW + timedelta(hours=2, seconds=1),
        ),
        (
            "an early expiry counts",
            [silence(expired_at=NOW + timedelta(minutes=5), expired_by="bob@example.com")],
            NOW + timedelta(minutes=5),
        ),
        (
            "the earliest of several",
            [silence(ends=timedelta(hours=2)), silence(starts=timedelta(minutes=30))],
            NOW + timedelta(minutes=30),
        ),
    ],
)
def test_next_transition(case: str, silences: list[Silence], wake: datetime | None) -> None:
    assert next_transition(silences, NOW) == wake
    if wake is not None:
        assert [s.state(wake) for s in silences] != [s.state(NOW) for s in silences]
