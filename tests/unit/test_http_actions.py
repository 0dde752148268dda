"""``http.request``, ``flag.set``, ``temporal.run_workflow``: exact requests, errors, dry runs."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import JsonValue
from temporalio import workflow
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.contracts import ActionRequest, ActionResult
from activities.http import PermanentHttpError, TransientHttpError
from activities.http_actions import (
    ACTION_NAMES,
    Endpoint,
    HttpActions,
    StepError,
    WorkflowActions,
    action_activities,
    same_value,
)
from tests.fakes.server import Fault, LoopbackServer, RecordedRequest, RecordingServer, Reply
from worker.config import ConfigError, load_config

TOKEN = "ops-api-token-7d1e5a"
PASSWORD = "basic-pass-4c2f"
API_KEY = "flag-key-91b3e0"
KEY = "run-42:restart:1"


def action(inputs: dict[str, JsonValue], *, dry_run: bool = False, key: str = KEY) -> ActionRequest:
    return ActionRequest(
        incident_id="INC-7",
        run_id="run-42",
        step_id="restart",
        idempotency_key=key,
        inputs=inputs,
        dry_run=dry_run,
        actor="alice@example.com",
    )


async def run(activity: Any, request: ActionRequest) -> ActionResult:
    result: ActionResult = await ActivityEnvironment().run(activity, request)
    return result


async def failure(activity: Any, request: ActionRequest) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await run(activity, request)
    return caught.value


def assert_no_secret(result: ActionResult) -> None:
    text = result.model_dump_json()
    for secret in (TOKEN, PASSWORD, API_KEY, base64.b64encode(f"ops:{PASSWORD}".encode()).decode()):
        assert secret not in text


@pytest.fixture
def service() -> Iterator[RecordingServer]:
    reply = Reply(
        201,
        {"id": "restart-1", "state": "queued"},
        {"Location": "/restarts/restart-1", "Set-Cookie": "session=abc", "X-Request-Id": "r-9"},
    )
    with RecordingServer(reply) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def actions(http: httpx.AsyncClient, url: str, auth: dict[str, str] | None = None) -> HttpActions:
    endpoint = Endpoint(url, auth if auth is not None else {"Authorization": f"Bearer {TOKEN}"})
    return HttpActions(client=http, endpoints={"ops": endpoint})


# --- http.request ----------------------------------------------------------------------------


async def test_http_request_sends_auth_idempotency_key_and_json(
    service: RecordingServer, http: httpx.AsyncClient
) -> None:
    acts = actions(http, f"{service.url}/api/")
    result = await run(
        acts.request,
        action(
            {
                "method": "post",
                "endpoint": "ops",
                "path": "/restarts",
                "json": {"deployment": "checkout", "replicas": 3},
                "headers": {"X-Team": "payments"},
            }
        ),
    )

    [sent] = service.requests
    assert (sent.method, sent.path) == ("POST", "/api/restarts")
    assert sent.header("authorization") == f"Bearer {TOKEN}"
    assert sent.header("idempotency-key") == KEY
    assert sent.header("x-team") == "payments"
    assert sent.header("content-type") == "application/json"
    assert sent.json() == {"deployment": "checkout", "replicas": 3}
    assert result == ActionResult(
        output={
            "status": 201,
            "body": {"id": "restart-1", "state": "queued"},
            "headers": {
                "content-type": "application/json",
                "location": "/restarts/restart-1",
                "x-request-id": "r-9",
            },
        },
        summary=f"POST {service.url}/api/restarts: HTTP 201",
        changed=True,
    )
    assert_no_secret(result)


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        (
            {"Authorization": "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()},
            "authorization",
            "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode(),
        ),
        ({"X-API-Key": API_KEY}, "x-api-key", API_KEY),
    ],
)
async def test_http_request_sends_the_endpoint_credential(
    service: RecordingServer,
    http: httpx.AsyncClient,
    auth: dict[str, str],
    header: str,
    value: str,
) -> None:
    result = await run(
        actions(http, service.url, auth).request, action({"endpoint": "ops", "path": "status"})
    )

    assert service.requests[0].header(header) == value
    assert result.changed is False
    assert_no_secret(result)


async def test_a_plain_url_gets_no_credential(
    service: RecordingServer, http: httpx.AsyncClient
) -> None:
    await run(actions(http, service.url).request, action({"url": f"{service.url}/health"}))

    [sent] = service.requests
    assert (sent.method, sent.path, sent.header("authorization")) == ("GET", "/health", None)
    assert sent.header("idempotency-key") == KEY


async def test_a_step_given_idempotency_key_wins(
    service: RecordingServer, http: httpx.AsyncClient
) -> None:
    inputs: dict[str, JsonValue] = {
        "url": service.url,
        "headers": {"idempotency-key": "deploy-123"},
    }
    await run(actions(http, service.url).request, action(inputs))

    assert service.requests[0].header("idempotency-key") == "deploy-123"


async def test_an_unexpected_status_is_permanent_and_named(
    service: RecordingServer, http: httpx.AsyncClient
) -> None:
    service.reply = Reply(409, {"message": "a restart is already running"})

    err = await failure(
        actions(http, service.url).request,
        action({"method": "POST", "endpoint": "ops", "path": "restarts"}),
    )

    assert isinstance(err, PermanentHttpError)
    assert err.non_retryable
    assert err.message == (
        f"POST {service.url}/restarts answered HTTP 409: a restart is already running"
    )


async def test_a_2xx_outside_expect_status_is_permanent(
    service: RecordingServer, http: httpx.AsyncClient
) -> None:
    service.reply = Reply(200, {"ok": True})

    err = await failure(
        actions(http, service.url).request,
        action({"method": "PUT", "url": f"{service.url}/x", "expect_status": [201, 204]}),
    )

    assert isinstance(err, PermanentHttpError)
    assert err.message == f"PUT {service.url}/x answered HTTP 200: expected HTTP 201, 204"


async def test_expect_status_accepts_an_error_status(
    service: RecordingServer, http: httpx.AsyncClient
) -> None:
    service.reply = Reply(404, b"no such restart")

    result = await run(
        actions(http, service.url).request,
        action({"method": "DELETE", "url": f"{service.url}/r/1", "expect_status": [204, 404]}),
    )

    assert result.output["status"] == 404
    assert result.output["body"] == "no such restart"


async def test_5xx_is_retryable_and_429_honours_retry_after(
    service: RecordingServer, http: httpx.AsyncClient
) -> None:
    service.fail_next(1, 503)
    service.fail_next(1, 429, retry_after="12")
    acts = actions(http, service.url)

    unavailable = await failure(acts.request, action({"url": service.url}))
    limited = await failure(acts.request, action({"url": service.url}))

    assert isinstance(unavailable, TransientHttpError)
    assert not unavailable.non_retryable
    assert unavailable.message == f"GET {service.url} answered HTTP 503: injected HTTP 503"
    assert isinstance(limited, TransientHttpError)
    assert limited.next_retry_delay == timedelta(seconds=12)


async def test_a_lost_connection_is_retryable(
    service: RecordingServer, http: httpx.AsyncClient
) -> None:
    service.reset_next(process=True)

    err = await failure(actions(http, service.url).request, action({"url": service.url}))

    assert isinstance(err, TransientHttpError)


async def test_dry_run_sends_nothing_and_hides_the_credential(
    service: RecordingServer, http: httpx.AsyncClient
) -> None:
    result = await run(
        actions(http, service.url).request,
        action(
            {"method": "POST", "endpoint": "ops", "path": "restarts", "json": None},
            dry_run=True,
        ),
    )

    assert service.requests == []
    assert result == ActionResult(
        output={
            "request": {
                "method": "POST",
                "url": f"{service.url}/restarts",
                "headers": {"idempotency-key": KEY, "Authorization": "[REDACTED]"},
                "json": None,
            }
        },
        summary=f"would send POST {service.url}/restarts",
        dry_run=True,
    )


async def test_a_credential_echoed_by_the_service_is_redacted(
    service: RecordingServer, http: httpx.AsyncClient
) -> None:
    service.reply = Reply(200, {"seen": {"authorization": f"Bearer {TOKEN}"}})

    result = await run(actions(http, service.url).request, action({"endpoint": "ops"}))

    assert result.output["body"] == {"seen": {"authorization": "[REDACTED]"}}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"endpoint": "ops", "url": "https://ops.example.com"},
            "http.request step 'restart': with: give exactly one of url, endpoint",
        ),
        (
            {"url": "https://ops.example.com", "path": "x"},
            "http.request step 'restart': with: path is relative to an endpoint; with url, "
            "put it in the url",
        ),
        (
            {"url": "ftp://ops.example.com", "methd": "GET"},
            "http.request step 'restart': with.url: String should match pattern "
            "'^https?://'; with.methd: unknown input",
        ),
        (
            {"url": "https://ops.example.com", "expect_status": [200, 700]},
            "http.request step 'restart': with.expect_status: not HTTP statuses: [700]",
        ),
    ],
)
async def test_bad_inputs_are_refused_naming_the_field(
    http: httpx.AsyncClient, inputs: dict[str, JsonValue], message: str
) -> None:
    err = await failure(actions(http, "http://127.0.0.1:9").request, action(inputs))

    assert isinstance(err, StepError)
    assert (err.type, err.non_retryable, err.message) == ("InvalidActionInputs", True, message)


async def test_an_unknown_endpoint_is_named(http: httpx.AsyncClient) -> None:
    err = await failure(actions(http, "http://127.0.0.1:9").request, action({"endpoint": "opz"}))

    assert (err.type, err.message) == (
        "UnknownEndpoint",
        "http.request: no endpoint named 'opz' in http_endpoints (configured: ops)",
    )


# --- flag.set --------------------------------------------------------------------------------


class FakeFlags(LoopbackServer):
    """The generic flag service: ``GET``/``PUT /flags/<key>`` with ``{"value": ...}``."""

    def __init__(self, api_key: str, flags: dict[str, Any]) -> None:
        super().__init__()
        self.api_key = api_key
        self.flags = dict(flags)

    def handle(self, request: RecordedRequest) -> Reply:
        if request.header("x-api-key") != self.api_key:
            return Reply(401, {"message": "bad api key"})
        key = request.path.removeprefix("/flags/")
        if request.method == "GET":
            if key not in self.flags:
                return Reply(404, {"message": "no such flag"})
            return Reply(200, {"value": self.flags[key]})
        if request.method == "PUT":
            self.flags[key] = request.json()["value"]
            return Reply(200, {"value": self.flags[key]})
        return Reply(405, {"message": "method not allowed"})


@pytest.fixture
def flags() -> Iterator[FakeFlags]:
    with FakeFlags(API_KEY, {"checkout.new-pricing": True, "search.shards": 4}) as server:
        yield server


def flag_actions(http: httpx.AsyncClient, flags: FakeFlags) -> HttpActions:
    return actions(http, flags.url, {"X-API-Key": API_KEY})


def methods(server: LoopbackServer) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in server.requests]


async def test_flag_already_at_the_value_is_not_written(
    flags: FakeFlags, http: httpx.AsyncClient
) -> None:
    result = await run(
        flag_actions(http, flags).set_flag,
        action({"endpoint": "ops", "flag": "search.shards", "value": 4.0}),
    )

    assert methods(flags) == [("GET", "/flags/search.shards")]
    assert result == ActionResult(
        output={"flag": "search.shards", "value": 4.0, "previous": 4, "existed": True},
        summary="flag search.shards already 4.0",
    )


async def test_flag_with_another_value_is_put_once(
    flags: FakeFlags, http: httpx.AsyncClient
) -> None:
    result = await run(
        flag_actions(http, flags).set_flag,
        action({"endpoint": "ops", "flag": "checkout.new-pricing", "value": False}),
    )

    assert methods(flags) == [
        ("GET", "/flags/checkout.new-pricing"),
        ("PUT", "/flags/checkout.new-pricing"),
    ]
    put = flags.requests[1]
    assert put.json() == {"value": False}
    assert (put.header("idempotency-key"), put.header("x-api-key")) == (KEY, API_KEY)
    assert flags.flags["checkout.new-pricing"] is False
    assert result.changed is True
    assert result.summary == "set flag checkout.new-pricing true -> false"
    assert_no_secret(result)


async def test_a_missing_flag_is_created(flags: FakeFlags, http: httpx.AsyncClient) -> None:
    result = await run(
        flag_actions(http, flags).set_flag,
        action({"endpoint": "ops", "flag": "banner", "value": "maintenance"}),
    )

    assert flags.flags["banner"] == "maintenance"
    assert result.output == {
        "flag": "banner",
        "value": "maintenance",
        "previous": None,
        "existed": False,
    }
    assert result.summary == 'set flag banner (unset) -> "maintenance"'


async def test_flag_dry_run_reads_but_never_writes(
    flags: FakeFlags, http: httpx.AsyncClient
) -> None:
    result = await run(
        flag_actions(http, flags).set_flag,
        action({"endpoint": "ops", "flag": "search.shards", "value": 8}, dry_run=True),
    )

    assert methods(flags) == [("GET", "/flags/search.shards")]
    assert flags.flags["search.shards"] == 4
    assert (result.changed, result.dry_run) == (False, True)
    assert result.summary == "would set flag search.shards 4 -> 8"


async def test_a_flag_read_that_is_not_a_flag_document_fails(
    flags: FakeFlags, http: httpx.AsyncClient
) -> None:
    flags.inject(Fault("reply", reply=Reply(200, {"enabled": True})))

    err = await failure(
        flag_actions(http, flags).set_flag,
        action({"endpoint": "ops", "flag": "search.shards", "value": 8}),
    )

    assert (err.type, err.message) == (
        "UnexpectedResponse",
        f"flag.set: GET {flags.url}/flags/search.shards answered '{{\"enabled\": true}}', "
        'not the flag document {"value": ...}',
    )
    assert methods(flags) == [("GET", "/flags/search.shards")]


async def test_a_rejected_flag_key_is_permanent(flags: FakeFlags, http: httpx.AsyncClient) -> None:
    err = await failure(
        actions(http, flags.url, {"X-API-Key": "wrong"}).set_flag,
        action({"endpoint": "ops", "flag": "search.shards", "value": 8}),
    )

    assert isinstance(err, PermanentHttpError)
    assert (
        err.message
        == f"flag.set GET {flags.url}/flags/search.shards answered HTTP 401: bad api key"
    )


@pytest.mark.parametrize(
    ("current", "wanted", "same"),
    [
        (True, True, True),
        (1, True, False),
        (True, 1, False),
        (4, 4.0, True),
        ("4", 4, False),
        ("on", "on", True),
        (None, "on", False),
        ({"a": 1}, "a", False),
    ],
)
def test_same_value_never_mixes_booleans_and_numbers(
    current: JsonValue, wanted: bool | int | float | str, same: bool
) -> None:
    assert same_value(current, wanted) is same


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {"endpoint": "ops", "flag": "../admin", "value": True},
            "flag.set step 'restart': with.flag: String should match pattern '^[A-Za-z0-9._~-]+$'",
        ),
        (
            {"endpoint": "ops", "flag": "x", "value": [1]},
            "flag.set step 'restart': with.value.bool: Input should be a valid boolean; "
            "with.value.int: Input should be a valid integer; with.value.float: Input should "
            "be a valid number; with.value.str: Input should be a valid string",
        ),
    ],
)
async def test_bad_flag_inputs_are_refused(
    http: httpx.AsyncClient, inputs: dict[str, JsonValue], message: str
) -> None:
    err = await failure(actions(http, "http://127.0.0.1:9").set_flag, action(inputs))

    assert (err.type, err.message) == ("InvalidActionInputs", message)


# --- temporal.run_workflow -------------------------------------------------------------------


@workflow.defn(name="TeamFailover", sandboxed=False)
class TeamFailover:
    """A team's own workflow: fails over a region; waits for a go signal when told to."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self, region: str, wait_for_go: bool) -> dict[str, Any]:
        if region == "nowhere":
            raise ApplicationError("no such region", non_retryable=True)
        if wait_for_go:
            await workflow.wait_condition(lambda: self.go)
        return {"region": region, "failed_over": True}

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@pytest.fixture
async def team_worker(client: Client, task_queue: str) -> AsyncIterator[WorkflowActions]:
    async with Worker(client, task_queue=task_queue, workflows=[TeamFailover]):
        yield WorkflowActions(client)


