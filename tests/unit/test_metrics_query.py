"""``metrics.query`` against a loopback Prometheus speaking the documented /api/v1/query shapes."""

from __future__ import annotations

import base64
import math
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.contracts import MetricQuery, MetricSample
from activities.http import PermanentHttpError, TransientHttpError
from activities.http_actions import Endpoint, StepError
from activities.metrics import MetricsActivities, keeps_order
from tests.fakes.server import Fault, LoopbackServer, RecordedRequest, Reply
from tests.support import free_port

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
TOKEN = "prom-reader-token-0f3b9c"
PASSWORD = "s3cret-basic-password"
ERROR_RATE = 'sum(rate(http_requests_total{code=~"5.."}[5m])) by (pod)'


def vector(*series: tuple[dict[str, str], str]) -> dict[str, Any]:
    """A documented instant-vector ``data`` block: one sample per series at NOW."""
    return {
        "resultType": "vector",
        "result": [{"metric": m, "value": [NOW.timestamp(), v]} for m, v in series],
    }


def error(status: int, error_type: str, message: str) -> Reply:
    """Prometheus' error envelope."""
    return Reply(status, {"status": "error", "errorType": error_type, "error": message})


class FakePrometheus(LoopbackServer):
    """``/api/v1/query`` answering the ``data`` set for each query (an empty vector if none).

    Like a Prometheus behind an authenticating proxy when ``authorization`` is set.
    """

    def __init__(self, authorization: str | None = None) -> None:
        super().__init__()
        self.answers: dict[str, dict[str, Any]] = {}
        self.authorization = authorization

    def error_body(self, status: int) -> Any:
        return {"status": "error", "errorType": "unavailable", "error": f"injected {status}"}

    def handle(self, request: RecordedRequest) -> Reply:
        if request.path != "/api/v1/query":
            return Reply(404, b"404 page not found")
        if self.authorization and request.header("authorization") != self.authorization:
            return Reply(401, b"Unauthorized")
        form = parse_qs(request.body.decode()) if request.method == "POST" else request.query
        if "query" not in form:
            return error(400, "bad_data", 'invalid parameter "query": query is empty')
        data = self.answers.get(form["query"][0], {"resultType": "vector", "result": []})
        return Reply(200, {"status": "success", "data": data})

    def form(self, index: int = -1) -> dict[str, list[str]]:
        """The form fields of a recorded request."""
        return parse_qs(self.requests[index].body.decode())


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    with FakePrometheus(authorization=f"Bearer {TOKEN}") as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def activities(
    http: httpx.AsyncClient, url: str, *, auth: dict[str, str] | None = None
) -> MetricsActivities:
    source = Endpoint(url, auth if auth is not None else {"Authorization": f"Bearer {TOKEN}"})
    return MetricsActivities(client=http, sources={"prometheus": source}, clock=lambda: NOW)


async def measure(acts: MetricsActivities, query: str, **fields: Any) -> MetricSample:
    result: MetricSample = await ActivityEnvironment().run(
        acts.query, MetricQuery(query=query, **fields)
    )
    return result


async def failure(acts: MetricsActivities, query: str, **fields: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await measure(acts, query, **fields)
    return caught.value


async def test_vector_values_are_ordered_by_label_set(
    prometheus: FakePrometheus, http: httpx.AsyncClient
) -> None:
    prometheus.answers[ERROR_RATE] = vector(
        ({"pod": "web-2"}, "0.5"), ({"pod": "web-0"}, "0.01"), ({"pod": "web-1"}, "0")
    )

    sample = await measure(activities(http, prometheus.url), ERROR_RATE)

    assert sample == MetricSample(
        source="prometheus",
        query=ERROR_RATE,
        result_type="vector",
        values=[0.01, 0.0, 0.5],
        labels=[{"pod": "web-0"}, {"pod": "web-1"}, {"pod": "web-2"}],
        time=NOW,
    )
    sent = prometheus.requests[0]
    assert (sent.method, sent.path) == ("POST", "/api/v1/query")
    assert sent.header("content-type") == "application/x-www-form-urlencoded"
    assert sent.header("authorization") == f"Bearer {TOKEN}"
    assert prometheus.form() == {
        "query": [ERROR_RATE],
        "time": [f"{NOW.timestamp():.3f}"],
        "timeout": ["10s"],
    }


async def test_a_sorting_query_keeps_prometheus_order(
    prometheus: FakePrometheus, http: httpx.AsyncClient
) -> None:
    query = f"sort_desc({ERROR_RATE})"
    prometheus.answers[query] = vector(({"pod": "web-2"}, "0.5"), ({"pod": "web-0"}, "0.01"))

    sample = await measure(activities(http, prometheus.url), query)

    assert sample.values == [0.5, 0.01]
    assert sample.labels == [{"pod": "web-2"}, {"pod": "web-0"}]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sort_desc(x)", True),
        ("  sort (rate(x[5m]))  ", True),
        ('sort_by_label(up, "instance")', True),
        ('sort_by_label_desc(up{path=~"/a\\\\)"}, "path")', True),
        ("sort_desc(x) * 2", False),
        ("sort(x) or sort(y)", False),
        ("topk(3, x)", False),
        ("x", False),
        ("sorted_metric", False),
    ],
)
def test_keeps_order_only_when_the_outermost_call_sorts(query: str, expected: bool) -> None:
    assert keeps_order(query) is expected


