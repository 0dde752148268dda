"""Kill the worker process mid-rollback; a new worker finishes the run, and the rollback
happened exactly once on the cluster."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client

from runbooks.loader import load_runbooks
from tests.integration.test_stack import Proc, env_for, fireline
from tests.support import eventually
from worker.config import load_config
from worker.incident_service import DeclareRequest, IncidentService
from worker.k8s_emulator.resources import DEPLOYMENTS
from worker.k8s_emulator.server import K8sEmulator
from worker.runbook_service import RunbookService
from workflows.contracts import RunbookRunState, Severity

pytestmark = pytest.mark.integration

ROLLBACK = """\
name: crash-rollback
parameters:
  deployment: {type: string, required: true}
steps:
  - id: inspect
    kind: action
    action: k8s.status
    cluster: sandbox
    with: {namespace: shop, deployment: "{params.deployment}"}
  - id: rollback
    kind: action
    action: k8s.rollback
    cluster: sandbox
    with:
      namespace: shop
      deployment: "{params.deployment}"
      from_revision: "{steps.inspect.output.revision}"
  - id: wait-rollout
    kind: action
    action: k8s.wait_rollout
    cluster: sandbox
    with: {namespace: shop, deployment: "{params.deployment}", deadline: 5m}
"""


async def test_a_killed_worker_mid_rollback_is_replaced_and_the_rollback_happens_once(
    tmp_path: Path, dev_client: Client, dev_server: Any
) -> None:
    # Slow rollouts, so the worker dies while the rolled-back revision is still rolling out.
    emulator = K8sEmulator(rollout_delay=8.0)
    await emulator.start()
    procs: list[Proc] = []
    try:
        emulator.seed_demo("shop")
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(json.dumps(emulator.kubeconfig("shop")))
        config_path = tmp_path / "fireline.yaml"
        config_path.write_text(
            yaml.safe_dump(
                {
                    "users": {"alice": {"name": "Alice Example", "email": "alice@example.com"}},
                    "services": {"checkout": {}},
                    "clusters": {"sandbox": {"kubeconfig": str(kubeconfig)}},
                }
            )
        )
        library = tmp_path / "runbooks"
        library.mkdir()
        (library / "crash-rollback.yaml").write_text(ROLLBACK)
        queue = "crash-test"
        env = env_for(
            temporal_address=dev_server.address,
            config=config_path,
            runbooks_dir=library,
            task_queue=queue,
            state_dir=tmp_path / "state",
        )

        def start_worker(n: int) -> Proc:
            proc = Proc(fireline("worker"), env, tmp_path / f"worker-{n}.log")
            procs.append(proc)
            return proc

        first = start_worker(1)

        async def polling() -> None:
            # A loaded machine can take longer to start a worker than an Update waits.
            assert "worker polling task queue" in first.output(), first.output()[-2000:]

        await eventually(polling, timeout=120)
        config = load_config(config_path)
        incidents = IncidentService(dev_client, config, queue)
        runbooks = RunbookService(
            dev_client, config, queue, load_runbooks([library]), incidents=incidents
        )
        state = await incidents.declare(
            DeclareRequest(
                title="Checkout errors",
                service="checkout",
                severity=Severity.SEV2,
                commander="alice",
            ),
            "alice",
        )
        run = await runbooks.start(state.id, "crash-rollback", {"deployment": "checkout"}, "alice")

        async def rolling_out() -> RunbookRunState:
            current = await runbooks.state(state.id, run.run_id)
            assert current.current_step == "wait-rollout", current.current_step
            return current

        await eventually(rolling_out, timeout=60)
        await asyncio.sleep(1)  # the wait is under way: at least one heartbeat sent
        first.popen.send_signal(signal.SIGKILL)
        first.popen.wait(10)
        assert (
            emulator.api.get(DEPLOYMENTS, "shop", "checkout")["metadata"]["annotations"][
                "deployment.kubernetes.io/revision"
            ]
            == "3"
        )

        start_worker(2)

        async def finished() -> RunbookRunState:
            current = await runbooks.state(state.id, run.run_id)
            assert current.status == "succeeded", (current.status, current.error)
            return current

        final = await eventually(finished, timeout=120, interval=0.5)
        assert [(s.step_id, s.status) for s in final.steps] == [
            ("inspect", "succeeded"),
            ("rollback", "succeeded"),
            ("wait-rollout", "succeeded"),
        ]
        deployment = emulator.api.get(DEPLOYMENTS, "shop", "checkout")
        # Rolled back once: revision 3 is revision 1's template; a second rollback would be 4.
        assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "shop/checkout:1.3.2"
        assert final.steps[1].attempts == 1
    finally:
        for proc in procs:
            if proc.popen.poll() is None:
                proc.popen.kill()
                proc.popen.wait()
        await emulator.stop()
