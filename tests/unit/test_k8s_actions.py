"""The k8s.* runbook actions, run as Temporal activities against the Kubernetes API emulator
through the official client."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.contracts import ActionRequest, ActionResult
from activities.kubernetes.actions import ACTION_NAMES, RESTART_KEY, KubernetesActions
from activities.kubernetes.api import KubeApi
from activities.kubernetes.clusters import ClusterConfig, ClusterConfigError, build_api_client
from activities.kubernetes.objects import same_template, selector_text
from worker.config import FirelineConfig
from worker.k8s_emulator.faults import FaultPlan
from worker.k8s_emulator.manifests import deployment_manifest, node_manifest
from worker.k8s_emulator.server import K8sEmulator

pytest_plugins = ["tests.k8s_fixtures"]

NS = "shop"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
Activity = Callable[[ActionRequest], Any]


def request(
    inputs: dict[str, Any], *, dry_run: bool = False, key: str = "run-1:step:1"
) -> ActionRequest:
    """An action request as the runbook workflow builds it."""
    return ActionRequest(
        incident_id="INC-1",
        run_id="run-1",
        step_id="step",
        idempotency_key=key,
        inputs=inputs,
        dry_run=dry_run,
        actor="alice",
    )


async def run(
    action: Activity, inputs: dict[str, Any], heartbeats: list[Any] | None = None, **options: Any
) -> ActionResult:
    """Run one activity in Temporal's activity test environment."""
    env = ActivityEnvironment()
    if heartbeats is not None:
        env.on_heartbeat = lambda *details: heartbeats.append(details[0])
    result: ActionResult = await env.run(action, request(inputs, **options))
    return result


async def fails(action: Activity, inputs: dict[str, Any], **options: Any) -> ApplicationError:
    """Run an activity that must fail with an ``ApplicationError``; return it."""
    with pytest.raises(ApplicationError) as failure:
        await run(action, inputs, **options)
    return failure.value


def deploy(apps: client.AppsV1Api, name: str, image: str, namespace: str = NS, **spec: Any) -> None:
    """Create a Deployment whose change-cause names its image."""
    manifest = deployment_manifest(
        name, image, annotations={CHANGE_CAUSE: f"deploy {image}"}, **spec
    )
    apps.create_namespaced_deployment(namespace, client.V1Deployment.from_dict(manifest))  # type: ignore[arg-type]


def release(apps: client.AppsV1Api, name: str, image: str, namespace: str = NS) -> None:
    """`kubectl set image` plus a change-cause annotation (a strategic merge patch)."""
    apps.patch_namespaced_deployment(
        name,
        namespace,
        {
            "metadata": {"annotations": {CHANGE_CAUSE: f"deploy {image}"}},
            "spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}},
        },
    )


def _json(response: Any) -> dict[str, Any]:
    # `_preload_content=False` hands back the raw response; the apiserver's own JSON.
    found: dict[str, Any] = json.loads(response.data)
    return found


def read(apps: client.AppsV1Api, name: str = "checkout") -> dict[str, Any]:
    """The Deployment as the apiserver's JSON."""
    return _json(apps.read_namespaced_deployment(name, NS, _preload_content=False))


def revisions(apps: client.AppsV1Api, app: str = "checkout") -> dict[int, str]:
    """The app's ReplicaSets: revision to image."""
    listed = apps.list_namespaced_replica_set(
        NS, label_selector=f"app={app}", _preload_content=False
    )
    return {
        int(rs["metadata"]["annotations"][REVISION]): image_of(rs) for rs in _json(listed)["items"]
    }


def pod_images(core: client.CoreV1Api, app: str = "checkout") -> list[str]:
    """Images of the app's pods, sorted."""
    listed = core.list_namespaced_pod(NS, label_selector=f"app={app}", _preload_content=False)
    return sorted(p["spec"]["containers"][0]["image"] for p in _json(listed)["items"])


def image_of(deployment: dict[str, Any]) -> str:
    """The first container's image of a Deployment (JSON)."""
    image: str = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return image


@pytest.fixture
def actions(k8s_api_client: client.ApiClient) -> KubernetesActions:
    """Actions bound to the emulator, polling fast."""
    return KubernetesActions(lambda: k8s_api_client, poll_interval=0.01, settle_timeout=5)


@pytest.fixture
def strict_actions(k8s_emulator: K8sEmulator) -> Iterator[KubernetesActions]:
    """Actions whose client never retries by itself (urllib3 hides 429s and resets)."""
    with client.ApiClient(k8s_emulator.client_configuration(retries=False)) as api_client:
        yield KubernetesActions(lambda: api_client, poll_interval=0.01, settle_timeout=5)


@pytest.fixture
def two_releases(apps_v1: client.AppsV1Api) -> client.AppsV1Api:
    """checkout at revision 2 (c:2), revision 1 (c:1) behind it."""
    deploy(apps_v1, "checkout", "c:1")
    release(apps_v1, "checkout", "c:2")
    return apps_v1