async def test_an_explicit_time_is_sent_and_recorded(
    prometheus: FakePrometheus, http: httpx.AsyncClient
) -> None:
    at = NOW - timedelta(minutes=5)

    sample = await measure(activities(http, prometheus.url), "up", time=at)

    assert prometheus.form()["time"] == [f"{at.timestamp():.3f}"]
    assert (sample.time, sample.values, sample.labels) == (at, [], [])


async def test_scalar_is_one_value_without_labels(
    prometheus: FakePrometheus, http: httpx.AsyncClient
) -> None:
    prometheus.answers["scalar(up) * 0.5"] = {
        "resultType": "scalar",
        "result": [NOW.timestamp(), "0.5"],
    }

    sample = await measure(activities(http, prometheus.url), "scalar(up) * 0.5")

    assert (sample.result_type, sample.values, sample.labels) == ("scalar", [0.5], [{}])


async def test_nan_and_infinities_survive_the_history_round_trip(
    prometheus: FakePrometheus, http: httpx.AsyncClient
) -> None:
    prometheus.answers["errors / requests"] = vector(
        ({"pod": "a"}, "NaN"), ({"pod": "b"}, "+Inf"), ({"pod": "c"}, "-Inf")
    )

    sample = await measure(activities(http, prometheus.url), "errors / requests")
    payloads = await pydantic_data_converter.encode([sample])
    [recorded] = await pydantic_data_converter.decode(payloads, [MetricSample])

    for values in (sample.values, recorded.values):
        assert math.isnan(values[0])
        assert values[1:] == [math.inf, -math.inf]


async def test_warnings_and_infos_are_kept(
    prometheus: FakePrometheus, http: httpx.AsyncClient
) -> None:
    info = 'PromQL info: metric might not be a counter: "x"'
    prometheus.inject(
        Fault(
            "reply",
            reply=Reply(
                200,
                {
                    "status": "success",
                    "data": vector(({}, "1")),
                    "warnings": ["partial response"],
                    "infos": [info],
                },
            ),
        )
    )

    sample = await measure(activities(http, prometheus.url), "rate(x[1m])")

    assert sample.warnings == ["partial response", info]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"resultType": "matrix", "result": [{"metric": {}, "values": [[1.0, "1"]]}]},
            "prometheus 'prometheus' query 'x[5m]' returned a range vector: drop the [range] "
            "selector, or wrap it in a function such as rate(); a check needs an instant "
            "vector or a scalar",
        ),
        (
            {"resultType": "string", "result": [1.0, "hello"]},
            "prometheus 'prometheus' query 'x[5m]' returned a string; a check needs an "
            "instant vector or a scalar",
        ),
        (
            {
                "resultType": "vector",
                "result": [{"metric": {}, "histogram": [1.0, {"count": "3", "sum": "2"}]}],
            },
            "prometheus 'prometheus' query 'x[5m]' returned a native histogram; compare a "
            "number instead, e.g. histogram_quantile(0.99, ...) or histogram_count(...)",
        ),
    ],
)
async def test_results_a_check_cannot_compare_are_refused(
    prometheus: FakePrometheus, http: httpx.AsyncClient, data: dict[str, Any], message: str
) -> None:
    prometheus.answers["x[5m]"] = data

    err = await failure(activities(http, prometheus.url), "x[5m]")

    assert isinstance(err, StepError)
    assert (err.type, err.non_retryable, err.message) == ("UnsupportedResult", True, message)


