"""The reduced fault-injection run (``make chaos`` runs the full one), and proof it can fail.

The reduced run is the real scenario on a small scale: worker SIGKILLs, a Temporal
restart, flaky PagerDuty and Kubernetes, triple deliveries. It asserts every invariant of
``chaos.invariants`` held. The planted-bug tests show the checker reports a duplicate page
when a retry changes the dedup key, both for one notifier call and for a whole run.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from activities.contracts import ContactKind, ContactMethod, Page, PageSeverity
from activities.http import DeliveryError
from activities.providers.pagerduty import PagerDutyNotifier
from chaos.invariants import pages_delivered_once
from chaos.providers import FlakyPagerDuty
from chaos.scenario import ChaosOptions, run_scenario
from chaos.table import render

KEY = "k" * 32


def _page(dedup_key: str) -> Page:
    return Page(
        dedup_key=dedup_key,
        incident_id="INC-7",
        title="Checkout errors",
        severity=PageSeverity.SEV2,
        recipient="alice",
        contact=ContactMethod(kind=ContactKind.PAGERDUTY),
    )


async def _page_with_a_lost_answer(retry_key: str) -> FlakyPagerDuty:
    """Page INC-7; PagerDuty acts but the answer is lost; retry with ``retry_key``."""
    vendor = FlakyPagerDuty([KEY], rate=0.0, seed=0)
    vendor.start()
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            notifier = PagerDutyNotifier(
                client=client, routing_keys={"default": KEY}, base_url=vendor.url
            )
            vendor.lose_answers(1)
            with pytest.raises(DeliveryError):
                await notifier.notify(_page("INC-7-l0-a0-alice-0"))
            result = await notifier.notify(_page(retry_key))
            assert result.delivered
    finally:
        vendor.stop()
    return vendor


async def test_a_retry_with_the_same_key_pages_once() -> None:
    vendor = await _page_with_a_lost_answer("INC-7-l0-a0-alice-0")
    verdict = pages_delivered_once(vendor.alerts, ["INC-7"])
    assert verdict.held, verdict.problems
    assert len(vendor.alerts) == 1


async def test_the_checker_sees_the_duplicate_page_of_a_retry_with_a_new_key() -> None:
    vendor = await _page_with_a_lost_answer("INC-7-l0-a0-alice-0-attempt2")
    verdict = pages_delivered_once(vendor.alerts, ["INC-7"])
    assert not verdict.held
    assert "INC-7 → alice: paged under 2 keys" in verdict.problems


@pytest.mark.integration
@pytest.mark.timeout(900)
async def test_a_reduced_chaos_run_keeps_every_invariant(tmp_path: Path) -> None:
    report = await run_scenario(
        tmp_path,
        ChaosOptions(
            seed=7,
            kills=3,
            incidents=2,
            kill_after=(2.0, 4.0),
            rollout_delay=2.0,
            settle_timeout=240.0,
        ),
    )
    table = render(report)
    assert report.faults["worker SIGKILLs"] == 3, table
    assert report.faults["Temporal server restarts"] == 1, table
    assert report.held, table


@pytest.mark.integration
@pytest.mark.timeout(900)
async def test_a_chaos_run_with_attempt_salted_dedup_keys_reports_the_duplicate_pages(
    tmp_path: Path,
) -> None:
    # No kills or restart needed: every first trigger loses its answer and is retried.
    options = ChaosOptions(
        seed=3,
        kills=0,
        incidents=2,
        fault_rate=0.0,
        restart_server=False,
        settle_timeout=120.0,
        # The planted bug leaves the first alerts open for good: no point waiting long.
        converge_timeout=15.0,
        break_dedup_keys=True,
    )
    report = await run_scenario(tmp_path, options)
    table = render(report)
    pages = next(i for i in report.invariants if i.name.startswith("every page delivered"))
    assert not pages.held, table
    assert any("paged under 2 keys" in p for p in pages.problems), table
    assert not report.held, table
