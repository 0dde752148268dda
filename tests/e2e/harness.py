"""End-to-end harness: a real Prometheus and a real Alertmanager on free loopback ports.

The chain under test is the one operators run::

    MetricSource (/metrics the test controls) --scrape--> Prometheus --alert rules-->
    Alertmanager --webhook_configs--> the receiver under test (fireline, or a stand-in)

Both servers are the Debian packages' binaries (``.ci/install-system-packages`` installs
them). Missing binaries are an error, never a skip: CI installs them, and a skip would hide
a broken install step.

Synchronous by design: every call is a short blocking HTTP request or a process start, so
the same objects serve sync and async tests. In an async test whose receiver runs on the
test's own event loop, wait with ``await stack.wait_until_async(check)`` so the loop keeps
serving Alertmanager's POSTs; ``wait_until(check)`` blocks and suits sync tests and
receivers that run in a thread. Start stacks on the main thread (pytest fixtures do): the
servers are killed by the kernel when the thread that started them dies (PR_SET_PDEATHSIG),
so a crashed pytest leaves no orphan.

Usage, from a test module (importing the ``e2e_stacks`` fixture registers it there; the
redundant alias tells ruff it is a deliberate re-export, not an unused import)::

    from tests.e2e.harness import E2EStacks, alert_rule
    from tests.e2e.harness import e2e_stacks as e2e_stacks

    def test_x(e2e_stacks: E2EStacks) -> None:
        stack = e2e_stacks.stack(webhook_url, [alert_rule("High", "x > 1")])
        stack.metrics.set("x", 2)
        stack.wait_until(lambda: ..., what="a firing notification")

Or without pytest: ``with prometheus_stack(url, rules) as stack: ...`` and
``with alertmanager(url) as am: ...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import pytest
import yaml

from tests.support import free_port

T = TypeVar("T")

INSTALL_HINT = (
    "run `.ci/install-system-packages` as root (it apt-installs the Debian packages "
    "prometheus and prometheus-alertmanager)"
)
LOOPBACK = "127.0.0.1"
# Alertmanager's "not resolved yet" endsAt in webhook payloads.
ZERO_TIME = "0001-01-01T00:00:00Z"

_PR_SET_PDEATHSIG = 1
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class HarnessError(RuntimeError):
    """A server of the harness could not be started or answered an error."""


class MissingBinary(HarnessError):
    """Prometheus or Alertmanager is not installed."""


def find_binary(name: str, env_var: str) -> Path:
    """The binary named by ``env_var``, else on PATH, else a MissingBinary naming the fix."""
    override = os.environ.get(env_var)
    if override:
        path = Path(override)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise MissingBinary(f"{env_var}={override} is not an executable file; {INSTALL_HINT}")
    # /usr/bin too: where the Debian packages put them, even if PATH is unusual.
    found = shutil.which(name) or shutil.which(name, path="/usr/bin")
    if found is None:
        raise MissingBinary(f"'{name}' is not installed: {INSTALL_HINT}")
    return Path(found)


def prometheus_binary() -> Path:
    """The Prometheus server binary (override: FIRELINE_PROMETHEUS_BIN)."""
    return find_binary("prometheus", "FIRELINE_PROMETHEUS_BIN")


def alertmanager_binary() -> Path:
    """Debian's Alertmanager binary (override: FIRELINE_ALERTMANAGER_BIN)."""
    return find_binary("prometheus-alertmanager", "FIRELINE_ALERTMANAGER_BIN")


def require_binaries() -> None:
    """Fail the calling test (never skip) when either server is not installed."""
    try:
        prometheus_binary()
        alertmanager_binary()
    except MissingBinary as exc:
        problem = str(exc)
    else:
        return
    pytest.fail(problem, pytrace=False)


# --- rules and alerts ------------------------------------------------------------------


def alert_rule(
    alert: str,
    expr: str,
    *,
    for_: str = "0s",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Prometheus alerting rule; annotations may use ``{{ $labels.x }}`` and ``{{ $value }}``."""
    rule: dict[str, Any] = {"alert": alert, "expr": expr, "for": for_}
    if labels:
        rule["labels"] = dict(labels)
    if annotations:
        rule["annotations"] = dict(annotations)
    return rule


def rfc3339(moment: datetime) -> str:
    """A timezone-aware datetime as Alertmanager's API expects it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def pushed_alert(
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
    *,
    resolved: bool = False,
    starts_at: datetime | None = None,
    generator_url: str | None = None,
) -> dict[str, Any]:
    """One alert for ``Alertmanager.push_alerts``; ``resolved`` ends it now."""
    alert: dict[str, Any] = {"labels": dict(labels), "annotations": dict(annotations or {})}
    if starts_at is not None:
        alert["startsAt"] = rfc3339(starts_at)
    if resolved:
        alert["endsAt"] = rfc3339(datetime.now(UTC))
    if generator_url is not None:
        alert["generatorURL"] = generator_url
    return alert


