"""A loopback Slack Web API with ``chat.postMessage`` (base URL ``<url>/api``).

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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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


def _error(code: str) -> Reply:
    return Reply(200, {"ok": False, "error": code})


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
        self._next_ts = 1_700_000_000_000100

    def error_next(self, code: str, times: int = 1, *, retry_after: str | None = None) -> None:
        """Answer the next ``times`` calls with ``200 {"ok": false, "error": code}``."""
        headers = {"Retry-After": retry_after} if retry_after else {}
        reply = Reply(200, {"ok": False, "error": code}, headers)
        self.inject(Fault("reply", reply=reply), times)

    def error_body(self, status: int) -> Any:
        """Slack's body for rate limiting; server errors have a plain body."""
        if status == 429:
            return {"ok": False, "error": "ratelimited"}
        return b"upstream connect error"

    def handle(self, request: RecordedRequest) -> Reply:
        """Authenticate, validate and post one message."""
        if request.path != "/api/chat.postMessage":
            return Reply(404, {"ok": False, "error": "unknown_method"})
        auth = request.header("authorization")
        if not auth:
            return _error("not_authed")
        scheme, _, token = auth.partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            return _error("invalid_auth")
        content_type = request.header("content-type") or ""
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

    def _post(self, body: dict[str, Any]) -> Reply:
        if set(body) - ARGUMENTS:
            return _error("invalid_arguments")
        channel = body.get("channel")
        if not isinstance(channel, str) or not channel:
            return _error("channel_not_found")
        if channel in self.users:
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
                )
            )
        message = {"type": "message", "text": text or "", "ts": ts, "bot_id": "B0FAKEBOT"}
        return Reply(200, {"ok": True, "channel": channel, "ts": ts, "message": message})
