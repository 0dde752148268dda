"""The live incident page: server-sent events fed by polling the workflow's state query.

Temporal has no push for query results, so the server asks the incident for its state about
once a second per open page and sends only what changed: timeline entries after the last
one the page has (``entry`` events, whose SSE id is the entry id, so a reconnecting browser
resumes with ``Last-Event-ID``), and the page's live sections when their rendering changed
(``section`` events: the section name on the first data line, its HTML after). Fragments
are rendered by the same escaping templates as the page.

A stream ends when the client goes away, when the incident is gone, or after
``max_duration``; the browser then reconnects on its own. The bound keeps a shutting-down
server from waiting on streams that would otherwise never finish.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from worker.errors import FirelineError, NotFound

log = logging.getLogger("fireline.ui")

# How long the browser waits before reconnecting after a stream ends (milliseconds).
RECONNECT_MS = 1000
# A comment line now and then shows proxies the stream is alive and surfaces a dead client.
KEEPALIVE_EVERY = 10.0


@dataclass(frozen=True)
class Snapshot:
    """What a live page shows: timeline entry ids (oldest first) and section HTML.

    ``render(i)`` is the HTML of entry ``i``; only new entries are ever rendered.
    """

    ids: list[str]
    render: Callable[[int], str]
    sections: dict[str, str]


def version_of(sections: dict[str, str]) -> str:
    """A short fingerprint of the live sections' HTML: the page starts with it."""
    digest = hashlib.sha256()
    for name in sorted(sections):
        digest.update(name.encode() + b"\0" + sections[name].encode() + b"\0")
    return digest.hexdigest()[:16]


def event(name: str | None, data: str, event_id: str | None = None) -> str:
    """One SSE message; ``data`` may span lines (CR and LF both end an SSE line)."""
    lines = []
    if event_id:
        lines.append("id: " + _one_line(event_id))
    if name:
        lines.append("event: " + _one_line(name))
    text = data.replace("\r\n", "\n").replace("\r", "\n")
    lines.extend("data: " + line for line in text.split("\n"))
    return "\n".join(lines) + "\n\n"


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def new_entries(ids: list[str], after: str | None) -> range:
    """Indexes of the entries after the one with id ``after``; all when ``after`` is empty.

    An id the timeline does not have (a stale or forged value) yields nothing: the page
    already shows the history it was rendered with, and new entries follow from here on.
    """
    if not after:
        return range(len(ids))
    for index, entry_id in enumerate(ids):
        if entry_id == after:
            return range(index + 1, len(ids))
    return range(0)


class LiveFeed:
    """Streams of live incident pages; counts open ones (tests watch streams end)."""

    def __init__(self, *, poll_interval: float = 1.0, max_duration: float = 25.0) -> None:
        self.poll_interval = poll_interval
        self.max_duration = max_duration
        self.active = 0

    async def events(
        self,
        load: Callable[[], Awaitable[Snapshot]],
        disconnected: Callable[[], Awaitable[bool]],
        *,
        after: str | None,
        version: str | None,
    ) -> AsyncIterator[str]:
        """SSE text for one page until the client leaves, the incident goes, or time is up."""
        self.active += 1
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.max_duration
            quiet_since = loop.time()
            yield f"retry: {RECONNECT_MS}\n\n"
            last, shown = after, version
            while loop.time() < deadline and not await disconnected():
                try:
                    snapshot = await load()
                except NotFound as exc:
                    yield event("gone", exc.reason)
                    return
                except FirelineError as exc:
                    # Temporal or the worker is away for a moment: say so and keep trying.
                    yield event("problem", exc.reason)
                else:
                    sent = False
                    for index in new_entries(snapshot.ids, last):
                        yield event("entry", snapshot.render(index), snapshot.ids[index])
                        sent = True
                    if snapshot.ids:
                        last = snapshot.ids[-1]
                    current = version_of(snapshot.sections)
                    if current != shown:
                        for name, html in snapshot.sections.items():
                            yield event("section", f"{name}\n{html}")
                        shown, sent = current, True
                    if sent:
                        quiet_since = loop.time()
                    elif loop.time() - quiet_since >= KEEPALIVE_EVERY:
                        yield ": keep-alive\n\n"
                        quiet_since = loop.time()
                await asyncio.sleep(self.poll_interval)
        finally:
            self.active -= 1