# --- waiting with diagnostics -------------------------------------------------------------


class _Diagnosable:
    """Something whose state explains a timed-out wait."""

    def diagnostics(self) -> str:
        """What to print when a wait times out."""
        raise NotImplementedError

    def check_alive(self) -> None:
        """Raise HarnessError (with the reason) if a server died."""

    def _timeout_message(self, what: str, timeout: float, last: AssertionError | None) -> str:
        reason = f"\nlast check failure: {last}" if last is not None else ""
        return f"timed out after {timeout:.0f}s waiting for {what}{reason}\n{self.diagnostics()}"

    def wait_until(
        self, check: Callable[[], T], *, what: str, timeout: float = 30.0, interval: float = 0.1
    ) -> T:
        """Retry ``check`` until it returns without AssertionError; on timeout say why."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return check()
            except AssertionError as exc:
                last = exc
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(self._timeout_message(what, timeout, last)) from last
            time.sleep(interval)

    async def wait_until_async(
        self,
        check: Callable[[], Awaitable[T]],
        *,
        what: str,
        timeout: float = 30.0,
        interval: float = 0.1,
    ) -> T:
        """Like ``wait_until`` for async checks, yielding to the event loop between tries."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await check()
            except AssertionError as exc:
                last = exc
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(self._timeout_message(what, timeout, last)) from last
            await asyncio.sleep(interval)


