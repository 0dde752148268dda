"""fireline.yaml: the people, services and policies an incident response depends on.

Loaded once at start and validated whole: unknown keys are rejected, references (a team's
members, a service's owner and dependencies, a token's user) must exist, and every problem
is reported with the file and the dotted path of the field, so a typo fails at start-up and
not during an incident.

Exceptions::

    ConfigError (ValueError)    the file is missing, unreadable, not YAML, or invalid
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from activities.contracts import ContactKind, ContactMethod
from activities.kubernetes.clusters import ClusterConfig
from worker.comms_config import Communications
from worker.postmortem_config import PostmortemConfig, postmortem_problems, postmortem_snapshot
from worker.secrets import ReadableSecret as _ReadableSecret
from worker.secrets import SecretRef
from worker.status_page_config import StatusPageConfig, components_for_service
from worker.war_room_config import WarRoomConfig, slack_user_ids, war_room_problems
from workflows.contracts import (
    MAX_BODY_CHARS,
    Audience,
    AudiencePolicy,
    CommsSnapshot,
    ConfigSnapshot,
    IncidentSettings,
    ServiceRef,
    SeverityPolicy,
    SizeLimit,
    TriageTarget,
    UserRef,
    WarRoomLinks,
)
from workflows.durations import Duration
from workflows.escalation import (
    EscalationPolicy,
    EscalationSnapshot,
    NotificationRule,
    Responder,
    policy_problems,
    responder_problems,
)
from workflows.oncall import Schedule, referenced_users
from workflows.routing import RoutingTree, default_tree
from workflows.severity import default_policy
from workflows.suppression import (
    InhibitRule,
    MaintenanceWindow,
    check_interval_names,
    check_names,
)
from workflows.time_intervals import TimeInterval

# Contact kinds that page (open an incident at the vendor); reminders and executive
# updates never go through them.
_PAGERS = frozenset({ContactKind.PAGERDUTY, ContactKind.OPSGENIE})


class ConfigError(ValueError):
    """fireline.yaml cannot be used; the message lists every problem found."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class User(_Strict):
    """A person who responds to incidents, and how to reach them."""

    name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    slack: str | None = None
    phone: str | None = None
    # Default: the console inbox only (the embedded stack's pager).
    contact_methods: list[ContactMethod] = Field(default_factory=list)
    # Default: every contact method at once. E.g. Slack now, email after 2m.
    notification_rules: list[NotificationRule] = Field(default_factory=list)


class Team(_Strict):
    """A team that owns services."""

    members: list[str] = Field(default_factory=list)
    manager: str | None = None


class ServiceKubernetes(_Strict):
    """Where a service runs, for triage's "what changed recently"."""

    cluster: str
    namespace: str


class Service(_Strict):
    """A service catalog entry."""

    owner_team: str | None = None
    # Who is paged for this service's incidents (a key of escalation_policies).
    escalation_policy: str | None = None
    tier: str | None = None
    description: str = ""
    components: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    customer_tiers: list[str] = Field(default_factory=list)
    kubernetes: ServiceKubernetes | None = None


class ApiToken(_Strict):
    """A bearer token for the API, mapped to a user. The secret is never in the file."""

    user: str
    # One of: the token's SHA-256 (safe to commit), an environment variable, or a file.
    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    token_env: str | None = None
    token_file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        sources = [self.token_sha256, self.token_env, self.token_file]
        if sum(s is not None for s in sources) != 1:
            raise ValueError("give exactly one of token_sha256, token_env, token_file")
        return self

    @property
    def secret(self) -> SecretRef:
        """The token as a SecretRef."""
        return SecretRef(sha256=self.token_sha256, env=self.token_env, file=self.token_file)


class Auth(_Strict):
    """API authentication. No tokens means local mode (loopback only)."""

    tokens: list[ApiToken] = Field(default_factory=list)


