"""``war_room:`` in fireline.yaml — where incidents get their channel, and what is mirrored.

Example::

    war_room:
      provider: slack
      slack:
        token: {env: SLACK_BOT_TOKEN}                # the bot token, xoxb-…
        signing_secret: {env: SLACK_SIGNING_SECRET}  # verifies /fireline and the shortcut
      channel_prefix: ""            # INC-12 "Checkout 5xx" → #inc-12-checkout-5xx
      severities: [SEV1, SEV2]      # who gets a room
      bridge:
        default: https://meet.example.com/incident
        teams: {payments: "https://meet.example.com/payments-bridge"}

The Slack app's bot scopes: ``channels:manage`` (create, invite, topic), ``channels:read``
(list), ``channels:history`` (find its own messages again), ``chat:write``, ``commands``;
for ``private: true`` also ``groups:write``, ``groups:read``, ``groups:history``. Its slash
command ``/fireline`` points at ``<api>/v1/slack/commands``; interactivity (the message
shortcut, callback id ``fireline_note``) at ``<api>/v1/slack/interactions``.

Users are invited by the Slack user id in their ``slack:`` field (``U…``/``W…``) or in a
``{kind: slack, address: U…}`` contact method; the same id maps a slash command's caller
back to the fireline user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, Protocol, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from activities.contracts import ContactKind, ContactMethod
from activities.providers.slack import DEFAULT_BASE_URL
from activities.providers.slack_channels import DEFAULT_POST_INTERVAL, SlackWarRooms
from activities.providers.webhook_war_room import WebhookWarRooms
from activities.war_room import WarRoomActivities, WarRoomProvider

# The leaf module, not worker.config: worker/config.py imports this one for its war_room.
from worker.secrets import ReadableSecret, SecretRef
from workflows.contracts import WarRoomLinks
from workflows.severity import Severity

# Slack user ids: U… for users, W… for Enterprise Grid users.
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DEFAULT_MIRRORED = (
    "role_assigned",
    "role_vacated",
    "severity_changed",
    "runbook_approval_requested",
    "mitigated",
    "resolved",
    "reopened",
    "stakeholder_update",
)


class SlackWarRoomConfig(_Strict):
    """Slack Web API with a bot token; ``base_url`` is for tests (a loopback fake)."""

    base_url: str = DEFAULT_BASE_URL
    token: ReadableSecret
    # Verifies slash commands (Basic Information → Signing Secret). None: no slash commands.
    signing_secret: ReadableSecret | None = None
    # Private channels need groups:write; public ones channels:manage.
    private: bool = False
    # Links to a channel are <app_url>/app_redirect?channel=C…
    app_url: str = "https://slack.com"
    # Slack's guideline is about one message per second per channel.
    post_interval_seconds: float = Field(default=DEFAULT_POST_INTERVAL, ge=0, le=60)


class WebhookWarRoomConfig(_Strict):
    """A generic chat webhook, signed with HMAC-SHA256 like paging's webhook."""

    url: str = Field(pattern=r"^https?://")
    secret: ReadableSecret


class Bridge(_Strict):
    """The conference bridge link posted in the summary: per owning team, else default."""

    default: str | None = Field(default=None, pattern=r"^https?://")
    teams: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _urls(self) -> Self:
        bad = [team for team, url in self.teams.items() if not re.match(r"^https?://", url)]
        if bad:
            raise ValueError(f"teams.{bad[0]}: the bridge must be an http(s) URL")
        return self


class WarRoomConfig(_Strict):
    """Whether and where incidents get a war room, and which timeline entries go there."""

    provider: Literal["slack", "webhook"]
    slack: SlackWarRoomConfig | None = None
    webhook: WebhookWarRoomConfig | None = None
    # Put before the incident id in the channel name (normalised with it), e.g. "ir-".
    channel_prefix: str = Field(default="", max_length=20, pattern=r"^[a-z0-9_-]*$")
    # Severities that open a room at declaration (or when raised to one of them).
    severities: list[Severity] = Field(default_factory=lambda: [Severity.SEV1, Severity.SEV2])
    # Timeline entry kinds mirrored into the room's thread.
    mirror: list[str] = Field(default_factory=lambda: list(DEFAULT_MIRRORED))
    bridge: Bridge = Field(default_factory=Bridge)

    @model_validator(mode="after")
    def _provider_configured(self) -> Self:
        if self.provider == "slack" and self.slack is None:
            raise ValueError("provider slack needs a slack: section (token)")
        if self.provider == "webhook" and self.webhook is None:
            raise ValueError("provider webhook needs a webhook: section (url, secret)")
        return self

    def opens_for(self, severity: Severity) -> bool:
        """Whether an incident of ``severity`` gets a war room."""
        return severity in self.severities

    def mirrors(self, kind: str) -> bool:
        """Whether timeline entries of ``kind`` are posted in the room."""
        return kind in self.mirror

    def bridge_for(self, team: str | None) -> str | None:
        """The conference bridge for an incident of ``team``'s service."""
        if team and team in self.bridge.teams:
            return self.bridge.teams[team]
        return self.bridge.default

    def links(
        self, team: str | None, *, dashboard: str | None, temporal_ui: str | None
    ) -> WarRoomLinks:
        """The summary's links for an incident of ``team``'s service."""
        return WarRoomLinks(
            dashboard=dashboard, temporal_ui=temporal_ui, bridge=self.bridge_for(team)
        )

    def secret_problems(self) -> list[str]:
        """Secrets that cannot be read now, by dotted path (for load_config's check)."""
        return [
            f"{path}: {problem}"
            for path, ref in self.secrets().items()
            if (problem := ref.problem())
        ]

    def secrets(self) -> dict[str, SecretRef]:
        """Every secret this section refers to, by dotted path (to check they are readable)."""
        found: dict[str, SecretRef] = {}
        if self.slack:
            found["war_room.slack.token"] = self.slack.token
            if self.slack.signing_secret:
                found["war_room.slack.signing_secret"] = self.slack.signing_secret
        if self.webhook:
            found["war_room.webhook.secret"] = self.webhook.secret
        return found


