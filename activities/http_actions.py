"""Runbook actions calling other systems: ``http.request``, ``flag.set``, ``temporal.run_workflow``.

Each is an activity taking an :class:`~activities.contracts.ActionRequest` (the step's ``with``
values in ``inputs``) and returning an :class:`~activities.contracts.ActionResult`. Register
them with :func:`action_activities`; their names are :data:`ACTION_NAMES`.

Credentials stay out of history: a step names an ``endpoint`` (``http_endpoints`` in
fireline.yaml) and the :class:`Endpoint` built from it at start-up adds the auth header when
the request is sent. Outputs, summaries and error messages never carry it: a dry run shows the
header's name with ``[REDACTED]``, and the secret is redacted from response bodies and errors.

Idempotency: every request carries the step's ``idempotency_key`` as ``Idempotency-Key``;
``flag.set`` reads before it writes; ``temporal.run_workflow`` derives the workflow id from the
key, so a retried step attaches to the workflow its first attempt started.

Errors (all ``temporalio.exceptions.ApplicationError``; tests match on ``type``)::

    ApplicationError
     ├── DeliveryError (activities.http)
     │    ├── TransientHttpError      408, 429, 5xx, connection faults, timeouts; retried
     │    └── PermanentHttpError      any other status the step did not expect; non_retryable
     └── StepError                    the step cannot succeed as written; non_retryable,
                                      type: InvalidActionInputs, UnknownEndpoint,
                                      UnexpectedResponse, WorkflowFailed, WorkflowWaitTimeout
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.contracts import ActionRequest, ActionResult
from activities.http import REDACTED, _transport_error, classify, redact, vendor_error

logger = logging.getLogger(__name__)

HTTP_REQUEST = "http.request"
FLAG_SET = "flag.set"
RUN_WORKFLOW = "temporal.run_workflow"
ACTION_NAMES = (HTTP_REQUEST, FLAG_SET, RUN_WORKFLOW)

# Response headers worth keeping for later steps; everything else (cookies above all) is
# dropped so history holds no session a service handed out.
KEPT_HEADERS = (
    "content-type",
    "location",
    "etag",
    "last-modified",
    "retry-after",
    "x-request-id",
    "request-id",
)
# A response body beyond this is cut (and marked): history is no place for a download.
MAX_BODY_CHARS = 32_000
# How often a step waiting for a workflow's result tells Temporal it is alive.
HEARTBEAT_EVERY = timedelta(seconds=10)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Short enough to read in a timeline, long enough to recognise.
_MAX_SHOWN = 200


class StepError(ApplicationError):
    """A runbook step that no retry can fix; ``type`` says why."""

    def __init__(self, message: str, *, type: str) -> None:
        """Build a non-retryable error of the given type."""
        super().__init__(message, type=type, non_retryable=True)


@dataclass(frozen=True)
class Endpoint:
    """Where a named service is and the headers that authenticate to it (built at start-up).

    ``url`` is the base every path is appended to; ``auth_headers`` hold the secret, so they
    are sent and never shown.
    """

    url: str
    auth_headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0

    def join(self, path: str) -> str:
        """The URL of ``path`` under this endpoint; never another host."""
        return f"{self.url.rstrip('/')}/{path.lstrip('/')}" if path else self.url

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every form the credential could be echoed in: header value, token, password."""
        found: list[str] = []
        for value in self.auth_headers.values():
            found.append(value)
            scheme, _, credential = value.partition(" ")
            if not credential:
                continue
            found.append(credential)
            if scheme.lower() == "basic":
                try:
                    pair = base64.b64decode(credential, validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    continue
                found.append(pair.partition(":")[2])
        return tuple(s for s in found if s)


def shown(text: str) -> str:
    """``text`` cut to a length that reads in a timeline or an error message."""
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


# --- inputs ----------------------------------------------------------------------------------


class _Inputs(BaseModel):
    model_config = ConfigDict(extra="forbid")


InputsT = TypeVar("InputsT", bound=_Inputs)


def parse_inputs(model: type[InputsT], request: ActionRequest, action: str) -> InputsT:
    """Validate a step's ``with`` values, or raise ``InvalidActionInputs`` naming each field."""
    try:
        return model.model_validate(request.inputs)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(part) for part in ("with", *err["loc"]))
            if err["type"] == "extra_forbidden":
                message = "unknown input"
            else:
                message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
        raise StepError(
            f"{action} step '{request.step_id}': " + "; ".join(problems),
            type="InvalidActionInputs",
        ) from None


