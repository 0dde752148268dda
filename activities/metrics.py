"""``metrics.query``: one measurement of a check step, an instant query to Prometheus.

The RunbookWorkflow runs a check as Argo Rollouts does: it calls this activity once per
measurement, between durable timers, and judges each :class:`MetricSample`'s ``values`` with
``runbooks.substitution.assess_measurement``. This module only measures.

The request is ``POST {url}/api/v1/query`` with a form body (``query``, ``time``,
``timeout``), as the Prometheus HTTP API allows for queries too long for a URL; the time is
always sent (the caller's, else this activity's clock), so the sample records exactly when
it was evaluated. The answer becomes values in a stable order:

- ``vector``: one value per series, ordered by label set (compared as sorted name/value
  pairs), so ``result[0]`` names the same series on every measurement; a query whose
  outermost call is ``sort``, ``sort_desc``, ``sort_by_label`` or ``sort_by_label_desc``
  keeps Prometheus' order instead, since asking for an order is the point of those;
- ``scalar``: one value with an empty label set;
- ``matrix`` (a range selector such as ``x[5m]``), ``string`` and native histogram samples
  are refused: a check compares numbers at one instant.

``"NaN"``, ``"+Inf"`` and ``"-Inf"`` become floats; the conditions compare them as IEEE 754
does.

Errors (``ApplicationError`` types)::

    TransientHttpError     (activities.http) 408, 429 (Retry-After honoured), 5xx
                           (Prometheus' 503 for a query that timed out), connection faults,
                           timeouts; an error body of type timeout/canceled/unavailable/
                           internal inside a 2xx; retried
    PermanentHttpError     (activities.http) 400 bad_data (broken PromQL: a runbook bug),
                           422 execution errors, 401/403/404; any other error body;
                           non_retryable; the message names the query
    StepError              (activities.http_actions) non_retryable, type:
                           UnknownMetricSource, UnsupportedResult, UnexpectedResponse
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from temporalio import activity

from activities.contracts import MetricQuery, MetricSample
from activities.http import send, vendor_error
from activities.http_actions import Endpoint, StepError, shown

logger = logging.getLogger(__name__)

METRICS_QUERY = "metrics.query"
DEFAULT_SOURCE = "prometheus"
# Prometheus' errorType values that a later attempt can clear.
TRANSIENT_ERROR_TYPES = frozenset({"timeout", "canceled", "unavailable", "internal"})
_ORDERING_FUNCTIONS = ("sort", "sort_desc", "sort_by_label", "sort_by_label_desc")


class MetricsActivities:
    """The metrics activity; the constructor receives the client and the named sources."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        sources: Mapping[str, Endpoint],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Keep the shared HTTP client and the sources from fireline.yaml's ``metrics``."""
        self._client = client
        self._sources = dict(sources)
        self._clock = clock

    @activity.defn(name=METRICS_QUERY)
    async def query(self, query: MetricQuery) -> MetricSample:
        """Evaluate one instant query; its values in a stable order, with their label sets."""
        source = self._sources.get(query.source)
        if source is None:
            known = ", ".join(sorted(self._sources)) or "none"
            raise StepError(
                f"no metrics source named '{query.source}' (configured: {known})",
                type="UnknownMetricSource",
            )
        when = query.time or self._clock()
        # Named in every message: a broken query is a runbook bug someone has to find.
        vendor = f"prometheus '{query.source}' query {shown(query.query)!r}"
        request = self._client.build_request(
            "POST",
            source.join("api/v1/query"),
            data={
                "query": query.query,
                "time": f"{when.timestamp():.3f}",
                # Prometheus gives up when we do, instead of computing an unread answer.
                "timeout": f"{max(1, int(source.timeout))}s",
            },
            headers=dict(source.auth_headers),
            timeout=source.timeout,
        )
        response = await send(self._client, request, vendor=vendor, secrets=source.secrets)
        sample = parse_response(response, query=query, when=when, vendor=vendor)
        logger.info("%s: %s %s", vendor, sample.result_type, sample.values)
        return sample

    def activities(self) -> list[Callable[[MetricQuery], Awaitable[MetricSample]]]:
        """The bound activity, for ``Worker(activities=...)``."""
        return [self.query]


