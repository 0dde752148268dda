"""A loopback GitHub REST API for issues: list, create, update (close) and comment.

As GitHub documents it: ``Authorization: Bearer <token>`` (or ``token <token>``), else
``401 {"message": "Bad credentials"}``; an unknown repository is ``404 {"message": "Not
Found"}``; a create without a title is ``422 {"message": "Validation Failed", "errors":
[...]}``; ``GET /repos/{owner}/{repo}/issues`` filters by ``labels`` (comma-separated, all
must match) and ``state`` (``open`` by default, ``closed``, ``all``), pages with ``per_page``
and ``page``, and lists pull requests too (with a ``pull_request`` key). Labels that do not
exist yet are created with the issue. A spent rate limit answers ``403`` with
``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import LoopbackServer, RecordedRequest, Reply, _Handler

_ISSUES = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues$")
_ISSUE = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<number>[0-9]+)$")
_COMMENTS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<number>[0-9]+)/comments$")


class _PatchHandler(_Handler):
    """The shared handler, plus PATCH (GitHub updates issues with it)."""

    def do_PATCH(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self._dispatch()


@dataclass
class Issue:
    """One issue (or pull request) as GitHub keeps it."""

    number: int
    title: str
    body: str
    labels: list[str]
    state: str = "open"
    state_reason: str | None = None
    pull_request: bool = False
    comments: list[str] = field(default_factory=list)

    def json(self, repo: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": 1000 + self.number,
            "number": self.number,
            "title": self.title,
            "body": self.body,
            "state": self.state,
            "state_reason": self.state_reason,
            "labels": [{"name": n} for n in self.labels],
            "html_url": f"https://github.com/{repo}/issues/{self.number}",
        }
        if self.pull_request:
            out["pull_request"] = {"url": f"https://api.github.com/repos/{repo}/pulls/1"}
        return out


class FakeGitHub(LoopbackServer):
    """GitHub's issues API for one repository and one token."""

    def __init__(self, repo: str, token: str) -> None:
        """Serve ``repo`` (``owner/name``) to ``token`` only."""
        super().__init__()
        self.repo = repo
        self.token = token
        self.issues: list[Issue] = []
        self._rate_limited = 0

    def start(self) -> None:
        """Listen, with PATCH understood."""
        super().start()
        assert self._server is not None
        self._server.RequestHandlerClass = _PatchHandler

    def rate_limit_next(self, times: int = 1) -> None:
        """The next ``times`` requests find the primary rate limit spent."""
        self._rate_limited += times

    def error_body(self, status: int) -> Any:
        """GitHub's error body."""
        return {"message": "Server Error" if status >= 500 else "Error", "status": str(status)}

    def handle(self, request: RecordedRequest) -> Reply:
        """Authenticate, route and apply one call."""
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or token != self.token:
            return Reply(401, {"message": "Bad credentials", "status": "401"})
        if self._rate_limited > 0:
            self._rate_limited -= 1
            reset = str(int(time.time()) + 30)
            return Reply(
                403,
                {"message": "API rate limit exceeded", "status": "403"},
                {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset},
            )
        for pattern, routes in (
            (_ISSUES, {"GET": self._list, "POST": self._create}),
            (_ISSUE, {"PATCH": self._update}),
            (_COMMENTS, {"POST": self._comment}),
        ):
            match = pattern.match(request.path)
            if match is None:
                continue
            if match["repo"] != self.repo:
                return Reply(404, {"message": "Not Found", "status": "404"})
            route = routes.get(request.method)
            if route is None:
                return Reply(404, {"message": "Not Found", "status": "404"})
            return route(request, match.groupdict())
        return Reply(404, {"message": "Not Found", "status": "404"})

    def _issue(self, number: str) -> Issue | None:
        return next((i for i in self.issues if i.number == int(number)), None)

    def _list(self, request: RecordedRequest, _: dict[str, str]) -> Reply:
        q = {k: v[0] for k, v in request.query.items()}
        wanted = [n for n in q.get("labels", "").split(",") if n]
        state = q.get("state", "open")
        rows = [
            i
            for i in sorted(self.issues, key=lambda i: -i.number)
            if all(n in i.labels for n in wanted) and (state == "all" or i.state == state)
        ]
        per_page, page = int(q.get("per_page", "30")), int(q.get("page", "1"))
        chunk = rows[(page - 1) * per_page : page * per_page]
        return Reply(200, [i.json(self.repo) for i in chunk])

    def _create(self, request: RecordedRequest, _: dict[str, str]) -> Reply:
        body = request.json()
        if not isinstance(body, dict) or not body.get("title"):
            return Reply(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}],
                    "status": "422",
                },
            )
        issue = Issue(
            number=len(self.issues) + 1,
            title=str(body["title"]),
            body=str(body.get("body") or ""),
            labels=[str(n) for n in body.get("labels") or []],
        )
        self.issues.append(issue)
        return Reply(201, issue.json(self.repo))

    def _update(self, request: RecordedRequest, found: dict[str, str]) -> Reply:
        issue = self._issue(found["number"])
        if issue is None:
            return Reply(404, {"message": "Not Found", "status": "404"})
        body = request.json()
        if body.get("state") in ("open", "closed") and body["state"] != issue.state:
            issue.state = body["state"]
            issue.state_reason = body.get("state_reason") or (
                "completed" if issue.state == "closed" else "reopened"
            )
        return Reply(200, issue.json(self.repo))

    def _comment(self, request: RecordedRequest, found: dict[str, str]) -> Reply:
        issue = self._issue(found["number"])
        if issue is None:
            return Reply(404, {"message": "Not Found", "status": "404"})
        issue.comments.append(str(request.json().get("body", "")))
        return Reply(201, {"id": len(issue.comments), "body": issue.comments[-1]})
