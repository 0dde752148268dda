"""fireline's HTTP API (OpenAPI at /docs).

Every write goes through an incident Update, so the API, the CLI and later the dashboard
obey the same validators. Errors are JSON ``{"error": code, "reason": text}``; a malformed
body is a 422 naming each bad field; a refused Update is the validator's reason with 403
or 409. Callers are identified by a bearer token, or in local mode (no tokens configured,
loopback only) by the ``X-Fireline-User`` header.
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client
from temporalio.service import RPCError

from worker.ack_pages import AckOutcome, AckResult, ack_router
from worker.alert_api import alert_router
from worker.alert_intake import AlertIntake
from worker.codec_server import install_codec_server
from worker.config import FirelineConfig
from worker.errors import BadRequest, Conflict, FirelineError, NotFound, Unauthorized
from worker.incident_records import RecordLoader, action_items_from_workflows, user_timezones
from worker.incident_service import DeclareRequest, IncidentService, IncidentSummary
from worker.metrics import Registry
from worker.postmortem_api import postmortem_router
from worker.report_api import report_router
from worker.report_metrics import ReportGauges, ReportMetricsRefresher
from worker.runbook_api import runbook_router
from worker.runbook_library import load_library
from worker.runbook_service import RunbookService
from worker.settings import Settings
from worker.silence_service import SilenceService
from worker.slack_commands import slack_command_router
from worker.status_page_web import status_page_router, workflow_snapshot_source
from worker.ui import ui_router
from worker.ui.live import LiveFeed
from worker.war_room_config import signing_secret
from workflows.contracts import (
    Acknowledge,
    AddNote,
    AddOverride,
    AssignRole,
    Audience,
    Close,
    ComponentStatus,
    Escalate,
    IncidentState,
    IncidentStatus,
    MarkMitigated,
    PostUpdate,
    PublicStatus,
    RemoveOverride,
    Reopen,
    Resolve,
    Role,
    SetSeverity,
    Severity,
    StatusImpact,
    StoredOverride,
    UpdateResult,
)
from workflows.durations import Duration
from workflows.incident import IncidentWorkflow
from workflows.lifecycle import is_open
from workflows.oncall import final_shifts, on_call_at, with_override
from workflows.suppression import AddSilence, ExpireSilence, Silence

log = logging.getLogger("fireline.api")

USER_HEADER = "X-Fireline-User"
IncidentId = Annotated[str, Path(pattern=r"^INC-[0-9]+$", description="e.g. INC-42")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcknowledgeBody(_Body):
    """No fields: the caller acknowledges."""


class RoleBody(_Body):
    """Give ``role`` to ``user``; ``user: null`` vacates the role."""

    role: Role
    user: str | None


class SeverityBody(_Body):
    """New severity and why."""

    severity: Severity
    reason: str = Field(min_length=1, max_length=2000)


class NoteBody(_Body):
    """A note for the timeline."""

    text: str = Field(min_length=1, max_length=20_000)


class MitigateBody(_Body):
    """Optional summary of what stopped the impact."""

    summary: str = Field(default="", max_length=20_000)


class ResolveBody(_Body):
    """How it ended."""

    summary: str = Field(min_length=1, max_length=20_000)


class ReopenBody(_Body):
    """Why it is back."""

    reason: str = Field(min_length=1, max_length=2000)


class UpdateBody(_Body):
    """A stakeholder update; unset fields follow the incident (see PostUpdate)."""

    text: str = Field(min_length=1, max_length=100_000)
    status: PublicStatus | None = None
    impact: StatusImpact | None = None
    components: dict[str, ComponentStatus] | None = None
    audiences: list[Audience] = Field(default_factory=lambda: list(Audience), min_length=1)


class CloseBody(_Body):
    """No fields: close now."""


class EscalateBody(_Body):
    """No fields: page the next level now."""


class OverrideBody(_Body):
    """Put ``user`` on call on ``schedule`` for [start, end)."""

    schedule: str
    user: str
    start: datetime
    end: datetime
    reason: str = Field(default="", max_length=2000)


class SilenceBody(_Body):
    """Matchers (routing syntax) and a time span; ``duration`` or ``ends_at``."""

    matchers: list[str] = Field(min_length=1)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    duration: Duration | None = None
    comment: str = Field(min_length=1, max_length=2000)


def create_app(
    config: FirelineConfig,
    client: Client,
    task_queue: str,
    *,
    ack_secret: bytes | None = None,
    ui_origins: Sequence[str] = (),
    live: LiveFeed | None = None,
) -> FastAPI:
    """The API application, bound to a Temporal client and a loaded config.

    ``ack_secret`` verifies one-click acknowledge links; workers sign with the same one.
    ``ui_origins`` are the Temporal UIs that may call the codec server (when encrypting).
    ``live`` is how the dashboard polls for live timelines (tests poll faster).
    """
    service = IncidentService(client, config, task_queue)
    metrics = Registry()
    # One loader (and its cache of ended incidents) for search, reports and /metrics.
    records = RecordLoader(service, action_items=action_items_from_workflows(service))
    zones = user_timezones(config.schedules)
    report_gauges = ReportGauges()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # MTTA/MTTR/MTBF gauges are recomputed in the background, never per scrape.
        refresher = asyncio.create_task(
            ReportMetricsRefresher(records, report_gauges, timezones=zones).run()
        )
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    app = FastAPI(
        title="fireline",
        description="Incident response on durable Temporal workflows.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.metrics = metrics
    _install_error_handlers(app)
    silences = SilenceService(client, task_queue)
    app.include_router(
        alert_router(config, AlertIntake(client, config, task_queue, silences), metrics)
    )

    async def acknowledge_from_link(incident_id: str, user: str | None) -> AckOutcome:
        # The same Update as the CLI and API, so the validators and the timeline apply.
        actor = user or "ack-link"
        try:
            result = await service.act(
                incident_id, "acknowledge", Acknowledge(actor=actor), actor=actor
            )
        except NotFound:
            return AckOutcome(AckResult.UNKNOWN_INCIDENT, incident_id)
        except Conflict:
            state = await service.get(incident_id)
            if is_open(state.status):
                return AckOutcome(
                    AckResult.ALREADY_ACKNOWLEDGED, incident_id, state.title, state.acknowledged_by
                )
            return AckOutcome(AckResult.CLOSED, incident_id, state.title)
        return AckOutcome(AckResult.ACKNOWLEDGED, incident_id, result.state.title, actor)

    # One secret signs acknowledge links and dashboard sessions; replicas share it.
    signing = ack_secret or secrets.token_bytes(32)
    app.include_router(
        ack_router(
            signing,
            acknowledge_from_link,
            now=lambda: datetime.now(UTC),
        )
    )

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def prometheus_metrics() -> str:
        """Process counters and incident metrics (MTTA, MTTR, MTBF...) in Prometheus format."""
        return metrics.render() + report_gauges.render()

    def caller(
        authorization: Annotated[str | None, Header()] = None,
        x_fireline_user: Annotated[str | None, Header(alias=USER_HEADER)] = None,
    ) -> str:
        if config.auth.tokens:
            scheme, _, token = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise Unauthorized("send 'Authorization: Bearer <token>' (CLI: FIRELINE_TOKEN)")
            user = config.token_user(token.strip())
            if user is None:
                raise Unauthorized("the bearer token is not valid")
            return user
        if not x_fireline_user:
            raise Unauthorized(
                f"local mode: say who you are with the {USER_HEADER} header "
                "(CLI: --as USER or FIRELINE_USER)"
            )
        return x_fireline_user

    Caller = Annotated[str, Depends(caller)]  # noqa: N806 - a type alias, named as one
    install_codec_server(app, client.data_converter.payload_codec, caller, ui_origins)
    # The library is loaded now, so a broken runbook stops the start with every problem.
    runs = RunbookService(client, config, task_queue, load_library(Settings()), incidents=service)
    app.include_router(runbook_router(runs, caller))
    # Before /v1/incidents/{incident_id}, which would otherwise claim /v1/incidents/search.
    app.include_router(report_router(records, caller, zones))
    app.include_router(postmortem_router(service, caller))
    app.include_router(ui_router(service, runs, config, secret=signing, live=live))
    slack_secret = signing_secret(config.war_room)
    if slack_secret:
        # Slack signs its requests; the router checks that, not fireline's tokens.
        app.include_router(
            slack_command_router(
                service, config.users, slack_secret, http=httpx.AsyncClient(timeout=5.0)
            )
        )

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        """People who open fireline's address want the dashboard."""
        return RedirectResponse("/ui", status_code=307)

    page = config.status_page
    if page is not None and page.provider == "builtin":
        # Public: no caller; it shows only what was published to customers.
        app.include_router(status_page_router(workflow_snapshot_source(client), page))

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Temporal is reachable."""
        try:
            await client.count_workflows("WorkflowType = 'IncidentWorkflow'")
        except RPCError as exc:
            return JSONResponse(
                {"status": "unavailable", "reason": f"Temporal: {exc.message}"}, status_code=503
            )
        return JSONResponse({"status": "ready"})

    @app.post("/v1/incidents", status_code=201, tags=["incidents"])
    async def declare(body: DeclareRequest, actor: Caller) -> IncidentState:
        """Declare an incident."""
        return await service.declare(body, actor)

    @app.get("/v1/incidents", tags=["incidents"])
    async def list_incidents(
        _: Caller,
        status: Annotated[list[IncidentStatus] | None, Query()] = None,
        severity: Severity | None = None,
        service_name: Annotated[str | None, Query(alias="service")] = None,
        include_closed: Annotated[bool, Query(alias="all")] = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[IncidentSummary]:
        """Incidents from visibility, newest first: open ones unless ``status`` or ``all``."""
        statuses = status or (None if include_closed else [s for s in IncidentStatus if is_open(s)])
        return await service.list(
            statuses=statuses, severity=severity, service=service_name, limit=limit
        )

    @app.get("/v1/incidents/{incident_id}", tags=["incidents"])
    async def get_incident(incident_id: IncidentId, _: Caller) -> IncidentState:
        """State and timeline."""
        return await service.get(incident_id)

    def action(
        path: str, update: Callable[..., Any], body_type: type[_Body], build: Callable[..., Any]
    ) -> None:
        async def endpoint(incident_id: IncidentId, body: Any, actor: Caller) -> UpdateResult:
            return await service.act(incident_id, update.__name__, build(body, actor), actor=actor)

        endpoint.__annotations__["body"] = body_type
        endpoint.__doc__ = update.__doc__
        app.post(f"/v1/incidents/{{incident_id}}/{path}", tags=["incidents"], name=path)(endpoint)

    action(
        "acknowledge",
        IncidentWorkflow.acknowledge,
        AcknowledgeBody,
        lambda b, a: Acknowledge(actor=a),
    )
    action(
        "roles",
        IncidentWorkflow.assign_role,
        RoleBody,
        lambda b, a: AssignRole(actor=a, role=b.role, user=b.user),
    )
    action(
        "severity",
        IncidentWorkflow.set_severity,
        SeverityBody,
        lambda b, a: SetSeverity(actor=a, severity=b.severity, reason=b.reason),
    )
    action("notes", IncidentWorkflow.add_note, NoteBody, lambda b, a: AddNote(actor=a, text=b.text))
    action(
        "mitigate",
        IncidentWorkflow.mark_mitigated,
        MitigateBody,
        lambda b, a: MarkMitigated(actor=a, summary=b.summary),
    )
    action(
        "resolve",
        IncidentWorkflow.resolve,
        ResolveBody,
        lambda b, a: Resolve(actor=a, summary=b.summary),
    )
    action(
        "reopen",
        IncidentWorkflow.reopen,
        ReopenBody,
        lambda b, a: Reopen(actor=a, reason=b.reason),
    )
    action(
        "updates",
        IncidentWorkflow.post_update,
        UpdateBody,
        lambda b, a: PostUpdate(actor=a, **b.model_dump()),
    )
    action("close", IncidentWorkflow.close, CloseBody, lambda b, a: Close(actor=a))
    action("escalate", IncidentWorkflow.escalate, EscalateBody, lambda b, a: Escalate(actor=a))

    @app.post("/v1/silences", status_code=201, tags=["silences"])
    async def add_silence(
        body: SilenceBody,
        actor: Caller,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> Silence:
        """Mute matching alerts for a while; they are still recorded, with the silence named."""
        return await silences.add(
            AddSilence(
                matchers=body.matchers,
                starts_at=body.starts_at,
                ends_at=body.ends_at,
                duration=body.duration,
                created_by=actor,
                comment=body.comment,
            ),
            request_id=idempotency_key,
        )

    @app.get("/v1/silences", tags=["silences"])
    async def list_silences(
        _: Caller, include_expired: Annotated[bool, Query(alias="all")] = False
    ) -> list[Silence]:
        """Active and pending silences (``all=true``: expired ones too)."""
        return await silences.list(include_expired)

    @app.delete("/v1/silences/{silence_id}", tags=["silences"])
    async def expire_silence(silence_id: str, actor: Caller) -> Silence:
        """End a silence now."""
        return await silences.expire(ExpireSilence(id=silence_id, actor=actor))

    overrides = service.overrides

    @app.post("/v1/oncall/overrides", status_code=201, tags=["on-call"])
    async def add_override(body: OverrideBody, actor: Caller) -> StoredOverride:
        """Put someone on call on a schedule for a while (covering, swaps)."""
        if body.schedule not in config.schedules:
            known = ", ".join(sorted(config.schedules)) or "none configured"
            raise BadRequest(f"schedule: unknown schedule '{body.schedule}'; known: {known}")
        if config.users and body.user not in config.users:
            raise BadRequest(f"user: unknown user '{body.user}'")
        return await overrides.add(
            AddOverride(
                schedule=body.schedule,
                user=body.user,
                start=body.start,
                end=body.end,
                created_by=actor,
                reason=body.reason,
            )
        )

    @app.get("/v1/oncall/overrides", tags=["on-call"])
    async def list_overrides(_: Caller, schedule: str | None = None) -> list[StoredOverride]:
        """Overrides not yet over."""
        return await overrides.list(schedule)

    @app.delete("/v1/oncall/overrides/{override_id}", tags=["on-call"])
    async def remove_override(override_id: str, actor: Caller) -> StoredOverride:
        """Take an override back."""
        return await overrides.remove(RemoveOverride(id=override_id, actor=actor))

    @app.get("/v1/oncall", tags=["on-call"])
    async def oncall_now(_: Caller) -> list[dict[str, Any]]:
        """Who is on call now on every schedule, overrides included."""
        stored = await overrides.list()
        now = datetime.now(UTC)
        rows = []
        for name in sorted(config.schedules):
            effective = config.schedule(name)
            for item in stored:
                if item.schedule == name:
                    effective = with_override(effective, item.override)
            shift = on_call_at(effective, now)
            rows.append(
                {
                    "schedule": name,
                    "user": shift.user if shift else None,
                    "until": shift.end.isoformat() if shift else None,
                    "source": shift.source if shift else None,
                }
            )
        return rows

    @app.get("/v1/oncall/{schedule}", tags=["on-call"])
    async def oncall(
        schedule: str, _: Caller, days: Annotated[int, Query(ge=1, le=90)] = 14
    ) -> dict[str, Any]:
        """Who is on call now and the final shifts for the coming days, overrides included."""
        if schedule not in config.schedules:
            raise NotFound(f"no schedule '{schedule}'")
        effective = config.schedule(schedule)
        for item in await overrides.list(schedule):
            effective = with_override(effective, item.override)
        now = datetime.now(UTC)
        current = on_call_at(effective, now)
        return {
            "schedule": schedule,
            "timezone": effective.timezone,
            "now": current.model_dump(mode="json") if current else None,
            "shifts": [
                s.model_dump(mode="json")
                for s in final_shifts(effective, now, now + timedelta(days=days))
            ],
        }

    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FirelineError)
    async def fireline_error(_: Request, exc: FirelineError) -> JSONResponse:
        code = type(exc).__name__.lower()
        body: dict[str, Any] = {"error": code, "reason": exc.reason}
        errors = getattr(exc, "errors", None)
        if errors:
            body["errors"] = errors
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [_field_error(err) for err in exc.errors()]
        reason = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return JSONResponse(
            {"error": "invalid_request", "reason": reason, "fields": fields}, status_code=422
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: log it whole, answer without leaking internals.
        log.exception("unexpected error handling request")
        return JSONResponse(
            {"error": "internal", "reason": "unexpected error; the fireline log has the details"},
            status_code=500,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": "http_error", "reason": str(exc.detail)}, status_code=exc.status_code
        )


def _field_error(err: Any) -> dict[str, str]:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or "body"
    if err.get("type") == "extra_forbidden":
        message = "unknown field"
    elif err.get("type") == "json_invalid":
        field, message = "body", f"malformed JSON: {err.get('ctx', {}).get('error', 'invalid')}"
    else:
        message = str(err.get("msg", "invalid"))
    return {"field": field, "message": message}
