"""The alert ingestion endpoints: Alertmanager/Grafana, PagerDuty Events v2, fireline JSON.

Senders retry, so every endpoint is idempotent (the group workflows deduplicate). A body
that cannot be used is a 4xx naming the field; in a mixed batch the valid alerts are kept
and each rejected one is reported with its index and reason. Every outcome is counted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from worker.alert_intake import AlertIntake
from worker.config import FirelineConfig, Integration
from worker.errors import Unauthorized
from worker.ingest import (
    IngestError,
    IngestResult,
    load_json,
    normalise_alertmanager,
    normalise_fireline,
    normalise_pagerduty,
    pagerduty_invalid,
    parse_pagerduty_event,
    verify_hmac_sha256,
)
from worker.metrics import Registry
from workflows.alerts import Alert, AlertSource

MAX_BODY = 10 * 1024 * 1024
# normalise_alertmanager / normalise_fireline: (body, *, integration, received_at) → result.
Normaliser = Callable[..., IngestResult]
SIGNATURE_HEADERS = ("X-Fireline-Signature", "X-Grafana-Alerting-Signature")


def alert_router(config: FirelineConfig, intake: AlertIntake, metrics: Registry) -> APIRouter:
    """Routes for the three alert sources."""
    router = APIRouter(tags=["alerts"])

    async def body_of(request: Request) -> bytes:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise IngestError(413, [f"body: larger than {MAX_BODY} bytes"])
        return raw

    def authenticate(request: Request, raw: bytes, kind: str) -> str | None:
        """The integration the request comes from (None in local/token mode)."""
        candidates = {n: i for n, i in config.integrations.items() if i.kind == kind}
        if not config.integrations:
            if config.auth.tokens:
                token = _bearer(request)
                if token is None or config.token_user(token) is None:
                    raise Unauthorized("send 'Authorization: Bearer <token>' of a fireline user")
            return None
        token = _bearer(request)
        for name, integration in candidates.items():
            if token and integration.token and integration.token.matches(token):
                return name
            if integration.hmac_secret and _signed(request, raw, integration):
                return name
        raise Unauthorized(
            f"no {kind} integration accepts these credentials: send its bearer token or "
            "sign the body (X-Fireline-Signature: sha256=<hex>)"
        )

    async def accept(result: IngestResult, source: str, labels: dict[str, str]) -> JSONResponse:
        alerts = [_with_labels(a, labels) for a in result.accepted]
        summary = await intake.ingest(alerts, result.received_at)
        metrics.alerts.inc(len(alerts), source=source, outcome="accepted")
        metrics.alerts.inc(len(result.rejected), source=source, outcome="rejected")
        body = {**result.response_body(), **summary.model_dump(exclude={"accepted"})}
        return JSONResponse(body, status_code=422 if result.rejected else 200)

    async def ingest(request: Request, source: str, normalise: Normaliser) -> JSONResponse:
        """Authenticate, normalise, route: the path both JSON alert formats share."""
        raw = await body_of(request)
        integration = _counting(metrics, source, lambda: authenticate(request, raw, source))
        result = _counting(
            metrics,
            source,
            lambda: normalise(
                load_json(raw), integration=integration, received_at=datetime.now(UTC)
            ),
        )
        return await accept(result, source, _labels(config, integration))

    @router.post("/v1/alerts/alertmanager")
    async def alertmanager(request: Request) -> JSONResponse:
        """Alertmanager webhook (payload version 4) and Grafana's Alertmanager-style webhook."""
        return await ingest(request, "alertmanager", normalise_alertmanager)

    @router.post("/v1/alerts")
    async def fireline_alerts(request: Request) -> JSONResponse:
        """fireline's own JSON: one alert or a list of alerts."""
        return await ingest(request, "fireline", normalise_fireline)

    @router.post("/v2/enqueue", status_code=202)
    async def pagerduty(request: Request) -> JSONResponse:
        """PagerDuty Events API v2: point anything that pages PagerDuty here instead."""
        source = "pagerduty"
        try:
            raw = await body_of(request)
            event = parse_pagerduty_event(load_json(raw, status=400))
        except IngestError as exc:
            metrics.alerts.inc(source=source, outcome="rejected")
            return JSONResponse(exc.pagerduty_body(), status_code=exc.status)
        name, integration = _pagerduty_integration(config, event.routing_key)
        if config.integrations and integration is None:
            metrics.alerts.inc(source=source, outcome="unauthorized")
            return JSONResponse(
                pagerduty_invalid(["routing_key: no integration has this routing key"]),
                status_code=400,
            )
        result = normalise_pagerduty(
            event,
            integration=name,
            # Without a configured integration, the event's component names the service.
            service=integration.service
            if integration
            else (event.payload.component if event.payload else None),
            received_at=datetime.now(UTC),
        )
        alerts = [_with_labels(a, _labels(config, name)) for a in result.accepted]
        # PagerDuty's model: one dedup_key, one alert group, whatever the event action.
        key = f"pagerduty/{name or '-'}/{result.dedup_key}"
        if result.acks:
            by = f"the source ({name or 'pagerduty events'})"
            found = await intake.acknowledge_keyed(key, by, result.received_at)
            # PagerDuty answers 202 for a key it has never seen; so do we, but counted.
            metrics.alerts.inc(source=source, outcome="acknowledged" if found else "unmatched_ack")
        else:
            await intake.ingest_keyed(alerts, result.received_at, key=key)
            metrics.alerts.inc(len(alerts), source=source, outcome="accepted")
        return JSONResponse(result.pagerduty_response(), status_code=202)

    return router


def _counting(metrics: Registry, source: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Unauthorized:
        metrics.alerts.inc(source=source, outcome="unauthorized")
        raise
    except IngestError:
        metrics.alerts.inc(source=source, outcome="rejected")
        raise


def _bearer(request: Request) -> str | None:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _signed(request: Request, raw: bytes, integration: Integration) -> bool:
    assert integration.hmac_secret is not None
    secret = integration.hmac_secret.value()
    if not secret:
        return False
    stamp = (
        request.headers.get(integration.hmac_timestamp_header)
        if integration.hmac_timestamp_header
        else None
    )
    for header in SIGNATURE_HEADERS:
        signature = request.headers.get(header)
        if signature and verify_hmac_sha256(
            secret, raw, signature, timestamp_header=stamp, now=datetime.now(UTC)
        ):
            return True
    return False


def _pagerduty_integration(
    config: FirelineConfig, routing_key: str
) -> tuple[str | None, Integration | None]:
    for name, integration in config.integrations.items():
        ref = integration.routing_key
        if integration.kind == "pagerduty" and ref is not None and ref.matches(routing_key):
            return name, integration
    # Local mode: any routing key is accepted and names its own group.
    return (None, None) if config.integrations else (_key_name(routing_key), None)


def _key_name(routing_key: str) -> str:
    return "key-" + hashlib.sha256(routing_key.encode()).hexdigest()[:8]


def _labels(config: FirelineConfig, integration: str | None) -> dict[str, str]:
    entry = config.integrations.get(integration or "")
    return dict(entry.labels) if entry else {}


def _with_labels(alert: Alert, extra: dict[str, str]) -> Alert:
    if not extra:
        return alert
    # The alert's own labels win: the integration only fills gaps (e.g. team).
    return alert.model_copy(update={"labels": {**extra, **alert.labels}})


__all__ = ["AlertSource", "alert_router"]