# --- the metric source ------------------------------------------------------------------


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricSource(_Diagnosable):
    """Gauges the test sets, served in Prometheus text format at ``/metrics``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gauges: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        self.scrapes = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def set(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        """Set one gauge series; the next scrape (within a second) sees it."""
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in labels or {}:
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r}")
        key = tuple(sorted((labels or {}).items()))
        with self._lock:
            self._gauges.setdefault(name, {})[key] = float(value)

    def remove(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        """Stop exposing a series (Prometheus marks it stale at the next scrape)."""
        key = tuple(sorted((labels or {}).items()))
        with self._lock:
            series = self._gauges.get(name, {})
            series.pop(key, None)
            if not series:
                self._gauges.pop(name, None)

    def render(self, *, scrape: bool = False) -> str:
        """The exposition text of every gauge; ``scrape`` counts it as a scrape."""
        lines: list[str] = []
        with self._lock:
            self.scrapes += scrape
            for name in sorted(self._gauges):
                lines.append(f"# TYPE {name} gauge")
                for key, value in sorted(self._gauges[name].items()):
                    pairs = ",".join(f'{k}="{_escape_label(v)}"' for k, v in key)
                    selector = f"{{{pairs}}}" if pairs else ""
                    lines.append(f"{name}{selector} {_format_value(value)}")
        return "\n".join(lines) + "\n"

    def start(self) -> MetricSource:
        """Listen on an OS-chosen loopback port (no race with other tests)."""
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = source.render(scrape=True).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                # One line per scrape a second would drown pytest's captured output.
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metric-source", daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._server is None:
            raise HarnessError("the MetricSource is not started")
        return int(self._server.server_address[1])

    @property
    def target(self) -> str:
        """host:port, as a Prometheus scrape target."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """The full /metrics URL."""
        return f"http://{self.target}/metrics"

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def diagnostics(self) -> str:
        """The current exposition and how often it was scraped."""
        return f"--- metric source ({self.scrapes} scrapes) serves:\n{self.render()}"

    def __enter__(self) -> MetricSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- server processes -------------------------------------------------------------------


def _die_with_parent() -> None:
    # Between fork and exec: the kernel sends SIGKILL to the server when its parent dies,
    # even if pytest itself is SIGKILLed, so no Prometheus outlives the test run.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _child_env() -> dict[str, str]:
    # Loopback only: a proxy from the environment must never see the servers' traffic.
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


class _Server(_Diagnosable):
    """A server binary on a free loopback port, its output in ``<workdir>/<name>.log``."""

    name = "server"
    start_attempts = 3

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{self.name}.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: httpx.Client | None = None

    @property
    def address(self) -> str:
        """host:port of its HTTP API."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of its HTTP API."""
        return f"http://{self.address}"

    @property
    def http(self) -> httpx.Client:
        """A client of its HTTP API."""
        if self._http is None:
            # trust_env=False: no proxy, even if the environment names one.
            self._http = httpx.Client(base_url=self.url, timeout=10.0, trust_env=False)
        return self._http

    def command(self) -> list[str]:
        """The command line for ``self.port``."""
        raise NotImplementedError

    def write_config(self) -> None:
        """Write the server's configuration files into the workdir."""
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start it and return once ``/-/ready`` answers 200."""
        self.write_config()
        for attempt in range(1, self.start_attempts + 1):
            self.port = free_port()
            self._http = None
            with self.log_path.open("ab") as log:
                log.write(f"### harness: {' '.join(self.command())}\n".encode())
                log.flush()
                self._proc = subprocess.Popen(
                    self.command(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.workdir,
                    env=_child_env(),
                    preexec_fn=_die_with_parent,
                    # Ctrl-C in a terminal reaches pytest, whose teardown stops the servers.
                    start_new_session=True,
                )
            try:
                self._wait_ready(timeout)
                return
            except HarnessError:
                self.stop()
                # free_port() can lose a race with another process; pick another port.
                if attempt < self.start_attempts and "address already in use" in self.log_tail():
                    continue
                raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if self.http.get("/-/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise HarnessError(
            f"{self.name} did not become ready within {timeout:.0f}s on {self.address}; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def check_alive(self) -> None:
        """Raise HarnessError with the log's end if the process exited."""
        if self._proc is not None and self._proc.poll() is not None:
            raise HarnessError(
                f"{self.name} exited with status {self._proc.returncode}; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 25) -> str:
        """The end of the server's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self._http is not None:
            self._http.close()
            self._http = None
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _get_json(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        if response.status_code != 200:
            raise HarnessError(f"GET {self.url}{path}: {response.status_code} {response.text}")
        return response.json()


class Alertmanager(_Server):
    """A single Alertmanager (gossip off) routing every alert to one webhook receiver."""

    name = "alertmanager"

    def __init__(
        self,
        webhook_url: str,
        *,
        workdir: Path,
        receiver: str = "fireline",
        bearer_token: str | None = None,
        http_config: Mapping[str, Any] | None = None,
        max_alerts: int = 0,
        send_resolved: bool = True,
        group_by: Sequence[str] = ("alertname",),
        group_wait: str = "0s",
        group_interval: str = "1s",
        repeat_interval: str = "10s",
    ) -> None:
        # Timings are seconds, not Alertmanager's minutes: a new alert is posted at once,
        # changes within a second, and a group still firing is posted again every 10 s, so
        # a receiver meets re-deliveries as it would in production (pass "1h" to avoid).
        super().__init__(workdir)
        self.webhook_url = webhook_url
        self.receiver = receiver
        self.bearer_token = bearer_token
        self.http_config = dict(http_config) if http_config else None
        self.max_alerts = max_alerts
        self.send_resolved = send_resolved
        self.group_by = list(group_by)
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval
        self.config_path = workdir / "am.yml"

    def config(self) -> dict[str, Any]:
        """The am.yml content."""
        webhook: dict[str, Any] = {
            "url": self.webhook_url,
            "send_resolved": self.send_resolved,
            "max_alerts": self.max_alerts,
        }
        http_config = dict(self.http_config or {})
        if self.bearer_token is not None:
            http_config["authorization"] = {"type": "Bearer", "credentials": self.bearer_token}
        if http_config:
            webhook["http_config"] = http_config
        return {
            "route": {
                "receiver": self.receiver,
                "group_by": self.group_by,
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [{"name": self.receiver, "webhook_configs": [webhook]}],
        }

    def write_config(self) -> None:
        """Write am.yml."""
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def command(self) -> list[str]:
        """The Alertmanager command line."""
        return [
            str(alertmanager_binary()),
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            # Payloads carry externalURL; pin it instead of the machine's hostname.
            f"--web.external-url={self.url}",
            # Empty: no gossip listener, so no second port and no peer waiting.
            "--cluster.listen-address=",
        ]

    def push_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """POST alerts straight to ``/api/v2/alerts``, as Prometheus would."""
        response = self.http.post("/api/v2/alerts", json=list(alerts))
        if response.status_code != 200:
            raise HarnessError(f"POST /api/v2/alerts: {response.status_code} {response.text}")

    def alerts(self, *matchers: str) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds (``GET /api/v2/alerts``), e.g. ``alerts('job="x"')``."""
        params = {"filter": list(matchers)} if matchers else {}
        return cast(list[dict[str, Any]], self._get_json("/api/v2/alerts", **params))

    def diagnostics(self) -> str:
        """Its log tail and the alerts it holds."""
        try:
            held = str([(a["labels"], a["status"]["state"]) for a in self.alerts()])
        except (HarnessError, httpx.HTTPError) as exc:
            held = f"(unavailable: {exc})"
        return (
            f"--- alertmanager at {self.url} holds {held}\n"
            f"--- last lines of {self.log_path}:\n{self.log_tail()}"
        )


class Prometheus(_Server):
    """Prometheus scraping given targets every second and alerting to one Alertmanager."""

    name = "prometheus"

    def __init__(
        self,
        *,
        workdir: Path,
        scrape_targets: Sequence[str],
        rules: Sequence[Mapping[str, Any]] = (),
        alertmanager: str | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        resend_delay: str = "2s",
    ) -> None:
        super().__init__(workdir)
        self.scrape_targets = list(scrape_targets)
        self.rules = [dict(rule) for rule in rules]
        self.alertmanager = alertmanager
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.resend_delay = resend_delay
        self.config_path = workdir / "prometheus.yml"
        self.rules_path = workdir / "rules.yml"

    def config(self) -> dict[str, Any]:
        """The prometheus.yml content."""
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                # Must not exceed the interval, or Prometheus refuses the config.
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": [str(self.rules_path)],
            "scrape_configs": [
                {"job_name": "metrics", "static_configs": [{"targets": self.scrape_targets}]}
            ],
        }
        if self.alertmanager is not None:
            config["alerting"] = {
                "alertmanagers": [
                    {
                        "api_version": "v2",
                        "timeout": "5s",
                        "static_configs": [{"targets": [self.alertmanager]}],
                    }
                ]
            }
        return config

    def write_config(self) -> None:
        """Write prometheus.yml and rules.yml."""
        groups = {"groups": [{"name": "e2e", "rules": self.rules}]}
        self.rules_path.write_text(yaml.safe_dump(groups, sort_keys=False))
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def command(self) -> list[str]:
        """The Prometheus command line."""
        return [
            str(prometheus_binary()),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address={self.address}",
            # generatorURL in alerts points here instead of at the machine's hostname.
            f"--web.external-url={self.url}",
            # A newly firing or resolved alert is sent at once; this paces the re-sends of
            # firing ones (default 1m), so a send that Alertmanager missed is repeated
            # within seconds. Each send sets endsAt to now + 4 x this, so Alertmanager also
            # resolves alerts within seconds if Prometheus goes away. Not 1s: on a loaded
            # machine one late rule evaluation must not let an alert lapse into resolved.
            f"--rules.alert.resend-delay={self.resend_delay}",
        ]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; the ``data.result`` list (vector samples)."""
        body = self._get_json("/api/v1/query", query=promql)
        if body.get("status") != "success":
            raise HarnessError(f"query {promql!r} failed: {body}")
        return cast(list[dict[str, Any]], body["data"]["result"])

    def query_value(self, promql: str) -> float | None:
        """The single sample's value of a query, or None when it returns nothing."""
        result = self.query(promql)
        if not result:
            return None
        if len(result) > 1:
            raise HarnessError(f"query {promql!r} returned {len(result)} series: {result}")
        return float(result[0]["value"][1])

    def alerts(self) -> list[dict[str, Any]]:
        """Active (pending or firing) alerts from ``/api/v1/alerts``."""
        return cast(list[dict[str, Any]], self._get_json("/api/v1/alerts")["data"]["alerts"])

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets with their health and last error."""
        data = self._get_json("/api/v1/targets", state="active")["data"]
        return cast(list[dict[str, Any]], data["activeTargets"])

    def alertmanagers(self) -> list[str]:
        """URLs of the Alertmanagers it has discovered and will send alerts to."""
        data = self._get_json("/api/v1/alertmanagers")["data"]
        return [am["url"] for am in data["activeAlertmanagers"]]

    def wait_until_wired(self, timeout: float = 30.0) -> None:
        """Return once every target was scraped and the Alertmanager (if any) is known.

        Prometheus applies its static targets through discovery, which publishes at most
        every 5 s: right after ``/-/ready`` nothing is scraped and nothing can be sent yet.
        """

        def wired() -> None:
            targets = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in self.targets()]
            assert targets, "no active scrape targets yet"
            assert all(health == "up" for _, health, _ in targets), f"not up: {targets}"
            if self.alertmanager is not None:
                known = self.alertmanagers()
                assert any(self.alertmanager in url for url in known), f"alertmanagers {known}"

        self.wait_until(
            wired, what="scrape targets up and Alertmanager discovered", timeout=timeout
        )

    def diagnostics(self) -> str:
        """Its log tail, targets and active alerts."""
        try:
            targets = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in self.targets()]
            alerts = [(a["labels"], a["state"]) for a in self.alerts()]
            state = f"targets {targets}\n--- prometheus alerts {alerts}"
        except (HarnessError, httpx.HTTPError) as exc:
            state = f"(state unavailable: {exc})"
        return (
            f"--- prometheus at {self.url}: {state}\n"
            f"--- last lines of {self.log_path}:\n{self.log_tail()}"
        )


# --- the whole chain ----------------------------------------------------------------------


@dataclass
class Stack(_Diagnosable):
    """MetricSource -> Prometheus -> Alertmanager, all running."""

    metrics: MetricSource
    prometheus: Prometheus
    alertmanager: Alertmanager

    def check_alive(self) -> None:
        """Raise HarnessError if Prometheus or Alertmanager died."""
        self.prometheus.check_alive()
        self.alertmanager.check_alive()

    def diagnostics(self) -> str:
        """Every component's state and log tail."""
        return "\n".join(
            part.diagnostics() for part in (self.metrics, self.prometheus, self.alertmanager)
        )


