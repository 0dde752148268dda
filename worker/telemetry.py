"""fireline observing itself: SDK and fireline metrics for Prometheus, OpenTelemetry traces.

- Metrics: the Temporal SDK runtime serves Prometheus text on ``FIRELINE_METRICS_ADDRESS``
  (e.g. ``0.0.0.0:9464``). Beside the SDK's own series (``temporal_workflow_failed``,
  ``temporal_activity_execution_failed``, task latencies, poller counts) it carries
  fireline's, emitted through the same meter: ``fireline_pages`` (by provider, action,
  outcome) from ``notify.send`` and ``fireline_approval_latency`` from runbook approvals.
  Alerts ingested are counted by the API at its own ``/metrics``.
- Traces: with ``FIRELINE_OTEL_ENDPOINT`` (an OTLP/HTTP collector, e.g.
  ``http://otel-collector:4318/v1/traces``) every client call, workflow and activity gets a
  span through ``temporalio.contrib.opentelemetry``, parented across processes by the
  headers Temporal carries.

A process has one SDK runtime; it is built once, on first use, from the first settings.
"""

from __future__ import annotations

import threading
from typing import Any

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from worker.settings import Settings

_lock = threading.Lock()
_runtime: Runtime | None = None
_tracing: list[Any] | None = None


def runtime(settings: Settings) -> Runtime | None:
    """The SDK runtime exporting Prometheus metrics, or None (the SDK's default runtime)."""
    global _runtime
    if not settings.metrics_address:
        return None
    with _lock:
        if _runtime is None:
            _runtime = Runtime(
                telemetry=TelemetryConfig(
                    metrics=PrometheusConfig(
                        bind_address=settings.metrics_address,
                        # Prometheus conventions: *_total counters, durations in seconds.
                        counters_total_suffix=True,
                        durations_as_seconds=True,
                        unit_suffix=True,
                    ),
                    global_tags={"namespace": settings.namespace},
                )
            )
        return _runtime


def tracing_interceptors(settings: Settings) -> list[Any]:
    """Client (and so worker) interceptors that trace, when a collector is configured."""
    global _tracing
    if not settings.otel_endpoint:
        return []
    with _lock:
        if _tracing is None:
            _tracing = [_tracing_interceptor(settings)]
        return _tracing


def _tracing_interceptor(settings: Settings) -> Any:
    # Imported here: processes without tracing never load the OpenTelemetry SDK.
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from temporalio.contrib.opentelemetry import TracingInterceptor

    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_endpoint))
    )
    trace.set_tracer_provider(provider)
    return TracingInterceptor(trace.get_tracer("fireline"))