CHECKOUT = {"namespace": NS, "deployment": "checkout"}


# --- registration --------------------------------------------------------------------------


def test_activities_are_registered_under_the_action_names(actions: KubernetesActions) -> None:
    # The definition Temporal's worker reads; private, but it is what registration uses.
    names = [activity._Definition.must_from_callable(f).name for f in actions.activities()]
    assert names == list(ACTION_NAMES)
    assert ACTION_NAMES == (
        "k8s.status",
        "k8s.rollback",
        "k8s.scale",
        "k8s.restart",
        "k8s.wait_rollout",
        "k8s.cordon",
        "k8s.recent_changes",
    )


# --- k8s.status ----------------------------------------------------------------------------


async def test_status_reports_revision_images_counts_conditions_and_events(
    actions: KubernetesActions, two_releases: client.AppsV1Api
) -> None:
    deploy(two_releases, "billing", "b:1")

    result = await run(actions.status, {**CHECKOUT, "events": 50})

    out = result.output
    assert (out["revision"], out["image"], out["images"]) == (2, "c:2", {"checkout": "c:2"})
    assert (out["previous_revision"], out["previous_image"]) == (1, "c:1")
    assert (out["replicas"], out["ready"], out["updated"], out["available"]) == (3, 3, 3, 3)
    assert out["rollout"] == 'deployment "checkout" successfully rolled out'
    assert out["change_cause"] == "deploy c:2"
    conditions = out["conditions"]
    assert isinstance(conditions, list)
    assert [(c["type"], c["status"], c["reason"]) for c in conditions] == [  # type: ignore[index,call-overload]
        ("Available", "True", "MinimumReplicasAvailable"),
        ("Progressing", "True", "NewReplicaSetAvailable"),
    ]
    events = out["events"]
    assert isinstance(events, list)
    objects = {str(e["object"]).split("/")[0] for e in events}  # type: ignore[index,call-overload]
    assert objects == {"Deployment", "ReplicaSet", "Pod"}
    assert all("billing" not in str(e) for e in events)
    messages = [e["message"] for e in events]  # type: ignore[index,call-overload]
    rs1 = [n for n in messages if str(n).startswith("Scaled down replica set checkout-")]
    assert rs1
    assert result.changed is False
    assert result.summary == (
        "shop/checkout is on revision 2 (c:2): 3/3 available; "
        'deployment "checkout" successfully rolled out'
    )


async def test_status_events_are_the_last_n_oldest_first(
    actions: KubernetesActions, two_releases: client.AppsV1Api
) -> None:
    every = (await run(actions.status, {**CHECKOUT, "events": 100})).output["events"]
    last = (await run(actions.status, {**CHECKOUT, "events": 3})).output["events"]
    assert isinstance(every, list)
    assert len(every) > 3
    assert last == every[-3:]
    assert (await run(actions.status, {**CHECKOUT, "events": 0})).output["events"] == []


async def test_status_of_a_crash_looping_release_shows_pod_events(
    actions: KubernetesActions, k8s_emulator: K8sEmulator
) -> None:
    k8s_emulator.seed_demo()
    out = (await run(actions.status, {**CHECKOUT, "events": 50})).output
    assert (out["revision"], out["image"], out["previous_revision"]) == (
        2,
        "shop/checkout:1.4.0",
        1,
    )
    assert out["rollout_phase"] == "progressing"
    events = out["events"]
    assert isinstance(events, list)
    assert any(e["object"].startswith("Pod/") and e["type"] == "Warning" for e in events)  # type: ignore[index,union-attr,call-overload]


# --- k8s.rollback --------------------------------------------------------------------------


async def test_rollback_from_revision_restores_the_previous_template_as_a_new_revision(
    actions: KubernetesActions, two_releases: client.AppsV1Api, core_v1: client.CoreV1Api
) -> None:
    apps = two_releases
    apps.patch_namespaced_deployment(
        "checkout", NS, {"metadata": {"annotations": {LAST_APPLIED: "{}"}}}
    )

    # Text, as a reference inside a longer string would substitute it.
    result = await run(actions.rollback, {**CHECKOUT, "from_revision": "2"})

    assert result.changed is True
    assert result.output == {
        "namespace": NS,
        "deployment": "checkout",
        "rolled_back_to": 1,
        "previous_revision": 2,
        "previous_image": "c:2",
        "image": "c:1",
        "images": {"checkout": "c:1"},
        "revision": 3,
    }
    assert result.summary == (
        "Rolled back shop/checkout from revision 2 (c:2) to revision 1 (c:1); now revision 3"
    )
    deployment = read(apps)
    assert image_of(deployment) == "c:1"
    assert "pod-template-hash" not in deployment["spec"]["template"]["metadata"]["labels"]
    annotations = deployment["metadata"]["annotations"]
    # The release's change-cause comes back with its template; the Deployment keeps its own
    # last-applied-configuration, as kubectl does.
    assert (annotations[CHANGE_CAUSE], annotations[LAST_APPLIED]) == ("deploy c:1", "{}")
    assert annotations[REVISION] == "3"
    assert revisions(apps) == {2: "c:2", 3: "c:1"}
    assert pod_images(core_v1) == ["c:1"] * 3