@contextlib.contextmanager
def _workdir(workdir: Path | None, prefix: str) -> Iterator[Path]:
    # A caller's directory is kept; our own temporary one too if the block failed, so
    # its logs can still be read.
    if workdir is not None:
        yield workdir
        return
    path = Path(tempfile.mkdtemp(prefix=prefix))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def alertmanager(
    webhook_url: str, *, workdir: Path | None = None, **options: Any
) -> Iterator[Alertmanager]:
    """A running Alertmanager posting to ``webhook_url``; options as for ``Alertmanager``."""
    with _workdir(workdir, "fireline-am-") as path:
        server = Alertmanager(webhook_url, workdir=path / "alertmanager", **options)
        try:
            server.start()
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def prometheus_stack(
    webhook_url: str,
    rules: Sequence[Mapping[str, Any]],
    *,
    workdir: Path | None = None,
    metrics: MetricSource | None = None,
    prometheus_options: Mapping[str, Any] | None = None,
    **alertmanager_options: Any,
) -> Iterator[Stack]:
    """MetricSource -> Prometheus (``rules``) -> Alertmanager -> ``webhook_url``, torn down after.

    Set gauges on ``metrics`` (or on the yielded ``stack.metrics``) before or after the
    start; when this yields, Prometheus has scraped the source and knows the Alertmanager.
    """
    with _workdir(workdir, "fireline-e2e-") as path, contextlib.ExitStack() as cleanup:
        source = metrics or cleanup.enter_context(MetricSource())
        am = cleanup.enter_context(alertmanager(webhook_url, workdir=path, **alertmanager_options))
        prometheus = Prometheus(
            workdir=path / "prometheus",
            scrape_targets=[source.target],
            rules=rules,
            alertmanager=am.address,
            **(prometheus_options or {}),
        )
        cleanup.callback(prometheus.stop)
        prometheus.start()
        stack = Stack(metrics=source, prometheus=prometheus, alertmanager=am)
        prometheus.wait_until_wired()
        yield stack


