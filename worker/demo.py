"""`fireline up --demo`: a sandbox cluster and a metrics source, so a newcomer sees the loop.

The sandbox is the Kubernetes API emulator (never used without ``--demo``) seeded with a
shop whose ``checkout`` Deployment was just rolled out to a crash-looping image. The metrics
source answers Prometheus' instant-query API with checkout's 5xx ratio as the sandbox's
state implies it: high while the bad image runs, low once the Deployment is back on a good
one. fireline talks to both exactly as it talks to a real cluster and a real Prometheus:
the official Kubernetes client through a kubeconfig, and HTTP for the queries.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from activities.kubernetes.clusters import ClusterConfig
from worker.config import FirelineConfig, PrometheusSource, ServiceKubernetes
from worker.k8s_emulator.demo import BAD_IMAGE
from worker.k8s_emulator.resources import DEPLOYMENTS
from worker.k8s_emulator.server import K8sEmulator
from worker.ports import free_port

CLUSTER = "sandbox"
NAMESPACE = "shop"
DEPLOYMENT = "checkout"
# The error ratio the sandbox's checkout serves on the bad image, and once rolled back.
BAD_RATIO = 0.32
GOOD_RATIO = 0.004

ALERT_COMMAND = (
    "fireline alert send HighErrorRate --service checkout --severity critical "
    f"--label namespace={NAMESPACE} --label deployment={DEPLOYMENT} --label cluster={CLUSTER} "
    '--summary "checkout 5xx above 30% after the 1.4.0 rollout" --as alice'
)


@dataclass
class Sandbox:
    """The running sandbox: where its pieces are."""

    emulator: K8sEmulator
    kubeconfig: Path
    metrics_url: str
    metrics_server: uvicorn.Server
    serving: asyncio.Task[None]

    def configure(self, config: FirelineConfig) -> FirelineConfig:
        """``config`` plus the sandbox cluster and the demo metrics source."""
        services = dict(config.services)
        if DEPLOYMENT in services:
            # Triage reads what changed where checkout runs: the sandbox's shop namespace.
            where = ServiceKubernetes(cluster=CLUSTER, namespace=NAMESPACE)
            services[DEPLOYMENT] = services[DEPLOYMENT].model_copy(update={"kubernetes": where})
        return config.model_copy(
            update={
                "services": services,
                "clusters": {**config.clusters, CLUSTER: ClusterConfig(kubeconfig=self.kubeconfig)},
                "metrics": {**config.metrics, "prometheus": PrometheusSource(url=self.metrics_url)},
            }
        )

    async def stop(self) -> None:
        """Stop the metrics source and the emulator."""
        self.metrics_server.should_exit = True
        await self.serving
        await self.emulator.stop()


def error_ratio(emulator: K8sEmulator) -> float:
    """checkout's 5xx ratio as the sandbox's current template implies."""
    deployment = emulator.api.get(DEPLOYMENTS, NAMESPACE, DEPLOYMENT)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return BAD_RATIO if any(c.get("image") == BAD_IMAGE for c in containers) else GOOD_RATIO


def metrics_app(emulator: K8sEmulator) -> Starlette:
    """Prometheus' ``/api/v1/query`` (GET or form POST), answering every query with the ratio.

    The demo has one signal worth asking about; answering every query with it keeps the
    runbook's real PromQL unchanged while the sandbox has no real traffic to measure.
    """

    async def query(request: Request) -> JSONResponse:
        # Parsed here rather than with request.form(), which needs python-multipart.
        if request.method == "POST":
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        else:
            form = dict(request.query_params)
        if not form.get("query"):
            return JSONResponse(
                {"status": "error", "errorType": "bad_data", "error": "query is required"},
                status_code=400,
            )
        at = float(str(form.get("time") or time.time()))
        sample: dict[str, Any] = {
            "metric": {"namespace": NAMESPACE, "deployment": DEPLOYMENT},
            "value": [at, repr(error_ratio(emulator))],
        }
        return JSONResponse(
            {"status": "success", "data": {"resultType": "vector", "result": [sample]}}
        )

    return Starlette(routes=[Route("/api/v1/query", query, methods=["GET", "POST"])])


async def start_sandbox(state_dir: Path) -> Sandbox:
    """Start the emulator (seeded) and the metrics source; write the sandbox's kubeconfig."""
    emulator = K8sEmulator(rollout_delay=2.0)
    await emulator.start()
    emulator.seed_demo(NAMESPACE)
    directory = state_dir / "demo"
    directory.mkdir(parents=True, exist_ok=True)
    kubeconfig = directory / "kubeconfig"
    kubeconfig.write_text(json.dumps(emulator.kubeconfig(NAMESPACE), indent=2))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(metrics_app(emulator), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    return Sandbox(emulator, kubeconfig, f"http://127.0.0.1:{port}", server, serving)