@pytest.mark.parametrize("target", [{"from_revision": 2}, {"to_revision": 1}])
async def test_rollback_retried_after_success_changes_nothing(
    actions: KubernetesActions, two_releases: client.AppsV1Api, target: dict[str, int]
) -> None:
    first = await run(actions.rollback, {**CHECKOUT, **target})
    version = read(two_releases)["metadata"]["resourceVersion"]

    again = await run(actions.rollback, {**CHECKOUT, **target})

    assert (first.changed, again.changed) == (True, False)
    # The retry reports the same outcome: revision 1's template, now running as revision 3;
    # "previous" is what this attempt found, which is already the rolled-back revision.
    assert {**again.output, "previous_revision": 2, "previous_image": "c:2"} == first.output
    assert (again.output["previous_revision"], again.output["previous_image"]) == (3, "c:1")
    assert again.summary == (
        "shop/checkout already runs the template of revision 1 (c:1) as revision 3; nothing to do"
    )
    assert read(two_releases)["metadata"]["resourceVersion"] == version
    assert revisions(two_releases) == {2: "c:2", 3: "c:1"}


async def test_rollback_to_a_given_revision(
    actions: KubernetesActions, two_releases: client.AppsV1Api
) -> None:
    release(two_releases, "checkout", "c:3")

    to_first = await run(actions.rollback, {**CHECKOUT, "to_revision": 1})
    to_second = await run(actions.rollback, {**CHECKOUT, "to_revision": 2})

    assert (to_first.output["revision"], to_first.output["image"]) == (4, "c:1")
    assert (to_second.output["revision"], to_second.output["image"]) == (5, "c:2")
    assert to_second.output["previous_revision"] == 4
    assert image_of(read(two_releases)) == "c:2"
    assert revisions(two_releases) == {3: "c:3", 4: "c:1", 5: "c:2"}


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            {"to_revision": 7},
            "deployment shop/checkout has no revision 7 (existing revisions: 1, 2)",
        ),
        (
            {"from_revision": 1},
            "deployment shop/checkout has no revision before 1 (existing revisions: 1, 2)",
        ),
        (
            {"from_revision": 9},
            "deployment shop/checkout has no revision 9 to roll back from "
            "(existing revisions: 1, 2)",
        ),
    ],
)
async def test_rollback_to_a_missing_revision_is_refused_and_changes_nothing(
    actions: KubernetesActions,
    two_releases: client.AppsV1Api,
    target: dict[str, int],
    message: str,
) -> None:
    before = read(two_releases)

    error = await fails(actions.rollback, {**CHECKOUT, **target})

    assert (error.type, error.message, error.non_retryable) == ("RevisionNotFound", message, True)
    assert error.details == ({"existing_revisions": [1, 2]},)
    assert read(two_releases) == before


async def test_rollback_dry_run_reports_and_changes_nothing(
    actions: KubernetesActions, two_releases: client.AppsV1Api
) -> None:
    before = read(two_releases)

    result = await run(actions.rollback, {**CHECKOUT, "from_revision": 2}, dry_run=True)

    assert (result.changed, result.dry_run) == (False, True)
    assert result.summary == (
        "Would roll back shop/checkout from revision 2 (c:2) to revision 1 (c:1)"
    )
    assert (result.output["revision"], result.output["rolled_back_to"]) == (2, 1)
    assert read(two_releases) == before