class E2EStacks:
    """Starts stacks for one test and stops them all when it ends (the ``e2e_stacks`` fixture)."""

    def __init__(self, workdir: Path, cleanup: contextlib.ExitStack) -> None:
        self._workdir = workdir
        self._cleanup = cleanup
        self._count = 0

    def _next_dir(self) -> Path:
        self._count += 1
        return self._workdir / f"stack{self._count}"

    def stack(self, webhook_url: str, rules: Sequence[Mapping[str, Any]], **options: Any) -> Stack:
        """A full chain; options as for ``prometheus_stack``."""
        return self._cleanup.enter_context(
            prometheus_stack(webhook_url, rules, workdir=self._next_dir(), **options)
        )

    def alertmanager(self, webhook_url: str, **options: Any) -> Alertmanager:
        """An Alertmanager alone, for alerts pushed with ``push_alerts``."""
        return self._cleanup.enter_context(
            alertmanager(webhook_url, workdir=self._next_dir(), **options)
        )


@pytest.fixture
def e2e_stacks(tmp_path: Path) -> Iterator[E2EStacks]:
    """A factory of Prometheus/Alertmanager stacks, logs under the test's tmp_path."""
    require_binaries()
    with contextlib.ExitStack() as cleanup:
        yield E2EStacks(tmp_path / "e2e", cleanup)
