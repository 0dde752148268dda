"""The knowledge base: search past incidents, and find the ones most like a new incident.

Pure functions of ``IncidentRecord`` s (``search``, ``rank_similar``), plus
``KnowledgeBase``, which loads the records from a running fireline for the API, the CLI and
the ``knowledge.similar`` activity.

Similarity is a weighted sum of four parts, each in 0..1, so the score is 0..1 and every
part can be named in the explanation:

- same service (1 or 0);
- shared labels: Jaccard of the ``key=value`` pairs (``alertname`` and ``drill`` are left
  out: the alert names are their own part, and every drill shares ``drill=true``);
- shared alert names: Jaccard of the alert names;
- text: TF-IDF cosine of title + summary, the IDF taken over the compared incidents, so
  words every incident has ("error", "service") count for little.

Only finished (resolved or closed) incidents are suggested: they are the ones with an
answer, and "the runbooks that resolved them" are their runs that succeeded (not dry runs).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel, Field

from activities.contracts import (
    SimilarIncident,
    SimilarIncidents,
    SimilarityReason,
    SimilarRequest,
)
from worker.incident_records import IncidentRecord, RecordLoader
from workflows.contracts import IncidentStatus

T = TypeVar("T")

WEIGHTS: Mapping[str, float] = {"service": 0.15, "labels": 0.25, "alerts": 0.3, "text": 0.3}
# Below this a "similar" incident shares too little to be worth a responder's attention
# (the same service alone scores 0.15).
MIN_SCORE = 0.2
# Labels that say nothing about what went wrong, or are counted elsewhere.
IGNORED_LABELS = frozenset({"alertname", "drill"})
_FINISHED = (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)

_WORD = re.compile(r"[a-z0-9]+")
# fmt: off
_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "for", "from", "has", "have",
    "in", "into", "is", "it", "its", "not", "of", "on", "or", "our", "the", "their", "then",
    "there", "this", "to", "was", "were", "when", "which", "while", "will", "with", "after",
    "before", "all", "any", "some", "than", "too", "very", "can", "could", "should", "would",
))
# fmt: on


def tokens(text: str) -> list[str]:
    """Lower-case words of three or more letters (or any number), plurals folded."""
    words = []
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS or (len(word) < 3 and not word.isdigit()):
            continue
        # "errors" and "error" are the same thing to a responder; "status" is not a plural.
        plural = word.endswith("s") and not word.endswith("ss")
        if plural and (len(word) > 4 or word[:-1].isdigit()):
            word = word[:-1]
        words.append(word)
    return words


# --- search -------------------------------------------------------------------------------


class SearchQuery(BaseModel):
    """What to look for; every given filter must hold."""

    service: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    # Any of these alert names.
    alerts: list[str] = Field(default_factory=list)
    # Every word must appear (title, summary, notes, resolution, postmortem, alert names).
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_drills: bool = False
    limit: int = Field(default=50, ge=1, le=1000)


class SearchHit(BaseModel):
    """One incident found."""

    id: str
    title: str
    service: str
    severity: str
    status: IncidentStatus
    declared_at: datetime
    resolved_at: datetime | None
    labels: dict[str, str]
    alert_names: list[str]
    matched_words: list[str] = Field(default_factory=list)
    runbooks: list[str] = Field(default_factory=list)
    resolution_summary: str | None = None


def _searchable(record: IncidentRecord) -> Counter[str]:
    return Counter(tokens(record.text + "\n" + " ".join(record.alert_names)))


def search(records: Iterable[IncidentRecord], query: SearchQuery) -> list[SearchHit]:
    """Matching incidents: by text relevance when there is text, else newest first."""
    wanted = sorted(set(tokens(query.text or "")))
    hits: list[tuple[float, SearchHit]] = []
    for r in records:
        if r.drill and not query.include_drills:
            continue
        if query.service and r.service != query.service:
            continue
        if query.since and r.declared_at < query.since:
            continue
        if query.until and r.declared_at >= query.until:
            continue
        if any(r.labels.get(k) != v for k, v in query.labels.items()):
            continue
        if query.alerts and not set(query.alerts) & set(r.alert_names):
            continue
        relevance = 0.0
        if wanted:
            words = _searchable(r)
            if any(words[w] == 0 for w in wanted):
                continue
            relevance = float(sum(words[w] for w in wanted))
        hit = SearchHit(
            id=r.id,
            title=r.title,
            service=r.service,
            severity=r.severity,
            status=r.status,
            declared_at=r.declared_at,
            resolved_at=r.resolved_at,
            labels=r.labels,
            alert_names=r.alert_names,
            matched_words=wanted,
            runbooks=r.resolving_runbooks,
            resolution_summary=r.resolution_summary,
        )
        hits.append((relevance, hit))
    hits.sort(key=lambda h: (h[0], h[1].declared_at.timestamp()), reverse=True)
    return [hit for _, hit in hits[: query.limit]]


# --- similarity ---------------------------------------------------------------------------


def _label_pairs(labels: Mapping[str, str]) -> set[tuple[str, str]]:
    return {(k, v) for k, v in labels.items() if k not in IGNORED_LABELS}


def _jaccard(a: AbstractSet[T], b: AbstractSet[T]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 0.0


class _Tfidf:
    """TF-IDF vectors over one comparison's documents (the query and the candidates)."""

    def __init__(self, documents: Sequence[list[str]]) -> None:
        df: Counter[str] = Counter()
        for doc in documents:
            df.update(set(doc))
        n = len(documents)
        # Smoothed IDF (as scikit-learn's default): never zero, never divides by zero.
        self.idf = {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items()}

    def vector(self, doc: list[str]) -> dict[str, float]:
        counts = Counter(doc)
        return {w: c * self.idf.get(w, 1.0) for w, c in counts.items()}