async def test_rollback_decides_again_when_the_deployment_changes_under_it(
    actions: KubernetesActions, two_releases: client.AppsV1Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Someone releases c:3 between the action's read and its patch: the resourceVersion
    # precondition turns the patch into a 409 and the action decides again on fresh state.
    original = KubeApi.patch_deployment
    calls: list[int] = []

    def racing(self: KubeApi, namespace: str, name: str, body: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            release(two_releases, "checkout", "c:3")
        return original(self, namespace, name, body, **kw)

    monkeypatch.setattr(KubeApi, "patch_deployment", racing)

    result = await run(actions.rollback, {**CHECKOUT, "from_revision": 2})

    assert len(calls) == 2
    assert (result.output["previous_revision"], result.output["revision"]) == (3, 4)
    assert image_of(read(two_releases)) == "c:1"


async def test_rollback_of_a_paused_deployment_is_refused(
    actions: KubernetesActions, two_releases: client.AppsV1Api
) -> None:
    two_releases.patch_namespaced_deployment("checkout", NS, {"spec": {"paused": True}})
    error = await fails(actions.rollback, {**CHECKOUT, "to_revision": 1})
    assert (error.type, error.non_retryable) == ("DeploymentPaused", True)
    assert error.message.startswith("deployment shop/checkout is paused; resume it")
    assert image_of(read(two_releases)) == "c:2"


# --- k8s.scale -----------------------------------------------------------------------------


async def test_scale_sets_the_target_once(
    actions: KubernetesActions, apps_v1: client.AppsV1Api
) -> None:
    deploy(apps_v1, "checkout", "c:1")

    dry = await run(actions.scale, {**CHECKOUT, "replicas": 1}, dry_run=True)
    first = await run(actions.scale, {**CHECKOUT, "replicas": 5})
    again = await run(actions.scale, {**CHECKOUT, "replicas": "5"})

    assert (dry.changed, dry.dry_run, dry.summary) == (
        False,
        True,
        "Would scale shop/checkout from 3 to 1 replicas",
    )
    assert (first.changed, first.summary) == (True, "Scaled shop/checkout from 3 to 5 replicas")
    assert first.output == {
        "namespace": NS,
        "deployment": "checkout",
        "replicas": 5,
        "previous_replicas": 3,
    }
    assert (again.changed, again.summary) == (
        False,
        "shop/checkout already has 5 replicas; nothing to do",
    )
    assert read(apps_v1)["spec"]["replicas"] == 5
    assert read(apps_v1)["status"]["availableReplicas"] == 5


# --- k8s.restart ---------------------------------------------------------------------------


async def test_restart_happens_once_per_idempotency_key(
    actions: KubernetesActions, apps_v1: client.AppsV1Api
) -> None:
    deploy(apps_v1, "checkout", "c:1")

    dry = await run(actions.restart, CHECKOUT, key="run-1:restart:1", dry_run=True)
    first = await run(actions.restart, CHECKOUT, key="run-1:restart:1")
    retried = await run(actions.restart, CHECKOUT, key="run-1:restart:1")
    next_visit = await run(actions.restart, CHECKOUT, key="run-1:restart:2")

    assert (dry.changed, dry.summary) == (False, "Would restart shop/checkout (revision 1)")
    assert (first.changed, first.output["previous_revision"], first.output["revision"]) == (
        True,
        1,
        2,
    )
    assert first.summary == "Restarted shop/checkout: revision 1 -> 2"
    assert (retried.changed, retried.output["revision"]) == (False, 2)
    assert retried.output["restarted_at"] == first.output["restarted_at"]
    assert (next_visit.changed, next_visit.output["revision"]) == (True, 3)
    template = read(apps_v1)["spec"]["template"]["metadata"]["annotations"]
    assert template[RESTART_KEY] == "run-1:restart:2"
    assert datetime.fromisoformat(template["kubectl.kubernetes.io/restartedAt"]).tzinfo == UTC
    assert revisions(apps_v1) == {1: "c:1", 2: "c:1", 3: "c:1"}


# --- k8s.wait_rollout ----------------------------------------------------------------------


async def test_wait_rollout_returns_when_the_rollout_is_complete(
    actions: KubernetesActions, two_releases: client.AppsV1Api
) -> None:
    heartbeats: list[Any] = []
    result = await run(
        actions.wait_rollout, {**CHECKOUT, "revision": 2, "deadline": "1m"}, heartbeats
    )
    assert result.summary == 'shop/checkout: deployment "checkout" successfully rolled out'
    assert (result.output["phase"], result.output["revision"], result.output["available"]) == (
        "complete",
        2,
        3,
    )
    assert [h["phase"] for h in heartbeats] == ["complete"]


async def test_wait_rollout_polls_a_rollout_in_progress_with_heartbeats() -> None:
    async with K8sEmulator(rollout_delay=0.05, tick=0.01) as emulator:
        with client.ApiClient(emulator.client_configuration()) as api_client:
            apps = client.AppsV1Api(api_client)
            actions = KubernetesActions(lambda: api_client, poll_interval=0.01)
            await asyncio.to_thread(deploy, apps, "checkout", "c:1", replicas=4)
            # A cold first call can take seconds on a loaded machine: longer than the rollout.
            await run(actions.status, CHECKOUT)
            await asyncio.to_thread(release, apps, "checkout", "c:2")
            heartbeats: list[Any] = []

            result = await run(actions.wait_rollout, {**CHECKOUT, "deadline": "30s"}, heartbeats)

    assert result.output["phase"] == "complete"
    phases = [h["phase"] for h in heartbeats]
    assert phases[0] == "progressing"
    assert phases[-1] == "complete"
    assert any("rollout to finish" in h["message"] for h in heartbeats)


async def test_wait_rollout_fails_when_the_progress_deadline_is_exceeded(
    actions: KubernetesActions, apps_v1: client.AppsV1Api, k8s_emulator: K8sEmulator
) -> None:
    k8s_emulator.bad_images.add("c:bad")
    deploy(apps_v1, "checkout", "c:1", progressDeadlineSeconds=30)
    release(apps_v1, "checkout", "c:bad")
    heartbeats: list[Any] = []
    waiting = asyncio.create_task(
        run(actions.wait_rollout, {**CHECKOUT, "revision": 2, "deadline": "1m"}, heartbeats)
    )
    while not heartbeats:
        await asyncio.sleep(0.01)
    assert heartbeats[0]["phase"] == "progressing"

    await asyncio.to_thread(k8s_emulator.advance, 31)

    with pytest.raises(ApplicationError) as failure:
        await waiting
    assert (failure.value.type, failure.value.non_retryable) == ("RolloutFailed", True)
    assert failure.value.message == (
        'rollout of shop/checkout failed: deployment "checkout" exceeded its progress '
        'deadline: ReplicaSet "' + revisions_name(apps_v1, 2) + '" has timed out progressing.'
    )
    assert heartbeats[-1]["phase"] == "failed"


def revisions_name(apps: client.AppsV1Api, revision: int) -> str:
    """The name of the app's ReplicaSet at ``revision``."""
    listed = apps.list_namespaced_replica_set(
        NS, label_selector="app=checkout", _preload_content=False
    )
    for rs in _json(listed)["items"]:
        if rs["metadata"]["annotations"][REVISION] == str(revision):
            return str(rs["metadata"]["name"])
    raise AssertionError(f"no revision {revision}")


async def test_wait_rollout_gives_up_at_its_deadline(
    actions: KubernetesActions, apps_v1: client.AppsV1Api, k8s_emulator: K8sEmulator
) -> None:
    k8s_emulator.bad_images.add("c:bad")
    deploy(apps_v1, "checkout", "c:1")
    release(apps_v1, "checkout", "c:bad")

    error = await fails(actions.wait_rollout, {**CHECKOUT, "deadline": "300ms"})

    assert (error.type, error.non_retryable) == ("RolloutDeadlineExceeded", True)
    assert error.message == (
        "rollout of shop/checkout did not finish within 300ms: Waiting for deployment "
        '"checkout" rollout to finish: 1 out of 3 new replicas have been updated...'
    )
    assert error.details[0]["updated"] == 1


async def test_wait_rollout_retry_keeps_the_first_attempts_deadline(
    actions: KubernetesActions, apps_v1: client.AppsV1Api, k8s_emulator: K8sEmulator
) -> None:
    k8s_emulator.bad_images.add("c:bad")
    deploy(apps_v1, "checkout", "c:1")
    release(apps_v1, "checkout", "c:bad")
    env = ActivityEnvironment()
    passed = datetime.now(UTC) - timedelta(seconds=1)
    env.info = dataclasses.replace(
        env.info, attempt=2, heartbeat_details=[{"deadline_at": passed.isoformat()}]
    )
    with pytest.raises(ApplicationError) as failure:
        await env.run(actions.wait_rollout, request({**CHECKOUT, "deadline": "10m"}))
    assert failure.value.type == "RolloutDeadlineExceeded"


async def test_wait_rollout_fails_when_another_revision_takes_over(
    actions: KubernetesActions, two_releases: client.AppsV1Api
) -> None:
    release(two_releases, "checkout", "c:3")
    error = await fails(actions.wait_rollout, {**CHECKOUT, "revision": 2})
    assert (error.type, error.message) == (
        "RolloutFailed",
        'rollout of shop/checkout failed: deployment "checkout" moved on to revision 3 '
        "while waiting for revision 2",
    )


async def test_wait_rollout_is_cancellable_between_polls(
    actions: KubernetesActions, apps_v1: client.AppsV1Api, k8s_emulator: K8sEmulator
) -> None:
    k8s_emulator.bad_images.add("c:bad")
    deploy(apps_v1, "checkout", "c:1")
    release(apps_v1, "checkout", "c:bad")
    env = ActivityEnvironment()
    heartbeats: list[Any] = []
    env.on_heartbeat = lambda *details: heartbeats.append(details[0])
    waiting = asyncio.create_task(env.run(actions.wait_rollout, request(CHECKOUT)))
    while len(heartbeats) < 2:
        await asyncio.sleep(0.01)

    env.cancel()

    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_wait_rollout_dry_run_reports_once(
    actions: KubernetesActions, two_releases: client.AppsV1Api
) -> None:
    result = await run(actions.wait_rollout, {**CHECKOUT, "deadline": "5m"}, dry_run=True)
    assert (result.dry_run, result.changed) == (True, False)
    assert result.summary == (
        'Would wait up to 5m for shop/checkout; now: deployment "checkout" successfully rolled out'
    )


# --- k8s.cordon ----------------------------------------------------------------------------


async def test_cordon_marks_the_node_unschedulable_once(
    actions: KubernetesActions, core_v1: client.CoreV1Api
) -> None:
    core_v1.create_node(client.V1Node.from_dict(node_manifest("node-a")))  # type: ignore[arg-type]

    dry = await run(actions.cordon, {"node": "node-a"}, dry_run=True)
    assert core_v1.read_node("node-a").spec.unschedulable is None  # type: ignore[union-attr]
    first = await run(actions.cordon, {"node": "node-a"})
    again = await run(actions.cordon, {"node": "node-a"})

    assert (dry.changed, dry.dry_run, dry.summary) == (False, True, "Would cordon node node-a")
    assert (first.changed, first.summary) == (True, "Cordoned node node-a")
    assert first.output == {"node": "node-a", "unschedulable": True, "was_unschedulable": False}
    assert (again.changed, again.summary) == (
        False,
        "node node-a is already cordoned; nothing to do",
    )
    assert core_v1.read_node("node-a").spec.unschedulable is True  # type: ignore[union-attr]


# --- k8s.recent_changes --------------------------------------------------------------------


async def test_recent_changes_lists_rollouts_in_the_window_newest_first(
    k8s_api_client: client.ApiClient, apps_v1: client.AppsV1Api, k8s_emulator: K8sEmulator
) -> None:
    actions = KubernetesActions(lambda: k8s_api_client, clock=k8s_emulator.clock.now)
    # A minute between changes: timestamps have whole seconds, and two changes in one
    # second would be ordered by revision instead of by time.
    start = k8s_emulator.clock.now() - timedelta(seconds=1)
    deploy(apps_v1, "search", "s:1", namespace="other")
    k8s_emulator.advance(60)
    deploy(apps_v1, "checkout", "c:1")
    k8s_emulator.advance(7200)
    deploy(apps_v1, "billing", "b:1", namespace="pay")
    k8s_emulator.advance(60)
    release(apps_v1, "checkout", "c:2")

    recent = await run(actions.recent_changes, {"namespaces": [NS, "pay"], "since": "1h"})
    everything = await run(
        actions.recent_changes,
        {"namespaces": [NS, "pay", "other"], "since": start.strftime("%Y-%m-%dT%H:%M:%SZ")},
    )

    changes = recent.output["changes"]
    assert isinstance(changes, list)
    assert [(c["namespace"], c["deployment"], c["revision"]) for c in changes] == [  # type: ignore[index,call-overload]
        (NS, "checkout", 2),
        ("pay", "billing", 1),
    ]
    checkout = changes[0]
    assert isinstance(checkout, dict)
    assert (checkout["image"], checkout["change_cause"], checkout["current"]) == (
        "c:2",
        "deploy c:2",
        True,
    )
    assert recent.output["count"] == 2
    assert recent.summary.startswith("2 rollouts in shop, pay since ")
    listed = everything.output["changes"]
    assert isinstance(listed, list)
    assert [(c["deployment"], c["revision"], c["current"]) for c in listed] == [  # type: ignore[index,call-overload]
        ("checkout", 2, True),
        ("billing", 1, True),
        ("checkout", 1, False),
        ("search", 1, True),
    ]


# --- invalid inputs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "inputs", "message"),
    [
        (
            "rollback",
            CHECKOUT,
            "k8s.rollback: invalid inputs: give exactly one of to_revision and from_revision "
            "(a rollback needs a declarative target, never 'one back')",
        ),
        (
            "rollback",
            {**CHECKOUT, "to_revison": 1},
            "k8s.rollback: invalid inputs: to_revison: unknown input (expected: namespace, "
            "deployment, to_revision, from_revision)",
        ),
        (
            "rollback",
            {**CHECKOUT, "to_revision": 0},
            "k8s.rollback: invalid inputs: to_revision: Input should be greater than or equal to 1",
        ),
        (
            "scale",
            {**CHECKOUT, "replicas": "three"},
            "k8s.scale: invalid inputs: replicas: Input should be a valid integer, unable to "
            "parse string as an integer",
        ),
        (
            "scale",
            {**CHECKOUT, "replicas": True},
            "k8s.scale: invalid inputs: replicas: expected an integer, found a boolean",
        ),
        (
            "scale",
            {"namespace": "Shop", "deployment": "checkout", "replicas": 1},
            "k8s.scale: invalid inputs: namespace: String should match pattern "
            "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'",
        ),
        (
            "wait_rollout",
            {**CHECKOUT, "deadline": "10 minutes"},
            "k8s.wait_rollout: invalid inputs: deadline: '10 minutes' is not a duration: use a "
            "number and a unit, largest unit first, e.g. 30s, 5m, 1h30m, 2d (units: ms s m h d "
            "w y)",
        ),
        (
            "wait_rollout",
            {**CHECKOUT, "deadline": "0s"},
            "k8s.wait_rollout: invalid inputs: deadline: must be longer than 0s",
        ),
        ("cordon", {}, "k8s.cordon: invalid inputs: node: Field required"),
        ("status", {"namespace": NS}, "k8s.status: invalid inputs: deployment: Field required"),
        (
            "recent_changes",
            {"namespaces": [NS], "since": "yesterday"},
            "k8s.recent_changes: invalid inputs: since: 'yesterday' is neither an RFC 3339 time "
            "with an offset (2025-01-31T09:00:00Z) nor a duration (30m, 2h, 1d)",
        ),
        (
            "recent_changes",
            {"namespaces": [], "since": "1h"},
            "k8s.recent_changes: invalid inputs: namespaces: List should have at least 1 item "
            "after validation, not 0",
        ),
    ],
)
async def test_invalid_inputs_are_refused_naming_the_field(
    actions: KubernetesActions, action: str, inputs: dict[str, Any], message: str
) -> None:
    error = await fails(getattr(actions, action), inputs)
    assert (error.type, error.message, error.non_retryable) == (
        "InvalidActionInput",
        message,
        True,
    )


# --- API failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "extra"),
    [("status", {}), ("rollback", {"to_revision": 1}), ("scale", {"replicas": 2})],
)
async def test_a_missing_deployment_is_a_permanent_failure(
    actions: KubernetesActions, action: str, extra: dict[str, Any]
) -> None:
    error = await fails(getattr(actions, action), {"namespace": NS, "deployment": "nope", **extra})
    assert (error.type, error.message, error.non_retryable) == (
        "KubernetesNotFound",
        'deployment shop/nope not found (deployments.apps "nope" not found)',
        True,
    )


