"""Knowledge base: search filters, and similarity ranking on a small labelled set."""

from __future__ import annotations

import pytest

from activities.contracts import SimilarIncidents, SimilarRequest
from activities.knowledge import KnowledgeActivities
from tests.unit.report_fixtures import at, rec
from worker.incident_records import AlertRecord, IncidentRecord
from worker.knowledge import SearchQuery, rank_similar, search, timeline_text, tokens


def alert(name: str) -> AlertRecord:
    return AlertRecord(fingerprint=f"fp-{name}", alertname=name, starts_at=at(11, 1, 0))


def past() -> list[IncidentRecord]:
    """The labelled set: each query below has one right answer among these."""
    return [
        rec(
            "INC-1",
            at(10, 1, 9),
            ack=5,
            resolved=40,
            title="Checkout latency spike after deploy",
            summary="p99 latency above 2s on checkout pods",
            labels={"region": "eu-west-1", "team": "payments", "alertname": "HighLatency"},
            alerts=[alert("HighLatency")],
            runbooks=["rollback-deploy"],
        ),
        rec(
            "INC-2",
            at(10, 5, 9),
            service="payments-db",
            ack=5,
            resolved=90,
            title="Database connection pool exhausted",
            summary="payments-db refuses new connections",
            labels={"region": "us-east-1", "team": "data"},
            alerts=[alert("DBConnectionsHigh")],
            runbooks=["scale-db"],
        ),
        rec(
            "INC-3",
            at(10, 9, 9),
            ack=5,
            resolved=30,
            closed=90,
            title="Checkout 5xx errors from payment provider timeout",
            summary="the payment provider times out; checkout returns 502",
            labels={"region": "us-east-1", "team": "payments"},
            alerts=[alert("HighErrorRate")],
        ),
        rec(
            "INC-4",
            at(10, 12, 9),
            service="search",
            ack=5,
            resolved=30,
            title="Search index lagging",
            summary="indexer behind by an hour",
            labels={"team": "discovery"},
            alerts=[alert("IndexLag")],
        ),
        # Still open: alike, but it has no answer yet, so it is never suggested.
        rec(
            "INC-5",
            at(10, 20, 9),
            ack=5,
            title="Checkout latency high",
            labels={"region": "eu-west-1", "alertname": "HighLatency"},
            alerts=[alert("HighLatency")],
        ),
        # A drill exactly like the first query: practice is not suggested for outages.
        rec(
            "INC-6",
            at(10, 21, 9),
            ack=5,
            resolved=10,
            title="Checkout latency high",
            labels={"region": "eu-west-1", "alertname": "HighLatency", "drill": "true"},
            alerts=[alert("HighLatency")],
            drill=True,
        ),
    ]


@pytest.mark.parametrize(
    ("request_", "best"),
    [
        (
            SimilarRequest(
                incident_id="INC-9",
                service="checkout",
                title="Checkout latency high",
                labels={"region": "eu-west-1", "alertname": "HighLatency"},
            ),
            "INC-1",
        ),
        (
            SimilarRequest(
                incident_id="INC-9",
                service="payments-db",
                title="DB connection pool exhausted again",
                alert_names=["DBConnectionsHigh"],
            ),
            "INC-2",
        ),
        (
            SimilarRequest(
                incident_id="INC-9",
                service="checkout",
                title="Payment provider timeout errors",
                labels={"region": "us-east-1"},
                alert_names=["HighErrorRate"],
            ),
            "INC-3",
        ),
        (
            # Text alone, another service: the words still find it.
            SimilarRequest(
                incident_id="INC-9", service="indexer", title="search index lagging behind"
            ),
            "INC-4",
        ),
    ],
)
def test_the_right_past_incident_ranks_first(request_: SimilarRequest, best: str) -> None:
    found = rank_similar(request_, past())
    assert found.suggestions, "expected at least one suggestion"
    assert found.suggestions[0].incident_id == best
    scores = [s.score for s in found.suggestions]
    assert scores == sorted(scores, reverse=True)


def test_explanation_names_the_shared_service_alerts_labels_and_words() -> None:
    req = SimilarRequest(
        incident_id="INC-9",
        service="checkout",
        title="Checkout latency high",
        labels={"region": "eu-west-1", "alertname": "HighLatency"},
    )
    top = rank_similar(req, past()).suggestions[0]
    assert top.reason.same_service
    assert top.reason.shared_alerts == ["HighLatency"]
    # alertname is counted as an alert, not again as a label.
    assert top.reason.shared_labels == {"region": "eu-west-1"}
    assert top.reason.shared_words == ["latency", "checkout"]
    assert top.explanation == (
        "same service checkout; shared alerts: HighLatency; shared labels: region=eu-west-1; "
        "shared words: latency, checkout"
    )
    assert top.runbooks == ["rollback-deploy"]


