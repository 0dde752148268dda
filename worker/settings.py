"""Process settings: where Temporal is, which ports to serve, where state lives.

Every setting is an environment variable (``FIRELINE_<NAME>``) and a command-line flag; the
flag wins. Business configuration (people, services, policies) lives in the config file
named by ``FIRELINE_CONFIG``, see ``worker.config``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """fireline's process settings."""

    model_config = SettingsConfigDict(env_prefix="FIRELINE_", extra="ignore")

    # HTTP API and web pages.
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    # Links in pages and messages; defaults to http://<api_host>:<api_port>.
    public_url: str | None = None

    # Temporal. No address means the embedded dev server on temporal_port.
    temporal_address: str | None = None
    temporal_port: int = 7233
    ui_port: int = 8233
    namespace: str = "default"
    task_queue: str = "fireline"
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_tls_ca: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: SecretStr | None = None

    # Payload encryption (worker.codec): 'key-id=base64key' entries, first = active. Either
    # inline or from a file; every process that talks to Temporal needs the same keys.
    encryption_keys: SecretStr | None = None
    encryption_keys_file: Path | None = None
    encryption_active_key: str | None = None
    # Origins of Temporal UIs allowed to call the codec server, comma separated; default the
    # embedded UI (http://127.0.0.1:<ui_port>, http://localhost:<ui_port>).
    temporal_ui_origins: str | None = None
    # Where people open the Temporal UI (links in war room summaries); default: the
    # embedded server's UI, none for an external server unless set.
    temporal_ui_url: str | None = None

    # fireline up --demo: a sandbox cluster (the Kubernetes API emulator) and a metrics
    # source, so the runbook loop can be tried without a cluster. Never used otherwise.
    demo: bool = False
    # Kubernetes clusters whose actions this process runs, each on its cluster's task queue:
    # "*" every cluster in fireline.yaml, "" none, or a comma-separated list of names.
    worker_clusters: str = "*"
    # Run only this cluster's actions and nothing else: the worker deployed inside a cluster.
    cluster_only: str | None = None

    state_dir: Path = Path(".fireline")
    # Signs one-click acknowledge links; API and workers must share it. Default: a random
    # secret kept in the state directory (fine for one machine).
    ack_secret: SecretStr | None = None
    config: Path | None = None
    # The runbook library the API offers (``*.yaml``); default: the one shipped with fireline.
    runbooks_dir: Path | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"

    # Observability (worker.telemetry): where the SDK serves Prometheus metrics (host:port;
    # unset: off), and an OTLP/HTTP traces endpoint (unset: no tracing).
    metrics_address: str | None = None
    otel_endpoint: str | None = None
    otel_service: str = "fireline"

    # Worker tuning: several workers on one task queue share its load; these bound what
    # one of them takes on (activities in flight, workflow tasks in flight, cached runs).
    # Each open incident keeps two runs cached (the incident and its escalation, about
    # 290 KiB together, bench/RESULTS.md): size max_cached_workflows to at least twice the
    # open incidents plus the other workflows, or every timer of an evicted incident
    # replays it from history first.
    max_concurrent_activities: int = Field(default=100, ge=1)
    max_concurrent_workflow_tasks: int = Field(default=100, ge=2)
    max_cached_workflows: int = Field(default=1000, ge=0)

    def cluster_names(self, configured: list[str]) -> list[str]:
        """The configured clusters this process serves (unknown names are an error)."""
        if self.cluster_only is not None:
            wanted = [self.cluster_only]
        elif self.worker_clusters.strip() == "*":
            return list(configured)
        else:
            wanted = [n.strip() for n in self.worker_clusters.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in configured]
        if unknown:
            known = ", ".join(configured) or "none"
            raise ValueError(
                f"cluster {', '.join(unknown)} is not in fireline.yaml's clusters (known: {known})"
            )
        return wanted

    @property
    def address(self) -> str:
        """The Temporal frontend to connect to."""
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def base_url(self) -> str:
        """Where people reach the API and pages."""
        return self.public_url or f"http://{self.api_host}:{self.api_port}"

    def incident_links(self, incident_id: str) -> tuple[str, str | None]:
        """The dashboard page and the Temporal UI page of an incident, for chat summaries."""
        dashboard = f"{self.base_url}/ui/incidents/{incident_id}"
        ui = self.temporal_ui_url
        if ui is None and self.temporal_address is None:
            ui = f"http://127.0.0.1:{self.ui_port}"  # the embedded server's UI
        if ui is None:
            return dashboard, None
        return (
            dashboard,
            f"{ui.rstrip('/')}/namespaces/{self.namespace}/workflows/incident-{incident_id}",
        )

    @property
    def encryption_enabled(self) -> bool:
        """True when encryption keys are configured (worker.codec validates them)."""
        return self.encryption_keys is not None or self.encryption_keys_file is not None

    @property
    def ui_origins(self) -> list[str]:
        """Temporal UI origins the codec server answers (CORS)."""
        if self.temporal_ui_origins:
            return [o.strip() for o in self.temporal_ui_origins.split(",") if o.strip()]
        return [f"http://127.0.0.1:{self.ui_port}", f"http://localhost:{self.ui_port}"]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, which local mode is limited to."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
