"""A loopback Slack Web API (base URL ``<url>/api``): messages and the war room's channels.

Methods: ``chat.postMessage`` (threads, ``metadata``), ``auth.test``, ``conversations.create``
(Slack's name rules: ``invalid_name_required``, ``invalid_name_maxlength``,
``invalid_name_specials``, ``invalid_name_punctuation``, ``name_taken`` — archived channels
keep their names), ``conversations.invite`` (``already_in_channel``, ``cant_invite_self``,
``user_not_found``), ``conversations.setTopic`` (``too_long`` over 250), ``conversations.info``,
``conversations.list`` (cursor pagination; private channels only when the bot is in them),
``conversations.history`` and ``conversations.replies`` (``metadata`` only with
``include_all_metadata``). Write methods take JSON or a form; read methods a query string
or a form, never JSON (as Slack documents them). The bot's own user id is
:data:`BOT_USER`.

Like Slack, errors are ``200 {"ok": false, "error": "<code>"}``: ``not_authed`` without
``Authorization: Bearer …``, ``invalid_auth`` for an unknown token, ``channel_not_found``,
``not_in_channel`` where the bot is not a member, ``no_text`` without text or blocks,
``invalid_blocks``; JSON without ``charset`` works but warns ``missing_charset``. A user id
as channel posts to the bot's DM with that user (channel ``D…``). Rate limiting is HTTP 429
with ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``; :meth:`FakeSlack.error_next`
injects any ``ok: false`` code. Stricter than Slack: unknown arguments are rejected with
``invalid_arguments``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.server import Fault, LoopbackServer, RecordedRequest, Reply

ARGUMENTS = frozenset(
    {
        "channel",
        "text",
        "blocks",
        "attachments",
        "thread_ts",
        "reply_broadcast",
        "unfurl_links",
        "unfurl_media",
        "mrkdwn",
        "metadata",
        "icon_emoji",
        "icon_url",
        "username",
        "link_names",
        "parse",
    }
)


@dataclass(frozen=True)
class SlackMessage:
    """One posted message."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    reply_broadcast: bool
    metadata: dict[str, Any] | None = None


def _error(code: str) -> Reply:
    return Reply(200, {"ok": False, "error": code})


BOT_USER = "U0FIREBOT"
MAX_NAME = 80
MAX_TOPIC = 250
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
# Arguments each method takes besides ``token`` (stricter than Slack: others are refused).
METHOD_ARGUMENTS: dict[str, frozenset[str]] = {
    "auth.test": frozenset(),
    "conversations.create": frozenset({"name", "is_private", "team_id"}),
    "conversations.invite": frozenset({"channel", "users", "force"}),
    "conversations.setTopic": frozenset({"channel", "topic"}),
    "conversations.info": frozenset({"channel", "include_locale", "include_num_members"}),
    "conversations.list": frozenset({"cursor", "exclude_archived", "limit", "team_id", "types"}),
    "conversations.history": frozenset(
        {"channel", "cursor", "include_all_metadata", "inclusive", "latest", "limit", "oldest"}
    ),
    "conversations.replies": frozenset(
        {"channel", "ts", "cursor", "include_all_metadata", "inclusive", "latest", "limit"}
    ),
}
_READS = frozenset(
    {"conversations.info", "conversations.list", "conversations.history", "conversations.replies"}
)


@dataclass
class FakeChannel:
    """A named channel, as ``conversations.*`` sees it."""

    id: str
    name: str
    creator: str
    is_private: bool = False
    is_archived: bool = False
    members: set[str] = field(default_factory=set)
    topic: str = ""
    purpose: str = ""

    def as_json(self, viewer: str) -> dict[str, Any]:
        """Slack's conversation object (the fields fireline reads, and a few more)."""
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": False,
            "is_im": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_member": viewer in self.members,
            "created": 1_700_000_000,
            "creator": self.creator,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
        }


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


