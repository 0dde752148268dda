"""The routing tree: Alertmanager's route matching and inheritance, as tables."""

import re
from datetime import timedelta
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from workflows.routing import (
    DEFAULT_DECLARE,
    DeclareRule,
    ResolvedRoute,
    RoutingConfigError,
    RoutingTree,
    default_tree,
    format_routes_table,
    group_key,
    load_routing,
    match_routes,
    parse_label_args,
)

# Modelled on the tree in Alertmanager's dispatch/route_test.go, with teams for receivers.
TREE = load_routing(
    yaml.safe_load(
        """
team: default
service: platform
escalation_policy: standard
group_by: [alertname]
routes:
  - matchers: ['owner="team-A"']
    team: team-A
    runbooks: [triage-a]
    routes:
      - matchers: ['env="testing"']
        team: testing
        group_by: ['...']
      - matchers: ['env="production"']
        team: production-A
        group_wait: 1m
        continue: true
      - matchers: ['env=~"produ.*"', 'job=~".*"']
        team: production-B
        group_wait: 30s
        group_interval: 5m
        repeat_interval: 1h
        group_by: [job]
  - matchers: ['owner=~"team-(B|C)"']
    name: team-BC
    team: team-BC
    group_by: [foo, bar]
    group_wait: 2m
    declare: {min_severity: error, min_occurrences: 3, within: 10m, firing_for: 2m}
    auto_resolve: true
  - matchers: ['group_by="role"']
    group_by: [role]
    escalation_policy: roles
    routes:
      - matchers: ['env="testing"']
        team: testing
        mute_time_intervals: [weekends]
        routes:
          - matchers: ['wait="long"']
            group_wait: 2m
            active_time_intervals: [business-hours]
  - matchers: ['service="payments"']
    group_by: []
    service: payments
    auto_runbooks: [restart-payments]
"""
    )
)


def project(route: ResolvedRoute) -> tuple[Any, ...]:
    return (
        route.route_id,
        route.team,
        route.group_by,
        route.group_wait,
        route.group_interval,
        route.repeat_interval,
    )


S30, M1, M2, M5, H1, H4 = (
    timedelta(seconds=30),
    timedelta(minutes=1),
    timedelta(minutes=2),
    timedelta(minutes=5),
    timedelta(hours=1),
    timedelta(hours=4),
)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"owner": "team-A"}, [("0", "team-A", ["alertname"], S30, M5, H4)]),
        ({"owner": "team-A", "env": "testing"}, [("0.0", "testing", ["..."], S30, M5, H4)]),
        (
            {"owner": "team-A", "env": "production"},
            [
                ("0.1", "production-A", ["alertname"], M1, M5, H4),
                ("0.2", "production-B", ["job"], S30, M5, H1),
            ],
        ),
        (
            {"owner": "team-A", "env": "production-x"},
            [("0.2", "production-B", ["job"], S30, M5, H1)],
        ),
        ({"owner": "team-B"}, [("1", "team-BC", ["foo", "bar"], M2, M5, H4)]),
        ({"owner": "team-C", "env": "testing"}, [("1", "team-BC", ["foo", "bar"], M2, M5, H4)]),
        ({"owner": "team-BC"}, [("root", "default", ["alertname"], S30, M5, H4)]),
        ({"owner": "team-X"}, [("root", "default", ["alertname"], S30, M5, H4)]),
        ({}, [("root", "default", ["alertname"], S30, M5, H4)]),
        ({"group_by": "role"}, [("2", "default", ["role"], S30, M5, H4)]),
        ({"group_by": "role", "env": "testing"}, [("2.0", "testing", ["role"], S30, M5, H4)]),
        (
            {"group_by": "role", "env": "testing", "wait": "long"},
            [("2.0.0", "testing", ["role"], M2, M5, H4)],
        ),
        ({"service": "payments"}, [("3", "default", [], S30, M5, H4)]),
    ],
)
def test_match_routes(labels: dict[str, str], expected: list[tuple[Any, ...]]) -> None:
    assert [project(r) for r in match_routes(TREE, labels)] == expected


