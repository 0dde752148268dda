"""The one place that decides which activities, and which vendors, a worker runs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from activities.contracts import ContactKind, Page
from activities.http_actions import Endpoint, action_activities
from activities.knowledge import KnowledgeActivities
from activities.metrics import MetricsActivities
from activities.notify import Notifier, NotifyActivities
from activities.providers.console import ConsoleNotifier
from activities.providers.email_smtp import EmailNotifier
from activities.providers.opsgenie import OpsgenieNotifier
from activities.providers.pagerduty import PagerDutyNotifier
from activities.providers.slack import SlackNotifier
from activities.providers.statuspage import StatuspagePublisher
from activities.providers.webhook import WebhookNotifier
from activities.status_page import BuiltinStatusPage, StatusPageActivities, StatusPageProvider
from worker.ack_links import link_for, load_or_create_secret
from worker.config import FirelineConfig
from worker.incident_activities import IncidentActivities
from worker.incident_records import RecordLoader
from worker.incident_service import IncidentService
from worker.knowledge import KnowledgeBase
from worker.postmortem_wiring import postmortem_activities
from worker.runbook_library import load_library
from worker.runbook_service import RunbookService
from worker.secrets import SecretRef
from worker.settings import Settings
from worker.war_room_config import war_room_activities

log = logging.getLogger("fireline.paging")


def ack_secret(settings: Settings) -> bytes:
    """The acknowledge-link secret: the setting, else one kept in the state directory."""
    env = settings.ack_secret.get_secret_value() if settings.ack_secret else None
    return load_or_create_secret(settings.state_dir / "ack-secret", env)


def notifiers(config: FirelineConfig, inbox: Path, echo: Any = None) -> dict[ContactKind, Notifier]:
    """The console inbox always; every other vendor that config names."""
    paging = config.paging
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
    found: dict[ContactKind, Notifier] = {ContactKind.CONSOLE: ConsoleNotifier(inbox, echo=echo)}
    if paging.pagerduty:
        found[ContactKind.PAGERDUTY] = PagerDutyNotifier(
            client=client,
            routing_keys={k: _text(v) for k, v in paging.pagerduty.routing_keys.items()},
            base_url=paging.pagerduty.base_url,
        )
    if paging.opsgenie:
        found[ContactKind.OPSGENIE] = OpsgenieNotifier(
            client=client, api_key=_text(paging.opsgenie.api_key), base_url=paging.opsgenie.base_url
        )
    if paging.slack:
        found[ContactKind.SLACK] = SlackNotifier(
            client=client, token=_text(paging.slack.token), base_url=paging.slack.base_url
        )
    if paging.smtp:
        smtp = paging.smtp
        found[ContactKind.EMAIL] = EmailNotifier(
            host=smtp.host,
            port=smtp.port,
            sender=smtp.sender,
            username=smtp.username,
            password=_text(smtp.password) if smtp.password else "",
            starttls=smtp.starttls,
        )
    if paging.webhook:
        found[ContactKind.WEBHOOK] = WebhookNotifier(
            client=client, secret=_text(paging.webhook.secret)
        )
    return found


def _text(ref: SecretRef) -> str:
    raw = ref.value()
    if raw is None:
        # load_config checked it exists; it vanished since (an unset variable, a moved file).
        raise RuntimeError("a paging secret configured in fireline.yaml cannot be read")
    return raw.decode()


def activities(
    client: Client,
    config: FirelineConfig,
    task_queue: str,
    settings: Settings,
    echo: Any = None,
) -> list[Any]:
    """Every activity the fireline worker registers, bound to their clients.

    ``settings`` is required: the inbox and the acknowledge-link secret live in its state
    directory, which must never default to wherever the process happens to run.
    """
    service = IncidentService(client, config, task_queue)
    runbooks = RunbookService(client, config, task_queue, load_library(settings), incidents=service)
    incidents = IncidentActivities(service, runbooks)
    secret = ack_secret(settings)
    ttl = config.paging.ack_link_ttl

    def sign(page: Page) -> str:
        return link_for(
            settings.base_url,
            page.incident_id,
            page.recipient,
            secret,
            now=datetime.now(UTC),
            ttl=ttl,
        )

    notify = NotifyActivities(notifiers(config, settings.state_dir / "inbox", echo), sign)
    return [
        incidents.correlate,
        incidents.declare_from_alerts,
        incidents.attach_alerts,
        notify.send,
        # Past incidents like a new one, for its timeline (read through the same service).
        KnowledgeActivities(KnowledgeBase(RecordLoader(service))).similar,
        *runbook_actions(client, config),
        *status_page_activities(client, config, task_queue),
        *war_room_activities_for(config),
        *postmortem_activities(client, config),
    ]


def war_room_activities_for(config: FirelineConfig) -> list[Any]:
    """``war_room.open`` and ``war_room.post``, when a war room is configured."""
    if config.war_room is None:
        return []
    rooms = war_room_activities(config.war_room, httpx.AsyncClient(timeout=httpx.Timeout(10.0)))
    return [rooms.open, rooms.post]


def status_page_activities(client: Client, config: FirelineConfig, task_queue: str) -> list[Any]:
    """``status_page.publish``: to Atlassian Statuspage, or to fireline's own page."""
    page = config.status_page
    if page is None:
        # Nothing to publish to: communications reports customers as not reached.
        return []
    provider: StatusPageProvider
    if page.provider == "atlassian":
        assert page.atlassian is not None  # the config refuses atlassian without it
        provider = StatuspagePublisher(
            client=httpx.AsyncClient(timeout=httpx.Timeout(10.0)),
            api_key=_text(page.atlassian.api_key),
            page_id=page.atlassian.page_id,
            component_ids=page.statuspage_ids(),
            base_url=page.atlassian.base_url,
        )
    else:
        provider = BuiltinStatusPage(client, task_queue=task_queue, start_input=page.start_input())
    return [StatusPageActivities(provider).publish]


def runbook_actions(client: Client, config: FirelineConfig) -> list[Any]:
    """The actions and the metrics query runbook steps use (Kubernetes runs per cluster)."""
    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0))
    endpoints = {
        name: Endpoint(e.base_url, e.auth_headers(), e.timeout.total_seconds())
        for name, e in config.http_endpoints.items()
    }
    sources = {
        name: Endpoint(s.url, s.auth_headers(), s.timeout.total_seconds())
        for name, s in config.metrics.items()
    }
    return [
        *action_activities(http=http, endpoints=endpoints, temporal=client),
        *MetricsActivities(client=http, sources=sources).activities(),
    ]