async def test_a_missing_node_is_a_permanent_failure(actions: KubernetesActions) -> None:
    error = await fails(actions.cordon, {"node": "nope"})
    assert (error.type, error.message) == (
        "KubernetesNotFound",
        'node nope not found (nodes "nope" not found)',
    )


async def test_server_errors_and_throttling_are_retryable(
    strict_actions: KubernetesActions, two_releases: client.AppsV1Api, k8s_emulator: K8sEmulator
) -> None:
    k8s_emulator.inject_faults(FaultPlan(kinds=("500",), limit=1))
    error = await fails(strict_actions.status, CHECKOUT)
    assert (error.type, error.non_retryable, error.message) == (
        "KubernetesTransientError",
        False,
        "deployment shop/checkout: Kubernetes API answered HTTP 500: Internal error occurred: "
        "injected fault",
    )

    k8s_emulator.inject_faults(FaultPlan(kinds=("429",), retry_after_seconds=3, limit=1))
    error = await fails(strict_actions.status, CHECKOUT)
    assert (error.type, error.non_retryable, error.next_retry_delay) == (
        "KubernetesTransientError",
        False,
        timedelta(seconds=3),
    )
    assert error.message.endswith(
        "HTTP 429: Too many requests, please try again later. (retry after 3s)"
    )

    k8s_emulator.inject_faults(FaultPlan(kinds=("reset",), limit=1))
    error = await fails(strict_actions.status, CHECKOUT)
    assert (error.type, error.non_retryable) == ("KubernetesTransientError", False)
    assert error.message.startswith(
        "deployment shop/checkout: Kubernetes API unreachable: ProtocolError: "
    )