class Integration(_Strict):
    """An alert source and how it proves who it is.

    Alertmanager/Grafana and fireline-JSON senders authenticate with a bearer ``token`` or
    an HMAC-SHA256 signature of the body (``hmac_secret``); PagerDuty-style senders are
    identified by the ``routing_key`` in each event.
    """

    kind: Literal["alertmanager", "pagerduty", "fireline"]
    token: SecretRef | None = None
    hmac_secret: SecretRef | None = None
    # Grafana signs "<timestamp>:<body>" when it sends a timestamp header; name it here.
    hmac_timestamp_header: str | None = None
    routing_key: SecretRef | None = None
    # The service PagerDuty-style events belong to (they carry no service label).
    service: str | None = None
    # Labels added to every alert from this integration (e.g. team: payments).
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.kind == "pagerduty":
            if self.routing_key is None:
                raise ValueError("a pagerduty integration needs routing_key")
            if self.token or self.hmac_secret:
                raise ValueError("pagerduty events authenticate by routing_key only")
        elif self.routing_key is not None:
            raise ValueError("routing_key is only for pagerduty integrations")
        if self.hmac_secret and self.hmac_secret.sha256:
            raise ValueError("hmac_secret: give env or file; a digest cannot verify signatures")
        return self


class PagerDutyPaging(_Strict):
    """PagerDuty Events API v2; contact address names a routing key (empty: 'default')."""

    base_url: str = "https://events.pagerduty.com"
    routing_keys: dict[str, _ReadableSecret]


class OpsgeniePaging(_Strict):
    """Opsgenie Alert API (EU: https://api.eu.opsgenie.com)."""

    base_url: str = "https://api.opsgenie.com"
    api_key: _ReadableSecret


class SlackPaging(_Strict):
    """Slack chat.postMessage with a bot token."""

    base_url: str = "https://slack.com/api"
    token: _ReadableSecret


class SmtpPaging(_Strict):
    """Email through an SMTP relay."""

    host: str
    port: int = 25
    sender: str
    username: str = ""
    password: _ReadableSecret | None = None
    starttls: bool = False


class WebhookPaging(_Strict):
    """A generic webhook, signed with HMAC-SHA256."""

    secret: _ReadableSecret


class Paging(_Strict):
    """Notification providers; the console inbox is always on."""

    pagerduty: PagerDutyPaging | None = None
    opsgenie: OpsgeniePaging | None = None
    slack: SlackPaging | None = None
    smtp: SmtpPaging | None = None
    webhook: WebhookPaging | None = None
    # How long a page's one-click acknowledge link works.
    ack_link_ttl: Duration = timedelta(hours=24)


class BasicAuth(_Strict):
    """HTTP basic authentication."""

    username: str = Field(min_length=1)
    password: _ReadableSecret


class HeaderAuth(_Strict):
    """A credential sent in a header of its own, e.g. ``X-API-Key``."""

    name: str = Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    value: _ReadableSecret


class _HttpTarget(_Strict):
    """A service runbook steps call over HTTP: at most one credential, and a timeout."""

    bearer_token: _ReadableSecret | None = None
    basic_auth: BasicAuth | None = None
    auth_header: HeaderAuth | None = None
    timeout: Duration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        given = (self.bearer_token, self.basic_auth, self.auth_header)
        if sum(c is not None for c in given) > 1:
            raise ValueError("give at most one of bearer_token, basic_auth, auth_header")
        return self

    def secret_refs(self) -> dict[str, SecretRef]:
        """Each configured secret by its field path, for the checks at load time."""
        refs: dict[str, SecretRef] = {}
        if self.bearer_token:
            refs["bearer_token"] = self.bearer_token
        if self.basic_auth:
            refs["basic_auth.password"] = self.basic_auth.password
        if self.auth_header:
            refs["auth_header.value"] = self.auth_header.value
        return refs

    def auth_headers(self) -> dict[str, str]:
        """The headers carrying the credential, with the secret read now."""
        if self.bearer_token:
            return {"Authorization": f"Bearer {_secret_text(self.bearer_token)}"}
        if self.basic_auth:
            pair = f"{self.basic_auth.username}:{_secret_text(self.basic_auth.password)}"
            return {"Authorization": f"Basic {base64.b64encode(pair.encode()).decode()}"}
        if self.auth_header:
            return {self.auth_header.name: _secret_text(self.auth_header.value)}
        return {}


