"""The ``fireline`` command.

Incident commands talk to the HTTP API (``FIRELINE_URL``, ``FIRELINE_TOKEN``, ``--as`` /
``FIRELINE_USER`` in local mode); ``up``, ``worker`` and ``api`` run fireline itself;
``replay`` checks exported histories against the code in this checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from worker import cli_report

EXIT_OK = 0
EXIT_REFUSED = 1  # fireline answered and said no (not found, not allowed, wrong state)
EXIT_USAGE = 2  # the command line or its input is wrong
EXIT_UNAVAILABLE = 3  # fireline or Temporal could not be reached or failed

EPILOG = """exit codes:
  0  done
  1  fireline refused (not found, not allowed, not in this state) — the reason is printed
  2  bad command line or input
  3  fireline or Temporal unreachable
"""


class CliError(Exception):
    """Print the message and exit with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# --- HTTP -----------------------------------------------------------------------------------


class ApiClient:
    """A thin client of fireline's HTTP API that turns errors into ``CliError``."""

    def __init__(
        self,
        url: str,
        token: str | None,
        user: str | None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": "fireline-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if user:
            headers["X-Fireline-User"] = user
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=30.0, transport=transport
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; return the decoded JSON body or raise ``CliError``."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach fireline at {self.url}: {exc}. Is `fireline up` running? "
                "Set FIRELINE_URL to point elsewhere.",
                EXIT_UNAVAILABLE,
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {"reason": response.text.strip() or response.reason_phrase}
        if response.is_success:
            return body
        reason = body.get("reason", body) if isinstance(body, dict) else body
        code = EXIT_UNAVAILABLE if response.status_code >= 500 else EXIT_REFUSED
        if response.status_code == 422:
            code = EXIT_USAGE
        raise CliError(f"{reason} (HTTP {response.status_code})", code)


# --- output ---------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns sized to their content."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def age(iso: str | None, now: datetime | None = None) -> str:
    """``3m``, ``2h5m``, ``4d`` since an ISO timestamp."""
    if not iso:
        return "-"
    then = datetime.fromisoformat(iso)
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if days:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if hours:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    return f"{minutes}m"


def clock(iso: str | None) -> str:
    """A timestamp in the reader's local time zone."""
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def render_list(rows: list[dict[str, Any]]) -> str:
    """The incident list table."""
    if not rows:
        return "no incidents match"
    return table(
        ["id", "sev", "status", "service", "commander", "age", "title"],
        [
            [
                r["id"],
                r.get("severity") or "?",
                r.get("status") or "ended",
                r.get("service") or "-",
                r.get("commander") or "-",
                age(r.get("declared_at")),
                r.get("title", ""),
            ]
            for r in rows
        ],
    )


def render_incident(state: dict[str, Any]) -> str:
    """An incident's header, roles and timeline."""
    roles = state.get("roles") or {}
    lines = [
        f"{state['id']}  {state['severity']}  {state['status'].upper()}  {state['title']}",
        f"  service      {state['service']}",
        f"  severity     {state['severity']} ({state.get('severity_reason') or '-'})",
        f"  declared     {clock(state['declared_at'])} by {state.get('declared_by') or 'fireline'}",
    ]
    for label, key in (
        ("acknowledged", "acknowledged_at"),
        ("mitigated", "mitigated_at"),
        ("resolved", "resolved_at"),
        ("closed", "closed_at"),
    ):
        if state.get(key):
            lines.append(f"  {label:<12} {clock(state[key])}")
    lines.append(
        "  roles        "
        + (", ".join(f"{role}: {user}" for role, user in roles.items()) or "none assigned")
    )
    if state.get("summary"):
        lines.append(f"  summary      {state['summary']}")
    lines += ["", "timeline:"]
    entries = state.get("timeline") or []
    lines.append(
        table(
            ["time", "actor", "what"],
            [[clock(e["at"]), e.get("actor") or "fireline", e["text"]] for e in entries],
        )
    )
    return "\n".join(lines)


def _emit(args: argparse.Namespace, data: Any, render: Callable[[Any], str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(render(data))


def _entry_line(result: dict[str, Any]) -> str:
    state = result["state"]
    return f"{state['id']} [{state['status']}] {result['entry']['text']}"


# --- incident commands ------------------------------------------------------------------------


def _api(args: argparse.Namespace) -> ApiClient:
    return ApiClient(args.url, args.token, args.as_user)


def cmd_declare(args: argparse.Namespace) -> int:
    """Declare an incident."""
    body: dict[str, Any] = {"title": args.title, "service": args.service}
    if args.severity:
        body["severity"] = args.severity
    if args.summary:
        body["summary"] = args.summary
    if args.commander:
        body["commander"] = args.commander
    if args.impact or args.customer_tier or args.data_loss or args.security:
        body["impact"] = {
            "impact": args.impact or "none",
            "customer_tiers": args.customer_tier or [],
            "data_loss": args.data_loss,
            "security": args.security,
        }
    if args.label:
        body["labels"] = dict(_label(item) for item in args.label)
    state = _api(args).request("POST", "/v1/incidents", json=body)
    _emit(
        args,
        state,
        lambda s: f"declared {s['id']} ({s['severity']}): {s['title']}\n  {s['severity_reason']}",
    )
    return EXIT_OK


def _update_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"text": args.text}
    if args.status:
        body["status"] = args.status
    if args.impact:
        body["impact"] = args.impact
    if args.component:
        components = {}
        for item in args.component:
            name, sep, status = item.partition("=")
            if not sep or not name or not status:
                raise SystemExit(
                    f"--component {item!r}: expected ID=STATUS, e.g. checkout=major_outage"
                )
            components[name] = status
        body["components"] = components
    if args.audience:
        body["audiences"] = args.audience
    return body


def _role_body(args: argparse.Namespace) -> dict[str, Any]:
    if args.vacate:
        return {"role": args.role, "user": None}
    if not args.user:
        raise CliError("give the USER who takes the role, or --vacate", EXIT_USAGE)
    return {"role": args.role, "user": args.user}


def _label(item: str, flag: str = "--label") -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise CliError(f"{flag} '{item}': expected KEY=VALUE", EXIT_USAGE)
    return key, value


def cmd_list(args: argparse.Namespace) -> int:
    """List incidents."""
    params: list[tuple[str, str]] = [("status", s) for s in args.status or []]
    if args.severity:
        params.append(("severity", args.severity))
    if args.service:
        params.append(("service", args.service))
    if args.all:
        params.append(("all", "true"))
    rows = _api(args).request("GET", "/v1/incidents", params=params)
    _emit(args, rows, render_list)
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """Show one incident with its timeline."""
    state = _api(args).request("GET", f"/v1/incidents/{args.id}")
    _emit(args, state, render_incident)
    return EXIT_OK


def _action(path: str, body: Callable[[argparse.Namespace], dict[str, Any]]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        result = _api(args).request("POST", f"/v1/incidents/{args.id}/{path}", json=body(args))
        _emit(args, result, _entry_line)
        return EXIT_OK

    return run


# --- alerts and routing -----------------------------------------------------------------------


def cmd_route_test(args: argparse.Namespace) -> int:
    """Which routes (and groups) an alert with these labels takes; no server needed."""
    from workflows.routing import format_routes_table, group_key, match_routes, parse_label_args

    try:
        labels = parse_label_args(args.labels)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    config = _offline_config(args)
    path = _config_path(args)
    routes = match_routes(config.routing, labels)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "route": r.model_dump(mode="json", by_alias=True),
                        "group_key": group_key(r, labels),
                    }
                    for r in routes
                ],
                indent=2,
            )
        )
        return EXIT_OK
    print(format_routes_table(routes))
    for r in routes:
        print(f"\ngroup key  {group_key(r, labels)}")
        targets = config.dependency_closure(r.service)
        if len(targets) > 1:
            print(f"correlates with open incidents of: {', '.join(targets)}")
    print(f"\nconfig: {path or '(none: the default routing)'}")
    return EXIT_OK