async def test_a_slow_api_call_keeps_heartbeating_with_the_latest_progress(
    k8s_api_client: client.ApiClient, two_releases: client.AppsV1Api, k8s_emulator: K8sEmulator
) -> None:
    # The runbook gives k8s steps a 30 s heartbeat timeout so that a dead worker is noticed
    # quickly; a live one waiting on a slow apiserver must not look dead.
    actions = KubernetesActions(
        lambda: k8s_api_client, poll_interval=0.01, settle_timeout=5, heartbeat_every=0.05
    )
    beats: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    k8s_emulator.inject_faults(FaultPlan(kinds=("slow",), slow_seconds=0.5, limit=1))
    status = await env.run(actions.status, request(CHECKOUT))
    assert status.output["revision"] == 2  # served late, not failed
    assert len(beats) >= 3, beats
    assert set(beats) == {()}  # status has no progress to report


async def test_beats_during_a_slow_call_repeat_the_steps_latest_progress() -> None:
    # wait_rollout resumes its deadline from its last heartbeat: an empty beat sent while an
    # API call was slow would erase it.
    async with K8sEmulator(rollout_delay=1.0, tick=0.01) as emulator:
        with client.ApiClient(emulator.client_configuration()) as api_client:
            apps = client.AppsV1Api(api_client)
            await asyncio.to_thread(deploy, apps, "checkout", "c:1", replicas=2)
            actions = KubernetesActions(
                lambda: api_client, poll_interval=0.01, heartbeat_every=0.05
            )
            await run(actions.status, CHECKOUT)  # warm, as above
            await asyncio.to_thread(release, apps, "checkout", "c:2")
            beats: list[tuple[Any, ...]] = []
            env = ActivityEnvironment()
            env.on_heartbeat = lambda *details: beats.append(details)
            emulator.inject_faults(
                FaultPlan(kinds=("slow",), slow_seconds=0.3, methods=frozenset({"GET"}))
            )
            result = await env.run(actions.wait_rollout, request({**CHECKOUT, "deadline": "1m"}))

    assert result.output["phase"] == "complete"
    first = next(i for i, b in enumerate(beats) if b)
    assert first > 0, "the first call was slow: it beat before there was progress"
    later = beats[first:]
    assert all(b and "deadline_at" in b[0] for b in later), later
    assert len(later) > len({str(b) for b in later}), "no repeated beat during a slow poll"