def parse_response(
    response: httpx.Response, *, query: MetricQuery, when: datetime, vendor: str
) -> MetricSample:
    """The sample in a 2xx ``/api/v1/query`` answer, or the error it reports."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _unexpected(vendor, f"not a JSON object: {shown(response.text)!r}")
    if body.get("status") != "success":
        error_type = str(body.get("errorType") or "unknown")
        raise vendor_error(
            vendor,
            response.status_code,
            f"{error_type}: {body.get('error') or 'status ' + repr(body.get('status'))}",
            transient=error_type in TRANSIENT_ERROR_TYPES,
        )
    data = body.get("data")
    if not isinstance(data, dict):
        raise _unexpected(vendor, "no data in a successful answer")
    result_type, result = data.get("resultType"), data.get("result")
    warnings = [str(w) for key in ("warnings", "infos") for w in body.get(key) or []]
    labels: list[dict[str, str]]
    if result_type == "scalar":
        values, labels = [_value(result, vendor)], [{}]
    elif result_type == "vector":
        labels, values = _vector(result, vendor, keep_order=keeps_order(query.query))
    elif result_type in ("matrix", "string"):
        hint = (
            "a range vector: drop the [range] selector, or wrap it in a function such as rate()"
            if result_type == "matrix"
            else "a string"
        )
        raise StepError(
            f"{vendor} returned {hint}; a check needs an instant vector or a scalar",
            type="UnsupportedResult",
        )
    else:
        raise _unexpected(vendor, f"unknown resultType {result_type!r}")
    return MetricSample(
        source=query.source,
        query=query.query,
        result_type=result_type,
        values=values,
        labels=labels,
        time=when,
        warnings=warnings,
    )


def _vector(
    result: Any, vendor: str, *, keep_order: bool
) -> tuple[list[dict[str, str]], list[float]]:
    if not isinstance(result, list):
        raise _unexpected(vendor, "a vector result that is not a list")
    series: list[tuple[dict[str, str], float]] = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
            raise _unexpected(vendor, f"a vector sample without labels: {item!r}")
        if "value" not in item and "histogram" in item:
            raise StepError(
                f"{vendor} returned a native histogram; compare a number instead, e.g. "
                "histogram_quantile(0.99, ...) or histogram_count(...)",
                type="UnsupportedResult",
            )
        metric = {str(k): str(v) for k, v in item["metric"].items()}
        series.append((metric, _value(item.get("value"), vendor)))
    if not keep_order:
        series.sort(key=lambda pair: sorted(pair[0].items()))
    return [labels for labels, _ in series], [value for _, value in series]


def _value(pair: Any, vendor: str) -> float:
    # Prometheus writes [<unix time>, "<value>"], the value a string so NaN and Inf fit.
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
        raise _unexpected(vendor, f'a sample that is not [time, "value"]: {pair!r}')
    try:
        return float(pair[1])
    except ValueError:
        raise _unexpected(vendor, f"a sample value that is not a number: {pair[1]!r}") from None


def _unexpected(vendor: str, what: str) -> StepError:
    # A 2xx that is not the query API (a login page, a proxy's answer): the URL is wrong.
    return StepError(
        f"{vendor}: not a Prometheus query answer ({what}); check the source's url",
        type="UnexpectedResponse",
    )


def keeps_order(promql: str) -> bool:
    """Whether the query's outermost call orders its result (``sort_desc(...)`` and kin)."""
    text = promql.strip()
    name, paren, _ = text.partition("(")
    if not paren or name.strip() not in _ORDERING_FUNCTIONS:
        return False
    return _closing_paren(text, len(name)) == len(text) - 1


def _closing_paren(text: str, start: int) -> int | None:
    """The index of the ``)`` matching the ``(`` at ``start``, skipping quoted strings."""
    depth, quote, escaped = 0, "", False
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "`":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
    return None