def _secret_text(ref: SecretRef) -> str:
    raw = ref.value()
    if raw is None:
        # load_config checked it; it vanished since (an unset variable, a moved file).
        raise ConfigError("a secret configured in fireline.yaml cannot be read now")
    return raw.decode()


class PrometheusSource(_HttpTarget):
    """A Prometheus-compatible query API that check steps measure with (``metrics.query``)."""

    # Everything before /api/v1, e.g. https://prometheus.example.com or .../prometheus.
    url: str = Field(pattern=r"^https?://")


class HttpEndpoint(_HttpTarget):
    """A named HTTP service for ``http.request`` and ``flag.set`` steps."""

    base_url: str = Field(pattern=r"^https?://")


class Alerting(_Strict):
    """How alert groups relate to incidents."""

    # A new alert group joins an open incident of its service declared this recently.
    correlation_window: Duration = timedelta(hours=6)
    # A group whose alerts all resolved waits this long for a flapping alert to return.
    group_linger: Duration = timedelta(hours=1)


class IncidentDefaults(_Strict):
    """How incidents behave."""

    reopen_window: Duration = timedelta(hours=1)


class FirelineConfig(_Strict):
    """The whole of fireline.yaml."""

    users: dict[str, User] = Field(default_factory=dict)
    teams: dict[str, Team] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)
    auth: Auth = Field(default_factory=Auth)
    severity_policy: SeverityPolicy = Field(default_factory=default_policy)
    incidents: IncidentDefaults = Field(default_factory=IncidentDefaults)
    # Named time windows (Alertmanager syntax) for routing mute/active times and, merged
    # in, for the severity policy.
    time_intervals: list[TimeInterval] = Field(default_factory=list)
    routing: RoutingTree = Field(default_factory=default_tree)
    # Alertmanager inhibit_rules: a firing source alert mutes matching target alerts.
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    # Recurring windows (named time_intervals) in which matching alerts are muted.
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    alerting: Alerting = Field(default_factory=Alerting)
    integrations: dict[str, Integration] = Field(default_factory=dict)
    # On-call schedules by name (PagerDuty-style layers, restrictions, overrides).
    schedules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Escalation policies by name.
    escalation_policies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    paging: Paging = Field(default_factory=Paging)
    # Kubernetes clusters by name; each one's actions run on its own task queue.
    clusters: dict[str, ClusterConfig] = Field(default_factory=dict)
    # Metrics sources for check steps, by name (a check's ``provider``, default prometheus).
    metrics: dict[str, PrometheusSource] = Field(default_factory=dict)
    # HTTP services runbook actions call, by name (``with: {endpoint: name}``).
    http_endpoints: dict[str, HttpEndpoint] = Field(default_factory=dict)
    # Stakeholder update cadence, audiences and redaction; absent: updates are only recorded.
    communications: Communications | None = None
    # Components customers see, and where they see them (built-in page or Statuspage).
    status_page: StatusPageConfig | None = None
    # The incident's chat channel: Slack (or a chat webhook), opened per severity.
    war_room: WarRoomConfig | None = None
    # Postmortem review and action-item follow-up; absent: resolving starts no postmortem.
    postmortems: PostmortemConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _share_time_intervals(cls, data: Any) -> Any:
        # One place to define "market-hours": the severity policy sees the top-level
        # intervals too, unless it defines one of the same name itself.
        if not isinstance(data, dict) or not isinstance(data.get("time_intervals"), list):
            return data
        policy = data.get("severity_policy")
        if isinstance(policy, dict):
            own = policy.get("time_intervals") or []
            names = {i.get("name") for i in own if isinstance(i, dict)}
            shared = [i for i in data["time_intervals"] if isinstance(i, dict)]
            policy = {
                **policy,
                "time_intervals": own + [i for i in shared if i.get("name") not in names],
            }
            data = {**data, "severity_policy": policy}
        return data

    @model_validator(mode="after")
    def _references_exist(self) -> Self:
        problems = list(self._dangling_references())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _dangling_references(self) -> Iterable[str]:
        def missing(kind: str, known: Iterable[str], name: str, where: str) -> Iterable[str]:
            if name not in known:
                yield f"{where}: unknown {kind} '{name}'"

        if self.war_room:
            yield from war_room_problems(self.war_room, self.teams, self.users)
        if self.postmortems:
            yield from postmortem_problems(self, self.postmortems)
        if self.communications:
            for audience, cfg in self.communications.audiences.items():
                for i, handle in enumerate(cfg.recipients):
                    where = f"communications.audiences.{audience.value}.recipients[{i}]"
                    yield from missing("user", self.users, handle, where)
        for team_name, team in self.teams.items():
            for i, member in enumerate(team.members):
                yield from missing("user", self.users, member, f"teams.{team_name}.members[{i}]")
            if team.manager:
                yield from missing("user", self.users, team.manager, f"teams.{team_name}.manager")
        for svc_name, svc in self.services.items():
            if svc.owner_team:
                yield from missing(
                    "team", self.teams, svc.owner_team, f"services.{svc_name}.owner_team"
                )
            for i, dep in enumerate(svc.depends_on):
                yield from missing(
                    "service", self.services, dep, f"services.{svc_name}.depends_on[{i}]"
                )
            if svc.kubernetes:
                yield from missing(
                    "cluster",
                    self.clusters,
                    svc.kubernetes.cluster,
                    f"services.{svc_name}.kubernetes.cluster",
                )
        for i, token in enumerate(self.auth.tokens):
            yield from missing("user", self.users, token.user, f"auth.tokens[{i}].user")
        names = [i.name for i in self.time_intervals]
        for name in sorted({n for n in names if names.count(n) > 1}):
            yield f"time_intervals: '{name}' is defined more than once"
        intervals = {i.name: i for i in self.time_intervals}
        yield from self._paging_problems(set(intervals))
        yield from check_interval_names(self.maintenance_windows, intervals)
        yield from check_names(self.inhibit_rules, self.maintenance_windows)
        for route in self.routing.walk():
            for name in (*route.mute_time_intervals, *route.active_time_intervals):
                yield from missing("time interval", names, name, f"routing: route '{route.name}'")

    def triage_targets(self, service: str) -> list[TriageTarget]:
        """The service's and its dependencies' namespaces, on clusters fireline knows."""
        targets: list[TriageTarget] = []
        entry = self.services.get(service)
        names = [service, *(entry.depends_on if entry else [])]
        for name in names:
            svc = self.services.get(name)
            k8s = svc.kubernetes if svc else None
            if k8s is None or k8s.cluster not in self.clusters:
                continue
            queue = self.clusters[k8s.cluster].queue(k8s.cluster)
            targets.append(
                TriageTarget(
                    service=name, cluster=k8s.cluster, queue=queue, namespace=k8s.namespace
                )
            )
        return targets

    def snapshot(
        self,
        service: str,
        incident_id: str | None = None,
        escalation_policy: str | None = None,
        *,
        links: tuple[str, str | None] | None = None,
    ) -> ConfigSnapshot:
        """The frozen slice of config an incident on ``service`` runs with."""
        svc = self.services.get(service)
        escalation = (
            self.escalation_snapshot(incident_id, service, escalation_policy)
            if incident_id
            else None
        )
        return ConfigSnapshot(
            escalation=escalation,
            users={
                handle: UserRef(handle=handle, name=u.name, email=u.email)
                for handle, u in self.users.items()
            },
            service=ServiceRef(name=service, **svc.model_dump(exclude={"kubernetes"}))
            if svc
            else None,
            severity_policy=self.severity_policy,
            settings=IncidentSettings(reopen_window=self.incidents.reopen_window),
            comms=self.comms_snapshot(service, links),
            postmortem=postmortem_snapshot(self, self.postmortems) if self.postmortems else None,
        )

    def comms_snapshot(
        self, service: str, links: tuple[str, str | None] | None = None
    ) -> CommsSnapshot | None:
        """What an incident on ``service`` needs to talk: cadence, audiences, channels.

        ``links`` are the incident's dashboard and Temporal UI pages, for the war room.
        """
        comms = self.communications
        if comms is None:
            return None
        room = self.war_room
        svc = self.services.get(service)
        dashboard, temporal_ui = links or (None, None)
        audiences = {}
        for audience in Audience:
            recipients = {}
            cfg = comms.audiences.get(audience)
            for handle in cfg.recipients if cfg else []:
                recipients[handle] = self.reminder_contact(handle)
            audiences[audience] = AudiencePolicy(
                template=comms.template(audience),
                redact=comms.rules(audience),
                recipients=recipients,
            )
        page = self.status_page
        components: list[str] = []
        limits: dict[Audience, SizeLimit] = {}
        if page is not None:
            known = [c.id for c in page.components]
            own = components_for_service(page, service)
            components = own + [c for c in (svc.components if svc else []) if c in known]
            vendor = "Atlassian Statuspage" if page.provider == "atlassian" else "the status page"
            limits[Audience.CUSTOMERS] = SizeLimit(chars=MAX_BODY_CHARS, vendor=vendor)
        return CommsSnapshot(
            war_room_severities=list(room.severities) if room else [],
            war_room_links=room.links(
                svc.owner_team if svc else None, dashboard=dashboard, temporal_ui=temporal_ui
            )
            if room
            else WarRoomLinks(),
            mirror_kinds=list(room.mirror) if room else [],
            chat_ids=slack_user_ids(self.users),
            status_page=page is not None,
            all_components=[c.id for c in page.components] if page else [],
            components=list(dict.fromkeys(components)),
            limits=limits,
            cadence=comms.cadence,
            overdue_after=comms.overdue_after,
            contacts={handle: self.reminder_contact(handle) for handle in self.users},
            audiences=audiences,
            resolved_text=comms.resolved_text,
        )

    def reminder_contact(self, handle: str) -> ContactMethod:
        """Where a reminder (not a page) reaches a person: chat or mail before a pager."""
        user = self.users.get(handle)
        for method in user.contact_methods if user else []:
            if method.kind not in _PAGERS:
                return method
        return ContactMethod(kind=ContactKind.CONSOLE)

    def _paging_problems(self, interval_names: set[str]) -> Iterable[str]:
        users = set(self.users)
        for name in self.schedules:
            try:
                schedule = self.schedule(name)
            except ValidationError as exc:
                for err in exc.errors():
                    yield f"schedules.{name}.{_dotted(err['loc'])}: {_message(err)}"
                continue
            for handle in sorted(referenced_users(schedule) - users):
                yield f"schedules.{name}: unknown user '{handle}'"
        for name in self.escalation_policies:
            try:
                policy = self.escalation_policy(name)
            except ValidationError as exc:
                for err in exc.errors():
                    yield f"escalation_policies.{name}.{_dotted(err['loc'])}: {_message(err)}"
                continue
            for problem in policy_problems(
                policy, users=users, schedules=set(self.schedules), intervals=interval_names
            ):
                yield f"escalation_policies.{name}.{problem}"
        for handle, user in self.users.items():
            responder = Responder(
                handle=handle,
                name=user.name,
                contact_methods=user.contact_methods,
                notification_rules=user.notification_rules,
            )
            for problem in responder_problems(responder):
                yield f"users.{handle}.{problem}"
        for svc_name, svc in self.services.items():
            if svc.escalation_policy and svc.escalation_policy not in self.escalation_policies:
                yield (
                    f"services.{svc_name}.escalation_policy: "
                    f"unknown escalation policy '{svc.escalation_policy}'"
                )

    def schedule(self, name: str) -> Schedule:
        """The named schedule as a model (validated at load)."""
        return Schedule.model_validate({"name": name, **self.schedules[name]})

    def escalation_policy(self, name: str) -> EscalationPolicy:
        """The named escalation policy as a model (validated at load)."""
        return EscalationPolicy.model_validate({"name": name, **self.escalation_policies[name]})

    def escalation_snapshot(
        self, incident_id: str, service: str, policy_name: str | None = None
    ) -> EscalationSnapshot | None:
        """Everything an escalation for this incident needs, or None if nobody is paged."""
        entry = self.services.get(service)
        name = policy_name or (entry.escalation_policy if entry else None)
        if name is None or name not in self.escalation_policies:
            return None
        return EscalationSnapshot(
            incident_id=incident_id,
            policy=self.escalation_policy(name),
            schedules={n: self.schedule(n) for n in self.schedules},
            responders={
                handle: Responder(
                    handle=handle,
                    name=u.name,
                    contact_methods=u.contact_methods,
                    notification_rules=u.notification_rules,
                )
                for handle, u in self.users.items()
            },
            intervals={i.name: i for i in self.time_intervals},
        )

    def dependency_closure(self, service: str | None) -> list[str]:
        """The service, then everything it depends on, breadth first (nearest first)."""
        if not service:
            return []
        order, queue = [service], [service]
        while queue:
            entry = self.services.get(queue.pop(0))
            for dep in entry.depends_on if entry else []:
                if dep not in order:
                    order.append(dep)
                    queue.append(dep)
        return order

    def token_user(self, token: str) -> str | None:
        """The user a bearer token belongs to, or None. Constant-time comparison."""
        for entry in self.auth.tokens:
            if entry.secret.matches(token):
                return entry.user
        return None