def _drills() -> dict[str, Any]:
    from worker.drills import DrillError, load_drills

    try:
        return dict(load_drills())
    except DrillError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def cmd_drill_list(args: argparse.Namespace) -> int:
    """The shipped drill scenarios."""
    drills = _drills()
    if args.json:
        print(json.dumps([d.model_dump() for d in drills.values()], indent=2))
    else:
        rows = [[d.name, str(len(d.alerts)), d.description] for d in drills.values()]
        print(table(["SCENARIO", "ALERTS", "WHAT"], rows))
    return EXIT_OK


def cmd_drill_run(args: argparse.Namespace) -> int:
    """Send a scenario's alerts, marked as a drill."""
    drills = _drills()
    scenario = drills.get(args.scenario)
    if scenario is None:
        known = ", ".join(sorted(drills)) or "none"
        raise CliError(f"no drill scenario '{args.scenario}'; known: {known}", EXIT_USAGE)
    api = _api(args)
    results = [api.request("POST", "/v1/alerts", json=alert) for alert in scenario.payloads()]
    _emit(
        args,
        results,
        lambda rs: (
            f"drill {scenario.name}: {len(rs)} alert(s) sent; the incidents they declare are "
            "titled [DRILL] (fireline incident list)"
        ),
    )
    return EXIT_OK


def cmd_alert_send(args: argparse.Namespace) -> int:
    """Fire or resolve a test alert through fireline's own alert endpoint."""
    from workflows.routing import parse_label_args

    try:
        labels = parse_label_args(args.label or [])
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    labels.setdefault("alertname", args.alertname)
    if args.service:
        labels["service"] = args.service
    if args.severity:
        labels["severity"] = args.severity
    alert: dict[str, Any] = {"labels": labels, "status": "resolved" if args.resolve else "firing"}
    if args.summary:
        alert["annotations"] = {"summary": args.summary}
    if args.resolve:
        alert["ends_at"] = datetime.now(UTC).isoformat()
    result = _api(args).request("POST", "/v1/alerts", json=alert)
    _emit(
        args,
        result,
        lambda r: (
            f"{alert['status']} {labels['alertname']} "
            f"({', '.join(f'{k}={v}' for k, v in sorted(labels.items()) if k != 'alertname')}): "
            f"{r['accepted']} accepted into {r['groups']} group(s)"
        ),
    )
    return EXIT_OK


def cmd_silence_add(args: argparse.Namespace) -> int:
    """Mute alerts that match, for a duration or until a time."""
    body: dict[str, Any] = {"matchers": args.matchers, "comment": args.comment}
    if args.until:
        body["ends_at"] = args.until
    else:
        body["duration"] = args.duration
    if args.starts:
        body["starts_at"] = args.starts
    silence = _api(args).request("POST", "/v1/silences", json=body)
    _emit(
        args,
        silence,
        lambda s: (
            f"silence {s['id']} until {clock(s['ends_at'])}: "
            + ", ".join(_matcher_text(m) for m in s["matchers"])
        ),
    )
    return EXIT_OK