@pytest.mark.parametrize(
    ("status", "error_type", "query", "detail", "kind"),
    [
        # Broken PromQL is a runbook bug: no retry can fix it.
        (
            400,
            "bad_data",
            "rate(x[5m)",
            'invalid parameter "query": 1:13: parse error: unclosed left bracket',
            PermanentHttpError,
        ),
        (422, "execution", "a / on(job) b", "found duplicate series", PermanentHttpError),
        (503, "timeout", "up", "query timed out in expression evaluation", TransientHttpError),
    ],
)
async def test_error_envelopes_are_classified_naming_the_query(
    prometheus: FakePrometheus,
    http: httpx.AsyncClient,
    status: int,
    error_type: str,
    query: str,
    detail: str,
    kind: type[ApplicationError],
) -> None:
    prometheus.inject(Fault("reply", reply=error(status, error_type, detail)))

    err = await failure(activities(http, prometheus.url), query)

    assert type(err) is kind
    assert err.non_retryable is (kind is PermanentHttpError)
    assert (
        err.message == f"prometheus 'prometheus' query {query!r} answered HTTP {status}: {detail}"
    )


async def test_429_is_retried_after_retry_after(
    prometheus: FakePrometheus, http: httpx.AsyncClient
) -> None:
    prometheus.fail_next(1, 429, retry_after="7")

    err = await failure(activities(http, prometheus.url), "up")

    assert isinstance(err, TransientHttpError)
    assert err.next_retry_delay == timedelta(seconds=7)
    assert err.message.endswith("answered HTTP 429: injected 429 (retry after 7s)")


async def test_a_connection_fault_is_retried(
    prometheus: FakePrometheus, http: httpx.AsyncClient
) -> None:
    prometheus.reset_next()

    err = await failure(activities(http, prometheus.url), "up")

    assert isinstance(err, TransientHttpError)
    assert err.message.startswith("prometheus 'prometheus' query 'up' unreachable: ")


async def test_nothing_listening_is_retried(http: httpx.AsyncClient) -> None:
    err = await failure(activities(http, f"http://127.0.0.1:{free_port()}"), "up")

    assert isinstance(err, TransientHttpError)


@pytest.mark.parametrize(
    ("error_type", "retryable"),
    [("timeout", True), ("internal", True), ("bad_data", False), ("execution", False)],
)
async def test_an_error_envelope_in_a_2xx_is_classified_by_error_type(
    prometheus: FakePrometheus, http: httpx.AsyncClient, error_type: str, retryable: bool
) -> None:
    prometheus.inject(Fault("reply", reply=error(200, error_type, "went wrong")))

    err = await failure(activities(http, prometheus.url), "up")

    assert err.type == ("TransientHttpError" if retryable else "PermanentHttpError")
    assert (
        err.message
        == f"prometheus 'prometheus' query 'up' answered HTTP 200: {error_type}: went wrong"
    )


async def test_wrong_credentials_are_permanent(
    prometheus: FakePrometheus, http: httpx.AsyncClient
) -> None:
    err = await failure(
        activities(http, prometheus.url, auth={"Authorization": "Bearer wrong"}), "up"
    )

    assert isinstance(err, PermanentHttpError)
    assert err.message == "prometheus 'prometheus' query 'up' answered HTTP 401: Unauthorized"


async def test_a_basic_auth_password_echoed_in_an_error_is_redacted(
    prometheus: FakePrometheus, http: httpx.AsyncClient
) -> None:
    encoded = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    echo = f"rejected Basic {encoded} (alice:{PASSWORD})"
    prometheus.inject(Fault("reply", reply=Reply(403, echo.encode())))
    acts = activities(http, prometheus.url, auth={"Authorization": f"Basic {encoded}"})

    err = await failure(acts, "up")

    assert err.message.endswith("answered HTTP 403: rejected [REDACTED] (alice:[REDACTED])")


async def test_an_answer_that_is_not_the_query_api_is_permanent(
    prometheus: FakePrometheus, http: httpx.AsyncClient
) -> None:
    prometheus.inject(Fault("reply", reply=Reply(200, b"<html>Sign in</html>")))

    err = await failure(activities(http, prometheus.url), "up")

    assert isinstance(err, StepError)
    assert (err.type, err.message) == (
        "UnexpectedResponse",
        "prometheus 'prometheus' query 'up': not a Prometheus query answer (not a JSON "
        "object: '<html>Sign in</html>'); check the source's url",
    )


async def test_an_unknown_source_is_named(http: httpx.AsyncClient) -> None:
    acts = activities(http, "http://127.0.0.1:9")

    err = await failure(acts, "up", source="thanos")

    assert isinstance(err, StepError)
    assert (err.type, err.message) == (
        "UnknownMetricSource",
        "no metrics source named 'thanos' (configured: prometheus)",
    )