async def test_a_rollback_whose_patch_failed_is_retried_to_exactly_one_rollback(
    strict_actions: KubernetesActions, two_releases: client.AppsV1Api, k8s_emulator: K8sEmulator
) -> None:
    k8s_emulator.inject_faults(FaultPlan(kinds=("500",), methods=frozenset({"PATCH"}), limit=1))
    error = await fails(strict_actions.rollback, {**CHECKOUT, "from_revision": 2})
    assert error.type == "KubernetesTransientError"
    assert image_of(read(two_releases)) == "c:2"

    retried = await run(strict_actions.rollback, {**CHECKOUT, "from_revision": 2})
    again = await run(strict_actions.rollback, {**CHECKOUT, "from_revision": 2})

    assert (retried.changed, retried.output["revision"]) == (True, 3)
    assert (again.changed, again.output["revision"]) == (False, 3)
    assert revisions(two_releases) == {2: "c:2", 3: "c:1"}


# --- the bad-deploy-rollback runbook's steps on the demo ------------------------------------


async def test_inspect_rollback_wait_on_a_crash_looping_release(
    actions: KubernetesActions, k8s_emulator: K8sEmulator, apps_v1: client.AppsV1Api
) -> None:
    k8s_emulator.seed_demo()
    inspect = await run(actions.status, CHECKOUT)
    rollback = await run(
        actions.rollback, {**CHECKOUT, "from_revision": inspect.output["revision"]}
    )
    waited = await run(
        actions.wait_rollout,
        {**CHECKOUT, "revision": rollback.output["revision"], "deadline": "10m"},
    )
    assert (rollback.output["rolled_back_to"], rollback.output["image"]) == (
        1,
        "shop/checkout:1.3.2",
    )
    assert waited.output["phase"] == "complete"
    assert waited.output["revision"] == 3
    assert image_of(read(apps_v1)) == "shop/checkout:1.3.2"


