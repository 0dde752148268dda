"""The Slack war room: one channel per incident, a summary, and the timeline threaded under it.

Slack Web API methods used (bot token, ``Authorization: Bearer xoxb-…``)::

    conversations.create    the channel (scopes channels:manage / groups:write)
    auth.test               the bot's own user id, to recognise channels it created
    conversations.list      find a taken name's channel (only after ``name_taken``)
    conversations.invite    the responders, one by one (``already_in_channel`` is success)
    conversations.setTopic  "[INC-12] SEV1 · checkout · title" — also the ownership marker
    conversations.history   find the summary again when a channel is reused
    chat.postMessage        the summary (Block Kit, links) and the threaded mirror posts
    conversations.replies   find a mirror post again before re-posting on a retry

Errors are classified like :mod:`activities.providers.slack`: HTTP 429/5xx and transport
faults through :func:`activities.http.send` (``Retry-After`` becomes the activity's next
retry delay), ``{"ok": false}`` codes through :func:`is_transient_error`. Two errors of its
own, both permanent::

    DeliveryError (activities.http)
     ├── InvalidChannelName     the incident's name has nothing Slack accepts in a name
     └── ChannelNamesExhausted  every suffixed name up to -MAX_SUFFIX is someone else's

Idempotency, since Slack has none for these methods: a retried ``open`` that meets
``name_taken`` reuses the channel when this bot created it and its topic is empty (the
response was lost before the topic was set) or carries the incident id; otherwise it tries
``-2``, ``-3``, …. Every message carries Slack message ``metadata`` with the incident id and
the timeline entry id, and a retry looks for it before posting again.
"""

from __future__ import annotations

import asyncio
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from activities.http import (
    DeliveryError,
    PermanentHttpError,
    parse_retry_after,
    send,
    vendor_error,
)
from activities.providers.slack import DEFAULT_BASE_URL, VENDOR, is_transient_error
from workflows.contracts import OpenWarRoom, WarRoom, WarRoomPost, WarRoomPosted

MAX_NAME_LENGTH = 80
# Slack truncates topics longer than this.
MAX_TOPIC_LENGTH = 250
# name, name-2, … name-MAX_SUFFIX: past that something else is wrong (a naming loop).
MAX_SUFFIX = 20
# Slack's guideline for chat.postMessage: about one message per second per channel.
DEFAULT_POST_INTERVAL = 1.0
SUMMARY_EVENT = "fireline_war_room"
ENTRY_EVENT = "fireline_timeline_entry"
# How far back a retry looks for its own message; a war room thread rarely exceeds it.
_LOOKBACK_PAGES = 5
_PAGE_SIZE = 200
_LIST_PAGES = 50
# Invite answers that mean the person is (or need not be) in the channel.
_INVITE_FINE = frozenset({"already_in_channel", "cant_invite_self"})
# Refusals about one person: the room still opens, and its summary names who is missing.
_INVITE_REFUSED = frozenset(
    {
        "user_not_found",
        "cant_invite",
        "user_is_restricted",
        "user_is_ultra_restricted",
        "ura_max_channels",
        "invitee_cant_see_channel",
        "no_external_invite_permission",
    }
)
_DISALLOWED = re.compile(r"[^a-z0-9_-]+")
_DASHES = re.compile(r"-{2,}")

Sleep = Callable[[float], Awaitable[None]]


class InvalidChannelName(DeliveryError):
    """The incident cannot be turned into a channel name Slack accepts."""

    def __init__(self, message: str) -> None:
        """Build a non-retryable error with the reason."""
        super().__init__(message, type="InvalidChannelName", non_retryable=True)


class ChannelNamesExhausted(DeliveryError):
    """Every candidate name is taken by a channel that is not this incident's."""

    def __init__(self, message: str) -> None:
        """Build a non-retryable error naming the last candidate."""
        super().__init__(message, type="ChannelNamesExhausted", non_retryable=True)


def normalise_channel_name(raw: str, *, max_length: int = MAX_NAME_LENGTH) -> str:
    """Slack's channel-name rules: "INC-12 Checkout: 5xx!" → "inc-12-checkout-5xx".

    Lowercase; accents dropped; every run of characters outside ``a-z 0-9 - _`` becomes one
    ``-``; no leading or trailing ``-``/``_``; at most ``max_length`` characters. A name
    with no letter or digit left is refused with :class:`InvalidChannelName`.
    """
    folded = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode().lower()
    name = _DASHES.sub("-", _DISALLOWED.sub("-", folded)).strip("-_")
    name = name[:max_length].rstrip("-_")
    if not re.search(r"[a-z0-9]", name):
        raise InvalidChannelName(
            f"channel name {raw!r} has no letters or digits Slack accepts "
            "(a channel name may only contain a-z, 0-9, '-' and '_')"
        )
    return name