def start_inputs(task_queue: str, *args: JsonValue, **more: JsonValue) -> dict[str, JsonValue]:
    return {"workflow": "TeamFailover", "task_queue": task_queue, "args": list(args), **more}


async def test_run_workflow_starts_and_returns_the_result(
    team_worker: WorkflowActions, task_queue: str
) -> None:
    key = f"run-{uuid.uuid4()}"

    result = await run(
        team_worker.run_workflow, action(start_inputs(task_queue, "eu-west", False), key=key)
    )

    run_id = result.output.pop("run_id")
    assert isinstance(run_id, str)
    assert result == ActionResult(
        output={
            "workflow_id": f"fireline-{key}",
            "workflow": "TeamFailover",
            "started": True,
            "result": {"region": "eu-west", "failed_over": True},
        },
        summary=f"started TeamFailover 'fireline-{key}' on {task_queue}; it completed",
        changed=True,
    )


async def test_starting_twice_with_one_key_attaches_to_the_first_run(
    team_worker: WorkflowActions, task_queue: str, client: Client
) -> None:
    key = f"run-{uuid.uuid4()}"
    inputs = start_inputs(task_queue, "us-east", True, wait=False)

    first = await run(team_worker.run_workflow, action(inputs, key=key))
    second = await run(team_worker.run_workflow, action(inputs, key=key))
    await client.get_workflow_handle(f"fireline-{key}").signal(TeamFailover.proceed)
    waited = await run(team_worker.run_workflow, action({**inputs, "wait": True}, key=key))
    # Retried after the workflow completed: still the same run, not a second failover.
    again = await run(team_worker.run_workflow, action({**inputs, "wait": True}, key=key))

    assert (first.output["started"], first.changed) == (True, True)
    assert first.summary == f"started TeamFailover 'fireline-{key}' on {task_queue}"
    assert (second.output["started"], second.changed) == (False, False)
    assert second.summary == f"attached to TeamFailover 'fireline-{key}' on {task_queue}"
    run_ids = {r.output["run_id"] for r in (first, second, waited, again)}
    assert len(run_ids) == 1
    assert (
        waited.output["result"]
        == again.output["result"]
        == {
            "region": "us-east",
            "failed_over": True,
        }
    )


