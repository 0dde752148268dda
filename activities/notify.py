"""Paging as a Temporal activity: one ``notify.send`` dispatching to the configured providers.

``worker/wiring.py`` builds one provider per configured vendor and hands them to
:class:`NotifyActivities`; tests hand it providers pointed at loopback fakes. Every provider
passes the page's dedup key to its vendor (PagerDuty ``dedup_key``, Opsgenie ``alias``,
webhook ``Idempotency-Key``, email ``Message-ID``, inbox key), so an activity retry never
pages anyone twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from temporalio import activity
from temporalio.common import MetricMeter

from activities.contracts import ContactKind, Page, PageAction, PageResult
from activities.http import DeliveryError

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    """One notification vendor; trigger, acknowledge and resolve go by ``page.action``."""

    async def notify(self, page: Page) -> PageResult:
        """Deliver ``page`` idempotently, or raise a :class:`DeliveryError`."""
        ...


class ProviderNotConfigured(DeliveryError):
    """A page asked for a contact kind that no provider was wired for."""

    def __init__(self, kind: ContactKind) -> None:
        """Build a non-retryable error naming the missing kind."""
        super().__init__(
            f"no {kind.value} provider is configured",
            type="ProviderNotConfigured",
            non_retryable=True,
        )


class NotifyActivities:
    """The paging activities; the constructor receives the providers by contact kind."""

    def __init__(
        self,
        providers: Mapping[ContactKind, Notifier],
        link_for: Callable[[Page], str] | None = None,
    ) -> None:
        """Keep the providers; kinds without one fail with ``ProviderNotConfigured``.

        ``link_for`` signs a one-click acknowledge link for a trigger. It runs here, in the
        activity, because a signed link is a credential and must not enter workflow history.
        """
        self._providers = dict(providers)
        self._link_for = link_for

    @activity.defn(name="notify.send")
    async def send(self, page: Page) -> PageResult:
        """Deliver one page (trigger, acknowledge or resolve) through its contact method."""
        provider = self._providers.get(page.contact.kind)
        if provider is None:
            raise ProviderNotConfigured(page.contact.kind)
        wants_link = page.action is PageAction.TRIGGER and not page.informational
        if self._link_for and wants_link and not page.ack_url:
            page = page.model_copy(update={"ack_url": self._link_for(page)})
        pages = _meter().create_counter(
            "fireline_pages", "Pages and follow-ups sent, by provider, action and outcome."
        )
        labels = {"provider": page.contact.kind.value, "action": page.action.value}
        try:
            result = await provider.notify(page)
        except Exception:
            pages.add(1, {**labels, "outcome": "failed"})
            raise
        pages.add(1, {**labels, "outcome": "delivered" if result.delivered else "not_delivered"})
        logger.info(
            "%s %s to %s via %s: %s",
            page.action.value,
            page.dedup_key,
            page.recipient,
            page.contact.kind.value,
            result.detail,
            extra={"incident_id": page.incident_id},
        )
        return result


def _meter() -> MetricMeter:
    """The activity's metric meter; a no-op one when called outside a worker (tests, CLI)."""
    try:
        return activity.metric_meter()
    except RuntimeError:
        return MetricMeter.noop
