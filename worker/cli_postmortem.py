"""``fireline postmortem`` and ``fireline actions``: review postmortems, track action items.

Hooked into ``worker/cli.py`` by :func:`add_parsers` (imported inside ``build_parser``,
since this module uses the CLI's HTTP client and table helpers). Every command talks to
the HTTP API like the incident commands, with the same exit codes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from worker import cli as base
from workflows.contracts import (
    ActionItemKind,
    ActionItemPriority,
    PostmortemState,
    SectionKey,
)
from workflows.durations import parse_duration
from workflows.postmortem_draft import render_markdown

SECTIONS = [k.value for k in SectionKey]
# A date without a time means the end of that working day, in the reader's time zone.
END_OF_DAY = time(17, 0)
RELATIVE = re.compile(r"^[0-9]+[smhdw]")


def _api(args: argparse.Namespace) -> base.ApiClient:
    # Looked up on the CLI module at call time, so tests can swap the transport there.
    return base._api(args)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """``2026-12-01``, ``2026-12-01T09:00``, ``2026-12-01T09:00:00Z`` or ``+3d`` / ``3d``."""
    value = text.strip()
    now = now or datetime.now(UTC)
    try:
        if value.startswith("+") or RELATIVE.match(value):
            return now + parse_duration(value.removeprefix("+"))
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, END_OF_DAY).astimezone()
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise base.CliError(
            f"'{text}': expected a date (2026-12-01), a time (2026-12-01T09:00, with Z or an "
            "offset for UTC) or a duration from now (+3d, 12h)",
            base.EXIT_USAGE,
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


# --- rendering --------------------------------------------------------------------------


def render_postmortem(pm: dict[str, Any]) -> str:
    """A postmortem's header, its sections' state, and its action items."""
    required = set(pm.get("required_sections") or [])
    lines = [
        f"postmortem {pm['incident_id']}  {pm['severity']}  {pm['status'].upper()}  {pm['title']}",
        f"  author       {pm.get('author') or '-'}",
        f"  reviewers    {', '.join(pm.get('reviewers') or []) or '-'}"
        + (f" (approved: {', '.join(pm['approvals'])})" if pm.get("approvals") else ""),
        f"  due          {base.clock(pm.get('due_at'))}",
    ]
    if pm.get("published_at"):
        lines.append(f"  published    {base.clock(pm['published_at'])} by {pm['published_by']}")
    if pm.get("gather_error"):
        lines.append(f"  note         the incident record could not be read: {pm['gather_error']}")
    if pm.get("exported"):
        lines.append(f"  exported     {', '.join(pm['exported'])}")
    lines += ["", "sections:"]
    rows = []
    for s in pm.get("sections") or []:
        text = " ".join((s.get("text") or "").split())
        if text:
            state = "drafted" if s.get("drafted") else f"by {s.get('edited_by') or '-'}"
        else:
            state = "EMPTY (required)" if s["key"] in required else "empty"
        rows.append([s["key"], state, text[:70] + ("…" if len(text) > 70 else "")])
    lines.append(base.table(["section", "state", "text"], rows))
    items = pm.get("action_items") or []
    lines += ["", "action items:", render_items(items) if items else "  none yet"]
    return "\n".join(lines)


def render_items(rows: list[dict[str, Any]]) -> str:
    """The action item table."""
    if not rows:
        return "no action items match"
    return base.table(
        ["id", "pri", "kind", "owner", "due", "status", "title"],
        [
            [
                r["id"],
                r["priority"],
                r["kind"],
                r["owner"],
                base.clock(r["due_at"]),
                _item_status(r),
                r["title"],
            ]
            for r in rows
        ],
    )


def _item_status(r: dict[str, Any]) -> str:
    status = str(r["status"])
    if r.get("overdue"):
        status = "OVERDUE"
    if r.get("escalated") and status in ("open", "OVERDUE"):
        status += " (escalated)"
    if r.get("snoozed_until"):
        status += f" (snoozed until {base.clock(r['snoozed_until'])})"
    return status


def render_item(s: dict[str, Any]) -> str:
    """One action item with its history and reminders."""
    lines = [
        f"{s['id']}  {s['priority']}  {s['kind']}  {s['status'].upper()}  {s['title']}",
        f"  owner        {s['owner']}",
        f"  due          {base.clock(s['due_at'])}",
    ]
    if s.get("link"):
        lines.append(f"  link         {s['link']}")
    lines += ["", "history:"]
    lines.append(
        base.table(
            ["time", "actor", "what"],
            [
                [base.clock(e["at"]), e.get("actor") or "fireline", e["text"]]
                for e in s.get("events") or []
            ],
        )
    )
    return "\n".join(lines)


# --- commands -----------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    """Show a postmortem, or print it as the Markdown document the export writes."""
    pm = _api(args).request("GET", f"/v1/postmortems/{args.id}")
    if args.markdown:
        print(render_markdown(PostmortemState.model_validate(pm)), end="")
        return base.EXIT_OK
    _emit(args, pm, render_postmortem(pm))
    return base.EXIT_OK


def cmd_edit(args: argparse.Namespace) -> int:
    """Replace a section's text, from --text, a file, or standard input (-)."""
    if args.text is not None:
        text = args.text
    elif args.file == "-":
        text = sys.stdin.read()
    elif args.file:
        try:
            text = Path(args.file).read_text()
        except OSError as exc:
            raise base.CliError(f"--file {args.file}: {exc.strerror}", base.EXIT_USAGE) from None
    else:
        raise base.CliError("give the section's text with --text or --file", base.EXIT_USAGE)
    result = _api(args).request(
        "PUT", f"/v1/postmortems/{args.id}/sections/{args.section}", json={"text": text}
    )
    for warning in result.get("warnings") or []:
        print(f"fireline: wording: {warning}", file=sys.stderr)
    _emit(args, result, f"{args.id}: {args.section} saved")
    return base.EXIT_OK


