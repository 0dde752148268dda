"""The alert routing tree: Alertmanager's ``route`` semantics, plus what fireline needs to act.

``routing:`` in fireline.yaml is the root route, written like Alertmanager's ``route:``. An
alert enters at the root; :func:`match_routes` walks the tree depth-first, left to right
(Alertmanager ``dispatch/route.go``):

- a route matches when all its ``matchers`` match the alert's labels;
- among a matching route's children the first match wins, unless that child says
  ``continue: true``, in which case its later siblings are tried too;
- a matching route none of whose children match is itself the result.

Settings are inherited as Alertmanager does: a child that leaves ``group_by``, ``group_wait``,
``group_interval``, ``repeat_interval`` unset (or ``service``, ``team``, ``escalation_policy``,
``declare``, ``auto_resolve``) takes its parent's value, and the root falls back to
Alertmanager's defaults (``group_by: []``, 30s, 5m, 4h) and to :data:`DEFAULT_DECLARE`.
``group_by: []`` given explicitly overrides an inherited list; ``group_by: ["..."]`` groups by
every label. Lists of actions and time intervals (``runbooks``, ``auto_runbooks``,
``mute_time_intervals``, ``active_time_intervals``) belong to the route that names them and are
not inherited, as Alertmanager does not inherit the time interval lists.

``service`` may take its value from a label: ``"{labels.service}"`` (optionally with literal
text around it, ``"db-{labels.cluster}"``) is replaced by that label's value when an alert is
routed; if the label is missing or empty the route has no service. There is exactly one
placeholder form and no expression language.

Severity ordering for :class:`DeclareRule` ``min_severity`` is ``critical > error > warning >
info``, compared on the alert's ``severity`` label, case-insensitively. A missing or unknown
severity (``page``, ``P1``) meets no minimum; a rule without ``min_severity`` admits any alert.

Validation happens when the tree is loaded, with Alertmanager's rules: unknown keys, bad
durations and bad matchers are rejected with the field path named
(``routing.routes[2].matchers[0]: ...``); the root may not have matchers, ``continue``, or time
intervals; ``group_interval`` and ``repeat_interval`` may not be zero; ``group_by`` may not
repeat a label or mix ``...`` with labels.

Exceptions::

    RoutingConfigError (ValueError)    the routing section is invalid; one line per problem
    ValueError                         parse_label_args: a malformed ``label=value`` argument
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    RootModel,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from workflows.durations import Duration, format_duration
from workflows.matchers import (
    Matcher,
    MatcherSyntaxError,
    MatchType,
    format_labels,
    match_all,
    parse_matcher,
    parse_matchers,
)

__all__ = [
    "DEFAULT_DECLARE",
    "DEFAULT_GROUP_INTERVAL",
    "DEFAULT_GROUP_WAIT",
    "DEFAULT_REPEAT_INTERVAL",
    "GROUP_BY_ALL",
    "SEVERITY_ORDER",
    "DeclareRule",
    "ResolvedRoute",
    "Route",
    "RoutingConfigError",
    "RoutingTree",
    "default_tree",
    "format_routes_table",
    "group_key",
    "load_routing",
    "match_routes",
    "parse_label_args",
]

_T = TypeVar("_T")

# Lowest first, so a label's index is its rank.
SEVERITY_ORDER: tuple[str, ...] = ("info", "warning", "error", "critical")
"""Severities :class:`DeclareRule` understands, least severe first."""
GROUP_BY_ALL = "..."
"""``group_by: ["..."]`` groups by every label of the alert."""
DEFAULT_GROUP_WAIT = timedelta(seconds=30)
DEFAULT_GROUP_INTERVAL = timedelta(minutes=5)
DEFAULT_REPEAT_INTERVAL = timedelta(hours=4)

_PLACEHOLDER = re.compile(r"\{labels\.([A-Za-z_][A-Za-z0-9_]*)\}")
_LABEL_TEMPLATE = re.compile(r"[^{}]*\{labels\.[A-Za-z_][A-Za-z0-9_]*\}[^{}]*")
_STAND_IN = {"name": "_", "type": "=", "value": ""}


class RoutingConfigError(ValueError):
    """The routing section cannot be used; the message has one ``path: problem`` per line."""


class DeclareRule(BaseModel):
    """When a group of alerts routed here declares an incident."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # None admits any severity; see SEVERITY_ORDER for the ordering.
    min_severity: str | None = None
    # This many distinct firing alerts (fingerprints) ...
    min_occurrences: int = Field(1, ge=1)
    # ... seen within this window; None counts over the group's whole life.
    within: Duration | None = None
    # The group must have been firing at least this long.
    firing_for: Duration = timedelta(0)
    # False: alerts are recorded and grouped, never declared.
    enabled: bool = True

    @field_validator("min_severity")
    @classmethod
    def _known_severity(cls, value: str | None) -> str | None:
        if value is not None and value not in SEVERITY_ORDER:
            known = ", ".join(reversed(SEVERITY_ORDER))
            raise ValueError(f"min_severity must be one of {known}, not {value!r}")
        return value

    @field_validator("within")
    @classmethod
    def _positive_window(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("within must be longer than zero")
        return value

    @field_validator("firing_for")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        return _non_negative("firing_for", value)

    def admits_severity(self, severity: str | None) -> bool:
        """Whether an alert whose ``severity`` label is ``severity`` meets ``min_severity``."""
        if self.min_severity is None:
            return True
        rank = _severity_rank(severity)
        return rank is not None and rank >= SEVERITY_ORDER.index(self.min_severity)


DEFAULT_DECLARE = DeclareRule(min_severity="critical")
"""What the root declares when the tree never says: critical alerts only, like default_tree."""


class Route(BaseModel):
    """One node of the routing tree, as written in fireline.yaml; ``None`` means inherit."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = Field(None, min_length=1)
    matchers: list[Matcher] = Field(default_factory=list)
    continue_: bool = Field(False, alias="continue")
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    mute_time_intervals: list[str] = Field(default_factory=list)
    active_time_intervals: list[str] = Field(default_factory=list)
    service: str | None = Field(None, min_length=1)
    team: str | None = Field(None, min_length=1)
    escalation_policy: str | None = Field(None, min_length=1)
    # Runbooks proposed to the responders, and runbooks started without asking.
    runbooks: list[str] = Field(default_factory=list)
    auto_runbooks: list[str] = Field(default_factory=list)
    declare: DeclareRule | None = None
    auto_resolve: bool | None = None
    routes: list[Route] = Field(default_factory=list)

    @field_validator("matchers", mode="before")
    @classmethod
    def _expand_matcher_text(cls, value: Any) -> Any:
        # Like Alertmanager, one list item may hold several matchers ("a=b, c=d").
        if not isinstance(value, list):
            return value
        parsed: list[list[Matcher] | None] = []
        for item in value:
            try:
                parsed.append(parse_matchers(item) if isinstance(item, str) else None)
            except MatcherSyntaxError:
                parsed.append(None)
        if any(p is None and isinstance(item, str) for p, item in zip(parsed, value, strict=True)):
            # Keep one entry per item so Matcher reports the bad text at the index the author
            # wrote; validation fails anyway, so the good items' stand-ins are never used.
            return [item if p is None else _STAND_IN for p, item in zip(parsed, value, strict=True)]
        return [
            m for p, item in zip(parsed, value, strict=True) for m in ([item] if p is None else p)
        ]

    @field_validator("group_by")
    @classmethod
    def _valid_group_by(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if GROUP_BY_ALL in value and len(value) > 1:
            raise ValueError(
                "cannot have wildcard group_by (`...`) and other labels at the same time"
            )
        seen: set[str] = set()
        for label in value:
            if not label:
                raise ValueError("group_by has an empty label name")
            if label in seen:
                raise ValueError(f"duplicated label {label!r} in group_by")
            seen.add(label)
        return value

    @field_validator("group_wait")
    @classmethod
    def _wait_not_negative(cls, value: timedelta | None) -> timedelta | None:
        return None if value is None else _non_negative("group_wait", value)

    @field_validator("group_interval", "repeat_interval")
    @classmethod
    def _interval_positive(cls, value: timedelta | None, info: ValidationInfo) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError(f"{info.field_name} cannot be zero")
        return value

    @field_validator("service")
    @classmethod
    def _valid_template(cls, value: str | None) -> str | None:
        braces = value is not None and ("{" in value or "}" in value)
        if braces and _LABEL_TEMPLATE.fullmatch(value or "") is None:
            raise ValueError(
                f"{value!r} is not a valid service: write a name, or one "
                "{labels.<label>} placeholder such as '{labels.service}'"
            )
        return value


class ResolvedRoute(BaseModel):
    """A matched route with every inherited setting filled in; what the alert group acts on."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # Child indexes from the root; the root is [].
    path: list[int]
    name: str
    # Alertmanager's route key: the matchers of every route from the root, "/"-separated.
    key: str
    # The route's own matchers, not its ancestors'.
    matchers: list[Matcher]
    continue_: bool = Field(alias="continue")
    group_by: list[str]
    group_wait: Duration
    group_interval: Duration
    repeat_interval: Duration
    # Rendered for the alert by match_routes when the route's service is a label template.
    service: str | None
    team: str | None
    escalation_policy: str | None
    runbooks: list[str]
    auto_runbooks: list[str]
    declare: DeclareRule
    # None: the default policy (incidents below SEV2 resolve when their alerts do).
    auto_resolve: bool | None
    mute_time_intervals: list[str]
    active_time_intervals: list[str]

    @property
    def route_id(self) -> str:
        """The path as text: ``root`` for the root, ``0.2`` for the root's first child's third."""
        return ".".join(str(i) for i in self.path) if self.path else "root"

    @property
    def group_by_all(self) -> bool:
        """Whether alerts are grouped by all their labels (``group_by: ["..."]``)."""
        return self.group_by == [GROUP_BY_ALL]


class RoutingTree(RootModel[Route]):
    """The whole tree; ``root`` is the root route, which every alert matches."""

    model_config = ConfigDict(frozen=True)

    _resolved: dict[tuple[int, ...], ResolvedRoute] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _root_rules(self) -> Self:
        root = self.root
        if root.matchers:
            raise ValueError("root route must not have any matchers")
        if root.continue_:
            raise ValueError("cannot have continue in root route")
        if root.mute_time_intervals:
            raise ValueError("root route must not have any mute time intervals")
        if root.active_time_intervals:
            raise ValueError("root route must not have any active time intervals")
        self._resolved = {tuple(r.path): r for r in _resolve_tree(root, None, ())}
        return self

    def match(self, labels: Mapping[str, str]) -> list[ResolvedRoute]:
        """The routes an alert with ``labels`` is handled by; never empty."""
        return [_render(self._resolved[path], labels) for path in _match(self.root, (), labels)]

    def resolved(self, path: Sequence[int]) -> ResolvedRoute:
        """The route at ``path`` with inherited settings, its service template unrendered."""
        return self._resolved[tuple(path)]

    def walk(self) -> list[ResolvedRoute]:
        """Every route, depth-first from the root, settings resolved, templates unrendered."""
        return list(self._resolved.values())

    def time_interval_names(self) -> set[str]:
        """Every time interval the tree names, for checking against the defined intervals."""
        return {
            name
            for route in self._resolved.values()
            for name in (*route.mute_time_intervals, *route.active_time_intervals)
        }


def match_routes(tree: RoutingTree, labels: Mapping[str, str]) -> list[ResolvedRoute]:
    """Alertmanager's ``Route.Match``: depth-first, first match wins unless ``continue``."""
    return tree.match(labels)


def group_key(route: ResolvedRoute, labels: Mapping[str, str]) -> str:
    """The group an alert joins on ``route``, e.g. ``{}/{team="db"}#0:{alertname="Down"}``.

    The route key and path, then the alert's values of the route's ``group_by`` labels (all
    labels for ``...``). As in Prometheus an empty value is the same as no label, so it is left
    out; so are ``group_by`` labels the alert lacks.
    """
    present = {name: value for name, value in labels.items() if value}
    if route.group_by_all:
        chosen = present
    else:
        chosen = {name: present[name] for name in route.group_by if name in present}
    return f"{route.key}#{route.route_id}:{format_labels(chosen)}"


def default_tree() -> RoutingTree:
    """The out-of-the-box routing used when fireline.yaml has no ``routing:``.

    Every alert is routed to the service named by its ``service`` label and grouped by
    service and alert name, recorded, and never declared; an alert labelled
    ``severity="critical"`` goes to the ``critical`` route instead, whose groups (one per
    service) declare an incident.
    """
    return RoutingTree(
        root=Route(
            name="default",
            service="{labels.service}",
            group_by=["service", "alertname"],
            declare=DeclareRule(enabled=False),
            routes=[
                Route(
                    name="critical",
                    matchers=[Matcher(name="severity", type=MatchType.EQUAL, value="critical")],
                    group_by=["service"],
                    declare=DeclareRule(min_severity="critical"),
                )
            ],
        )
    )


def load_routing(data: Any, where: str = "routing") -> RoutingTree:
    """Validate a parsed ``routing:`` section; errors name ``where`` and the field path."""
    try:
        return RoutingTree.model_validate(data)
    except ValidationError as exc:
        raise RoutingConfigError(_describe(exc, where)) from None


def parse_label_args(args: Sequence[str]) -> dict[str, str]:
    """Labels from ``label=value`` command-line arguments, as ``amtool`` reads them.

    A value may be double-quoted (``summary="disk full"``) with the matcher escapes.
    """
    labels: dict[str, str] = {}
    for arg in args:
        try:
            matcher = parse_matcher(arg)
        except MatcherSyntaxError as exc:
            raise ValueError(f"malformed label {arg!r}: expected label=value ({exc})") from None
        if matcher.type is not MatchType.EQUAL:
            raise ValueError(
                f"malformed label {arg!r}: expected label=value, not a {matcher.type.value} matcher"
            )
        if matcher.name in labels:
            raise ValueError(f"label {matcher.name!r} is given more than once")
        labels[matcher.name] = matcher.value
    return labels


def format_routes_table(results: Sequence[ResolvedRoute]) -> str:
    """An aligned text table of matched routes, for ``fireline route test``."""
    header = (
        "ROUTE",
        "NAME",
        "MATCHERS",
        "SERVICE",
        "TEAM",
        "ESCALATION",
        "GROUP BY",
        "WAIT/INTERVAL/REPEAT",
        "DECLARE",
        "RUNBOOKS",
        "TIME INTERVALS",
    )
    rows = [header, *(_table_row(route) for route in results)]
    widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


# --- helpers ------------------------------------------------------------------------------


def _non_negative(field: str, value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError(f"{field} must not be negative")
    return value


def _severity_rank(severity: str | None) -> int | None:
    normalised = (severity or "").lower()
    return SEVERITY_ORDER.index(normalised) if normalised in SEVERITY_ORDER else None


def _inherit(own: _T | None, inherited: _T) -> _T:
    return inherited if own is None else own


def _route_key(matchers: Sequence[Matcher]) -> str:
    # Sorted like Alertmanager (name, value, operator) so reordering matchers keeps the key.
    operators = list(MatchType)
    ordered = sorted(matchers, key=lambda m: (m.name, m.value, operators.index(m.type)))
    return "{" + ",".join(str(m) for m in ordered) + "}"


def _resolve(route: Route, parent: ResolvedRoute | None, path: tuple[int, ...]) -> ResolvedRoute:
    own_key = _route_key(route.matchers)
    if parent is None:
        key, name = own_key, route.name or "root"
        group_by: list[str] = []
        timings = (DEFAULT_GROUP_WAIT, DEFAULT_GROUP_INTERVAL, DEFAULT_REPEAT_INTERVAL)
        service = team = policy = None
        declare, auto_resolve = DEFAULT_DECLARE, None
    else:
        key, name = f"{parent.key}/{own_key}", route.name or own_key
        group_by = parent.group_by
        timings = (parent.group_wait, parent.group_interval, parent.repeat_interval)
        service, team, policy = parent.service, parent.team, parent.escalation_policy
        declare, auto_resolve = parent.declare, parent.auto_resolve
    return ResolvedRoute(
        path=list(path),
        name=name,
        key=key,
        matchers=route.matchers,
        continue_=route.continue_,
        group_by=_inherit(route.group_by, group_by),
        group_wait=_inherit(route.group_wait, timings[0]),
        group_interval=_inherit(route.group_interval, timings[1]),
        repeat_interval=_inherit(route.repeat_interval, timings[2]),
        service=_inherit(route.service, service),
        team=_inherit(route.team, team),
        escalation_policy=_inherit(route.escalation_policy, policy),
        runbooks=route.runbooks,
        auto_runbooks=route.auto_runbooks,
        declare=_inherit(route.declare, declare),
        auto_resolve=_inherit(route.auto_resolve, auto_resolve),
        mute_time_intervals=route.mute_time_intervals,
        active_time_intervals=route.active_time_intervals,
    )


def _resolve_tree(
    route: Route, parent: ResolvedRoute | None, path: tuple[int, ...]
) -> Iterator[ResolvedRoute]:
    resolved = _resolve(route, parent, path)
    yield resolved
    for index, child in enumerate(route.routes):
        yield from _resolve_tree(child, resolved, (*path, index))


def _match(route: Route, path: tuple[int, ...], labels: Mapping[str, str]) -> list[tuple[int, ...]]:
    if not match_all(route.matchers, labels):
        return []
    found: list[tuple[int, ...]] = []
    for index, child in enumerate(route.routes):
        matched = _match(child, (*path, index), labels)
        found.extend(matched)
        if matched and not child.continue_:
            break
    return found or [path]


def _render(route: ResolvedRoute, labels: Mapping[str, str]) -> ResolvedRoute:
    if route.service is None:
        return route
    placeholder = _PLACEHOLDER.search(route.service)
    if placeholder is None:
        return route
    value = labels.get(placeholder.group(1), "")
    rendered = (
        route.service[: placeholder.start()] + value + route.service[placeholder.end() :]
        if value
        else None
    )
    return route.model_copy(update={"service": rendered})


def _describe(exc: ValidationError, where: str) -> str:
    lines = []
    for error in exc.errors():
        path = where + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
        )
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{path}: {message}")
    return "\n".join(lines)


def _table_row(route: ResolvedRoute) -> tuple[str, ...]:
    timing = "/".join(
        format_duration(d) for d in (route.group_wait, route.group_interval, route.repeat_interval)
    )
    runbooks = [*route.runbooks, *(f"auto:{name}" for name in route.auto_runbooks)]
    intervals = [
        *(f"mute:{name}" for name in route.mute_time_intervals),
        *(f"active:{name}" for name in route.active_time_intervals),
    ]
    return (
        route.route_id,
        route.name,
        ", ".join(str(m) for m in route.matchers) or "-",
        route.service or "-",
        route.team or "-",
        route.escalation_policy or "-",
        ", ".join(route.group_by) or "-",
        timing,
        _describe_declare(route.declare),
        ", ".join(runbooks) or "-",
        ", ".join(intervals) or "-",
    )


def _describe_declare(rule: DeclareRule) -> str:
    if not rule.enabled:
        return "never"
    parts = [f"severity>={rule.min_severity}" if rule.min_severity else "any severity"]
    if rule.min_occurrences > 1:
        window = f" within {format_duration(rule.within)}" if rule.within else ""
        parts.append(f"{rule.min_occurrences} alerts{window}")
    if rule.firing_for > timedelta(0):
        parts.append(f"firing {format_duration(rule.firing_for)}")
    return ", ".join(parts)
