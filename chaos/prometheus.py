"""The real Prometheus for recovery validation, behind a loopback proxy that breaks calls.

The runbook's ``check`` step measures with ``metrics.query`` → ``POST /api/v1/query``.
In the chaos run that request goes to :class:`FlakyPrometheusProxy`, which forwards it to
a real Prometheus (the Debian binary, started with ``tests.e2e.harness.Prometheus``)
scraping :class:`ErrorRatioSource`, and fails a seeded share of the calls on the way
(429 as a rate-limiting front such as a Cortex/Thanos gateway answers, 5xx, resets,
timeouts). The error ratio it exports follows the sandbox cluster: high while checkout
runs the bad image, low once the rollback restored the good one, so the check validates
what the rollback really did.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chaos.providers import FAULTS, FaultDraws, Flaky, Forwarder
from tests.e2e.harness import MetricSource, Prometheus
from worker.k8s_emulator.demo import BAD_IMAGE
from worker.k8s_emulator.resources import DEPLOYMENTS
from worker.k8s_emulator.server import K8sEmulator

ERROR_RATIO = "chaos_http_error_ratio"
BAD_RATIO = 0.4
GOOD_RATIO = 0.01


class PrometheusForwarder(Forwarder):
    """A loopback proxy for the Prometheus HTTP API."""

    def error_body(self, status: int) -> Any:
        """Prometheus' error envelope, as a gateway in front of it would answer too."""
        kind = "unavailable" if status in (429, 502, 503) else "internal"
        return {"status": "error", "errorType": kind, "error": f"injected HTTP {status}"}


class FlakyPrometheusProxy(Flaky, PrometheusForwarder):
    """The forwarding proxy, failing a seeded share of the calls (429, 5xx, resets, timeouts)."""

    def __init__(
        self, upstream: str, *, rate: float, seed: int, kinds: Iterable[str] = tuple(FAULTS)
    ) -> None:
        """Proxy to ``upstream``; fail ``rate`` of the requests, drawn from ``seed``."""
        PrometheusForwarder.__init__(self, upstream)
        self._init_flaky(FaultDraws(rate=rate, seed=seed, kinds=kinds))


class ErrorRatioSource(MetricSource):
    """checkout's 5xx ratio as a gauge, following the sandbox deployment's image."""

    def follow(self, emulator: K8sEmulator, namespace: str, deployment: str) -> None:
        """Set the gauge from the deployment's current pod template."""
        found: dict[str, Any] = emulator.api.get(DEPLOYMENTS, namespace, deployment)
        containers = found["spec"]["template"]["spec"]["containers"]
        bad = any(c.get("image") == BAD_IMAGE for c in containers)
        labels = {"namespace": namespace, "deployment": deployment}
        self.set(ERROR_RATIO, BAD_RATIO if bad else GOOD_RATIO, labels)


async def follow_cluster(
    source: ErrorRatioSource, emulator: K8sEmulator, namespace: str, deployment: str
) -> None:
    """Keep the gauge in step with the cluster until cancelled (twice a scrape interval)."""
    while True:
        source.follow(emulator, namespace, deployment)
        await asyncio.sleep(0.5)


class PrometheusStack:
    """Metric source → real Prometheus → flaky proxy; ``url`` is what fireline queries."""

    def __init__(
        self, workdir: Path, *, rate: float, seed: int, kinds: Iterable[str] = tuple(FAULTS)
    ) -> None:
        """Nothing runs until :meth:`start`."""
        self.workdir = workdir
        self.rate = rate
        self.seed = seed
        self.kinds = tuple(kinds)
        self.source = ErrorRatioSource()
        self.prometheus: Prometheus | None = None
        self.proxy: FlakyPrometheusProxy | None = None

    def start(self) -> None:
        """Start all three; blocking (call it in a thread), returns once scrapes work."""
        self.source.start()
        self.prometheus = Prometheus(
            workdir=self.workdir, scrape_targets=[self.source.target], scrape_interval="1s"
        )
        self.prometheus.start()
        self.prometheus.wait_until_wired()
        self.proxy = FlakyPrometheusProxy(
            self.prometheus.url, rate=self.rate, seed=self.seed, kinds=self.kinds
        )
        self.proxy.start()

    @property
    def url(self) -> str:
        """The proxy's base URL (fireline's ``metrics.prometheus.url``)."""
        if self.proxy is None:
            raise RuntimeError("the Prometheus stack is not started")
        return self.proxy.url

    def stop(self) -> None:
        """Stop whatever was started."""
        if self.proxy is not None:
            self.proxy.stop()
        if self.prometheus is not None:
            self.prometheus.stop()
        with contextlib.suppress(Exception):
            self.source.stop()
