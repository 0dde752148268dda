"""The GitHub Issues tracker against a loopback GitHub: exact requests, idempotent open and
close, and the error classification."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from activities.contracts import CloseTicket, TicketRequest
from activities.http import PermanentHttpError, TransientHttpError
from activities.postmortem import TrackerActivities
from activities.providers.github_issues import GitHubIssuesTracker, marker
from tests.fakes.github import FakeGitHub, Issue

TOKEN = "ghp_test_token_123"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub("acme/infra", TOKEN) as fake:
        yield fake


@pytest.fixture
async def tracker(github: FakeGitHub) -> AsyncIterator[GitHubIssuesTracker]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield GitHubIssuesTracker(client, TOKEN, "acme/infra", base_url=github.url)


def request(key: str = "INC-7-A1") -> TicketRequest:
    return TicketRequest(
        key=key,
        tracker="github",
        title="Alert on connection pool saturation",
        body="From the postmortem of INC-7. Owner: bob. Due 2026-12-01.",
        labels=["postmortem"],
    )


async def test_open_creates_one_labelled_issue_with_the_marker(
    github: FakeGitHub, tracker: GitHubIssuesTracker
) -> None:
    ref = await tracker.open(request())
    assert (ref.provider, ref.external_id, ref.created) == ("github", "1", True)
    assert ref.url == "https://github.com/acme/infra/issues/1"
    listing, create = github.requests
    assert (listing.method, listing.path) == ("GET", "/repos/acme/infra/issues")
    assert listing.query == {
        "labels": ["fireline"],
        "state": ["all"],
        "per_page": ["100"],
        "page": ["1"],
    }
    assert (create.method, create.path) == ("POST", "/repos/acme/infra/issues")
    assert create.header("authorization") == f"Bearer {TOKEN}"
    assert create.header("accept") == "application/vnd.github+json"
    assert create.header("x-github-api-version") == "2022-11-28"
    assert create.json() == {
        "title": "Alert on connection pool saturation",
        "body": "From the postmortem of INC-7. Owner: bob. Due 2026-12-01.\n\n"
        "<!-- fireline-action-item: INC-7-A1 -->\n",
        "labels": ["fireline", "postmortem"],
    }


async def test_open_again_finds_the_issue_instead_of_opening_a_second(
    github: FakeGitHub, tracker: GitHubIssuesTracker
) -> None:
    # Someone else's issue and a pull request quoting the marker are not ours.
    github.issues.append(Issue(1, "other", "unrelated", ["fireline"]))
    github.issues.append(Issue(2, "pr", marker("INC-7-A1"), ["fireline"], pull_request=True))
    first = await tracker.open(request())
    again = await tracker.open(request())
    assert (first.external_id, first.created) == ("3", True)
    assert (again.external_id, again.created) == ("3", False)
    assert len(github.issues) == 3
    assert (await tracker.open(request("INC-7-A2"))).external_id == "4"


async def test_close_is_idempotent_and_says_why(
    github: FakeGitHub, tracker: GitHubIssuesTracker
) -> None:
    ref = await tracker.open(request())
    close = CloseTicket(
        key="INC-7-A1",
        tracker="github",
        external_id=ref.external_id,
        reason="not_planned",
        comment="Dropped: superseded by INC-7-A2.",
    )
    closed = await tracker.close(close)
    assert closed.state == "closed"
    assert await tracker.close(close) == closed
    issue = github.issues[0]
    assert (issue.state, issue.state_reason) == ("closed", "not_planned")
    patch = [r for r in github.requests if r.method == "PATCH"][-1]
    assert patch.path == "/repos/acme/infra/issues/1"
    assert patch.json() == {"state": "closed", "state_reason": "not_planned"}


async def test_errors_are_classified_and_the_token_never_shows(
    github: FakeGitHub, tracker: GitHubIssuesTracker
) -> None:
    github.fail_next(1, 502)
    with pytest.raises(TransientHttpError):
        await tracker.open(request())
    github.rate_limit_next()
    with pytest.raises(TransientHttpError) as limited:
        await tracker.open(request())
    assert (
        limited.value.message == "GitHub answered HTTP 403: API rate limit exceeded (rate limited)"
    )
    assert limited.value.next_retry_delay is not None
    async with httpx.AsyncClient(timeout=5) as client:
        wrong = GitHubIssuesTracker(client, "nope", "acme/infra", base_url=github.url)
        with pytest.raises(PermanentHttpError) as denied:
            await wrong.open(request())
        assert denied.value.message == "GitHub answered HTTP 401: Bad credentials"
        missing = GitHubIssuesTracker(client, TOKEN, "acme/gone", base_url=github.url)
        with pytest.raises(PermanentHttpError) as gone:
            await missing.open(request())
        assert gone.value.message == "GitHub answered HTTP 404: Not Found"
    assert github.issues == []


async def test_an_unknown_tracker_is_a_permanent_error(tracker: GitHubIssuesTracker) -> None:
    activities = TrackerActivities({"github": tracker})
    with pytest.raises(Exception, match="no tracker 'jira' is configured") as caught:
        await activities.open(request().model_copy(update={"tracker": "jira"}))
    assert getattr(caught.value, "type", None) == "TrackerNotConfigured"