@pytest.mark.parametrize(
    ("labels", "field", "expected"),
    [
        # Inherited when unset ...
        ({"owner": "team-A", "env": "testing"}, "service", "platform"),
        ({"owner": "team-A", "env": "testing"}, "escalation_policy", "standard"),
        ({"group_by": "role", "env": "testing", "wait": "long"}, "escalation_policy", "roles"),
        ({"owner": "team-A"}, "declare", DEFAULT_DECLARE),
        # Unset everywhere: None, the default policy (only incidents below SEV2 resolve).
        ({"owner": "team-A"}, "auto_resolve", None),
        ({"owner": "team-B"}, "auto_resolve", True),
        (
            {"owner": "team-B"},
            "declare",
            DeclareRule(
                min_severity="error",
                min_occurrences=3,
                within=timedelta(minutes=10),
                firing_for=M2,
            ),
        ),
        # ... overridden when set ...
        ({"service": "payments"}, "service", "payments"),
        # ... and action and interval lists belong to the route that names them.
        ({"owner": "team-A"}, "runbooks", ["triage-a"]),
        ({"owner": "team-A", "env": "testing"}, "runbooks", []),
        ({"service": "payments"}, "auto_runbooks", ["restart-payments"]),
        ({"group_by": "role", "env": "testing"}, "mute_time_intervals", ["weekends"]),
        ({"group_by": "role", "env": "testing", "wait": "long"}, "mute_time_intervals", []),
        (
            {"group_by": "role", "env": "testing", "wait": "long"},
            "active_time_intervals",
            ["business-hours"],
        ),
    ],
)
def test_inheritance(labels: dict[str, str], field: str, expected: object) -> None:
    (route,) = match_routes(TREE, labels)
    assert getattr(route, field) == expected


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"a": "1", "b": "1"}, ["0", "1"]),
        ({"a": "1"}, ["0", "2"]),
        ({"a": "1", "c": "1"}, ["0", "2"]),
        ({"b": "1"}, ["1"]),
        ({"c": "1"}, ["3"]),
        ({}, ["root"]),
    ],
)
def test_continue(labels: dict[str, str], expected: list[str]) -> None:
    tree = load_routing(
        {
            "routes": [
                {"matchers": ["a=1"], "continue": True},
                {"matchers": ["b=1"]},
                {"matchers": ["a=1"]},
                {"matchers": ["c=1"]},
            ]
        }
    )
    assert [r.route_id for r in match_routes(tree, labels)] == expected


def test_matching_route_with_no_matching_child_is_the_result() -> None:
    tree = load_routing({"routes": [{"matchers": ["a=1"], "routes": [{"matchers": ["b=1"]}]}]})
    assert [r.route_id for r in match_routes(tree, {"a": "1", "b": "2"})] == ["0"]


@pytest.mark.parametrize(
    ("labels", "key"),
    [
        (
            {"alertname": "Down", "owner": "team-A", "env": "production", "job": "api"},
            '{}/{owner="team-A"}/{env="production"}#0.1:{alertname="Down"}',
        ),
        (
            {"owner": "team-A", "env": "testing", "z": "1", "alertname": "Down"},
            '{}/{owner="team-A"}/{env="testing"}#0.0:'
            '{alertname="Down", env="testing", owner="team-A", z="1"}',
        ),
        ({"owner": "team-X"}, "{}#root:{}"),
        ({"owner": "team-X", "alertname": ""}, "{}#root:{}"),
        ({"service": "payments", "alertname": "Down"}, '{}/{service="payments"}#3:{}'),
        (
            {"owner": "team-B", "foo": "1", "bar": "2", "baz": "3"},
            '{}/{owner=~"team-(B|C)"}#1:{bar="2", foo="1"}',
        ),
    ],
)
def test_group_key(labels: dict[str, str], key: str) -> None:
    assert group_key(match_routes(TREE, labels)[0], labels) == key


