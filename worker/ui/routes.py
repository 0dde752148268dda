"""The commander's dashboard under ``/ui``: server-rendered pages, forms, one live stream.

Every button posts a form that becomes the same incident Update (``IncidentService.act``)
or run decision (``RunbookService.decide``) the API and CLI use, so the workflow's
validators decide and the timeline records; the page then redirects back (post/redirect/
get) with the outcome, or the validator's refusal, as a one-shot message.

Without a session, pages redirect to the login form and posts are refused (401) without
acting; a post whose CSRF field is not the one bound to the session is refused (403).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from markupsafe import Markup
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from worker.config import FirelineConfig
from worker.errors import FirelineError, NotFound
from worker.incident_service import IncidentService
from worker.runbook_service import RunbookService
from worker.settings import is_loopback
from worker.ui.forms import ACTIONS, Form, FormError, build_update
from worker.ui.live import LiveFeed, Snapshot, version_of
from worker.ui.render import STATIC, IncidentView, environment, paged_users
from worker.ui.sessions import (
    DEFAULT_TTL,
    FLASH_COOKIE,
    LOGIN_COOKIE,
    LOGIN_FORM_TTL,
    SESSION_COOKIE,
    LoginRefused,
    Session,
    SessionSigner,
    local_mode,
    local_user,
    session_key,
    user_from_token,
)
from workflows.contracts import IncidentState, IncidentStatus, RunbookRunState, RunSummary
from workflows.lifecycle import is_open
from workflows.runbook import RunbookWorkflow

log = logging.getLogger("fireline.ui")

BASE = "/ui"
INCIDENT_ID = re.compile(r"INC-[0-9]+")
RUN_OR_STEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
ACTIVE_RUN = ("running", "paused")

# Pages show people's words: no framing (clickjacking), no inline script, nothing cached.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
STATIC_TYPES = {"ui.css": "text/css; charset=utf-8", "live.js": "text/javascript; charset=utf-8"}


# How long the incident list waits for one incident's state before showing its summary.
LIST_QUERY_TIMEOUT = 2.0


def ui_router(
    incidents: IncidentService,
    runbooks: RunbookService,
    config: FirelineConfig,
    *,
    secret: bytes,
    session_ttl: timedelta = DEFAULT_TTL,
    live: LiveFeed | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> APIRouter:
    """The dashboard's routes, all under ``/ui``.

    ``secret`` is the acknowledge-link secret (``wiring.ack_secret``); the session key is
    derived from it. ``live`` sets the live stream's polling (default: every second).
    """
    signer = SessionSigner(session_key(secret), config, ttl=session_ttl, now=now)
    feed = live or LiveFeed()
    env = environment()
    static = {name: (STATIC / name).read_bytes() for name in STATIC_TYPES}
    router = APIRouter(prefix=BASE, include_in_schema=False)

    # --- plumbing ----------------------------------------------------------------------------

    def host(request: Request) -> str | None:
        return request.client.host if request.client else None

    def current(request: Request) -> Session | None:
        return signer.read(request.cookies.get(SESSION_COOKIE), host(request))

    def cookie(response: Response, request: Request, name: str, value: str, age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=age,
            path=BASE,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def render(template: str, **context: Any) -> str:
        return env.get_template(template).render(base=BASE, **context)

    def page(
        request: Request,
        template: str,
        session: Session | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        flash = signer.read_flash(request.cookies.get(FLASH_COOKIE))
        html = render(template, session=session, flash=flash, **context)
        response = HTMLResponse(html, status_code=status, headers=HEADERS)
        if FLASH_COOKIE in request.cookies:
            response.delete_cookie(FLASH_COOKIE, path=BASE)
        return response

    def message(
        request: Request,
        status: int,
        heading: str,
        text: str,
        session: Session | None = None,
        *,
        link: str = BASE,
        link_text: str = "Open incidents",
    ) -> HTMLResponse:
        return page(
            request,
            "message.html",
            session,
            status,
            heading=heading,
            text=text,
            link=link,
            link_text=link_text,
        )

    def back(request: Request, to: str, kind: str, text: str) -> RedirectResponse:
        response = RedirectResponse(to, status_code=303, headers=HEADERS)
        cookie(response, request, FLASH_COOKIE, signer.flash(kind, text), 60)
        return response

    def to_login(request: Request) -> RedirectResponse:
        target = request.url.path
        return RedirectResponse(f"{BASE}/login?next={quote(target)}", status_code=303)

    async def guarded(request: Request) -> tuple[Session, Form] | HTMLResponse:
        """The session and form of a post, or the refusal to send instead of acting."""
        session = current(request)
        if session is None:
            return message(
                request,
                401,
                "Not logged in",
                "Log in to the dashboard first; nothing was done.",
                link=f"{BASE}/login",
                link_text="Log in",
            )
        try:
            form = Form.parse(await request.body())
        except FormError as exc:
            return message(request, 400, "Form not readable", exc.reason, session)
        if not signer.csrf_ok(session, form.get("csrf") or None):
            return message(
                request,
                403,
                "Form refused",
                "This form did not come from your dashboard session (its CSRF token is "
                "missing or stale); nothing was done. Reload the page and try again.",
                session,
            )
        return session, form

    # --- login -------------------------------------------------------------------------------

    def safe_next(value: str | None) -> str:
        # Only our own pages: never another site, a scheme-relative URL, or a backslash.
        if not value or not (value == BASE or value.startswith(BASE + "/")):
            return BASE
        if "//" in value or "\\" in value or not value.isprintable():
            return BASE
        return value

    def login_page(request: Request, status: int, error: str | None, next_url: str) -> Response:
        local = local_mode(config)
        if local and not is_loopback(host(request) or ""):
            return message(
                request,
                403,
                "Local mode",
                "No API tokens are configured, so the dashboard answers only on this machine "
                "(loopback). Configure auth.tokens to use it from elsewhere.",
            )
        form_cookie, field = signer.login_form()
        response = page(
            request,
            "login.html",
            None,
            status,
            local=local,
            users=[(handle, user.name) for handle, user in sorted(config.users.items())],
            login_csrf=field,
            next=next_url,
            error=error,
        )
        cookie(response, request, LOGIN_COOKIE, form_cookie, int(LOGIN_FORM_TTL.total_seconds()))
        return response

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        next_url = safe_next(request.query_params.get("next"))
        if current(request) is not None:
            return RedirectResponse(next_url, status_code=303)
        return login_page(request, 200, None, next_url)

    @router.post("/login")
    async def login(request: Request) -> Response:
        try:
            form = Form.parse(await request.body())
        except FormError as exc:
            return login_page(request, 400, exc.reason, BASE)
        next_url = safe_next(form.get("next"))
        if not signer.login_form_ok(request.cookies.get(LOGIN_COOKIE), form.get("login_csrf")):
            return login_page(
                request, 403, "The login form expired or came from elsewhere; try again.", next_url
            )
        token: str | None = None
        try:
            if local_mode(config):
                user = local_user(config, form.get("user"), host(request))
            else:
                token = form.get("token")
                user = user_from_token(config, token)
        except LoginRefused as exc:
            log.info("dashboard login refused: %s", exc.reason)
            return login_page(request, 401, exc.reason, next_url)
        value, _ = signer.issue(user, token)
        response = RedirectResponse(next_url, status_code=303, headers=HEADERS)
        cookie(response, request, SESSION_COOKIE, value, int(signer.ttl.total_seconds()))
        response.delete_cookie(LOGIN_COOKIE, path=BASE)
        log.info("dashboard login: %s", user)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        checked = await guarded(request)
        if isinstance(checked, HTMLResponse):
            return checked
        session, _ = checked
        signer.revoke(session)
        response = RedirectResponse(f"{BASE}/login", status_code=303, headers=HEADERS)
        response.delete_cookie(SESSION_COOKIE, path=BASE)
        return response

    # --- reading -----------------------------------------------------------------------------

    async def run_state(summary: RunSummary) -> RunbookRunState | None:
        # Straight to the run's query: RunbookService.state would ask the incident again.
        handle = runbooks.client.get_workflow_handle(summary.workflow_id)
        try:
            state: RunbookRunState = await handle.query(RunbookWorkflow.state)
        except (WorkflowQueryFailedError, RPCError) as exc:
            log.info("run %s state not readable: %s", summary.run_id, exc)
            return None
        return state

    async def load_view(incident_id: str) -> IncidentView:
        state = await incidents.get(incident_id)
        active = [r for r in state.runs if r.status in ACTIVE_RUN]
        found = await asyncio.gather(*(run_state(r) for r in active))
        runs = {r.run_id: s for r, s in zip(active, found, strict=True) if s is not None}
        return IncidentView.of(state, runs, components(state.service), sorted(config.users))

    def components(service: str) -> list[str]:
        # The status page components an update may name: the ones post_update's validator
        # knows (none without a communications config).
        comms = config.comms_snapshot(service)
        if comms is None:
            return []
        return list(comms.components or comms.all_components)

    def sections(view: IncidentView, session: Session) -> dict[str, str]:
        return {
            "head": render("_head.html", view=view, session=session),
            "side": render("_side.html", view=view, session=session),
        }

    @router.get("")
    @router.get("/")
    async def incident_list(request: Request) -> Response:
        session = current(request)
        if session is None:
            return to_login(request)
        problem = None
        try:
            summaries = await incidents.list(statuses=[s for s in IncidentStatus if is_open(s)])
        except FirelineError as exc:
            summaries, problem = [], exc.reason

        async def state_of(incident_id: str) -> IncidentState | None:
            # A worker that is down or busy must not hang the whole list at 3 a.m.: past
            # the deadline the row shows what visibility says.
            try:
                return await asyncio.wait_for(incidents.get(incident_id), LIST_QUERY_TIMEOUT)
            except (FirelineError, TimeoutError):
                return None  # listed a moment ago, unreadable now: show what visibility says

        states = await asyncio.gather(*(state_of(s.id) for s in summaries))
        rows = []
        for summary, state in zip(summaries, states, strict=True):
            row: dict[str, Any] = {
                "id": summary.id,
                "title": summary.title,
                "service": summary.service,
                "severity": summary.severity.value if summary.severity else None,
                "status": summary.status.value if summary.status else None,
                "declared_at": summary.declared_at,
                "roles": [],
                "paged": [],
            }
            if state is not None:
                row.update(
                    title=state.title,
                    service=state.service,
                    severity=state.severity.value,
                    status=state.status.value,
                    declared_at=state.declared_at,
                    roles=[(role.value, user) for role, user in sorted(state.roles.items())],
                    paged=paged_users(state),
                )
            rows.append(row)
        return page(request, "incidents.html", session, rows=rows, now=now(), problem=problem)

    @router.get("/incidents/{incident_id}")
    async def incident_page(incident_id: str, request: Request) -> Response:
        session = current(request)
        if session is None:
            return to_login(request)
        if not INCIDENT_ID.fullmatch(incident_id):
            return message(request, 404, "No such incident", "Incident ids look like INC-42.")
        try:
            view = await load_view(incident_id)
        except NotFound as exc:
            return message(request, 404, "No such incident", exc.reason, session)
        except FirelineError as exc:
            return message(request, exc.status, "Incident not readable", exc.reason, session)
        parts = sections(view, session)
        return page(
            request,
            "incident.html",
            session,
            view=view,
            # Our own templates' output, already escaped: inserted as is.
            head=Markup(parts["head"]),
            side=Markup(parts["side"]),
            version=version_of(parts),
        )

    @router.get("/incidents/{incident_id}/events")
    async def incident_events(incident_id: str, request: Request) -> Response:
        session = current(request)
        if session is None:
            return Response("log in first\n", status_code=401, media_type="text/plain")
        if not INCIDENT_ID.fullmatch(incident_id):
            return Response("no such incident\n", status_code=404, media_type="text/plain")
        entry_template = env.get_template("_entry.html")

        async def load() -> Snapshot:
            view = await load_view(incident_id)
            timeline = view.state.timeline
            return Snapshot(
                ids=[e.id for e in timeline],
                render=lambda i: entry_template.render(entry=timeline[i]).strip(),
                sections=sections(view, session),
            )

        after = request.headers.get("last-event-id") or request.query_params.get("after")
        stream = feed.events(
            load, request.is_disconnected, after=after, version=request.query_params.get("v")
        )
        return StreamingResponse(
            stream,
            media_type="text/event-stream",
            headers={**HEADERS, "X-Accel-Buffering": "no"},
        )

    # --- acting ------------------------------------------------------------------------------

    @router.post("/incidents/{incident_id}/runs/{run_id}/steps/{step_id}/decide")
    async def decide(incident_id: str, run_id: str, step_id: str, request: Request) -> Response:
        checked = await guarded(request)
        if isinstance(checked, HTMLResponse):
            return checked
        session, form = checked
        if not (
            INCIDENT_ID.fullmatch(incident_id)
            and RUN_OR_STEP_ID.fullmatch(run_id)
            and RUN_OR_STEP_ID.fullmatch(step_id)
        ):
            return message(request, 404, "Nothing to decide", "No such incident, run or step.")
        to = f"{BASE}/incidents/{incident_id}"
        verdict = form.get("verdict")
        if verdict not in ("approve", "reject"):
            return back(request, to, "error", "verdict: choose Approve or Reject")
        approve = verdict == "approve"
        try:
            await runbooks.decide(
                incident_id, run_id, step_id, approve, session.user, form.get("comment")[:2000]
            )
        except FirelineError as exc:
            return back(request, to, "error", exc.reason)
        done = "approved" if approve else "rejected"
        log.info("%s %s %s in %s (dashboard)", session.user, done, step_id, run_id)
        return back(request, to, "ok", f"{session.user} {done} {step_id} in {run_id}")

    @router.post("/incidents/{incident_id}/{action}")
    async def incident_action(incident_id: str, action: str, request: Request) -> Response:
        checked = await guarded(request)
        if isinstance(checked, HTMLResponse):
            return checked
        session, form = checked
        if not INCIDENT_ID.fullmatch(incident_id) or action not in ACTIONS:
            return message(request, 404, "No such action", "Nothing was done.", session)
        to = f"{BASE}/incidents/{incident_id}"
        try:
            update, arg = build_update(action, form, session.user)
        except FormError as exc:
            return back(request, to, "error", f"{ACTIONS[action].label}: {exc.reason}")
        try:
            result = await incidents.act(incident_id, update, arg, actor=session.user)
        except FirelineError as exc:
            return back(request, to, "error", f"{ACTIONS[action].label}: {exc.reason}")
        text = result.entry.text
        log.info("%s: %s on %s (dashboard)", session.user, update, incident_id)
        return back(request, to, "ok", text)

    # --- assets ------------------------------------------------------------------------------

    @router.get("/static/{name}")
    async def asset(name: str) -> Response:
        body = static.get(name)
        if body is None:
            return Response("not found\n", status_code=404, media_type="text/plain")
        return Response(
            body,
            media_type=STATIC_TYPES[name],
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    return router