def load_config(path: Path | None) -> FirelineConfig:
    """Load and validate ``path``; no path means an empty config with default policies."""
    if path is None:
        return FirelineConfig()
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    try:
        config = FirelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from None
    problems = [
        f"{path}: auth.tokens[{i}].token_{kind}: {problem}"
        for i, token in enumerate(config.auth.tokens)
        if (problem := token.secret.problem())
        for kind in ("env" if token.token_env else "file",)
    ]
    for name, integration in config.integrations.items():
        for field_name in ("token", "hmac_secret", "routing_key"):
            ref = getattr(integration, field_name)
            if ref is not None and (problem := ref.problem()):
                problems.append(f"{path}: integrations.{name}.{field_name}: {problem}")
    targets: dict[str, dict[str, PrometheusSource] | dict[str, HttpEndpoint]] = {
        "metrics": config.metrics,
        "http_endpoints": config.http_endpoints,
    }
    for section, entries in targets.items():
        for name, target in entries.items():
            for field_name, ref in target.secret_refs().items():
                if problem := ref.problem():
                    problems.append(f"{path}: {section}.{name}.{field_name}: {problem}")
    if config.war_room:
        problems += [f"{path}: {p}" for p in config.war_room.secret_problems()]
    atlassian = config.status_page.atlassian if config.status_page else None
    if atlassian is not None and (problem := atlassian.api_key.problem()):
        problems.append(f"{path}: status_page.atlassian.api_key: {problem}")
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def format_validation_error(path: Path | str, exc: ValidationError) -> str:
    """One line per problem: ``file: dotted.path: message``."""
    lines = []
    for err in exc.errors():
        where = _dotted(err["loc"])
        if err["type"] == "extra_forbidden":
            message = f"unknown key '{err['loc'][-1]}'"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{path}: {where}: {message}" if where else f"{path}: {message}")
    return "\n".join(lines)


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return f"unknown key '{err['loc'][-1]}'"
    return str(err["msg"]).removeprefix("Value error, ")


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
