"""The embedded default: pages land in a local inbox and in the ``fireline up`` terminal.

The inbox is ``<dir>/inbox.jsonl``, one :class:`InboxEntry` per line, keyed by the page's
delivery key (its dedup key, suffixed for follow-ups). Delivering a key that is already
there is a no-op returning the recorded result, so a retried activity pages once. A file
lock makes the check-and-append atomic across worker processes.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from activities.contracts import ContactKind, Page, PageAction, PageResult

INBOX_FILE = "inbox.jsonl"
logger = logging.getLogger("fireline.page")


class InboxEntry(BaseModel):
    """One delivered page as ``fireline page list`` shows it."""

    model_config = ConfigDict(extra="forbid")

    key: str
    at: datetime
    page: Page
    result: PageResult


def inbox_path(directory: Path) -> Path:
    """The inbox file inside ``directory``."""
    return directory / INBOX_FILE


def read_inbox(directory: Path) -> list[InboxEntry]:
    """Every page delivered to the inbox in ``directory``, oldest first."""
    path = inbox_path(directory)
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        return [InboxEntry.model_validate_json(line) for line in handle if line.strip()]


def describe(page: Page) -> str:
    """The one readable line a page becomes in the terminal."""
    if page.informational:
        return f"NOTE {page.recipient} {page.incident_id}: {page.title}"
    if page.action is PageAction.TRIGGER:
        line = (
            f"PAGE {page.recipient} [{page.severity.value}/{page.urgency.value}] "
            f"{page.incident_id}: {page.title}"
        )
        return f"{line} | ack: {page.ack_url}" if page.ack_url else line
    by = f" by {page.actor}" if page.actor else ""
    return f"PAGE {page.recipient} {page.incident_id} {page.action.value}d{by}: {page.title}"


class ConsoleNotifier:
    """Appends pages to the inbox under ``directory`` and logs one line each."""

    def __init__(
        self,
        directory: Path,
        *,
        echo: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Configure the inbox; ``echo`` also receives each line (e.g. ``print``)."""
        self._directory = directory
        self._echo = echo
        self._clock = clock

    def deliver(self, page: Page) -> PageResult:
        """Append ``page`` unless its delivery key is already in the inbox (blocking)."""
        self._directory.mkdir(parents=True, exist_ok=True)
        key = page.delivery_key
        with inbox_path(self._directory).open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            for line in handle:
                if line.strip():
                    entry = InboxEntry.model_validate_json(line)
                    if entry.key == key:
                        return entry.result
            line_text = describe(page)
            result = PageResult(
                provider=ContactKind.CONSOLE,
                delivered=True,
                external_id=key,
                detail=f"inbox {inbox_path(self._directory)}",
                action=page.action,
                dedup_key=page.dedup_key,
            )
            entry = InboxEntry(key=key, at=self._clock(), page=page, result=result)
            handle.write(entry.model_dump_json() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        logger.info("%s", line_text, extra={"incident_id": page.incident_id})
        if self._echo is not None:
            self._echo(line_text)
        return result

    async def notify(self, page: Page) -> PageResult:
        """Deliver ``page`` to the inbox without blocking the event loop."""
        return await asyncio.to_thread(self.deliver, page)