def _cosine(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[float, list[str]]:
    """Cosine similarity and the shared words, biggest contribution first."""
    shared = set(a) & set(b)
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    if not shared or not norm:
        return 0.0, []
    parts = {w: a[w] * b[w] for w in shared}
    words = sorted(shared, key=lambda w: (-parts[w], w))
    return sum(parts.values()) / norm, words


def explain(reason: SimilarityReason, service: str) -> str:
    """``same service checkout; shared alerts: HighErrorRate; shared labels: region=eu-1; …``"""
    parts = []
    if reason.same_service:
        parts.append(f"same service {service}")
    if reason.shared_alerts:
        parts.append("shared alerts: " + ", ".join(reason.shared_alerts))
    if reason.shared_labels:
        parts.append(
            "shared labels: " + ", ".join(f"{k}={v}" for k, v in reason.shared_labels.items())
        )
    if reason.shared_words:
        parts.append("shared words: " + ", ".join(reason.shared_words))
    return "; ".join(parts)


def _request_doc(req: SimilarRequest) -> list[str]:
    return tokens(f"{req.title}\n{req.summary}")


def _record_doc(record: IncidentRecord) -> list[str]:
    return tokens(f"{record.title}\n{record.summary}")


def rank_similar(
    req: SimilarRequest,
    records: Iterable[IncidentRecord],
    *,
    min_score: float = MIN_SCORE,
    max_words: int = 5,
) -> SimilarIncidents:
    """The finished past incidents most like ``req``, best first, each with its reasons."""
    candidates = [
        r
        for r in records
        if r.id != req.incident_id and r.status in _FINISHED and r.drill == req.drill
    ]
    query_doc = _request_doc(req)
    docs = [_record_doc(r) for r in candidates]
    tfidf = _Tfidf([query_doc, *docs])
    query_vec = tfidf.vector(query_doc)
    query_labels = _label_pairs(req.labels)
    query_alerts = set(req.alert_names)
    if "alertname" in req.labels:
        query_alerts.add(req.labels["alertname"])
    scored: list[SimilarIncident] = []
    for record, doc in zip(candidates, docs, strict=True):
        labels = _label_pairs(record.labels)
        alerts = set(record.alert_names)
        text_score, words = _cosine(query_vec, tfidf.vector(doc))
        same = record.service == req.service
        score = (
            WEIGHTS["service"] * same
            + WEIGHTS["labels"] * _jaccard(query_labels, labels)
            + WEIGHTS["alerts"] * _jaccard(query_alerts, alerts)
            + WEIGHTS["text"] * text_score
        )
        if score < min_score:
            continue
        reason = SimilarityReason(
            same_service=same,
            shared_labels=dict(sorted(query_labels & labels)),
            shared_alerts=sorted(query_alerts & alerts),
            shared_words=words[:max_words],
        )
        scored.append(
            SimilarIncident(
                incident_id=record.id,
                title=record.title,
                service=record.service,
                severity=record.severity,
                declared_at=record.declared_at,
                score=round(score, 4),
                reason=reason,
                explanation=explain(reason, record.service),
                runbooks=record.resolving_runbooks,
                resolution_summary=record.resolution_summary,
            )
        )
    # Equal scores: the more recent incident is the better guide to today's system.
    scored.sort(key=lambda s: (-s.score, -s.declared_at.timestamp(), s.incident_id))
    found = SimilarIncidents(suggestions=scored[: req.limit], compared=len(candidates))
    found.text = timeline_text(found)
    return found


def timeline_text(found: SimilarIncidents) -> str:
    """The timeline entry the incident writes for its suggestions (one line each)."""
    if not found.suggestions:
        return f"no similar past incidents (compared {found.compared})"
    lines = ["similar past incidents:"]
    for s in found.suggestions:
        line = f"{s.incident_id} ({s.score:.2f}) {s.title} — {s.explanation}"
        if s.runbooks:
            line += "; resolved with runbook " + ", ".join(s.runbooks)
        lines.append(line)
    return "\n".join(lines)


# --- loading ------------------------------------------------------------------------------


class KnowledgeBase:
    """Search and similarity over the incidents a running fireline holds."""

    def __init__(
        self,
        loader: RecordLoader,
        *,
        lookback: timedelta = timedelta(days=365),
        limit: int = 2000,
    ) -> None:
        self.loader = loader
        self.lookback = lookback
        self.limit = limit

    async def search(self, query: SearchQuery) -> list[SearchHit]:
        """Incidents matching ``query`` (visibility narrows by time and service first)."""
        loaded = await self.loader.load(
            query.since, query.until, service=query.service, limit=self.limit
        )
        return search(loaded.records, query)

    async def similar(self, req: SimilarRequest) -> SimilarIncidents:
        """The past incidents most like ``req`` within the lookback."""
        now = datetime.now(UTC)
        # Only finished incidents can be suggested: the open ones are not even read, which
        # keeps an alert storm's declarations from querying every other open incident.
        loaded = await self.loader.load(
            now - self.lookback, now, statuses=list(_FINISHED), limit=self.limit
        )
        return rank_similar(req, loaded.records)