class FakeSlack(LoopbackServer):
    """Slack for the given bot tokens, channels the bot is in, and users it can DM."""

    def __init__(
        self,
        tokens: Iterable[str],
        *,
        channels: Iterable[str] = (),
        other_channels: Iterable[str] = (),
        users: Iterable[str] = (),
    ) -> None:
        """``channels``: bot is a member; ``other_channels``: exists, bot not in it."""
        super().__init__()
        self.tokens = set(tokens)
        self.channels = set(channels)
        self.other_channels = set(other_channels)
        self.users = set(users)
        self._dm_channels = {"D" + user[1:] for user in self.users}
        self.messages: list[SlackMessage] = []
        # Named channels (conversations.*), by id.
        self.rooms: dict[str, FakeChannel] = {}
        self._next_ts = 1_700_000_000_000100
        self._next_room = 1

    # --- set-up and fault helpers ------------------------------------------------------------

    def add_channel(
        self,
        name: str,
        *,
        creator: str = "U0SOMEONE",
        topic: str = "",
        purpose: str = "",
        archived: bool = False,
        private: bool = False,
        bot_member: bool | None = None,
    ) -> FakeChannel:
        """A channel that exists already (the bot is a member if it created it)."""
        with self._lock:
            return self._new_room(
                name,
                creator,
                private,
                archived,
                topic,
                purpose,
                bot_member if bot_member is not None else creator == BOT_USER,
            )

    def room(self, name: str) -> FakeChannel:
        """The channel called ``name``."""
        with self._lock:
            return next(r for r in self.rooms.values() if r.name == name)

    def error_next(self, code: str, times: int = 1, *, retry_after: str | None = None) -> None:
        """Answer the next ``times`` calls with ``200 {"ok": false, "error": code}``."""
        headers = {"Retry-After": retry_after} if retry_after else {}
        reply = Reply(200, {"ok": False, "error": code}, headers)
        self.inject(Fault("reply", reply=reply), times)

    def ratelimit_next(self, times: int = 1, *, retry_after: str = "1") -> None:
        """Answer the next ``times`` calls as Slack's rate limiter does: 429 + Retry-After."""
        self.fail_next(times, 429, retry_after=retry_after)

    def error_body(self, status: int) -> Any:
        """Slack's body for rate limiting; server errors have a plain body."""
        if status == 429:
            return {"ok": False, "error": "ratelimited"}
        return b"upstream connect error"

    def calls(self, method: str) -> list[RecordedRequest]:
        """Every request made to ``method`` (e.g. ``conversations.create``)."""
        return [r for r in self.requests if r.path == f"/api/{method}"]

    def thread(self, channel: str, thread_ts: str) -> list[SlackMessage]:
        """The replies posted under ``thread_ts``, oldest first."""
        with self._lock:
            return [m for m in self.messages if m.channel == channel and m.thread_ts == thread_ts]

    # --- dispatch ----------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> Reply:
        """Authenticate, parse and run one Web API method."""
        method = request.path.removeprefix("/api/")
        if method != "chat.postMessage" and method not in METHOD_ARGUMENTS:
            return Reply(404, {"ok": False, "error": "unknown_method"})
        auth = request.header("authorization")
        if not auth:
            return _error("not_authed")
        scheme, _, token = auth.partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            return _error("invalid_auth")
        content_type = request.header("content-type") or ""
        if method == "chat.postMessage":
            return self._post_message(request, content_type)
        args = self._arguments(request, content_type, json_allowed=method not in _READS)
        if isinstance(args, Reply):
            return args
        args.pop("token", None)
        if set(args) - METHOD_ARGUMENTS[method]:
            return _error("invalid_arguments")
        run: Callable[[dict[str, Any]], Reply] = getattr(self, "_" + method.replace(".", "_"))
        with self._lock:
            return run(args)

    def _arguments(
        self, request: RecordedRequest, content_type: str, *, json_allowed: bool
    ) -> dict[str, Any] | Reply:
        if request.method == "GET":
            return {k: v[0] for k, v in request.query.items()}
        if content_type.startswith("application/x-www-form-urlencoded"):
            form = parse_qs(request.body.decode(), keep_blank_values=True)
            return {k: v[0] for k, v in form.items()}
        if content_type.startswith("application/json") and json_allowed:
            try:
                body = request.json()
            except ValueError:
                return _error("invalid_json")
            return body if isinstance(body, dict) else _error("invalid_json")
        return _error("invalid_form_data")

    def _post_message(self, request: RecordedRequest, content_type: str) -> Reply:
        if not content_type.startswith("application/json"):
            return _error("invalid_form_data")
        try:
            body = request.json()
        except ValueError:
            return _error("invalid_json")
        if not isinstance(body, dict):
            return _error("invalid_json")
        reply = self._post(body)
        if reply.body.get("ok") and "charset=utf-8" not in content_type.replace(" ", "").lower():
            reply.body["warning"] = "missing_charset"
            reply.body["response_metadata"] = {"warnings": ["missing_charset"]}
        return reply

    # --- methods -----------------------------------------------------------------------------

    def _new_room(
        self,
        name: str,
        creator: str,
        private: bool,
        archived: bool,
        topic: str,
        purpose: str,
        bot_member: bool,
    ) -> FakeChannel:
        room = FakeChannel(
            id=f"C1ROOM{self._next_room:03d}",
            name=name,
            creator=creator,
            is_private=private,
            is_archived=archived,
            members={BOT_USER} if bot_member else set(),
            topic=topic,
            purpose=purpose,
        )
        self._next_room += 1
        self.rooms[room.id] = room
        return room

    def _auth_test(self, args: dict[str, Any]) -> Reply:
        return Reply(
            200,
            {
                "ok": True,
                "url": "https://fake-workspace.slack.com/",
                "team": "Fake Workspace",
                "user": "fireline",
                "team_id": "T0FAKE",
                "user_id": BOT_USER,
                "bot_id": "B0FAKEBOT",
            },
        )

    def _conversations_create(self, args: dict[str, Any]) -> Reply:
        name = args.get("name")
        if not isinstance(name, str) or not name:
            return _error("invalid_name_required")
        if len(name) > MAX_NAME:
            return _error("invalid_name_maxlength")
        if set(name) - _NAME_CHARS:
            return _error("invalid_name_specials")
        if not set(name) - {"-", "_"}:
            return _error("invalid_name_punctuation")
        if any(r.name == name for r in self.rooms.values()):
            return _error("name_taken")
        room = self._new_room(name, BOT_USER, _flag(args.get("is_private")), False, "", "", True)
        return Reply(200, {"ok": True, "channel": room.as_json(BOT_USER)})

    def _member_room(self, args: dict[str, Any]) -> FakeChannel | Reply:
        room = self.rooms.get(str(args.get("channel") or ""))
        if room is None or (room.is_private and BOT_USER not in room.members):
            return _error("channel_not_found")
        if room.is_archived:
            return _error("is_archived")
        if BOT_USER not in room.members:
            return _error("not_in_channel")
        return room

    def _conversations_invite(self, args: dict[str, Any]) -> Reply:
        room = self._member_room(args)
        if isinstance(room, Reply):
            return room
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if not users:
            return _error("no_user")
        if BOT_USER in users:
            return _error("cant_invite_self")
        if any(u not in self.users for u in users):
            return _error("user_not_found")
        if any(u in room.members for u in users):
            return _error("already_in_channel")
        room.members.update(users)
        return Reply(200, {"ok": True, "channel": room.as_json(BOT_USER)})

    def _conversations_setTopic(self, args: dict[str, Any]) -> Reply:  # noqa: N802 - Slack's name
        room = self._member_room(args)
        if isinstance(room, Reply):
            return room
        topic = str(args.get("topic") or "")
        if len(topic) > MAX_TOPIC:
            return _error("too_long")
        room.topic = topic
        return Reply(200, {"ok": True, "channel": room.as_json(BOT_USER)})

    def _conversations_info(self, args: dict[str, Any]) -> Reply:
        room = self.rooms.get(str(args.get("channel") or ""))
        if room is None or (room.is_private and BOT_USER not in room.members):
            return _error("channel_not_found")
        return Reply(200, {"ok": True, "channel": room.as_json(BOT_USER)})

    def _conversations_list(self, args: dict[str, Any]) -> Reply:
        types = set(str(args.get("types") or "public_channel").split(","))
        visible = [
            r
            for r in self.rooms.values()
            if (("private_channel" in types) if r.is_private else ("public_channel" in types))
            and (not r.is_private or BOT_USER in r.members)
            and not (_flag(args.get("exclude_archived")) and r.is_archived)
        ]
        return self._page(visible, args, "channels", lambda r: r.as_json(BOT_USER))

    def _conversations_history(self, args: dict[str, Any]) -> Reply:
        channel = str(args.get("channel") or "")
        if channel not in self.rooms and channel not in self.channels:
            return _error("channel_not_found")
        top = [
            m
            for m in self.messages
            if m.channel == channel and (m.thread_ts is None or m.thread_ts == m.ts)
        ]
        meta = _flag(args.get("include_all_metadata"))
        return self._page(top[::-1], args, "messages", lambda m: _message_json(m, meta))

    def _conversations_replies(self, args: dict[str, Any]) -> Reply:
        channel = str(args.get("channel") or "")
        if channel not in self.rooms and channel not in self.channels:
            return _error("channel_not_found")
        ts = str(args.get("ts") or "")
        parent = [m for m in self.messages if m.channel == channel and m.ts == ts]
        if not parent:
            return _error("thread_not_found")
        replies = [m for m in self.messages if m.channel == channel and m.thread_ts == ts]
        meta = _flag(args.get("include_all_metadata"))
        return self._page(parent + replies, args, "messages", lambda m: _message_json(m, meta))

    def _page(self, items: list[Any], args: dict[str, Any], key: str, render: Any) -> Reply:
        try:
            limit = max(1, min(int(args.get("limit") or 100), 1000))
            start = int(str(args.get("cursor") or "0").removeprefix("c"))
        except ValueError:
            return _error("invalid_cursor")
        chunk = items[start : start + limit]
        more = start + limit < len(items)
        body: dict[str, Any] = {
            "ok": True,
            key: [render(item) for item in chunk],
            "has_more": more,
            "response_metadata": {"next_cursor": f"c{start + limit}" if more else ""},
        }
        return Reply(200, body)

    def _post(self, body: dict[str, Any]) -> Reply:
        if set(body) - ARGUMENTS:
            return _error("invalid_arguments")
        channel = body.get("channel")
        if not isinstance(channel, str) or not channel:
            return _error("channel_not_found")
        room = self.rooms.get(channel)
        if room is not None:
            if room.is_archived:
                return _error("is_archived")
            if BOT_USER not in room.members:
                return _error("not_in_channel")
        elif channel in self.users:
            channel = "D" + channel[1:]
        elif channel in self.other_channels:
            return _error("not_in_channel")
        elif channel not in self.channels and channel not in self._dm_channels:
            return _error("channel_not_found")
        text = body.get("text")
        blocks = body.get("blocks")
        if not text and not blocks:
            return _error("no_text")
        if blocks is not None and not (
            isinstance(blocks, list)
            and all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)
        ):
            return _error("invalid_blocks")
        metadata = body.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict)
            and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        ):
            return _error("invalid_metadata_format")
        with self._lock:
            self._next_ts += 1
            ts = f"{self._next_ts // 1_000_000}.{self._next_ts % 1_000_000:06d}"
            self.messages.append(
                SlackMessage(
                    channel=channel,
                    ts=ts,
                    text=str(text or ""),
                    blocks=list(blocks or []),
                    thread_ts=body.get("thread_ts"),
                    reply_broadcast=bool(body.get("reply_broadcast", False)),
                    metadata=metadata,
                )
            )
        message = {"type": "message", "text": text or "", "ts": ts, "bot_id": "B0FAKEBOT"}
        return Reply(200, {"ok": True, "channel": channel, "ts": ts, "message": message})


def _message_json(message: SlackMessage, include_metadata: bool) -> dict[str, Any]:
    found: dict[str, Any] = {
        "type": "message",
        "ts": message.ts,
        "text": message.text,
        "bot_id": "B0FAKEBOT",
        "user": BOT_USER,
    }
    if message.thread_ts:
        found["thread_ts"] = message.thread_ts
    if include_metadata and message.metadata is not None:
        found["metadata"] = message.metadata
    return found
