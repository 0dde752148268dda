"""``knowledge.similar`` called from a workflow, through fireline's pydantic data converter.

The suggestions are recorded in history, so their models must survive the round trip
(datetimes, nested reasons) exactly; a small workflow stands in for the incident's hook.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from activities.contracts import SimilarIncidents, SimilarRequest
from activities.knowledge import KnowledgeActivities
from tests.unit.report_fixtures import at, rec
from worker.incident_records import AlertRecord
from worker.knowledge import rank_similar


@workflow.defn(name="SuggestSimilar", sandboxed=False)
class SuggestSimilar:
    """What the incident workflow does at declaration: ask, then keep the answer."""

    @workflow.run
    async def run(self, req: SimilarRequest) -> SimilarIncidents:
        found: SimilarIncidents = await workflow.execute_activity(
            "knowledge.similar",
            req,
            result_type=SimilarIncidents,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        return found


class PastIncidents:
    """A finder over two finished incidents."""

    async def similar(self, req: SimilarRequest) -> SimilarIncidents:
        past = [
            rec(
                "INC-1",
                at(10, 1, 9),
                ack=5,
                resolved=40,
                title="Checkout latency spike after deploy",
                labels={"region": "eu-west-1"},
                alerts=[
                    AlertRecord(fingerprint="f1", alertname="HighLatency", starts_at=at(10, 1, 9))
                ],
                runbooks=["rollback-deploy"],
            ),
            rec("INC-2", at(10, 2, 9), ack=5, resolved=40, title="Search index lagging"),
        ]
        return rank_similar(req, past)


async def test_suggestions_round_trip_through_history(client: Client, task_queue: str) -> None:
    req = SimilarRequest(
        incident_id="INC-9",
        service="checkout",
        title="Checkout latency high",
        labels={"region": "eu-west-1"},
        alert_names=["HighLatency"],
    )
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[SuggestSimilar],
        activities=[KnowledgeActivities(PastIncidents()).similar],
    ):
        found = await client.execute_workflow(
            SuggestSimilar.run,
            req,
            id=f"suggest-{uuid.uuid4()}",
            task_queue=task_queue,
            execution_timeout=timedelta(minutes=1),
        )
    assert found == await PastIncidents().similar(req)
    assert [s.incident_id for s in found.suggestions] == ["INC-1"]
    assert found.suggestions[0].runbooks == ["rollback-deploy"]
    assert found.text.startswith("similar past incidents:\nINC-1 (")