# --- clusters ------------------------------------------------------------------------------


def test_cluster_config_defaults_and_validation() -> None:
    config = FirelineConfig.model_validate(
        {
            "clusters": {
                "eu-1": {"kubeconfig": "~/.kube/eu", "context": "prod-eu"},
                "local": {"in_cluster": True, "task_queue": "k8s-local"},
            }
        }
    )
    assert config.clusters["eu-1"].queue("eu-1") == "fireline-k8s-eu-1"
    assert config.clusters["local"].queue("local") == "k8s-local"
    with pytest.raises(ValueError, match="in_cluster uses the pod's service account"):
        ClusterConfig.model_validate({"in_cluster": True, "context": "x"})
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        ClusterConfig.model_validate({"kubeconfig_path": "/x"})


async def test_actions_for_a_cluster_use_its_kubeconfig(
    k8s_emulator: K8sEmulator, apps_v1: client.AppsV1Api, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(k8s_emulator.kubeconfig()))
    deploy(apps_v1, "checkout", "c:1")
    cluster = ClusterConfig(kubeconfig=kubeconfig, context="fireline-sandbox")
    actions = KubernetesActions.for_cluster("sandbox", cluster)
    actions.connect()
    assert (await run(actions.status, CHECKOUT)).output["revision"] == 1


def test_a_cluster_without_usable_credentials_is_a_clear_error(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "contexts": []}))
    cluster = ClusterConfig(kubeconfig=kubeconfig, context="missing")
    with pytest.raises(ClusterConfigError, match=r"^cluster 'eu-1': "):
        build_api_client(cluster, name="eu-1")


def test_in_cluster_credentials_come_from_the_service_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes.config import incluster_config

    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("sa-token")
    ca.write_text("not really a certificate")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")

    api_client = build_api_client(ClusterConfig(in_cluster=True))

    configuration = api_client.configuration
    assert configuration.host == "https://10.0.0.1:443"
    assert configuration.api_key["BearerToken"].endswith("sa-token")
    assert configuration.ssl_ca_cert == str(ca)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(ClusterConfigError, match=r"^cluster: Service host/port is not set"):
        build_api_client(ClusterConfig(in_cluster=True))


# --- pure helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "text"),
    [
        (None, ""),
        ({"matchLabels": {"tier": "web", "app": "checkout"}}, "app=checkout,tier=web"),
        (
            {
                "matchLabels": {"app": "checkout"},
                "matchExpressions": [
                    {"key": "track", "operator": "In", "values": ["stable", "canary"]},
                    {"key": "env", "operator": "NotIn", "values": ["dev"]},
                    {"key": "owner", "operator": "Exists"},
                    {"key": "legacy", "operator": "DoesNotExist"},
                ],
            },
            "app=checkout,track in (canary,stable),env notin (dev),owner,!legacy",
        ),
    ],
)
def test_selector_text(selector: dict[str, Any] | None, text: str) -> None:
    assert selector_text(selector) == text


def test_same_template_ignores_the_hash_label_and_empty_maps() -> None:
    deployment = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"image": "x"}]}}
    replica_set = {
        "metadata": {"labels": {"app": "a", "pod-template-hash": "abc"}, "annotations": {}},
        "spec": {"containers": [{"image": "x"}]},
    }
    assert same_template(deployment, replica_set)
    replica_set["spec"] = {"containers": [{"image": "y"}]}
    assert not same_template(deployment, replica_set)