def cmd_silence_list(args: argparse.Namespace) -> int:
    """Silences in a table."""
    params = {"all": "true"} if args.all else {}
    rows = _api(args).request("GET", "/v1/silences", params=params)
    now = datetime.now(UTC)

    def render(items: list[dict[str, Any]]) -> str:
        if not items:
            return "no silences"
        return table(
            ["id", "state", "matchers", "ends", "by", "comment"],
            [
                [
                    s["id"],
                    _silence_state(s, now),
                    ", ".join(_matcher_text(m) for m in s["matchers"]),
                    clock(s["ends_at"]),
                    s["created_by"],
                    s["comment"],
                ]
                for s in items
            ],
        )

    _emit(args, rows, render)
    return EXIT_OK


def cmd_silence_expire(args: argparse.Namespace) -> int:
    """End a silence now."""
    silence = _api(args).request("DELETE", f"/v1/silences/{args.id}")
    _emit(args, silence, lambda s: f"silence {s['id']} expired")
    return EXIT_OK


def _matcher_text(m: Any) -> str:
    if isinstance(m, str):
        return m
    return f'{m["name"]}{m["type"]}"{m["value"]}"'


def _silence_state(s: dict[str, Any], now: datetime) -> str:
    if s.get("expired_at") or datetime.fromisoformat(s["ends_at"]) < now:
        return "expired"
    return "pending" if datetime.fromisoformat(s["starts_at"]) > now else "active"


def _config_path(args: argparse.Namespace) -> Path | None:
    env = os.environ.get("FIRELINE_CONFIG")
    return args.config or (Path(env) if env else None)


def _offline_config(args: argparse.Namespace) -> Any:
    from worker.config import ConfigError, load_config

    try:
        return load_config(_config_path(args))
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _schedules(config: Any, name: str | None) -> list[str]:
    names = [name] if name else sorted(config.schedules)
    unknown = [n for n in names if n not in config.schedules]
    if unknown:
        known = ", ".join(sorted(config.schedules)) or "none configured"
        raise CliError(f"unknown schedule '{unknown[0]}'; known: {known}", EXIT_USAGE)
    return names


def cmd_oncall_now(args: argparse.Namespace) -> int:
    """Who is on call now, per schedule (from the config; no server needed)."""
    from workflows.oncall import on_call_at

    if args.config is None:
        rows = _api(args).request("GET", "/v1/oncall")
        if args.schedule:
            rows = [r for r in rows if r["schedule"] == args.schedule]
            if not rows:
                raise CliError(f"unknown schedule '{args.schedule}'", EXIT_USAGE)
        return _print_oncall(args, rows)
    config = _offline_config(args)
    now = datetime.now(UTC)
    rows = []
    for name in _schedules(config, args.schedule):
        shift = on_call_at(config.schedule(name), now)
        rows.append(
            {
                "schedule": name,
                "user": shift.user if shift else None,
                "until": shift.end.isoformat() if shift else None,
                "source": shift.source if shift else None,
            }
        )
    return _print_oncall(args, rows)