async def test_an_explicit_workflow_id_is_used(
    team_worker: WorkflowActions, task_queue: str, client: Client
) -> None:
    workflow_id = f"failover-{uuid.uuid4()}"

    result = await run(
        team_worker.run_workflow,
        action(start_inputs(task_queue, "ap-south", False, workflow_id=workflow_id)),
    )

    assert result.output["workflow_id"] == workflow_id
    assert await client.get_workflow_handle(workflow_id).result() == result.output["result"]


async def test_a_failed_workflow_fails_the_step(
    team_worker: WorkflowActions, task_queue: str
) -> None:
    key = f"run-{uuid.uuid4()}"

    err = await failure(
        team_worker.run_workflow, action(start_inputs(task_queue, "nowhere", False), key=key)
    )

    assert isinstance(err, StepError)
    assert (err.type, err.non_retryable) == ("WorkflowFailed", True)
    assert err.message == f"TeamFailover 'fireline-{key}' on {task_queue} failed: no such region"


async def test_waiting_past_the_timeout_fails_and_leaves_it_running(
    team_worker: WorkflowActions, task_queue: str, client: Client, time_env: WorkflowEnvironment
) -> None:
    key = f"run-{uuid.uuid4()}"

    # The timeout is the activity's own clock; skipping server time would end the workflow.
    with time_env.auto_time_skipping_disabled():
        err = await failure(
            team_worker.run_workflow,
            action(start_inputs(task_queue, "eu-west", True, timeout=0.3), key=key),
        )

    assert (err.type, err.message) == (
        "WorkflowWaitTimeout",
        f"TeamFailover 'fireline-{key}' on {task_queue} did not complete within "
        "0:00:00.300000; it keeps running",
    )
    handle = client.get_workflow_handle(f"fireline-{key}")
    await handle.signal(TeamFailover.proceed)
    assert await asyncio.wait_for(handle.result(), 30) == {"region": "eu-west", "failed_over": True}