def _endpoint(endpoints: Mapping[str, Endpoint], name: str, action: str) -> Endpoint:
    found = endpoints.get(name)
    if found is None:
        known = ", ".join(sorted(endpoints)) or "none"
        raise StepError(
            f"{action}: no endpoint named '{name}' in http_endpoints (configured: {known})",
            type="UnknownEndpoint",
        )
    return found


class HttpRequestInputs(_Inputs):
    """``with`` of ``http.request``: one request to a URL or to a path under a named endpoint."""

    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    url: str | None = Field(None, pattern=r"^https?://")
    endpoint: str | None = None
    path: str = ""
    # Sent as the JSON request body when given (``null`` included).
    json_body: JsonValue = Field(None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)
    # Statuses that count as success; empty means any 2xx.
    expect_status: list[int] = Field(default_factory=list)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        bad = [s for s in value if not 100 <= s <= 599]
        if bad:
            raise ValueError(f"not HTTP statuses: {bad}")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.url is None) == (self.endpoint is None):
            raise ValueError("give exactly one of url, endpoint")
        if self.path and self.url is not None:
            raise ValueError("path is relative to an endpoint; with url, put it in the url")
        return self

    @property
    def has_body(self) -> bool:
        """Whether the step gave a ``json`` body (an explicit null counts)."""
        return "json_body" in self.model_fields_set


FlagValue = StrictBool | StrictInt | StrictFloat | StrictStr


class FlagSetInputs(_Inputs):
    """``with`` of ``flag.set``: the endpoint, the flag's key and the value it must have."""

    endpoint: str
    flag: str = Field(pattern=r"^[A-Za-z0-9._~-]+$")
    value: FlagValue


class RunWorkflowInputs(_Inputs):
    """``with`` of ``temporal.run_workflow``."""

    workflow: str = Field(min_length=1)
    task_queue: str = Field(min_length=1)
    # Default: derived from the step's idempotency key, so a retry finds its own run.
    workflow_id: str | None = Field(None, min_length=1)
    args: list[JsonValue] = Field(default_factory=list)
    wait: bool = True
    # How long to wait for the result (seconds or ISO 8601); None: the step's own timeout.
    timeout: timedelta | None = None

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be positive")
        return value


# --- HTTP ------------------------------------------------------------------------------------


async def exchange(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    vendor: str,
    secrets: Collection[str] = (),
    expected: Collection[int] = (),
) -> httpx.Response:
    """Send ``request``; return the response if its status is ``expected`` (empty: any 2xx).

    Anything else is classified by ``activities.http``: a 2xx the step did not expect is
    permanent, every other status as :func:`activities.http.classify` says.
    """
    try:
        response = await client.send(request)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        error = _transport_error(exc, vendor, secrets)
        logger.warning("%s", error.message)
        raise error from None
    status = response.status_code
    if status in expected or (not expected and 200 <= status <= 299):
        return response
    if 200 <= status <= 299:
        wanted = ", ".join(str(s) for s in expected)
        raise vendor_error(vendor, status, f"expected HTTP {wanted}", transient=False)
    classify(response, vendor=vendor, secrets=secrets)
    # classify raises for every non-2xx; this line only satisfies the type checker.
    raise AssertionError(f"unclassified HTTP {status}")


def response_body(response: httpx.Response, secrets: Collection[str]) -> tuple[JsonValue, bool]:
    """The body as JSON when it is JSON, else as text; redacted, cut; and whether it was cut."""
    text = redact(response.text, secrets)
    if len(text) > MAX_BODY_CHARS:
        return text[:MAX_BODY_CHARS], True
    if "json" in response.headers.get("content-type", "") and text.strip():
        try:
            parsed: JsonValue = _JSON.validate_json(text)
        except ValidationError:
            return text, False
        return parsed, False
    return text, False


_JSON: TypeAdapter[JsonValue] = TypeAdapter(JsonValue)


def _kept_headers(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}


