"""SilenceStoreWorkflow on the time-skipping server: Updates, validators, time, continue-as-new."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support import eventually
from workflows.matchers import parse_matchers
from workflows.silences import SilenceStoreWorkflow
from workflows.suppression import (
    AddSilence,
    ExpireSilence,
    Silence,
    SilenceState,
    SilenceStoreInput,
)

Handle = WorkflowHandle[SilenceStoreWorkflow, None]

_started: list[str] = []


@pytest.fixture
async def worker(client: Client, task_queue: str) -> AsyncIterator[None]:
    async with Worker(client, task_queue=task_queue, workflows=[SilenceStoreWorkflow]):
        yield
        # A store left running with a timer and no worker stops the test server from
        # skipping time for every later test: end this test's stores while we can.
        while _started:
            with contextlib.suppress(RPCError):  # already closed
                await client.get_workflow_handle(_started.pop()).terminate("test finished")


pytestmark = pytest.mark.usefixtures("worker")


async def start(client: Client, task_queue: str, inp: SilenceStoreInput | None = None) -> Handle:
    workflow_id = f"fireline-silences-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        SilenceStoreWorkflow.run,
        inp or SilenceStoreInput(),
        id=workflow_id,
        task_queue=task_queue,
        execution_timeout=timedelta(days=60),
    )
    _started.append(workflow_id)
    return handle


def add(**overrides: Any) -> AddSilence:
    fields: dict[str, Any] = {
        "matchers": ['service="orders-db"', 'env=~"prod|dr"'],
        "duration": "2h",
        "created_by": "alice@example.com",
        "comment": "DB failover drill",
    }
    fields.update(overrides)
    return AddSilence.model_validate(fields)


async def refused(handle: Handle, update: Any, arg: Any) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(update, arg)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


async def listed(handle: Handle, *, include_expired: bool = False) -> list[str]:
    silences = await handle.query(SilenceStoreWorkflow.silences, include_expired)
    return [s.comment for s in silences]


async def test_add_list_and_expire(
    time_env: WorkflowEnvironment, client: Client, task_queue: str
) -> None:
    handle = await start(client, task_queue)
    before = await time_env.get_current_time()
    added = await handle.execute_update(SilenceStoreWorkflow.add_silence, add())
    assert uuid.UUID(added.id).version == 4
    assert added.matchers == parse_matchers('service="orders-db", env=~"prod|dr"')
    assert added.starts_at == added.created_at
    assert before <= added.starts_at <= await time_env.get_current_time()
    assert added.ends_at - added.starts_at == timedelta(hours=2)
    assert (added.created_by, added.expired_at) == ("alice@example.com", None)
    assert await handle.query(SilenceStoreWorkflow.silences) == [added]

    expired = await handle.execute_update(
        SilenceStoreWorkflow.expire_silence, ExpireSilence(id=added.id, actor="bob@example.com")
    )
    assert expired.expired_by == "bob@example.com"
    assert expired.expired_at is not None
    assert expired.state(expired.expired_at) is SilenceState.EXPIRED
    assert expired.model_dump(exclude={"expired_at", "expired_by"}) == added.model_dump(
        exclude={"expired_at", "expired_by"}
    )
    assert await handle.query(SilenceStoreWorkflow.silences) == []
    assert await handle.query(SilenceStoreWorkflow.silences, True) == [expired]


PAST = datetime.fromisoformat("2001-02-03T04:05:06+00:00")


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        (
            {"matchers": ['service=~".*"']},
            "at least one matcher must not match the empty string: "
            '{service=~".*"} would also silence every alert without those labels',
        ),
        ({"matchers": []}, "at least one matcher required"),
        (
            {"matchers": ["team=db", "env=~'prod'"]},
            "matchers[1]: cannot parse matchers \"env=~'prod'\" at column 6: expected a label "
            'value, found "\'"; only double quotes quote text',
        ),
        ({"duration": None}, "give ends_at or duration"),
        (
            {"duration": None, "ends_at": PAST},
            "ends_at 2001-02-03T04:05:06+00:00 is not in the future",
        ),
        ({"duration": "0s"}, "duration must be longer than zero"),
    ],
)
async def test_add_validator_refuses_and_writes_nothing(
    client: Client, task_queue: str, request_fields: dict[str, Any], message: str
) -> None:
    handle = await start(client, task_queue)
    await handle.execute_update(SilenceStoreWorkflow.add_silence, add(comment="kept"))
    history_before = await handle.fetch_history()
    error = await refused(handle, SilenceStoreWorkflow.add_silence, add(**request_fields))
    assert (error.type, error.message) == ("InvalidSilence", message)
    history_after = await handle.fetch_history()
    added = {
        EventType.Name(e.event_type) for e in history_after.events[len(history_before.events) :]
    }
    assert added <= {
        "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
        "EVENT_TYPE_WORKFLOW_TASK_STARTED",
        "EVENT_TYPE_WORKFLOW_TASK_COMPLETED",
    }
    assert await listed(handle, include_expired=True) == ["kept"]


async def test_expire_validator_refuses_unknown_and_expired_silences(
    client: Client, task_queue: str
) -> None:
    handle = await start(client, task_queue)
    error = await refused(
        handle, SilenceStoreWorkflow.expire_silence, ExpireSilence(id="nope", actor="bob")
    )
    assert (error.type, error.message) == ("SilenceNotFound", "unknown silence 'nope'")

    added = await handle.execute_update(SilenceStoreWorkflow.add_silence, add())
    expired = await handle.execute_update(
        SilenceStoreWorkflow.expire_silence, ExpireSilence(id=added.id, actor="bob")
    )
    assert expired.expired_at is not None
    error = await refused(
        handle, SilenceStoreWorkflow.expire_silence, ExpireSilence(id=added.id, actor="carol")
    )
    assert (error.type, error.message) == (
        "SilenceAlreadyExpired",
        f"silence '{added.id}' already expired at {expired.expired_at.isoformat()}",
    )
    # The refusal changed nothing: bob is still the one who expired it.
    assert await handle.query(SilenceStoreWorkflow.silences, True) == [expired]


async def test_silences_become_active_and_expire_as_time_passes(
    time_env: WorkflowEnvironment, client: Client, task_queue: str
) -> None:
    handle = await start(client, task_queue)
    now = await time_env.get_current_time()
    await handle.execute_update(
        SilenceStoreWorkflow.add_silence, add(comment="running", duration="3h")
    )
    later = await handle.execute_update(
        SilenceStoreWorkflow.add_silence,
        add(comment="later", starts_at=now + timedelta(hours=1), duration="1h"),
    )
    assert later.starts_at == now + timedelta(hours=1)
    # Alertmanager's order: active first, then pending.
    assert await listed(handle) == ["running", "later"]

    await time_env.sleep(timedelta(hours=1, minutes=1))
    # Both active now; the one that ends first comes first.
    assert later.state(await time_env.get_current_time()) is SilenceState.ACTIVE
    await eventually(lambda: _expect(handle, ["later", "running"]))

    await time_env.sleep(timedelta(hours=1))
    assert later.state(await time_env.get_current_time()) is SilenceState.EXPIRED
    await eventually(lambda: _expect(handle, ["running"]))
    assert await listed(handle, include_expired=True) == ["running", "later"]

    await time_env.sleep(timedelta(hours=1))
    await eventually(lambda: _expect(handle, []))
    # Expiry by time cannot be expired again.
    error = await refused(
        handle, SilenceStoreWorkflow.expire_silence, ExpireSilence(id=later.id, actor="bob")
    )
    assert error.type == "SilenceAlreadyExpired"


async def _expect(handle: Handle, comments: list[str]) -> None:
    assert await listed(handle) == comments


async def test_continue_as_new_keeps_silences_and_prunes_old_ones(
    time_env: WorkflowEnvironment, client: Client, task_queue: str
) -> None:
    now = await time_env.get_current_time()
    ancient = Silence(
        id="ancient",
        matchers=parse_matchers("team=db"),
        starts_at=now - timedelta(days=7),
        ends_at=now - timedelta(days=6),
        created_by="carol@example.com",
        comment="ancient",
        created_at=now - timedelta(days=7),
    )
    recent = ancient.model_copy(
        update={"id": "recent", "comment": "recent", "ends_at": now - timedelta(days=4)}
    )
    handle = await start(
        client,
        task_queue,
        SilenceStoreInput(silences=[ancient, recent], max_history_events=20),
    )
    first_run = (await handle.describe()).run_id
    assert await listed(handle, include_expired=True) == ["recent", "ancient"]

    added = []
    for i in range(8):
        added.append(
            await handle.execute_update(SilenceStoreWorkflow.add_silence, add(comment=f"s{i}"))
        )
    expired = await handle.execute_update(
        SilenceStoreWorkflow.expire_silence, ExpireSilence(id=added[0].id, actor="bob")
    )

    latest: WorkflowHandle[Any, Any] = client.get_workflow_handle(handle.id)
    assert (await latest.describe()).run_id != first_run
    silences = await latest.query(SilenceStoreWorkflow.silences, True)
    # Active ones end in order of creation; then the expired ones, most recent first.
    assert [s.comment for s in silences] == [f"s{i}" for i in range(1, 8)] + ["s0", "recent"]
    assert silences[:-2] == added[1:]
    assert silences[-2] == expired
    # The store still works after continuing as new.
    error = await refused(
        latest, SilenceStoreWorkflow.expire_silence, ExpireSilence(id="ancient", actor="bob")
    )
    assert (error.type, error.message) == ("SilenceNotFound", "unknown silence 'ancient'")