async def test_run_workflow_dry_run_starts_nothing(
    team_worker: WorkflowActions, task_queue: str, client: Client
) -> None:
    key = f"run-{uuid.uuid4()}"

    result = await run(
        team_worker.run_workflow,
        action(start_inputs(task_queue, "eu-west", False), key=key, dry_run=True),
    )

    assert result == ActionResult(
        output={
            "workflow_id": f"fireline-{key}",
            "workflow": "TeamFailover",
            "args": ["eu-west", False],
        },
        summary=f"would start TeamFailover 'fireline-{key}' on {task_queue}",
        dry_run=True,
    )
    with pytest.raises(RPCError, match="not found"):
        await client.get_workflow_handle(f"fireline-{key}").describe()


# --- registration ----------------------------------------------------------------------------


async def test_action_activities_are_registered_under_action_names(
    http: httpx.AsyncClient, client: Client
) -> None:
    bound = action_activities(http=http, endpoints={}, temporal=client)

    names = tuple(getattr(fn, "__temporal_activity_definition").name for fn in bound)
    assert names == ACTION_NAMES == ("http.request", "flag.set", "temporal.run_workflow")


# --- configuration ---------------------------------------------------------------------------


def test_configured_endpoints_and_sources_carry_their_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_TOKEN", TOKEN)
    (tmp_path / "prom-password").write_text(f"{PASSWORD}\n")
    path = tmp_path / "fireline.yaml"
    path.write_text(
        "http_endpoints:\n"
        "  ops: {base_url: 'https://ops.example.com/api', bearer_token: {env: OPS_TOKEN}}\n"
        "  flags:\n"
        "    base_url: https://flags.example.com\n"
        "    auth_header: {name: X-API-Key, value: {env: OPS_TOKEN}}\n"
        "    timeout: 3s\n"
        "metrics:\n"
        "  prometheus:\n"
        "    url: https://prometheus.example.com\n"
        f"    basic_auth: {{username: ops, password: {{file: {tmp_path / 'prom-password'}}}}}\n"
    )

    config = load_config(path)

    assert config.http_endpoints["ops"].auth_headers() == {"Authorization": f"Bearer {TOKEN}"}
    assert config.http_endpoints["flags"].auth_headers() == {"X-API-Key": TOKEN}
    assert config.http_endpoints["flags"].timeout == timedelta(seconds=3)
    basic = base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
    assert config.metrics["prometheus"].auth_headers() == {"Authorization": f"Basic {basic}"}
    endpoint = Endpoint("https://prometheus.example.com", {"Authorization": f"Basic {basic}"})
    assert set(endpoint.secrets) == {f"Basic {basic}", basic, PASSWORD}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "http_endpoints:\n  ops:\n    base_url: https://ops.example.com\n"
            "    bearer_token: {env: OPS_TOKEN}\n"
            "    basic_auth: {username: ops, password: {env: OPS_TOKEN}}\n",
            "http_endpoints.ops: give at most one of bearer_token, basic_auth, auth_header",
        ),
        (
            "metrics:\n  prometheus:\n    url: https://p.example.com\n"
            "    bearer_token: {env: UNSET_1}\n",
            "metrics.prometheus.bearer_token: environment variable UNSET_1 is not set",
        ),
        (
            f"metrics:\n  prometheus: {{url: 'https://p.example.com', bearer_token: "
            f"{{sha256: '{'0' * 64}'}}}}\n",
            "metrics.prometheus.bearer_token: give env or file: fireline must send this "
            "secret, not just check it",
        ),
        (
            "http_endpoints:\n  ops: {base_url: ops.example.com}\n",
            "http_endpoints.ops.base_url: String should match pattern '^https?://'",
        ),
    ],
)
def test_bad_endpoint_config_fails_at_load(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "fireline.yaml"
    path.write_text(text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(caught.value) == f"{path}: {message}"