def test_open_incidents_drills_and_itself_are_never_suggested() -> None:
    req = SimilarRequest(
        incident_id="INC-1",  # asking about INC-1 itself
        service="checkout",
        title="Checkout latency high",
        labels={"region": "eu-west-1", "alertname": "HighLatency"},
        limit=20,
    )
    found = rank_similar(req, past())
    ids = {s.incident_id for s in found.suggestions}
    assert ids.isdisjoint({"INC-1", "INC-5", "INC-6"})
    assert found.compared == 3  # INC-2, INC-3, INC-4


def test_drills_are_compared_with_drills() -> None:
    req = SimilarRequest(
        incident_id="INC-9", service="checkout", title="Checkout latency high", drill=True
    )
    assert [s.incident_id for s in rank_similar(req, past()).suggestions] == ["INC-6"]


def test_nothing_alike_gives_no_suggestions_and_says_so() -> None:
    req = SimilarRequest(incident_id="INC-9", service="office", title="Printer on fire")
    found = rank_similar(req, past())
    assert found.suggestions == []
    assert timeline_text(found) == "no similar past incidents (compared 4)"
    assert found.text == timeline_text(found)


def test_limit_and_timeline_text() -> None:
    req = SimilarRequest(
        incident_id="INC-9",
        service="checkout",
        title="Checkout latency and errors",
        labels={"team": "payments"},
        limit=1,
    )
    found = rank_similar(req, past())
    assert len(found.suggestions) == 1
    text = timeline_text(found)
    assert found.text == text  # the activity's output carries it for the workflow
    assert text.startswith("similar past incidents:\nINC-1 (")
    assert text.endswith("resolved with runbook rollback-deploy")


async def test_the_activity_returns_what_its_finder_found() -> None:
    class FixedFinder:
        async def similar(self, req: SimilarRequest) -> SimilarIncidents:
            return rank_similar(req, past())

    req = SimilarRequest(
        incident_id="INC-9",
        service="payments-db",
        title="connection pool exhausted",
        alert_names=["DBConnectionsHigh"],
    )
    found = await KnowledgeActivities(FixedFinder()).similar(req)
    assert found.suggestions[0].incident_id == "INC-2"
    assert found.suggestions[0].runbooks == ["scale-db"]


def test_tokens_fold_plurals_and_drop_stopwords() -> None:
    assert tokens("The errors were from the Payment providers; 502s at 10:00") == [
        "error",
        "payment",
        "provider",
        "502",
        "10",
        "00",
    ]


# --- search -----------------------------------------------------------------------------------


def ids(query: SearchQuery) -> list[str]:
    return [h.id for h in search(past(), query)]


def test_search_by_service_newest_first() -> None:
    assert ids(SearchQuery(service="checkout")) == ["INC-5", "INC-3", "INC-1"]


def test_search_by_labels_requires_every_label() -> None:
    assert ids(SearchQuery(labels={"team": "payments", "region": "us-east-1"})) == ["INC-3"]
    assert ids(SearchQuery(labels={"region": "eu-west-1"})) == ["INC-5", "INC-1"]


def test_search_by_alert_names_matches_any() -> None:
    query = SearchQuery(alerts=["IndexLag", "DBConnectionsHigh"])
    assert ids(query) == ["INC-4", "INC-2"]


def test_search_text_needs_every_word_and_ranks_by_occurrences() -> None:
    hits = search(past(), SearchQuery(text="checkout latency"))
    assert [h.id for h in hits] == ["INC-1", "INC-5"]  # INC-1 says "latency" twice
    assert hits[0].matched_words == ["checkout", "latency"]
    assert hits[0].runbooks == ["rollback-deploy"]
    assert ids(SearchQuery(text="payment timeout")) == ["INC-3"]
    assert ids(SearchQuery(text="latency printer")) == []


def test_search_text_reaches_notes_resolution_and_postmortem() -> None:
    record = rec("INC-8", at(10, 2, 9), resolved=5).model_copy(
        update={"notes": ["certificate expired"], "postmortem": "root cause: cron disabled"}
    )
    assert [h.id for h in search([record], SearchQuery(text="cron certificate"))] == ["INC-8"]


def test_search_by_time_window_and_drills() -> None:
    assert ids(SearchQuery(since=at(10, 9, 0), until=at(10, 20, 9))) == ["INC-4", "INC-3"]
    assert "INC-6" not in ids(SearchQuery())
    assert "INC-6" in ids(SearchQuery(include_drills=True))