def _print_oncall(args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    _emit(
        args,
        rows,
        lambda items: (
            table(
                ["schedule", "on call", "until", "via"],
                [
                    [r["schedule"], r["user"] or "nobody", clock(r["until"]), r["source"] or "-"]
                    for r in items
                ],
            )
            if items
            else "no schedules configured"
        ),
    )
    return EXIT_OK


def cmd_oncall_show(args: argparse.Namespace) -> int:
    """The rendered schedule for the next days (from the config; no server needed)."""
    from workflows.oncall import Shift, final_shifts, format_shifts_table

    if args.config is None:
        data = _api(args).request(
            "GET", f"/v1/oncall/{args.schedule}", params={"days": str(args.days)}
        )
        name, zone = data["schedule"], data["timezone"]
        shifts = [Shift.model_validate(s) for s in data["shifts"]]
    else:
        config = _offline_config(args)
        [name] = _schedules(config, args.schedule)
        schedule = config.schedule(name)
        zone = schedule.timezone
        start = datetime.now(UTC)
        shifts = final_shifts(schedule, start, start + timedelta(days=args.days))
    if args.json:
        print(json.dumps([s.model_dump(mode="json") for s in shifts], indent=2))
    else:
        print(f"{name} ({zone}), next {args.days} days")
        print(format_shifts_table(shifts, zone))
    return EXIT_OK


def cmd_override_add(args: argparse.Namespace) -> int:
    """Put USER on call on SCHEDULE (covering someone, or half of a swap)."""
    start = datetime.fromisoformat(args.start) if args.start else datetime.now(UTC)
    if start.tzinfo is None:
        raise CliError("--start needs a time zone, e.g. 2026-12-01T09:00:00-05:00", EXIT_USAGE)
    if args.end:
        end = datetime.fromisoformat(args.end)
    else:
        from workflows.durations import parse_duration

        try:
            end = start + parse_duration(args.duration)
        except ValueError as exc:
            raise CliError(f"--duration: {exc}", EXIT_USAGE) from None
    body = {
        "schedule": args.schedule,
        "user": args.user,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "reason": args.reason or "",
    }
    stored = _api(args).request("POST", "/v1/oncall/overrides", json=body)
    _emit(
        args,
        stored,
        lambda o: (
            f"override {o['id']}: {o['override']['user']} on call for {o['schedule']} "
            f"from {clock(o['override']['start'])} to {clock(o['override']['end'])}"
        ),
    )
    return EXIT_OK


def cmd_override_list(args: argparse.Namespace) -> int:
    """Runtime overrides not yet over."""
    params = {"schedule": args.schedule} if args.schedule else {}
    rows = _api(args).request("GET", "/v1/oncall/overrides", params=params)
    _emit(
        args,
        rows,
        lambda items: (
            table(
                ["id", "schedule", "user", "from", "to", "by", "reason"],
                [
                    [
                        o["id"],
                        o["schedule"],
                        o["override"]["user"],
                        clock(o["override"]["start"]),
                        clock(o["override"]["end"]),
                        o["override"].get("created_by") or "-",
                        o["override"].get("reason") or "",
                    ]
                    for o in items
                ],
            )
            if items
            else "no overrides"
        ),
    )
    return EXIT_OK


def cmd_override_remove(args: argparse.Namespace) -> int:
    """Take an override back."""
    removed = _api(args).request("DELETE", f"/v1/oncall/overrides/{args.id}")
    _emit(args, removed, lambda o: f"override {o['id']} removed")
    return EXIT_OK


def cmd_page_list(args: argparse.Namespace) -> int:
    """Pages the embedded console pager delivered (the inbox under the state directory)."""
    from activities.providers.console import read_inbox

    directory = (
        args.state_dir or Path(os.environ.get("FIRELINE_STATE_DIR", ".fireline"))
    ) / "inbox"
    entries = read_inbox(directory)
    if args.incident:
        entries = [e for e in entries if e.page.incident_id == args.incident]
    if args.json:
        print(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return EXIT_OK
    if not entries:
        print(f"no pages in {directory}")
        return EXIT_OK
    print(
        table(
            ["time", "incident", "to", "action", "title", "ack link"],
            [
                [
                    clock(e.at.isoformat()),
                    e.page.incident_id,
                    e.page.recipient,
                    e.page.action.value,
                    e.page.title,
                    e.page.ack_url or "-",
                ]
                for e in entries
            ],
        )
    )
    return EXIT_OK


# --- runbooks ---------------------------------------------------------------------------------


def cmd_runbook_list(args: argparse.Namespace) -> int:
    """The runbook library the API offers."""
    rows = _api(args).request("GET", "/v1/runbooks")
    _emit(args, rows, render_runbooks)
    return EXIT_OK


def render_runbooks(rows: list[dict[str, Any]]) -> str:
    """The library table: name, parameters (``*`` = required), matchers, description."""
    if not rows:
        return "no runbooks in the library"
    return table(
        ["name", "parameters", "match", "description"],
        [
            [
                r["name"],
                ", ".join(
                    name + ("*" if p.get("required") else "") for name, p in r["parameters"].items()
                )
                or "-",
                ", ".join(r["match"]) or "(run by hand)",
                r["description"],
            ]
            for r in rows
        ],
    )


def cmd_runbook_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of a runbook file (for editors); no server needed."""
    from runbooks.loader import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def cmd_runbook_validate(args: argparse.Namespace) -> int:
    """Check runbook files offline: schema, references, and action names the worker knows."""
    from runbooks.loader import runbook_files, validate_runbooks
    from worker.action_registry import KNOWN_ACTIONS

    errors = validate_runbooks(args.paths, known_actions=KNOWN_ACTIONS)
    if args.json:
        print(json.dumps([e.__dict__ for e in errors], indent=2))
    elif errors:
        for error in errors:
            print(error)
    else:
        files, _ = runbook_files(args.paths)
        print(f"{len(files)} runbook file(s) valid")
    if errors:
        print(f"fireline: {len(errors)} problem(s) found", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


def cmd_runbook_run(args: argparse.Namespace) -> int:
    """Start a runbook of the library on an incident."""
    params = dict(_label(item, "--param") for item in args.param or [])
    body = {"runbook": args.runbook, "params": params, "dry_run": args.dry_run}
    run = _api(args).request("POST", f"/v1/incidents/{args.id}/runs", json=body)
    _emit(
        args,
        run,
        lambda r: (
            f"started {r['run_id']}: runbook {r['runbook']}"
            + (" (dry run)" if r.get("dry_run") else "")
            + f"\n  follow it with: fireline runbook show {args.id} {r['run_id']}"
        ),
    )
    return EXIT_OK


def render_runs(rows: list[dict[str, Any]]) -> str:
    """An incident's runs table."""
    if not rows:
        return "no runbook runs"
    return table(
        ["run", "runbook", "status", "waiting on", "started by", "age"],
        [
            [
                r["run_id"],
                r["runbook"] + (" (dry run)" if r.get("dry_run") else ""),
                r["status"],
                r.get("waiting_step") or "-",
                r["started_by"],
                age(r.get("started_at")),
            ]
            for r in rows
        ],
    )


def cmd_runbook_runs(args: argparse.Namespace) -> int:
    """An incident's runbook runs."""
    rows = _api(args).request("GET", f"/v1/incidents/{args.id}/runs")
    _emit(args, rows, render_runs)
    return EXIT_OK


def render_run(state: dict[str, Any]) -> str:
    """A run's header, the approval it waits for, and its steps."""
    mode = "  (dry run)" if state.get("dry_run") else ""
    lines = [
        f"{state['run_id']}  {state['status'].upper()}  {state['runbook']}{mode}",
        f"  incident     {state['incident_id']}",
        f"  started      {clock(state['started_at'])} by {state['started_by']}",
    ]
    if state.get("ended_at"):
        lines.append(f"  ended        {clock(state['ended_at'])}")
    if state.get("paused_by"):
        lines.append(f"  paused by    {state['paused_by']}")
    pending = state.get("pending")
    if pending:
        who = [f"role {r}" for r in pending.get("roles", [])]
        who += pending.get("users", [])
        who += [f"group {g}" for g in pending.get("groups", [])]
        lines += [
            f"  waiting on   {pending['step_id']}: {pending['prompt']}",
            f"  approvers    {', '.join(who) or '-'} (until {clock(pending['deadline'])})",
        ]
    if state.get("error"):
        lines.append(f"  error        {state['error']}")
    lines += ["", "steps:"]
    lines.append(
        table(
            ["step", "kind", "status", "attempts", "actor", "summary"],
            [
                [
                    s["step_id"] + (f" #{s['visit']}" if s.get("visit", 1) > 1 else ""),
                    s["kind"],
                    s["status"],
                    str(s.get("attempts", 0)),
                    s.get("actor") or "-",
                    s.get("error") or s.get("summary") or "",
                ]
                for s in state.get("steps") or []
            ],
        )
    )
    return "\n".join(lines)


def cmd_runbook_show(args: argparse.Namespace) -> int:
    """One run of an incident, step by step."""
    state = _api(args).request("GET", f"/v1/incidents/{args.id}/runs/{args.run}")
    _emit(args, state, render_run)
    return EXIT_OK


def _run_control(command: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        path = f"/v1/incidents/{args.id}/runs/{args.run}/{command}"
        state = _api(args).request("POST", path, json={"reason": args.reason or ""})
        _emit(args, state, lambda s: f"{s['run_id']} [{s['status']}] {command} requested")
        return EXIT_OK

    return run


def waiting_run(incident_id: str, step: str, runs: list[dict[str, Any]]) -> str:
    """The one run of the incident waiting on ``step``, or CliError saying which to pick."""
    waiting = [r for r in runs if r.get("waiting_step") == step]
    if len(waiting) == 1:
        run_id: str = waiting[0]["run_id"]
        return run_id
    if not waiting:
        others = [f"{r['run_id']} ({r['waiting_step']})" for r in runs if r.get("waiting_step")]
        hint = f"; waiting: {', '.join(others)}" if others else ""
        raise CliError(f"no run of {incident_id} is waiting on step '{step}'{hint}", EXIT_REFUSED)
    listed = ", ".join(f"{r['run_id']} ({r['runbook']})" for r in waiting)
    raise CliError(
        f"{len(waiting)} runs of {incident_id} wait on step '{step}': {listed}; "
        "say which with --run",
        EXIT_USAGE,
    )


def _decide(verb: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        api = _api(args)
        run_id = args.run or waiting_run(
            args.id, args.step, api.request("GET", f"/v1/incidents/{args.id}/runs")
        )
        path = f"/v1/incidents/{args.id}/runs/{run_id}/steps/{args.step}/{verb}"
        state = api.request("POST", path, json={"comment": args.comment or ""})
        done = "approved" if verb == "approve" else "rejected"
        _emit(args, state, lambda s: f"{done} {args.step} in {s['run_id']} [{s['status']}]")
        return EXIT_OK

    return run


# --- process commands ------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Any:
    from worker.settings import Settings

    overrides = {
        name: getattr(args, name)
        for name in (
            "api_host",
            "api_port",
            "temporal_address",
            "temporal_port",
            "ui_port",
            "namespace",
            "task_queue",
            "state_dir",
            "config",
            "demo",
        )
        if getattr(args, name, None) is not None
    }
    return Settings(**overrides)


def _run_part(args: argparse.Namespace, part: str) -> int:
    from worker import logs, stack
    from worker.process import hard_exit, run_until_signal

    settings = _settings(args)
    logs.configure(settings.log_level, settings.log_format)
    main = {"up": stack.up, "worker": stack.run_worker, "api": stack.run_api}[part]

    async def guarded(stop: Any) -> int:
        try:
            return await main(settings, stop)
        except stack.StartupError as exc:
            print(f"fireline {part}: {exc}", file=sys.stderr)
            return EXIT_USAGE

    try:
        run_until_signal(guarded)
    except KeyboardInterrupt:
        hard_exit(130)


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay exported workflow histories against this code."""
    import asyncio

    from worker.codec import EncryptionKeyError
    from worker.replay import replay_files

    try:
        results = asyncio.run(replay_files([Path(p) for p in args.paths]))
    except EncryptionKeyError as exc:
        raise CliError(f"payload encryption: {exc}", EXIT_USAGE) from None
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        print(
            table(
                ["history", "workflow", "events", "result"],
                [[r.path, r.workflow_type, str(r.events), r.outcome] for r in results],
            )
        )
    return EXIT_OK if all(r.ok for r in results) else EXIT_REFUSED


def cmd_keys_generate(args: argparse.Namespace) -> int:
    """Print a new payload-encryption key line (``key-id=base64key``)."""
    from worker.codec import EncryptionKeyError, generate_key_line

    key_id = args.id or f"key-{datetime.now(UTC):%Y%m%d}-{os.urandom(2).hex()}"
    try:
        line = generate_key_line(key_id)
    except EncryptionKeyError as exc:
        raise CliError(f"--id: {exc}", EXIT_USAGE) from None
    print(line)
    print(
        "fireline: put this line first in FIRELINE_ENCRYPTION_KEYS_FILE (first = active) and keep "
        "the older keys listed below it, so payloads written with them still decrypt",
        file=sys.stderr,
    )
    return EXIT_OK


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    client = argparse.ArgumentParser(add_help=False)
    _connection_flags(client)
    # The same connection flags without --json, for commands that define their own.
    client_no_json = argparse.ArgumentParser(add_help=False)
    _connection_flags(client_no_json)
    client.add_argument("--json", action="store_true", help="print JSON instead of tables")

    parser = argparse.ArgumentParser(
        prog="fireline",
        description="Incident response on durable Temporal workflows.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for part, text in (
        ("up", "run the embedded stack: Temporal dev server, worker and API"),
        ("worker", "run only the worker, against any Temporal"),
        ("api", "run only the HTTP API, against any Temporal"),
    ):
        p = sub.add_parser(part, help=text, description=text)
        _process_flags(p, part)
        p.set_defaults(func=lambda a, part=part: _run_part(a, part))

    inc = sub.add_parser("incident", help="declare, list, show and act on incidents")
    isub = inc.add_subparsers(dest="incident_command", required=True, metavar="ACTION")

    p = isub.add_parser("declare", parents=[client], help="declare an incident")
    p.add_argument("title", help="what is wrong, as people will recognise it")
    p.add_argument("--service", required=True, help="affected service (from the catalog)")
    p.add_argument(
        "--severity",
        choices=["SEV1", "SEV2", "SEV3", "SEV4"],
        help="omit to let the severity policy decide",
    )
    p.add_argument("--summary", help="what is known so far")
    p.add_argument(
        "--impact",
        choices=["none", "degraded", "partial_outage", "full_outage"],
        help="customer impact, for the severity policy",
    )
    p.add_argument(
        "--customer-tier",
        action="append",
        metavar="TIER",
        help="affected customer tier (repeatable; default: the service's tiers)",
    )
    p.add_argument("--data-loss", action="store_true", help="data was lost or corrupted")
    p.add_argument("--security", action="store_true", help="security impact")
    p.add_argument("--commander", metavar="USER", help="incident commander")
    p.add_argument("--label", action="append", metavar="KEY=VALUE", help="repeatable")
    p.set_defaults(func=cmd_declare)

    p = isub.add_parser("list", parents=[client], help="list incidents (open ones by default)")
    p.add_argument(
        "--status",
        action="append",
        choices=["declared", "acknowledged", "mitigated", "resolved", "closed"],
    )
    p.add_argument("--severity", choices=["SEV1", "SEV2", "SEV3", "SEV4"])
    p.add_argument("--service")
    p.add_argument("--all", action="store_true", help="include resolved and closed incidents")
    p.set_defaults(func=cmd_list)

    p = isub.add_parser("show", parents=[client], help="show an incident and its timeline")
    p.add_argument("id", help="e.g. INC-42")
    p.set_defaults(func=cmd_show)
    cli_report.add_incident_search(isub, client)

    def action(
        name: str, help_text: str, path: str, body: Callable[[argparse.Namespace], dict[str, Any]]
    ) -> argparse.ArgumentParser:
        ap = isub.add_parser(name, parents=[client], help=help_text, description=help_text)
        ap.add_argument("id", help="e.g. INC-42")
        ap.set_defaults(func=_action(path, body))
        return ap

    action("ack", "acknowledge: you own the response", "acknowledge", lambda a: {})
    p = action(
        "role",
        "assign a role (commander, communications, scribe, sme)",
        "roles",
        _role_body,
    )
    p.add_argument("role", choices=["commander", "communications", "scribe", "sme"])
    p.add_argument("user", nargs="?", help="who takes the role")
    p.add_argument("--vacate", action="store_true", help="leave the role empty")
    p = action(
        "severity",
        "change severity, with a reason",
        "severity",
        lambda a: {"severity": a.severity, "reason": a.reason},
    )
    p.add_argument("severity", choices=["SEV1", "SEV2", "SEV3", "SEV4"])
    p.add_argument("--reason", required=True)
    p = action("note", "add a note to the timeline", "notes", lambda a: {"text": a.text})
    p.add_argument("text")
    p = action(
        "mitigate",
        "customer impact has stopped",
        "mitigate",
        lambda a: {"summary": a.summary or ""},
    )
    p.add_argument("--summary")
    p = action("resolve", "the incident is over", "resolve", lambda a: {"summary": a.summary})
    p.add_argument("--summary", required=True, help="how it ended")
    p = action(
        "reopen",
        "the problem is back (before the incident closed)",
        "reopen",
        lambda a: {"reason": a.reason},
    )
    p.add_argument("--reason", required=True)
    p = action(
        "update",
        "post a stakeholder update (responders, executives, status page)",
        "updates",
        _update_body,
    )
    p.add_argument("text", help="what stakeholders should know, in plain words")
    p.add_argument(
        "--status",
        choices=["investigating", "identified", "monitoring", "resolved"],
        help="status page status (default: follows the incident)",
    )
    p.add_argument("--impact", choices=["none", "minor", "major", "critical"])
    p.add_argument(
        "--component",
        action="append",
        default=[],
        metavar="ID=STATUS",
        help="affected component, e.g. checkout=partial_outage (repeatable)",
    )
    p.add_argument(
        "--audience",
        action="append",
        choices=["responders", "executives", "customers"],
        help="who gets it (repeatable; default: everyone)",
    )
    action("close", "close a resolved incident now", "close", lambda a: {})
    action("escalate", "page the next escalation level now", "escalate", lambda a: {})

    cli_report.add_parsers(sub, client)
    # Imported here: worker.cli_postmortem builds on this module's helpers.
    from worker.cli_postmortem import add_parsers as add_postmortem_parsers

    add_postmortem_parsers(sub, client)

    route = sub.add_parser("route", help="routing tools")
    rsub = route.add_subparsers(dest="route_command", required=True, metavar="ACTION")
    p = rsub.add_parser(
        "test",
        help="show the routes an alert with these labels takes (like amtool config routes test)",
    )
    p.add_argument("labels", nargs="+", metavar="LABEL=VALUE")
    p.add_argument("--config", type=Path, help="config file (default: FIRELINE_CONFIG)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_route_test)

    alert = sub.add_parser("alert", help="send test alerts")
    asub = alert.add_subparsers(dest="alert_command", required=True, metavar="ACTION")
    p = asub.add_parser("send", parents=[client], help="fire (or --resolve) a test alert")
    p.add_argument("alertname")
    p.add_argument("--service", help="the service label")
    p.add_argument("--severity", help="the severity label (critical, error, warning, info)")
    p.add_argument("--summary", help="the summary annotation")
    p.add_argument("--label", action="append", metavar="LABEL=VALUE", help="repeatable")
    p.add_argument("--resolve", action="store_true", help="send it resolved")
    p.set_defaults(func=cmd_alert_send)

    drill = sub.add_parser(
        "drill",
        help="practise: play a shipped scenario's alerts (try it with `fireline up --demo`)",
    )
    dsub = drill.add_subparsers(dest="drill_command", required=True, metavar="ACTION")
    p = dsub.add_parser("list", help="the shipped drill scenarios (no server needed)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_drill_list)
    p = dsub.add_parser(
        "run",
        parents=[client],
        help='send a scenario\'s alerts, each labelled drill="true": its incidents are drills',
    )
    p.add_argument("scenario", help="e.g. bad-deploy (see `fireline drill list`)")
    p.set_defaults(func=cmd_drill_run)

    oncall = sub.add_parser("oncall", help="who is on call (from the config)")
    osub = oncall.add_subparsers(dest="oncall_command", required=True, metavar="ACTION")
    p = osub.add_parser(
        "now", parents=[client_no_json], help="who is on call right now (overrides included)"
    )
    p.add_argument("--schedule", help="one schedule (default: all)")
    p.add_argument("--config", type=Path, help="config file (default: FIRELINE_CONFIG)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_oncall_now)
    p = osub.add_parser(
        "show", parents=[client_no_json], help="the final schedule for the coming days"
    )
    p.add_argument("--schedule", required=True)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--config", type=Path, help="config file (default: FIRELINE_CONFIG)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_oncall_show)
    override = osub.add_parser("override", help="cover for someone, or swap shifts")
    ovsub = override.add_subparsers(dest="override_command", required=True, metavar="ACTION")
    p = ovsub.add_parser("add", parents=[client], help="put USER on call on SCHEDULE")
    p.add_argument("schedule")
    p.add_argument("user")
    p.add_argument("--start", help="ISO 8601 with zone (default: now)")
    p.add_argument("--end", help="ISO 8601 with zone (instead of --duration)")
    p.add_argument("--duration", default="12h", help="how long (default 12h)")
    p.add_argument("--reason")
    p.set_defaults(func=cmd_override_add)
    p = ovsub.add_parser("list", parents=[client], help="overrides not yet over")
    p.add_argument("--schedule")
    p.set_defaults(func=cmd_override_list)
    p = ovsub.add_parser("remove", parents=[client], help="take an override back")
    p.add_argument("id")
    p.set_defaults(func=cmd_override_remove)

    page = sub.add_parser("page", help="pages delivered by the console pager")
    psub = page.add_subparsers(dest="page_command", required=True, metavar="ACTION")
    p = psub.add_parser("list", help="pages in the console inbox, oldest first")
    p.add_argument("--incident", help="only this incident's pages (e.g. INC-3)")
    p.add_argument("--state-dir", type=Path, help="FIRELINE_STATE_DIR (.fireline)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_page_list)

    silence = sub.add_parser("silence", help="mute alerts for a while (add, list, expire)")
    ssub = silence.add_subparsers(dest="silence_command", required=True, metavar="ACTION")
    p = ssub.add_parser("add", parents=[client], help="mute alerts matching all MATCHERs")
    p.add_argument("matchers", nargs="+", metavar="MATCHER", help='e.g. service="search"')
    p.add_argument("--comment", required=True, help="why (shown wherever it mutes)")
    p.add_argument("--duration", default="1h", help="how long (default 1h)")
    p.add_argument("--until", help="end time (ISO 8601), instead of --duration")
    p.add_argument("--starts", help="start time (ISO 8601; default now)")
    p.set_defaults(func=cmd_silence_add)
    p = ssub.add_parser("list", parents=[client], help="active and pending silences")
    p.add_argument("--all", action="store_true", help="include expired ones")
    p.set_defaults(func=cmd_silence_list)
    p = ssub.add_parser("expire", parents=[client], help="end a silence now")
    p.add_argument("id")
    p.set_defaults(func=cmd_silence_expire)

    runbook = sub.add_parser(
        "runbook",
        help="runbooks: the library, runs on incidents, pause/resume/abort",
        description="Runbooks: list and validate the library, run one on an incident, follow "
        "and steer its runs. Approvals: `fireline approve` / `fireline reject`.",
    )
    rbsub = runbook.add_subparsers(dest="runbook_command", required=True, metavar="ACTION")
    p = rbsub.add_parser(
        "list", parents=[client], help="the runbook library the API offers (* = required)"
    )
    p.set_defaults(func=cmd_runbook_list)
    text = "print the JSON Schema of a runbook file, for editors (no server needed)"
    p = rbsub.add_parser("schema", help=text, description=text)
    p.set_defaults(func=cmd_runbook_schema)
    text = (
        "check runbook files offline: schema, references, goto targets and action names the "
        "worker knows; every problem with its file, step and field; exit 1 if any"
    )
    p = rbsub.add_parser("validate", help=text, description=text)
    p.add_argument("paths", nargs="+", metavar="PATH", help="runbook files or directories")
    p.add_argument("--json", action="store_true", help="print the problems as JSON")
    p.set_defaults(func=cmd_runbook_validate)
    text = "start a runbook of the library on an incident"
    p = rbsub.add_parser("run", parents=[client], help=text, description=text)
    p.add_argument("id", help="the incident, e.g. INC-42")
    p.add_argument("runbook", metavar="NAME", help="runbook name (see `fireline runbook list`)")
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=VALUE",
        help="a runbook parameter, read by its declared type (repeatable)",
    )
    p.add_argument("--dry-run", action="store_true", help="actions only report what they would do")
    p.set_defaults(func=cmd_runbook_run)
    p = rbsub.add_parser("runs", parents=[client], help="an incident's runbook runs")
    p.add_argument("id", help="the incident, e.g. INC-42")
    p.set_defaults(func=cmd_runbook_runs)
    p = rbsub.add_parser("show", parents=[client], help="one run, step by step")
    p.add_argument("id", help="the incident, e.g. INC-42")
    p.add_argument("run", metavar="RUN", help="the run, e.g. INC-42-r1")
    p.set_defaults(func=cmd_runbook_show)
    for command, text in (
        ("pause", "stop a run before its next step (the commander)"),
        ("resume", "go on with a paused run (the commander)"),
        ("abort", "stop a run now; the step in flight is cancelled (the commander)"),
    ):
        p = rbsub.add_parser(command, parents=[client], help=text, description=text)
        p.add_argument("id", help="the incident, e.g. INC-42")
        p.add_argument("run", metavar="RUN", help="the run, e.g. INC-42-r1")
        p.add_argument("--reason", help="why, for the timeline")
        p.set_defaults(func=_run_control(command))

    for verb, text in (
        ("approve", "approve a runbook step that waits for you"),
        ("reject", "reject a runbook step that waits for approval"),
    ):
        p = sub.add_parser(
            verb,
            parents=[client],
            help=text,
            description=f"{text}. The run defaults to the incident's only run waiting on STEP.",
        )
        p.add_argument("id", help="the incident, e.g. INC-42")
        p.add_argument("step", metavar="STEP", help="the step id, e.g. approve-rollback")
        p.add_argument(
            "--run", metavar="RUN", help="the run, e.g. INC-42-r1 (needed when several wait)"
        )
        p.add_argument("--comment", metavar="TEXT", help="for the timeline")
        p.set_defaults(func=_decide(verb))

    p = sub.add_parser("replay", help="replay exported workflow histories against this code")
    p.add_argument("paths", nargs="+", metavar="PATH", help="history JSON files or directories")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_replay)

    keys = sub.add_parser("keys", help="payload encryption keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    p = ksub.add_parser("generate", help="print a new AES-256 key line (key-id=base64key)")
    p.add_argument("--id", help="key id (default: key-<date>-<random>)")
    p.set_defaults(func=cmd_keys_generate)
    return parser


def _connection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        default=os.environ.get("FIRELINE_URL", "http://127.0.0.1:8080"),
        help="fireline API (env FIRELINE_URL; default http://127.0.0.1:8080)",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("FIRELINE_TOKEN"),
        help="API bearer token (env FIRELINE_TOKEN)",
    )
    p.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        default=os.environ.get("FIRELINE_USER"),
        help="act as USER in local mode (env FIRELINE_USER)",
    )


def _process_flags(p: argparse.ArgumentParser, part: str) -> None:
    g = p.add_argument_group("settings (each also an environment variable)")
    if part in ("up", "api"):
        g.add_argument("--api-host", help="FIRELINE_API_HOST (127.0.0.1)")
        g.add_argument("--api-port", type=int, help="FIRELINE_API_PORT (8080)")
    if part == "up":
        g.add_argument("--temporal-port", type=int, help="FIRELINE_TEMPORAL_PORT (7233)")
        g.add_argument("--ui-port", type=int, help="FIRELINE_UI_PORT (8233)")
        g.add_argument("--state-dir", type=Path, help="FIRELINE_STATE_DIR (.fireline)")
        g.add_argument(
            "--demo",
            action="store_true",
            default=None,
            help="FIRELINE_DEMO: also start a sandbox cluster and metrics source to try runbooks",
        )
    g.add_argument("--temporal-address", help="FIRELINE_TEMPORAL_ADDRESS (up: embedded server)")
    g.add_argument("--namespace", help="FIRELINE_NAMESPACE (default)")
    g.add_argument("--task-queue", help="FIRELINE_TASK_QUEUE (fireline)")
    g.add_argument("--config", type=Path, help="FIRELINE_CONFIG (fireline.yaml to load)")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``fireline`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except CliError as exc:
        print(f"fireline: {exc}", file=sys.stderr)
        code = exc.code
    except BrokenPipeError:
        # `fireline incident list | head`: the reader left; stop quietly like any Unix tool.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_OK
    sys.exit(code)


if __name__ == "__main__":
    main()
