"""Postmortem side effects: read an incident's record, and write the postmortem's files.

``postmortem.gather`` queries the incident's ``state`` and each of its runbook runs'
``state`` through a Temporal client, so the draft reflects the real timeline. Activities
never import ``workflows``: the states travel as JSON objects and the workflow validates
them into its own models.

``postmortem.export`` writes ``<dir>/<basename>.md`` and ``.json``. Each file is written to
a temporary file in the same directory and renamed over the target, so a reader (a docs
build, a ``git add``) never sees half a file; content that is already there is not
rewritten, so a retried activity changes nothing.

Errors::

    ApplicationError(type="IncidentNotFound", non_retryable)  the incident workflow is gone
    ApplicationError(type="ExportFailed")                      the directory is not writable
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from pydantic import JsonValue
from temporalio import activity
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.contracts import (
    CloseTicket,
    ExportRequest,
    ExportResult,
    GatheredRecord,
    GatherRequest,
    TicketRef,
    TicketRequest,
)

INCIDENT_NOT_FOUND = "IncidentNotFound"
EXPORT_FAILED = "ExportFailed"


class Tracker(Protocol):
    """An issue tracker (GitHub Issues, Jira); both verbs idempotent by ``key``."""

    async def open(self, req: TicketRequest) -> TicketRef:
        """Find the ticket for ``req.key``, or create it."""
        ...

    async def close(self, req: CloseTicket) -> TicketRef:
        """Close the ticket (a no-op when it is closed already)."""
        ...


class TrackerNotConfigured(ApplicationError):
    """An action item names a tracker no provider was wired for."""

    def __init__(self, name: str) -> None:
        """A non-retryable error naming the tracker."""
        super().__init__(
            f"no tracker '{name}' is configured", type="TrackerNotConfigured", non_retryable=True
        )


class TrackerActivities:
    """``tracker.open`` and ``tracker.close``; the constructor receives the providers by name."""

    def __init__(self, trackers: Mapping[str, Tracker]) -> None:
        """Keep the providers; an unknown name fails with ``TrackerNotConfigured``."""
        self._trackers = dict(trackers)

    def _tracker(self, name: str) -> Tracker:
        tracker = self._trackers.get(name)
        if tracker is None:
            raise TrackerNotConfigured(name)
        return tracker

    @activity.defn(name="tracker.open")
    async def open(self, req: TicketRequest) -> TicketRef:
        """Open (or find again) the action item's ticket."""
        return await self._tracker(req.tracker).open(req)

    @activity.defn(name="tracker.close")
    async def close(self, req: CloseTicket) -> TicketRef:
        """Close the action item's ticket."""
        return await self._tracker(req.tracker).close(req)


class PostmortemActivities:
    """The postmortem activities; the constructor receives the Temporal client."""

    def __init__(self, client: Client) -> None:
        """Keep the client the gather queries go through."""
        self._client = client

    @activity.defn(name="postmortem.gather")
    async def gather(self, req: GatherRequest) -> GatheredRecord:
        """The incident's state, and the state of every runbook run it started."""
        try:
            incident = await self._query(req.incident_workflow_id)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise ApplicationError(
                    f"incident workflow {req.incident_workflow_id} not found: {exc.message}",
                    type=INCIDENT_NOT_FOUND,
                    non_retryable=True,
                ) from None
            raise
        runs: list[dict[str, JsonValue]] = []
        missing: dict[str, str] = {}
        listed = incident.get("runs")
        for run in listed if isinstance(listed, list) else []:
            if not isinstance(run, dict):
                continue
            run_id, workflow_id = str(run.get("run_id")), str(run.get("workflow_id"))
            try:
                runs.append(await self._query(workflow_id))
            except (RPCError, WorkflowQueryFailedError) as exc:
                # One unreadable run must not keep the whole draft from being written.
                missing[run_id] = str(exc)
        return GatheredRecord(incident=incident, runs=runs, missing_runs=missing)

    async def _query(self, workflow_id: str) -> dict[str, JsonValue]:
        result: Any = await self._client.get_workflow_handle(workflow_id).query(
            "state", result_type=dict
        )
        return dict(result)

    @activity.defn(name="postmortem.export")
    async def export(self, req: ExportRequest) -> ExportResult:
        """Write the Markdown and JSON files atomically; unchanged files are left alone."""
        # File I/O off the event loop, which other activities share.
        return await asyncio.to_thread(_export, req)


def _export(req: ExportRequest) -> ExportResult:
    directory = Path(req.directory)
    paths, changed = [], []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for suffix, text in ((".md", req.markdown), (".json", req.json_text)):
            target = directory / f"{req.basename}{suffix}"
            changed.append(_write_if_changed(target, text))
            paths.append(str(target))
    except OSError as exc:
        raise ApplicationError(
            f"cannot write the postmortem to {directory}: {exc.strerror or exc}",
            type=EXPORT_FAILED,
            # A permission or a path problem stays until someone fixes the configuration.
            non_retryable=isinstance(exc, PermissionError | NotADirectoryError | FileExistsError),
        ) from None
    return ExportResult(paths=paths, changed=changed)


def _write_if_changed(target: Path, text: str) -> bool:
    data = text.encode()
    if target.is_file() and target.read_bytes() == data:
        return False
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