def test_group_key_is_stable_and_distinguishes_groups() -> None:
    labels = {"owner": "team-B", "foo": "1", "bar": "2", "instance": "a"}
    (route,) = match_routes(TREE, labels)
    same = dict(reversed(list({**labels, "instance": "b"}.items())))
    other_value = {**labels, "foo": "9"}
    assert group_key(route, labels) == group_key(route, same)
    assert group_key(route, labels) != group_key(route, other_value)


def test_group_key_differs_between_sibling_routes_with_equal_matchers() -> None:
    tree = load_routing(
        {"routes": [{"matchers": ["a=1"], "continue": True}, {"matchers": ["a=1"]}]}
    )
    first, second = match_routes(tree, {"a": "1"})
    assert first.key == second.key == '{}/{a="1"}'
    assert group_key(first, {"a": "1"}) != group_key(second, {"a": "1"})


def test_route_key_ignores_matcher_order() -> None:
    one = load_routing({"routes": [{"matchers": ["b=2", "a=1"]}]})
    two = load_routing({"routes": [{"matchers": ["a=1", "b=2"]}]})
    labels = {"a": "1", "b": "2"}
    key = '{}/{a="1",b="2"}'
    assert match_routes(one, labels)[0].key == match_routes(two, labels)[0].key == key


@pytest.mark.parametrize(
    ("labels", "route_id", "service", "declare_enabled", "key"),
    [
        (
            {"alertname": "Down", "service": "checkout", "severity": "critical"},
            "0",
            "checkout",
            True,
            '{}/{severity="critical"}#0:{service="checkout"}',
        ),
        (
            {"alertname": "Slow", "service": "checkout", "severity": "warning"},
            "root",
            "checkout",
            False,
            '{}#root:{alertname="Slow", service="checkout"}',
        ),
        (
            {"alertname": "Down", "severity": "critical"},
            "0",
            None,
            True,
            '{}/{severity="critical"}#0:{}',
        ),
        ({"alertname": "Noise"}, "root", None, False, '{}#root:{alertname="Noise"}'),
    ],
)
def test_default_tree(
    labels: dict[str, str],
    route_id: str,
    service: str | None,
    declare_enabled: bool,
    key: str,
) -> None:
    (route,) = match_routes(default_tree(), labels)
    assert (route.route_id, route.service, route.declare.enabled) == (
        route_id,
        service,
        declare_enabled,
    )
    assert group_key(route, labels) == key


def test_default_tree_declares_only_critical() -> None:
    (route,) = match_routes(default_tree(), {"severity": "critical", "service": "db"})
    assert route.declare == DeclareRule(min_severity="critical")
    assert route.name == "critical"