def channel_name(prefix: str, incident_id: str, title: str) -> str:
    """The war room's name: ``<prefix><incident id> <title>``, normalised."""
    return normalise_channel_name(f"{prefix}{incident_id} {title}")


def with_suffix(name: str, n: int) -> str:
    """``name`` with ``-n`` (n ≥ 2), shortened so the whole still fits Slack's limit."""
    if n < 2:
        return name
    suffix = f"-{n}"
    return name[: MAX_NAME_LENGTH - len(suffix)].rstrip("-_") + suffix


def marker(incident_id: str) -> str:
    """What the topic starts with; a channel whose topic carries it is this incident's."""
    return f"[{incident_id}]"


def topic(req: OpenWarRoom) -> str:
    """The channel topic: incident id, severity, service, title and commander."""
    parts = [f"{marker(req.incident_id)} {req.severity.value}", req.service, req.title]
    if req.commander:
        parts.append(f"commander: {req.commander}")
    text = " · ".join(parts)
    return text if len(text) <= MAX_TOPIC_LENGTH else text[: MAX_TOPIC_LENGTH - 1] + "…"


def summary_text(req: OpenWarRoom) -> str:
    """The plain-text fallback of the summary (notifications, screen readers)."""
    return f"[{req.severity.value}] {req.incident_id}: {req.title} ({req.service})"


def summary_blocks(
    req: OpenWarRoom, not_invited: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Block Kit summary: headline, summary, who leads, the links, and who could not be invited."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": summary_text(req)[:150]}}
    ]
    if req.summary:
        blocks.append({"type": "section", "text": {"type": "plain_text", "text": req.summary}})
    facts = [f"*Severity:* {req.severity.value}", f"*Service:* {req.service}"]
    facts.append(f"*Commander:* {req.commander or 'nobody yet'}")
    blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in facts]})
    links = [
        (label, href)
        for label, href in (
            ("Dashboard", req.links.dashboard),
            ("Temporal UI", req.links.temporal_ui),
            ("Conference bridge", req.links.bridge),
        )
        if href
    ]
    if links:
        buttons = [
            {"type": "button", "text": {"type": "plain_text", "text": label}, "url": href}
            for label, href in links
        ]
        blocks.append({"type": "actions", "elements": buttons})
    notes = ["Timeline updates are threaded under this message."]
    if not_invited:
        missing = ", ".join(f"<@{user}> ({code})" for user, code in not_invited.items())
        notes.append(f"Could not invite: {missing}")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": n} for n in notes]})
    return blocks


@dataclass(frozen=True)
class _Channel:
    id: str
    name: str
    creator: str
    topic: str
    purpose: str
    archived: bool

    @classmethod
    def parse(cls, raw: Any) -> _Channel:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise vendor_error(VENDOR, 200, "answer has no channel object", transient=True)

        def value(field: str) -> str:
            inner = raw.get(field)
            return str(inner.get("value") or "") if isinstance(inner, dict) else ""

        return cls(
            id=raw["id"],
            name=str(raw.get("name") or ""),
            creator=str(raw.get("creator") or ""),
            topic=value("topic"),
            purpose=value("purpose"),
            archived=bool(raw.get("is_archived", False)),
        )

    def is_for(self, incident_id: str, bot_user: str) -> bool:
        """Whether this is the incident's room, left behind by an earlier attempt."""
        if self.archived or not bot_user or self.creator != bot_user:
            return False
        if not self.topic and not self.purpose:
            # Created, then the response was lost before the topic was set.
            return True
        return marker(incident_id) in self.topic or marker(incident_id) in self.purpose


class _PostPacer:
    """Spaces posts to one channel ``interval`` seconds apart, within this process."""

    def __init__(self, interval: float, clock: Callable[[], float], sleep: Sleep) -> None:
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next: dict[str, float] = {}

    async def wait(self, channel: str) -> None:
        if self._interval <= 0:
            return
        now = self._clock()
        slot = max(now, self._next.get(channel, now))
        # Reserve before sleeping: concurrent posts to one channel queue one after another.
        self._next[channel] = slot + self._interval
        if slot > now:
            await self._sleep(slot - now)