class HttpActions:
    """``http.request`` and ``flag.set``; the constructor receives the client and endpoints."""

    def __init__(self, *, client: httpx.AsyncClient, endpoints: Mapping[str, Endpoint]) -> None:
        """Keep the shared HTTP client and the named endpoints from fireline.yaml."""
        self._client = client
        self._endpoints = dict(endpoints)

    @activity.defn(name=HTTP_REQUEST)
    async def request(self, request: ActionRequest) -> ActionResult:
        """Send one HTTP request; output ``status``, ``body``, ``headers`` (a safe subset)."""
        inputs = parse_inputs(HttpRequestInputs, request, HTTP_REQUEST)
        endpoint = (
            _endpoint(self._endpoints, inputs.endpoint, HTTP_REQUEST)
            if inputs.endpoint is not None
            else None
        )
        url = endpoint.join(inputs.path) if endpoint else str(inputs.url)
        headers = httpx.Headers(inputs.headers)
        headers.setdefault("Idempotency-Key", request.idempotency_key)
        secrets = endpoint.secrets if endpoint else ()
        line = f"{inputs.method} {shown(url)}"
        if request.dry_run:
            shown_headers = dict(headers.items())
            if endpoint:
                shown_headers.update(dict.fromkeys(endpoint.auth_headers, REDACTED))
            planned: dict[str, JsonValue] = {
                "method": inputs.method,
                "url": url,
                "headers": dict(shown_headers),
            }
            if inputs.has_body:
                planned["json"] = inputs.json_body
            return ActionResult(
                output={"request": planned}, summary=f"would send {line}", dry_run=True
            )
        if endpoint:
            headers.update(endpoint.auth_headers)
        content = None
        if inputs.has_body:
            content = json.dumps(inputs.json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        sent = self._client.build_request(
            inputs.method,
            url,
            headers=headers,
            content=content,
            timeout=endpoint.timeout if endpoint else httpx.USE_CLIENT_DEFAULT,
        )
        response = await exchange(
            self._client, sent, vendor=line, secrets=secrets, expected=inputs.expect_status
        )
        body, truncated = response_body(response, secrets)
        output: dict[str, JsonValue] = {
            "status": response.status_code,
            "body": body,
            "headers": dict(_kept_headers(response)),
        }
        if truncated:
            output["body_truncated"] = True
        return ActionResult(
            output=output,
            summary=f"{line}: HTTP {response.status_code}",
            changed=inputs.method not in _SAFE_METHODS,
        )

    @activity.defn(name=FLAG_SET)
    async def set_flag(self, request: ActionRequest) -> ActionResult:
        """Make a feature flag have a value; a no-op (``changed`` false) when it already has.

        The wire shape is generic, that of a minimal flag service, not any vendor's API:
        ``GET {base_url}/flags/{flag}`` answers ``{"value": <json>}`` (404: no such flag yet),
        ``PUT {base_url}/flags/{flag}`` with the same body sets (or creates) it. A dry run
        reads the flag but never writes it.
        """
        inputs = parse_inputs(FlagSetInputs, request, FLAG_SET)
        endpoint = _endpoint(self._endpoints, inputs.endpoint, FLAG_SET)
        url = endpoint.join(f"flags/{quote(inputs.flag, safe='')}")
        secrets = endpoint.secrets
        read = self._client.build_request(
            "GET", url, headers=dict(endpoint.auth_headers), timeout=endpoint.timeout
        )
        current = await exchange(
            self._client,
            read,
            vendor=f"{FLAG_SET} GET {url}",
            secrets=secrets,
            expected=(200, 404),
        )
        exists = current.status_code == 200
        previous = _flag_value(current, url, secrets) if exists else None
        output: dict[str, JsonValue] = {
            "flag": inputs.flag,
            "value": inputs.value,
            "previous": previous,
            "existed": exists,
        }
        if exists and same_value(previous, inputs.value):
            return ActionResult(
                output=output,
                summary=f"flag {inputs.flag} already {json.dumps(inputs.value)}",
                dry_run=request.dry_run,
            )
        change = (
            f"flag {inputs.flag} {json.dumps(previous) if exists else '(unset)'} "
            f"-> {json.dumps(inputs.value)}"
        )
        if request.dry_run:
            return ActionResult(output=output, summary=f"would set {change}", dry_run=True)
        write = self._client.build_request(
            "PUT",
            url,
            json={"value": inputs.value},
            headers={"Idempotency-Key": request.idempotency_key, **endpoint.auth_headers},
            timeout=endpoint.timeout,
        )
        await exchange(self._client, write, vendor=f"{FLAG_SET} PUT {url}", secrets=secrets)
        return ActionResult(output=output, summary=f"set {change}", changed=True)

    def activities(self) -> list[Callable[[ActionRequest], Awaitable[ActionResult]]]:
        """The bound activities, for ``Worker(activities=...)``."""
        return [self.request, self.set_flag]


def _flag_value(response: httpx.Response, url: str, secrets: Collection[str]) -> JsonValue:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "value" not in body:
        raise StepError(
            redact(
                f"{FLAG_SET}: GET {url} answered {shown(response.text)!r}, "
                'not the flag document {"value": ...}',
                secrets,
            ),
            type="UnexpectedResponse",
        )
    return _JSON.validate_python(body["value"])


def same_value(current: JsonValue, wanted: FlagValue) -> bool:
    """Whether a flag's value already is ``wanted``: numbers by value, never ``true == 1``."""
    if isinstance(current, bool) or isinstance(wanted, bool):
        return isinstance(current, bool) and isinstance(wanted, bool) and current == wanted
    if isinstance(current, int | float) and isinstance(wanted, int | float):
        return current == wanted
    return type(current) is type(wanted) and current == wanted


# --- Temporal --------------------------------------------------------------------------------


class WorkflowActions:
    """``temporal.run_workflow``: start a workflow a team already has, once, and await it."""

    def __init__(self, client: Client) -> None:
        """Keep the Temporal client workflows are started with."""
        self._client = client

    @activity.defn(name=RUN_WORKFLOW)
    async def run_workflow(self, request: ActionRequest) -> ActionResult:
        """Start (or attach to) the workflow; output its id, run id and, when waited, result."""
        inputs = parse_inputs(RunWorkflowInputs, request, RUN_WORKFLOW)
        workflow_id = inputs.workflow_id or f"fireline-{request.idempotency_key}"
        where = f"{inputs.workflow} '{workflow_id}' on {inputs.task_queue}"
        output: dict[str, JsonValue] = {"workflow_id": workflow_id, "workflow": inputs.workflow}
        if request.dry_run:
            output["args"] = list(inputs.args)
            return ActionResult(output=output, summary=f"would start {where}", dry_run=True)
        handle, started = await self._start(inputs, workflow_id)
        output["run_id"] = handle.result_run_id
        output["started"] = started
        verb = "started" if started else "attached to"
        if not inputs.wait:
            return ActionResult(output=output, summary=f"{verb} {where}", changed=started)
        output["result"] = await self._result(handle, where, inputs.timeout)
        return ActionResult(output=output, summary=f"{verb} {where}; it completed", changed=started)

    async def _start(
        self, inputs: RunWorkflowInputs, workflow_id: str
    ) -> tuple[WorkflowHandle[Any, Any], bool]:
        # One run per id, ever: a running one is attached to, and so is a closed one, so a
        # retry after the workflow finished returns its result instead of running it again.
        # (USE_EXISTING would attach to a running one too, but says nothing of whether this
        # call started it; the already-started error does, and names the run.)
        try:
            handle = await self._client.start_workflow(
                inputs.workflow,
                args=inputs.args,
                id=workflow_id,
                task_queue=inputs.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError as exc:
            return self._client.get_workflow_handle(workflow_id, run_id=exc.run_id), False
        return handle, True

    async def _result(
        self, handle: WorkflowHandle[Any, Any], where: str, timeout: timedelta | None
    ) -> JsonValue:
        waiting = asyncio.ensure_future(handle.result())
        deadline = asyncio.get_running_loop().time() + timeout.total_seconds() if timeout else None
        try:
            while not waiting.done():
                step = HEARTBEAT_EVERY.total_seconds()
                if deadline is not None:
                    step = min(step, deadline - asyncio.get_running_loop().time())
                    if step <= 0:
                        raise StepError(
                            f"{where} did not complete within {timeout}; it keeps running",
                            type="WorkflowWaitTimeout",
                        )
                await asyncio.wait({waiting}, timeout=step)
                # Cancellation of a long wait reaches the activity only through heartbeats.
                activity.heartbeat()
            result = waiting.result()
        except WorkflowFailureError as exc:
            raise StepError(f"{where} failed: {exc.cause}", type="WorkflowFailed") from None
        finally:
            waiting.cancel()
        try:
            return _JSON.validate_python(result)
        except ValidationError:
            return repr(result)

    def activities(self) -> list[Callable[[ActionRequest], Awaitable[ActionResult]]]:
        """The bound activity, for ``Worker(activities=...)``."""
        return [self.run_workflow]


def action_activities(
    *, http: httpx.AsyncClient, endpoints: Mapping[str, Endpoint], temporal: Client
) -> list[Callable[[ActionRequest], Awaitable[ActionResult]]]:
    """Every activity named in :data:`ACTION_NAMES`, bound and ready to register."""
    return [
        *HttpActions(client=http, endpoints=endpoints).activities(),
        *WorkflowActions(temporal).activities(),
    ]
