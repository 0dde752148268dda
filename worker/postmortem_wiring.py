"""The postmortem activities a worker registers, bound to their clients and trackers.

Called from ``worker/wiring.py`` (the one place that chooses vendors)::

    from worker.postmortem_wiring import postmortem_activities
    ... *postmortem_activities(client, config),
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from temporalio.client import Client

from activities.postmortem import PostmortemActivities, Tracker, TrackerActivities
from activities.providers.github_issues import GitHubIssuesTracker
from worker.config import FirelineConfig
from worker.postmortem_config import PostmortemConfig, postmortem_settings


def trackers(pm: PostmortemConfig, client: httpx.AsyncClient) -> dict[str, Tracker]:
    """The configured tracker by name (``github``), or none."""
    tracker = pm.tracker
    if tracker is None:
        return {}
    token = os.environ.get(tracker.token_env)
    if not token:
        # load_config checked it; it vanished since (an unset variable in a new shell).
        raise RuntimeError(f"postmortems.tracker.token_env: {tracker.token_env} is not set")
    return {
        tracker.kind: GitHubIssuesTracker(
            client, token, tracker.repo, base_url=tracker.base_url, label=tracker.label
        )
    }


def postmortem_activities(
    client: Client, config: FirelineConfig, pm: PostmortemConfig | None = None
) -> list[Any]:
    """``postmortem.gather``, ``postmortem.export``, ``tracker.open`` and ``tracker.close``."""
    pm = pm or postmortem_settings(config)
    postmortems = PostmortemActivities(client)
    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0))
    tracking = TrackerActivities(trackers(pm, http))
    return [postmortems.gather, postmortems.export, tracking.open, tracking.close]