class SlackWarRooms:
    """Opens incident channels and mirrors timeline entries into them, with a bot token."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        channel_prefix: str = "",
        private: bool = False,
        app_url: str = "https://slack.com",
        post_interval: float = DEFAULT_POST_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Configure the provider; ``base_url`` ends in ``/api``.

        ``post_interval`` paces posts per channel (0 turns pacing off); ``clock`` and
        ``sleep`` are injectable so tests can watch the pacing without waiting for it.
        """
        self._client = client
        self._token = token
        self._base = base_url.rstrip("/")
        self._prefix = channel_prefix
        self._private = private
        self._app_url = app_url.rstrip("/")
        self._pacer = _PostPacer(post_interval, clock, sleep)
        self._bot_user: str | None = None

    # --- the two verbs -----------------------------------------------------------------------

    async def open(self, req: OpenWarRoom) -> WarRoom:
        """Create (or find again) the channel, invite, set the topic, post the summary."""
        base = channel_name(self._prefix, req.incident_id, req.title)
        channel, reused = await self._create_or_reuse(base, req.incident_id)
        not_invited: dict[str, str] = {}
        for user in dict.fromkeys(req.invite):
            refused = await self._invite(channel.id, user)
            if refused:
                not_invited[user] = refused
        wanted = topic(req)
        if channel.topic != wanted:
            await self._call("conversations.setTopic", {"channel": channel.id, "topic": wanted})
        thread_ts = await self._find_summary(channel.id, req.incident_id) if reused else None
        if thread_ts is None:
            thread_ts = await self._post(
                channel.id,
                {
                    "text": summary_text(req),
                    "blocks": summary_blocks(req, not_invited),
                    "metadata": {
                        "event_type": SUMMARY_EVENT,
                        "event_payload": {"incident_id": req.incident_id},
                    },
                },
            )
        return WarRoom(
            provider="slack",
            channel_id=channel.id,
            channel_name=channel.name,
            url=f"{self._app_url}/app_redirect?channel={channel.id}",
            thread_ts=thread_ts,
        )

    async def post(self, req: WarRoomPost, *, retried: bool = False) -> WarRoomPosted:
        """Post one timeline entry in the summary's thread; on a retry, never twice."""
        channel = req.room.channel_id
        if req.room.provider != "slack" or not channel:
            raise PermanentHttpError(
                f"slack: war room {req.room.provider}:{channel or '-'} is not a Slack channel"
            )
        if retried:
            found = await self._find_entry(channel, req.room.thread_ts, req.entry_id)
            if found is not None:
                return WarRoomPosted(provider="slack", channel_id=channel, ts=found, duplicate=True)
        body: dict[str, Any] = {
            "text": req.text,
            "metadata": {
                "event_type": ENTRY_EVENT,
                "event_payload": {
                    "incident_id": req.incident_id,
                    "entry_id": req.entry_id,
                    "kind": req.kind,
                },
            },
        }
        if req.room.thread_ts:
            body["thread_ts"] = req.room.thread_ts
        ts = await self._post(channel, body)
        return WarRoomPosted(provider="slack", channel_id=channel, ts=ts, duplicate=False)

    # --- channel ----------------------------------------------------------------------------

    async def _create_or_reuse(self, base: str, incident_id: str) -> tuple[_Channel, bool]:
        """The channel and whether it existed already (an earlier attempt made it)."""
        known: dict[str, _Channel] | None = None
        for n in range(1, MAX_SUFFIX + 1):
            name = with_suffix(base, n)
            if known is not None and name in known:
                if known[name].is_for(incident_id, await self._bot()):
                    return known[name], True
                continue
            answer = await self._call(
                "conversations.create",
                {"name": name, "is_private": self._private},
                accept={"name_taken"},
            )
            if answer.get("ok") is True:
                return _Channel.parse(answer.get("channel")), False
            # Taken: one listing answers for this name and every suffix after it.
            known = await self._channels_named_like(base)
            existing = known.get(name)
            if existing is not None and existing.is_for(incident_id, await self._bot()):
                return existing, True
        raise ChannelNamesExhausted(
            f"slack: channel names {base} to {with_suffix(base, MAX_SUFFIX)} are all taken "
            f"by channels that are not {incident_id}'s"
        )

    async def _bot(self) -> str:
        if self._bot_user is None:
            answer = await self._call("auth.test", {})
            self._bot_user = str(answer.get("user_id") or "")
        return self._bot_user

    async def _channels_named_like(self, base: str) -> dict[str, _Channel]:
        found: dict[str, _Channel] = {}
        cursor = ""
        for _ in range(_LIST_PAGES):
            params = {
                "types": "public_channel,private_channel",
                # An archived channel still holds its name: it must be seen to be skipped.
                "exclude_archived": "false",
                "limit": "1000",
            }
            if cursor:
                params["cursor"] = cursor
            answer = await self._read("conversations.list", params)
            for raw in answer.get("channels") or []:
                if isinstance(raw, dict) and str(raw.get("name", "")).startswith(base):
                    channel = _Channel.parse(raw)
                    found[channel.name] = channel
            cursor = _next_cursor(answer)
            if not cursor:
                break
        return found

    async def _invite(self, channel: str, user: str) -> str | None:
        """Invite one user; the reason when Slack refuses that user (not the whole room)."""
        # One user per call: with several, one already_in_channel fails the whole call, and
        # a retried open must be able to invite the rest.
        answer = await self._call(
            "conversations.invite",
            {"channel": channel, "users": user},
            accept=_INVITE_FINE | _INVITE_REFUSED,
        )
        code = str(answer.get("error") or "")
        return code if code in _INVITE_REFUSED else None

    # --- messages ---------------------------------------------------------------------------

    async def _post(self, channel: str, body: dict[str, Any]) -> str:
        await self._pacer.wait(channel)
        answer = await self._call(
            "chat.postMessage", {"channel": channel, "unfurl_links": False, **body}
        )
        return str(answer.get("ts") or "")

    async def _find_summary(self, channel: str, incident_id: str) -> str | None:
        messages = await self._messages(
            "conversations.history", {"channel": channel, "include_all_metadata": "true"}
        )
        for message in messages:
            meta = _metadata(message)
            if (
                meta.get("event_type") == SUMMARY_EVENT
                and _payload(meta).get("incident_id") == incident_id
            ):
                return str(message.get("ts") or "") or None
        return None

    async def _find_entry(self, channel: str, thread_ts: str | None, entry_id: str) -> str | None:
        if thread_ts:
            method = "conversations.replies"
            params = {"channel": channel, "ts": thread_ts, "include_all_metadata": "true"}
        else:
            method = "conversations.history"
            params = {"channel": channel, "include_all_metadata": "true"}
        for message in await self._messages(method, params):
            meta = _metadata(message)
            if meta.get("event_type") == ENTRY_EVENT and _payload(meta).get("entry_id") == entry_id:
                return str(message.get("ts") or "") or None
        return None

    async def _messages(self, method: str, params: dict[str, str]) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(_LOOKBACK_PAGES):
            page = {**params, "limit": str(_PAGE_SIZE)}
            if cursor:
                page["cursor"] = cursor
            answer = await self._read(method, page)
            messages += [m for m in answer.get("messages") or [] if isinstance(m, dict)]
            cursor = _next_cursor(answer)
            if not cursor:
                break
        return messages

    # --- HTTP -------------------------------------------------------------------------------

    async def _call(
        self, method: str, body: dict[str, Any], *, accept: frozenset[str] | set[str] = frozenset()
    ) -> dict[str, Any]:
        """A write method, JSON body; ``accept``: error codes the caller handles itself."""
        request = self._client.build_request(
            "POST",
            f"{self._base}/{method}",
            json=body,
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json; charset=utf-8",
            },
        )
        return await self._answer(request, accept)

    async def _read(self, method: str, params: dict[str, str]) -> dict[str, Any]:
        """A read method: Slack takes their arguments as a query string or a form, not JSON."""
        request = self._client.build_request(
            "GET",
            f"{self._base}/{method}",
            params=params,
            headers={"Authorization": f"Bearer {self._token}"},
        )
        return await self._answer(request, frozenset())

    async def _answer(
        self, request: httpx.Request, accept: frozenset[str] | set[str]
    ) -> dict[str, Any]:
        response = await send(self._client, request, vendor=VENDOR, secrets=[self._token])
        try:
            answer: Any = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise vendor_error(
                VENDOR, response.status_code, "answer is not a JSON object", transient=True
            )
        if answer.get("ok") is True:
            return answer
        code = str(answer.get("error") or "unknown_error")
        if code in accept:
            return answer
        method = request.url.path.rsplit("/", 1)[-1]
        raise vendor_error(
            VENDOR,
            response.status_code,
            f"{method}: {code}",
            transient=is_transient_error(code),
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            secrets=[self._token],
        )


def _next_cursor(answer: dict[str, Any]) -> str:
    meta = answer.get("response_metadata")
    return str(meta.get("next_cursor") or "") if isinstance(meta, dict) else ""


def _metadata(message: dict[str, Any]) -> dict[str, Any]:
    meta = message.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _payload(meta: dict[str, Any]) -> dict[str, Any]:
    payload = meta.get("event_payload")
    return payload if isinstance(payload, dict) else {}