@pytest.mark.parametrize(
    ("template", "labels", "service"),
    [
        ("{labels.service}", {"service": "checkout"}, "checkout"),
        ("{labels.service}", {}, None),
        ("{labels.service}", {"service": ""}, None),
        ("db-{labels.cluster}", {"cluster": "eu1"}, "db-eu1"),
        ("db-{labels.cluster}-primary", {"cluster": "eu1"}, "db-eu1-primary"),
        ("literal", {"service": "ignored"}, "literal"),
    ],
)
def test_service_template(template: str, labels: dict[str, str], service: str | None) -> None:
    tree = load_routing({"service": template})
    assert match_routes(tree, labels)[0].service == service
    assert tree.resolved([]).service == template


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"matchers": ['a="b"']}, "routing: root route must not have any matchers"),
        ({"continue": True}, "routing: cannot have continue in root route"),
        (
            {"mute_time_intervals": ["weekends"]},
            "routing: root route must not have any mute time intervals",
        ),
        (
            {"active_time_intervals": ["office"]},
            "routing: root route must not have any active time intervals",
        ),
        ({"recevier": "x"}, "routing.recevier: unknown key"),
        (
            {"routes": [{}, {}, {"matchers": ['foo=~"("']}]},
            'routing.routes[2].matchers[0]: invalid regular expression in matcher foo=~"(": '
            "missing ), unterminated subpattern at position 0",
        ),
        (
            {"routes": [{"matchers": ["{a=b, c!=d}", "x"]}]},
            "routing.routes[0].matchers[1]: cannot parse matcher 'x' at column 2: expected an "
            "operator ('=', '!=', '=~' or '!~') after label name 'x', found the end of input",
        ),
        (
            {"routes": [{"matchers": ["foo!~'x'"]}]},
            "routing.routes[0].matchers[0]: cannot parse matcher \"foo!~'x'\" at column 6: "
            'expected a label value, found "\'"; only double quotes quote text',
        ),
        (
            {"routes": [{"routes": [{"group_wait": "5 minutes"}]}]},
            "routing.routes[0].routes[0].group_wait: '5 minutes' is not a duration: use a number "
            "and a unit, largest unit first, e.g. 30s, 5m, 1h30m, 2d (units: ms s m h d w y)",
        ),
        ({"group_interval": "0s"}, "routing.group_interval: group_interval cannot be zero"),
        ({"repeat_interval": "0"}, "routing.repeat_interval: repeat_interval cannot be zero"),
        ({"group_wait": -5}, "routing.group_wait: group_wait must not be negative"),
        (
            {"group_by": ["...", "alertname"]},
            "routing.group_by: cannot have wildcard group_by (`...`) and other labels "
            "at the same time",
        ),
        ({"group_by": ["a", "a"]}, "routing.group_by: duplicated label 'a' in group_by"),
        ({"group_by": [""]}, "routing.group_by: group_by has an empty label name"),
        (
            {"service": "{labels.service"},
            "routing.service: '{labels.service' is not a valid service: write a name, or one "
            "{labels.<label>} placeholder such as '{labels.service}'",
        ),
        (
            {"service": "{labels.a}-{labels.b}"},
            "routing.service: '{labels.a}-{labels.b}' is not a valid service: write a name, or "
            "one {labels.<label>} placeholder such as '{labels.service}'",
        ),
        (
            {"declare": {"min_severity": "page"}},
            "routing.declare.min_severity: min_severity must be one of critical, error, "
            "warning, info, not 'page'",
        ),
        (
            {"declare": {"min_occurrences": 0}},
            "routing.declare.min_occurrences: Input should be greater than or equal to 1",
        ),
        ({"declare": {"within": "0s"}}, "routing.declare.within: within must be longer than zero"),
        ({"declare": {"enable": False}}, "routing.declare.enable: unknown key"),
    ],
)
def test_validation_errors(data: object, message: str) -> None:
    with pytest.raises(RoutingConfigError, match=f"^{re.escape(message)}$"):
        load_routing(data)


