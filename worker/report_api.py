"""HTTP routes for the knowledge base and the reports.

- ``GET /v1/incidents/search``: past incidents by service, labels, alert names, text, time;
- ``GET /v1/incidents/{id}/similar``: the past incidents most like this one (dashboard);
- ``GET /v1/reports/summary``: MTTA, MTTR, MTBF, counts, time in state, paging, action items;
- ``GET /v1/reports/alerts``: alert quality, noisiest first.

Times are ``since``/``until`` as a duration back from now (``30d``) or an ISO time; a
reversed or empty window is a 400 naming both bounds, a window with no incidents an honest
empty report. Mount this router *before* the ``/v1/incidents/{incident_id}`` route, or that
route claims ``/v1/incidents/search`` and answers 422.

No ``from __future__ import annotations`` here: FastAPI must evaluate the ``Caller`` alias,
which is local to ``report_router``.
"""

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from activities.contracts import SimilarIncidents, SimilarRequest
from worker.alert_quality import AlertQualityReport, alert_quality
from worker.errors import BadRequest
from worker.incident_metrics import MetricsReport, Window, WindowError, build_report, make_window
from worker.incident_metrics import parse_time as parse_window_time
from worker.incident_records import RecordLoader
from worker.knowledge import KnowledgeBase, SearchHit, SearchQuery
from workflows.durations import parse_duration

IncidentId = Annotated[str, Path(pattern=r"^INC-[0-9]+$", description="e.g. INC-42")]
_TIME_HELP = "a duration back from now (30d, 12h) or an ISO time"


def _window(since: str | None, until: str | None) -> Window:
    try:
        return make_window(since, until, datetime.now(UTC))
    except WindowError as exc:
        raise BadRequest(str(exc)) from None


def _labels(items: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadRequest(f"label: '{item}' is not KEY=VALUE")
        labels[key] = value
    return labels


def report_router(
    records: RecordLoader,
    caller: Callable[..., str],
    timezones: Mapping[str, str] | None = None,
) -> APIRouter:
    """The knowledge and report routes over ``records``.

    ``timezones`` (person → IANA zone, e.g. ``user_timezones(config.schedules)``) decides
    which pages were out of hours; people not in it are read in UTC.
    """
    knowledge = KnowledgeBase(records)
    zones = dict(timezones or {})
    router = APIRouter()
    Caller = Annotated[str, Depends(caller)]  # noqa: N806 - a type alias, named as one

    @router.get("/v1/incidents/search", tags=["knowledge"])
    async def search_incidents(
        _: Caller,
        service: str | None = None,
        label: Annotated[list[str] | None, Query(description="KEY=VALUE, repeatable")] = None,
        alert: Annotated[list[str] | None, Query(description="alert name, repeatable")] = None,
        q: Annotated[str | None, Query(max_length=500, description="words")] = None,
        since: Annotated[str | None, Query(description=_TIME_HELP)] = None,
        until: Annotated[str | None, Query(description=_TIME_HELP)] = None,
        drills: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> list[SearchHit]:
        """Past incidents (and their postmortems) by service, labels, alerts, text and time."""
        now = datetime.now(UTC)
        try:
            start = parse_window_time(since, now, "since") if since else None
            end = parse_window_time(until, now, "until") if until else None
        except WindowError as exc:
            raise BadRequest(str(exc)) from None
        if start is not None and end is not None:
            _window(since, until)  # refuses a reversed or empty window with both bounds
        query = SearchQuery(
            service=service,
            labels=_labels(label or []),
            alerts=alert or [],
            text=q,
            since=start,
            until=end,
            include_drills=drills,
            limit=limit,
        )
        return await knowledge.search(query)

    @router.get("/v1/incidents/{incident_id}/similar", tags=["knowledge"])
    async def similar_incidents(
        incident_id: IncidentId,
        _: Caller,
        limit: Annotated[int, Query(ge=1, le=20)] = 3,
    ) -> SimilarIncidents:
        """The finished past incidents most like this one, why, and what resolved them."""
        record = await records.record(incident_id)
        req = SimilarRequest(
            incident_id=record.id,
            service=record.service,
            title=record.title,
            summary=record.summary,
            labels=record.labels,
            alert_names=record.alert_names,
            drill=record.drill,
            limit=limit,
        )
        return await knowledge.similar(req)

    @router.get("/v1/reports/summary", tags=["reports"])
    async def summary_report(
        _: Caller,
        since: Annotated[str | None, Query(description=_TIME_HELP + "; default 30d")] = None,
        until: Annotated[str | None, Query(description=_TIME_HELP + "; default now")] = None,
        drills: bool = False,
    ) -> MetricsReport:
        """MTTA, MTTR (mitigation, resolution), MTBF per service, counts, states, paging."""
        win = _window(since, until)
        loaded = await records.load(win.since, win.until)
        items = await records.action_items(win.since, win.until)
        return build_report(
            loaded.records,
            win,
            action_items=items,
            timezones=zones,
            include_drills=drills,
            skipped=loaded.skipped,
        )

    @router.get("/v1/reports/alerts", tags=["reports"])
    async def alerts_report(
        _: Caller,
        since: Annotated[str | None, Query(description=_TIME_HELP + "; default 30d")] = None,
        until: Annotated[str | None, Query(description=_TIME_HELP + "; default now")] = None,
        quick: Annotated[
            str, Query(description="'resolved by itself' means within this (default 10m)")
        ] = "10m",
        drills: bool = False,
    ) -> AlertQualityReport:
        """Per alert name: fired, paged, led to an incident, acknowledged, resolved by itself."""
        win = _window(since, until)
        try:
            within = parse_duration(quick)
        except ValueError as exc:
            raise BadRequest(f"quick: {exc}") from None
        loaded = await records.load(win.since, win.until)
        return alert_quality(
            loaded.records, win, quick=within, timezones=zones, include_drills=drills
        )

    return router