class ChatUser(Protocol):
    """What the mapping needs of ``worker.config.User``."""

    @property
    def slack(self) -> str | None:
        """The ``slack:`` field."""
        ...

    @property
    def contact_methods(self) -> Sequence[ContactMethod]:
        """The user's contact methods."""
        ...


def slack_user_id(user: ChatUser) -> str | None:
    """The user's Slack id: ``slack:`` when it is an id, else a Slack contact method's."""
    candidates = [user.slack or ""] + [
        c.address for c in user.contact_methods if c.kind is ContactKind.SLACK
    ]
    return next((c for c in candidates if SLACK_USER_ID.match(c)), None)


def slack_user_ids(users: Mapping[str, ChatUser]) -> dict[str, str]:
    """fireline handle → Slack user id, for everyone who has one."""
    return {handle: sid for handle, user in users.items() if (sid := slack_user_id(user))}


def invitees(users: Mapping[str, ChatUser], handles: Iterable[str]) -> list[str]:
    """The Slack ids to invite for ``handles`` (people without one are left out)."""
    ids = slack_user_ids(users)
    return list(dict.fromkeys(ids[h] for h in handles if h in ids))


def user_for_slack_id(users: Mapping[str, ChatUser], slack_id: str) -> str | None:
    """The fireline user whose Slack id is ``slack_id``."""
    return next((h for h, sid in slack_user_ids(users).items() if sid == slack_id), None)


def war_room_problems(
    war_room: WarRoomConfig, teams: Iterable[str], users: Mapping[str, ChatUser]
) -> list[str]:
    """References FirelineConfig must check: bridge teams exist; one user per Slack id."""
    known = set(teams)
    problems = [
        f"war_room.bridge.teams.{team}: unknown team '{team}'"
        for team in war_room.bridge.teams
        if team not in known
    ]
    owners: dict[str, str] = {}
    for handle, sid in slack_user_ids(users).items():
        if sid in owners:
            problems.append(
                f"users.{handle}: Slack id {sid} is also {owners[sid]}'s; "
                "slash commands could not tell them apart"
            )
        owners.setdefault(sid, handle)
    return problems


def _text(ref: SecretRef) -> str:
    raw = ref.value()
    if raw is None:
        raise RuntimeError("a war-room secret configured in fireline.yaml cannot be read")
    return raw.decode()


def war_room_provider(war_room: WarRoomConfig, client: httpx.AsyncClient) -> WarRoomProvider:
    """The configured provider, ready to use."""
    if war_room.provider == "slack":
        assert war_room.slack is not None  # the model validator requires it
        slack = war_room.slack
        return SlackWarRooms(
            client=client,
            token=_text(slack.token),
            base_url=slack.base_url,
            channel_prefix=war_room.channel_prefix,
            private=slack.private,
            app_url=slack.app_url,
            post_interval=slack.post_interval_seconds,
        )
    assert war_room.webhook is not None
    return WebhookWarRooms(
        client=client, url=war_room.webhook.url, secret=_text(war_room.webhook.secret)
    )


def war_room_activities(war_room: WarRoomConfig, client: httpx.AsyncClient) -> WarRoomActivities:
    """``WarRoomActivities`` for the configured provider (called by ``worker/wiring.py``)."""
    return WarRoomActivities(war_room_provider(war_room, client))


def signing_secret(war_room: WarRoomConfig | None) -> bytes | None:
    """Slack's signing secret for slash commands, when configured and readable."""
    if war_room is None or war_room.slack is None or war_room.slack.signing_secret is None:
        return None
    return war_room.slack.signing_secret.value()