def test_validation_reports_every_problem_with_its_path() -> None:
    data = {"routes": [{"matchers": ["a"], "team": ""}, {"routes": [{"group_by": ["x", "x"]}]}]}
    with pytest.raises(RoutingConfigError) as caught:
        load_routing(data, where="fireline.yaml: routing")
    assert str(caught.value).splitlines() == [
        "fireline.yaml: routing.routes[0].matchers[0]: cannot parse matcher 'a' at column 2: "
        "expected an operator ('=', '!=', '=~' or '!~') after label name 'a', "
        "found the end of input",
        "fireline.yaml: routing.routes[0].team: String should have at least 1 character",
        "fireline.yaml: routing.routes[1].routes[0].group_by: duplicated label 'x' in group_by",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("0s", timedelta(0)),
        ("250ms", timedelta(milliseconds=250)),
        ("1d", timedelta(days=1)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    tree = load_routing({"group_wait": text})
    assert tree.resolved([]).group_wait == expected


def test_tree_round_trips_through_json() -> None:
    dumped = TREE.model_dump(mode="json", by_alias=True)
    again = RoutingTree.model_validate(dumped)
    assert again == TREE
    assert dumped["routes"][0]["routes"][1]["continue"] is True
    assert dumped["routes"][1]["declare"]["within"] == "10m"


def test_resolved_route_round_trips_through_json() -> None:
    for labels in ({"owner": "team-A", "env": "production"}, {"owner": "team-B"}):
        for route in match_routes(TREE, labels):
            dumped = route.model_dump(mode="json", by_alias=True)
            assert ResolvedRoute.model_validate(dumped) == route


def test_walk_and_time_interval_names() -> None:
    assert [r.route_id for r in TREE.walk()] == [
        "root",
        "0",
        "0.0",
        "0.1",
        "0.2",
        "1",
        "2",
        "2.0",
        "2.0.0",
        "3",
    ]
    assert TREE.time_interval_names() == {"weekends", "business-hours"}


@pytest.mark.parametrize(
    ("rule", "severity", "admitted"),
    [
        (DeclareRule(), None, True),
        (DeclareRule(), "whatever", True),
        (DeclareRule(min_severity="critical"), "critical", True),
        (DeclareRule(min_severity="critical"), "CRITICAL", True),
        (DeclareRule(min_severity="critical"), "error", False),
        (DeclareRule(min_severity="warning"), "error", True),
        (DeclareRule(min_severity="warning"), "warning", True),
        (DeclareRule(min_severity="warning"), "info", False),
        (DeclareRule(min_severity="info"), "page", False),
        (DeclareRule(min_severity="info"), None, False),
    ],
)
def test_declare_rule_severity(rule: DeclareRule, severity: str | None, admitted: bool) -> None:
    assert rule.admits_severity(severity) is admitted


def test_models_are_frozen() -> None:
    with pytest.raises(ValidationError, match="Instance is frozen"):
        TREE.root.team = "other"  # type: ignore[misc]


def test_format_routes_table_exact() -> None:
    tree = load_routing(
        {
            "service": "{labels.service}",
            "routes": [
                {
                    "name": "db",
                    "matchers": ['team="db"'],
                    "team": "dba",
                    "runbooks": ["failover"],
                    "auto_runbooks": ["snapshot"],
                    "mute_time_intervals": ["weekends"],
                    "declare": {"min_occurrences": 3, "within": "10m", "firing_for": "5m"},
                },
                {"matchers": ["x=1"], "declare": {"enabled": False}},
            ],
        }
    )
    rows = match_routes(tree, {"team": "db", "service": "pg"}) + match_routes(tree, {"x": "1"})
    assert format_routes_table(rows).splitlines() == [
        "ROUTE  NAME     MATCHERS   SERVICE  TEAM  ESCALATION  GROUP BY  WAIT/INTERVAL/REPEAT  "
        "DECLARE                                       RUNBOOKS                 TIME INTERVALS",
        '0      db       team="db"  pg       dba   -           -         30s/5m/4h             '
        "any severity, 3 alerts within 10m, firing 5m  failover, auto:snapshot  mute:weekends",
        '1      {x="1"}  x="1"      -        -     -           -         30s/5m/4h             '
        "never                                         -                        -",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], {}),
        (
            ["service=checkout", "severity=critical"],
            {"service": "checkout", "severity": "critical"},
        ),
        (['summary="disk full, 99%"'], {"summary": "disk full, 99%"}),
        (['empty=""'], {"empty": ""}),
        (["region=eu-west-1"], {"region": "eu-west-1"}),
    ],
)
def test_parse_label_args(args: list[str], expected: dict[str, str]) -> None:
    assert parse_label_args(args) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["service"],
            "malformed label 'service': expected label=value (cannot parse matcher 'service' "
            "at column 8: expected an operator ('=', '!=', '=~' or '!~') after label name "
            "'service', found the end of input)",
        ),
        (
            ["empty="],
            "malformed label 'empty=': expected label=value (cannot parse matcher 'empty=' at "
            "column 7: expected a label value, found the end of input)",
        ),
        (
            ["severity!=critical"],
            "malformed label 'severity!=critical': expected label=value, not a != matcher",
        ),
        (["a=1", "a=2"], "label 'a' is given more than once"),
    ],
)
def test_parse_label_args_rejects(args: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_label_args(args)