def _review(verb: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        body = {"comment": args.comment or ""}
        result = _api(args).request(
            "POST", f"/v1/postmortems/{args.id}/{verb.replace('_', '-')}", json=body
        )
        state = result["state"]
        _emit(args, result, f"postmortem {state['incident_id']}: {state['status']}")
        return base.EXIT_OK

    return run


def cmd_export(args: argparse.Namespace) -> int:
    """Write the Markdown and JSON files now."""
    result = _api(args).request("POST", f"/v1/postmortems/{args.id}/export")
    paths = result["state"].get("exported") or []
    _emit(args, result, "\n".join(f"wrote {p}" for p in paths))
    return base.EXIT_OK


def cmd_actions_list(args: argparse.Namespace) -> int:
    """Action items, soonest due first."""
    params: list[tuple[str, str]] = []
    if args.overdue:
        params.append(("overdue", "true"))
    if args.owner:
        params.append(("owner", args.owner))
    if args.all:
        params.append(("all", "true"))
    rows = _api(args).request("GET", "/v1/action-items", params=params)
    _emit(args, rows, render_items(rows))
    return base.EXIT_OK


def cmd_actions_show(args: argparse.Namespace) -> int:
    """One action item."""
    item = _api(args).request("GET", f"/v1/action-items/{args.item}")
    _emit(args, item, render_item(item))
    return base.EXIT_OK


def cmd_actions_add(args: argparse.Namespace) -> int:
    """Create an action item on an incident's postmortem."""
    body: dict[str, Any] = {
        "title": args.title,
        "owner": args.owner,
        "due_at": parse_when(args.due).isoformat(),
        "priority": args.priority,
        "kind": args.kind,
    }
    if args.link:
        body["link"] = args.link
    item = _api(args).request("POST", f"/v1/postmortems/{args.id}/action-items", json=body)
    _emit(
        args,
        item,
        f"added {item['id']} for {item['owner']}, due {base.clock(item['due_at'])}: "
        f"{item['title']}",
    )
    return base.EXIT_OK


def _item_action(verb: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        body: dict[str, Any] = {"note": args.note or ""}
        if verb == "reassign":
            body["owner"] = args.owner
        if verb == "snooze":
            body["until"] = parse_when(args.until).isoformat()
        item = _api(args).request("POST", f"/v1/action-items/{args.item}/{verb}", json=body)
        _emit(args, item, f"{item['id']} [{item['status']}] {item['events'][-1]['text']}")
        return base.EXIT_OK

    return run


# --- parsers ------------------------------------------------------------------------------


def add_parsers(sub: Any, client: argparse.ArgumentParser) -> None:
    """Add ``postmortem`` and ``actions`` to the CLI; ``client`` carries the connection
    flags and --json."""
    pm = sub.add_parser("postmortem", help="review an incident's blameless postmortem")
    psub = pm.add_subparsers(dest="postmortem_command", required=True, metavar="ACTION")

    p = psub.add_parser("show", parents=[client], help="sections, review state, action items")
    p.add_argument("id", help="the incident, e.g. INC-42")
    p.add_argument("--markdown", action="store_true", help="print the Markdown document")
    p.set_defaults(func=cmd_show)

    p = psub.add_parser("edit", parents=[client], help="replace a section's text")
    p.add_argument("id", help="the incident, e.g. INC-42")
    p.add_argument("section", choices=SECTIONS)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--text", help="the new text (Markdown)")
    src.add_argument("--file", metavar="PATH", help="read the text from PATH ('-': stdin)")
    p.set_defaults(func=cmd_edit)

    for verb, text in (
        ("submit", "draft → in review"),
        ("approve", "sign off as a reviewer"),
        ("request-changes", "send it back to draft, saying what to change (--comment)"),
        ("publish", "in review → published (refused while a required section is empty)"),
        ("refresh", "re-read the incident's timeline into the draft (edits are kept)"),
    ):
        p = psub.add_parser(verb, parents=[client], help=text, description=text)
        p.add_argument("id", help="the incident, e.g. INC-42")
        p.add_argument("--comment", help="for the review history")
        p.set_defaults(func=_review(verb.replace("-", "_")))

    p = psub.add_parser("export", parents=[client], help="write Markdown + JSON files now")
    p.add_argument("id", help="the incident, e.g. INC-42")
    p.set_defaults(func=cmd_export)

    actions = sub.add_parser("actions", help="action items from postmortems")
    asub = actions.add_subparsers(dest="actions_command", required=True, metavar="ACTION")

    p = asub.add_parser("list", parents=[client], help="open action items, soonest due first")
    p.add_argument("--overdue", action="store_true", help="only those past their due date")
    p.add_argument("--owner", metavar="USER")
    p.add_argument("--all", action="store_true", help="include done and dropped items")
    p.set_defaults(func=cmd_actions_list)

    p = asub.add_parser("show", parents=[client], help="one item, its history and reminders")
    p.add_argument("item", help="e.g. INC-42-A1")
    p.set_defaults(func=cmd_actions_show)

    p = asub.add_parser("add", parents=[client], help="track an improvement on a postmortem")
    p.add_argument("id", help="the incident, e.g. INC-42")
    p.add_argument("title", help="what will be done")
    p.add_argument("--owner", required=True, metavar="USER")
    p.add_argument("--due", required=True, metavar="WHEN", help="2026-12-01, ISO time, or +14d")
    p.add_argument("--priority", choices=[p.value for p in ActionItemPriority], default="P2")
    p.add_argument("--kind", choices=[k.value for k in ActionItemKind], default="prevent")
    p.add_argument("--link", metavar="URL", help="a ticket or document")
    p.set_defaults(func=cmd_actions_add)

    for verb, text in (("done", "the work is done"), ("drop", "it will not be done (--note why)")):
        p = asub.add_parser(verb, parents=[client], help=text, description=text)
        p.add_argument("item", help="e.g. INC-42-A1")
        p.add_argument("--note")
        p.set_defaults(func=_item_action(verb))

    p = asub.add_parser("reassign", parents=[client], help="hand the item to a new owner")
    p.add_argument("item", help="e.g. INC-42-A1")
    p.add_argument("owner", metavar="USER")
    p.add_argument("--note")
    p.set_defaults(func=_item_action("reassign"))

    p = asub.add_parser("snooze", parents=[client], help="hold reminders until WHEN")
    p.add_argument("item", help="e.g. INC-42-A1")
    p.add_argument("until", metavar="WHEN", help="2026-12-01, ISO time, or +3d")
    p.add_argument("--note")
    p.set_defaults(func=_item_action("snooze"))
