"""Logging for every fireline process: the incident id on every line.

Workflow and activity loggers carry the workflow id in ``temporal_workflow`` /
``temporal_activity``; a filter lifts the incident id out of it, so ``grep INC-42`` over
the logs finds everything fireline did for that incident. Code outside workflows passes
``extra={"incident_id": ...}``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

_INCIDENT_PREFIXES = ("incident-", "postmortem-", "alert-group-")


def incident_id_of(record: logging.LogRecord) -> str | None:
    """The incident a log record is about, if any."""
    explicit = getattr(record, "incident_id", None)
    if explicit:
        return str(explicit)
    for key in ("temporal_workflow", "temporal_activity"):
        info: Any = getattr(record, key, None)
        if isinstance(info, dict):
            wf_id = info.get("workflow_id")
            if isinstance(wf_id, str):
                for prefix in _INCIDENT_PREFIXES:
                    if wf_id.startswith(prefix):
                        return wf_id.removeprefix(prefix)
                return wf_id
    return None


class _IncidentFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.incident = incident_id_of(record) or "-"
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "incident_id": getattr(record, "incident", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send every logger to stderr with the incident id on each line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_IncidentFilter())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)-5s [%(incident)s] %(name)s: %(message)s",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The incident id is in its own column; the SDK's dict suffix only repeats it.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    # httpx logs every request URL at INFO, and vendor URLs carry secrets (webhook paths,
    # routing keys): keep them at WARNING so a secret never reaches a log line.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
