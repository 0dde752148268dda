"""Similar past incidents as a Temporal activity, for the incident's timeline at declaration.

The activity only reads, so running it twice is harmless. Finding the incidents needs the
Temporal client (visibility and queries), which lives in ``worker/``: the worker hands in a
``SimilarFinder`` (``worker.knowledge.KnowledgeBase``) and tests hand in a fixed list.
Any failure of the finder is retried by Temporal; suggestions are a courtesy, so the
workflow caps the attempts and carries on without them.
"""

from __future__ import annotations

from typing import Protocol

from temporalio import activity

from activities.contracts import SimilarIncidents, SimilarRequest


class SimilarFinder(Protocol):
    """Finds the past incidents most like a new one."""

    async def similar(self, req: SimilarRequest) -> SimilarIncidents:
        """The best suggestions first, each with its explanation."""
        ...


class KnowledgeActivities:
    """``knowledge.similar``, bound to a finder."""

    def __init__(self, finder: SimilarFinder) -> None:
        self.finder = finder

    @activity.defn(name="knowledge.similar")
    async def similar(self, req: SimilarRequest) -> SimilarIncidents:
        """The past incidents most like ``req``, with why and the runbooks that fixed them."""
        found = await self.finder.similar(req)
        activity.logger.info(
            "%s: %d similar of %d compared", req.incident_id, len(found.suggestions), found.compared
        )
        return found
