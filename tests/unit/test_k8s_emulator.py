"""The Kubernetes API emulator, driven over loopback HTTP by the official `kubernetes` client."""

from __future__ import annotations

import asyncio
import json
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from worker.k8s_emulator.faults import FaultPlan
from worker.k8s_emulator.manifests import deployment_manifest, node_manifest, pod_manifest
from worker.k8s_emulator.server import K8sEmulator

pytest_plugins = ["tests.k8s_fixtures"]

T = TypeVar("T")
NS = "shop"
REVISION = "deployment.kubernetes.io/revision"
# What `kubectl rollout undo` never copies from a ReplicaSet back into the Deployment.
UNDO_SKIPPED = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
}


def must(value: T | None) -> T:
    """The value, asserting the API filled it in."""
    assert value is not None
    return value


def deployment_body(name: str, image: str, **options: Any) -> client.V1Deployment:
    """A Deployment model (one container named after it) from the emulator's manifest helper."""
    return must(client.V1Deployment.from_dict(deployment_manifest(name, image, **options)))


def node(name: str) -> client.V1Node:
    """A Node model."""
    return must(client.V1Node.from_dict(node_manifest(name)))


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `check` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)


def status_of(error: ApiException) -> dict[str, Any]:
    """The `Status` body of a failed call."""
    body: dict[str, Any] = json.loads(error.body or "{}")
    return body


def replica_sets(apps: client.AppsV1Api, app: str) -> dict[int, client.V1ReplicaSet]:
    """The app's ReplicaSets by revision."""
    found = apps.list_namespaced_replica_set(NS, label_selector=f"app={app}").items
    return {int(must(must(rs.metadata).annotations)[REVISION]): rs for rs in found}


def pod_images(core: client.CoreV1Api, app: str) -> list[str]:
    """Images of the app's pods, sorted."""
    pods = core.list_namespaced_pod(NS, label_selector=f"app={app}").items
    return sorted(must(p.spec).containers[0].image or "" for p in pods)


def rollout_complete(deployment: client.V1Deployment) -> bool:
    """kubectl's `rollout status` test; raises when the progress deadline was exceeded."""
    status = must(deployment.status)
    if (status.observed_generation or 0) < (must(deployment.metadata).generation or 0):
        return False
    for condition in status.conditions or []:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            raise AssertionError(f"rollout stalled: {condition.message}")
    updated = status.updated_replicas or 0
    return (
        updated >= (must(deployment.spec).replicas or 0)
        and (status.replicas or 0) <= updated
        and (status.available_replicas or 0) >= updated
    )


def set_image(apps: client.AppsV1Api, name: str, image: str) -> None:
    """What `kubectl set image` sends: a strategic merge patch (a dict body)."""
    apps.patch_namespaced_deployment(
        name, NS, {"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}}
    )


def undo(apps: client.AppsV1Api, name: str, revision: int) -> None:
    """`kubectl rollout undo --to-revision`: copy that ReplicaSet's template back, client-side."""
    deployment = apps.read_namespaced_deployment(name, NS)
    target = replica_sets(apps, name)[revision]
    template = json.loads(must(must(target.spec).template).to_json())
    del template["metadata"]["labels"]["pod-template-hash"]
    current = must(deployment.metadata).annotations or {}
    annotations = {k: v for k, v in current.items() if k in UNDO_SKIPPED}
    annotations.update(
        {
            k: v
            for k, v in (must(target.metadata).annotations or {}).items()
            if k not in UNDO_SKIPPED
        }
    )
    apps.patch_namespaced_deployment(
        name,
        NS,
        [
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations},
        ],
    )


# --- CRUD, errors, patches -------------------------------------------------------------------


def test_create_get_list_delete(apps_v1: client.AppsV1Api) -> None:
    created = apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1"))
    meta = must(created.metadata)
    assert meta.uid
    assert meta.creation_timestamp
    assert meta.generation == 1
    fetched = apps_v1.read_namespaced_deployment("checkout", NS)
    assert int(must(fetched.metadata).resource_version or 0) > int(meta.resource_version or 0)
    assert must(fetched.spec).revision_history_limit == 10  # server-side defaulting
    apps_v1.create_namespaced_deployment("other", deployment_body("billing", "b:1"))
    assert [must(d.metadata).name for d in apps_v1.list_namespaced_deployment(NS).items] == [
        "checkout"
    ]
    everywhere = apps_v1.list_deployment_for_all_namespaces().items
    assert sorted(must(d.metadata).name or "" for d in everywhere) == ["billing", "checkout"]

    result = apps_v1.delete_namespaced_deployment("checkout", NS)
    assert isinstance(result, dict)
    assert (result["kind"], result["status"]) == ("Status", "Success")
    with pytest.raises(ApiException) as missing:
        apps_v1.read_namespaced_deployment("checkout", NS)
    assert missing.value.status == 404


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (
            lambda a, c: a.read_namespaced_deployment("nope", NS),
            'deployments.apps "nope" not found',
        ),
        (
            lambda a, c: a.read_namespaced_replica_set("nope", NS),
            'replicasets.apps "nope" not found',
        ),
        (lambda a, c: c.read_namespaced_pod("nope", NS), 'pods "nope" not found'),
        (lambda a, c: c.read_node("nope"), 'nodes "nope" not found'),
    ],
)
def test_missing_objects_are_404_status(
    apps_v1: client.AppsV1Api, core_v1: client.CoreV1Api, read: Any, message: str
) -> None:
    with pytest.raises(ApiException) as error:
        read(apps_v1, core_v1)
    assert error.value.status == 404
    body = status_of(error.value)
    assert (body["kind"], body["status"], body["reason"], body["message"]) == (
        "Status",
        "Failure",
        "NotFound",
        message,
    )


def test_create_twice_is_409_already_exists(apps_v1: client.AppsV1Api) -> None:
    apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1"))
    with pytest.raises(ApiException) as error:
        apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1"))
    assert error.value.status == 409
    assert status_of(error.value)["reason"] == "AlreadyExists"


def test_invalid_deployment_is_422_with_causes(apps_v1: client.AppsV1Api) -> None:
    manifest = deployment_manifest("checkout", "c:1")
    manifest["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as error:
        apps_v1.create_namespaced_deployment(NS, must(client.V1Deployment.from_dict(manifest)))
    assert error.value.status == 422
    status = status_of(error.value)
    assert status["reason"] == "Invalid"
    assert status["message"].startswith('Deployment.apps "checkout" is invalid: ')
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.template.metadata.labels"]


def test_replace_with_stale_resource_version_is_409_conflict(apps_v1: client.AppsV1Api) -> None:
    apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1"))
    first = apps_v1.read_namespaced_deployment("checkout", NS)
    must(first.spec).replicas = 5
    replaced = apps_v1.replace_namespaced_deployment("checkout", NS, first)
    assert must(replaced.spec).replicas == 5
    assert must(replaced.metadata).generation == 2

    must(first.spec).replicas = 1  # still carries the old resourceVersion
    with pytest.raises(ApiException) as error:
        apps_v1.replace_namespaced_deployment("checkout", NS, first)
    assert error.value.status == 409
    assert status_of(error.value)["reason"] == "Conflict"


def _two_containers() -> client.V1Deployment:
    manifest = deployment_manifest("checkout", "c:1", replicas=1)
    proxy = {"name": "proxy", "image": "envoy:1"}
    manifest["spec"]["template"]["spec"]["containers"].append(proxy)
    return must(client.V1Deployment.from_dict(manifest))


def _containers(apps: client.AppsV1Api) -> list[tuple[str, str]]:
    template = must(apps.read_namespaced_deployment("checkout", NS).spec).template
    pod_spec = must(must(template).spec)
    return [(c.name, c.image or "") for c in pod_spec.containers]


def test_dict_patch_is_strategic_merge_and_merges_containers_by_name(
    apps_v1: client.AppsV1Api,
) -> None:
    apps_v1.create_namespaced_deployment(NS, _two_containers())
    set_image(apps_v1, "checkout", "c:2")
    assert _containers(apps_v1) == [("checkout", "c:2"), ("proxy", "envoy:1")]


def test_merge_patch_replaces_lists_whole(apps_v1: client.AppsV1Api) -> None:
    apps_v1.create_namespaced_deployment(NS, _two_containers())
    apps_v1.patch_namespaced_deployment(
        "checkout",
        NS,
        {"spec": {"template": {"spec": {"containers": [{"name": "checkout", "image": "c:2"}]}}}},
        _content_type="application/merge-patch+json",
    )
    assert _containers(apps_v1) == [("checkout", "c:2")]


def test_json_patch_applies_operations_and_failed_test_is_422(apps_v1: client.AppsV1Api) -> None:
    apps_v1.create_namespaced_deployment(NS, _two_containers())
    path = "/spec/template/spec/containers/1/image"
    apps_v1.patch_namespaced_deployment(
        "checkout",
        NS,
        [
            {"op": "test", "path": path, "value": "envoy:1"},
            {"op": "replace", "path": path, "value": "envoy:2"},
        ],
    )
    assert _containers(apps_v1) == [("checkout", "c:1"), ("proxy", "envoy:2")]
    with pytest.raises(ApiException) as error:
        apps_v1.patch_namespaced_deployment(
            "checkout", NS, [{"op": "test", "path": path, "value": "envoy:1"}]
        )
    assert error.value.status == 422


def test_patch_carrying_a_stale_resource_version_is_409(apps_v1: client.AppsV1Api) -> None:
    created = apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1"))
    set_image(apps_v1, "checkout", "c:2")
    with pytest.raises(ApiException) as error:
        apps_v1.patch_namespaced_deployment(
            "checkout",
            NS,
            {"metadata": {"resourceVersion": must(created.metadata).resource_version}},
            _content_type="application/merge-patch+json",
        )
    assert error.value.status == 409


def test_dry_run_validates_without_persisting(apps_v1: client.AppsV1Api) -> None:
    answer = apps_v1.create_namespaced_deployment(
        NS, deployment_body("checkout", "c:1"), dry_run="All"
    )
    assert must(answer.metadata).name == "checkout"
    assert apps_v1.list_namespaced_deployment(NS).items == []


def test_list_pages_with_limit_and_continue(core_v1: client.CoreV1Api) -> None:
    for name in ("a", "b", "c"):
        core_v1.create_node(node(name))
    first = core_v1.list_node(limit=2)
    assert [must(n.metadata).name for n in first.items] == ["a", "b"]
    rest = core_v1.list_node(limit=2, _continue=must(first.metadata)._continue)
    assert [must(n.metadata).name for n in rest.items] == ["c"]
    assert must(rest.metadata)._continue is None


# --- subresources ----------------------------------------------------------------------------


def test_scale_subresource_get_patch_replace(
    apps_v1: client.AppsV1Api, core_v1: client.CoreV1Api
) -> None:
    apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1", replicas=2))
    scale = apps_v1.read_namespaced_deployment_scale("checkout", NS)
    assert (must(scale.spec).replicas, must(scale.status).selector) == (2, "app=checkout")

    apps_v1.patch_namespaced_deployment_scale("checkout", NS, {"spec": {"replicas": 5}})
    assert len(core_v1.list_namespaced_pod(NS, label_selector="app=checkout").items) == 5

    scale = apps_v1.read_namespaced_deployment_scale("checkout", NS)
    must(scale.spec).replicas = 1
    apps_v1.replace_namespaced_deployment_scale("checkout", NS, scale)
    assert len(core_v1.list_namespaced_pod(NS, label_selector="app=checkout").items) == 1
    assert must(apps_v1.read_namespaced_deployment("checkout", NS).spec).replicas == 1

    with pytest.raises(ApiException) as error:
        apps_v1.patch_namespaced_deployment_scale("checkout", NS, {"spec": {"replicas": -1}})
    assert error.value.status == 422


def test_status_subresource_reads_status_and_main_resource_cannot_write_it(
    apps_v1: client.AppsV1Api,
) -> None:
    apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1", replicas=2))
    assert (
        must(apps_v1.read_namespaced_deployment_status("checkout", NS).status).ready_replicas == 2
    )
    apps_v1.patch_namespaced_deployment(
        "checkout",
        NS,
        {"status": {"readyReplicas": 0}},
        _content_type="application/merge-patch+json",
    )
    assert must(apps_v1.read_namespaced_deployment("checkout", NS).status).ready_replicas == 2


# --- the deployment controller ---------------------------------------------------------------


def test_new_image_creates_revision_2_and_scales_revision_1_to_zero(
    apps_v1: client.AppsV1Api, core_v1: client.CoreV1Api
) -> None:
    apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1"))
    first = replica_sets(apps_v1, "checkout")
    assert list(first) == [1]
    rs1 = must(first[1].metadata)
    template_hash = must(rs1.labels)["pod-template-hash"]
    assert rs1.name == f"checkout-{template_hash}"

    set_image(apps_v1, "checkout", "c:2")

    by_revision = replica_sets(apps_v1, "checkout")
    assert sorted(by_revision) == [1, 2]
    assert (must(by_revision[1].spec).replicas, must(by_revision[2].spec).replicas) == (0, 3)
    deployment = apps_v1.read_namespaced_deployment("checkout", NS)
    assert must(must(deployment.metadata).annotations)[REVISION] == "2"
    assert rollout_complete(deployment)
    progressing = [c for c in must(deployment.status).conditions or [] if c.type == "Progressing"]
    assert progressing[0].reason == "NewReplicaSetAvailable"
    assert pod_images(core_v1, "checkout") == ["c:2"] * 3
    pod_names = [must(p.metadata).name or "" for p in core_v1.list_namespaced_pod(NS).items]
    rs2_name = must(must(by_revision[2].metadata).name)
    assert all(n.startswith(f"{rs2_name}-") and len(n) == len(rs2_name) + 6 for n in pod_names)
    events = core_v1.list_namespaced_event(
        NS, field_selector="involvedObject.name=checkout,reason=ScalingReplicaSet"
    ).items
    assert f"Scaled down replica set {rs1.name} to 0 from 1" in [e.message for e in events]


def test_rollout_progresses_in_observable_steps() -> None:
    # Pods need 60 s to become ready; the test moves emulator time instead of sleeping.
    with K8sEmulator(rollout_delay=60) as emulator:
        apps = client.AppsV1Api(client.ApiClient(emulator.client_configuration()))
        apps.create_namespaced_deployment(NS, deployment_body("checkout", "c:1", replicas=4))
        emulator.advance(60)
        set_image(apps, "checkout", "c:2")
        steps = []
        for _ in range(20):
            deployment = apps.read_namespaced_deployment("checkout", NS)
            status = must(deployment.status)
            steps.append((status.updated_replicas or 0, status.available_replicas or 0))
            if rollout_complete(deployment):
                break
            emulator.advance(60)
    # 25% of 4 replicas: one pod may be missing and one extra, so the first step already
    # has two updated pods (one surged, one replacing a removed old pod) and three available.
    # Then the two new pods' readiness lets two old ones go and the last two new ones in.
    assert steps == [(2, 3), (4, 3), (4, 4)]


def test_rollout_status_converges_in_real_time() -> None:
    with K8sEmulator(rollout_delay=0.02, tick=0.01) as emulator:
        apps = client.AppsV1Api(client.ApiClient(emulator.client_configuration()))
        apps.create_namespaced_deployment(NS, deployment_body("checkout", "c:1", replicas=2))
        set_image(apps, "checkout", "c:2")
        wait_until(lambda: rollout_complete(apps.read_namespaced_deployment("checkout", NS)))
        assert sorted(replica_sets(apps, "checkout")) == [1, 2]


def test_rollback_reuses_the_old_replicaset_as_revision_3(
    apps_v1: client.AppsV1Api, core_v1: client.CoreV1Api
) -> None:
    apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1"))
    set_image(apps_v1, "checkout", "c:2")
    before = replica_sets(apps_v1, "checkout")
    rs1_uid = must(before[1].metadata).uid

    undo(apps_v1, "checkout", revision=1)

    after = replica_sets(apps_v1, "checkout")
    assert sorted(after) == [2, 3]  # no new ReplicaSet: revision 1 became revision 3
    reused = must(after[3].metadata)
    assert reused.uid == rs1_uid
    assert must(reused.annotations)["deployment.kubernetes.io/revision-history"] == "1"
    assert (must(after[3].spec).replicas, must(after[2].spec).replicas) == (3, 0)
    deployment = apps_v1.read_namespaced_deployment("checkout", NS)
    assert must(must(deployment.metadata).annotations)[REVISION] == "3"
    assert rollout_complete(deployment)
    assert pod_images(core_v1, "checkout") == ["c:1"] * 3


def test_rollout_restart_is_a_new_template(
    apps_v1: client.AppsV1Api, core_v1: client.CoreV1Api
) -> None:
    apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1", replicas=2))
    old_pods = {must(p.metadata).name for p in core_v1.list_namespaced_pod(NS).items}
    restarted_at = {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}
    apps_v1.patch_namespaced_deployment(
        "checkout", NS, {"spec": {"template": {"metadata": {"annotations": restarted_at}}}}
    )
    assert sorted(replica_sets(apps_v1, "checkout")) == [1, 2]
    new_pods = {must(p.metadata).name for p in core_v1.list_namespaced_pod(NS).items}
    assert len(new_pods) == 2
    assert not new_pods & old_pods
    assert pod_images(core_v1, "checkout") == ["c:1", "c:1"]


def test_recreate_strategy_removes_old_pods_before_starting_new_ones(
    apps_v1: client.AppsV1Api, core_v1: client.CoreV1Api
) -> None:
    body = deployment_body("checkout", "c:1", replicas=2, strategy={"type": "Recreate"})
    apps_v1.create_namespaced_deployment(NS, body)
    set_image(apps_v1, "checkout", "c:2")
    by_revision = replica_sets(apps_v1, "checkout")
    assert (must(by_revision[1].spec).replicas, must(by_revision[2].spec).replicas) == (0, 2)
    events = core_v1.list_namespaced_event(NS, field_selector="reason=ScalingReplicaSet").items
    in_order = sorted(events, key=lambda e: int(must(e.metadata).resource_version or 0))
    old, new = must(by_revision[1].metadata).name, must(by_revision[2].metadata).name
    assert [e.message for e in in_order] == [
        f"Scaled up replica set {old} to 2 from 0",
        f"Scaled down replica set {old} to 0 from 2",
        f"Scaled up replica set {new} to 2 from 0",
    ]


def test_paused_deployment_holds_template_changes_until_resumed(
    apps_v1: client.AppsV1Api,
) -> None:
    apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1"))
    apps_v1.patch_namespaced_deployment("checkout", NS, {"spec": {"paused": True}})
    set_image(apps_v1, "checkout", "c:2")
    assert sorted(replica_sets(apps_v1, "checkout")) == [1]
    status = must(apps_v1.read_namespaced_deployment("checkout", NS).status)
    progressing = [c for c in status.conditions or [] if c.type == "Progressing"]
    assert (progressing[0].status, progressing[0].reason) == ("Unknown", "DeploymentPaused")

    apps_v1.patch_namespaced_deployment("checkout", NS, {"spec": {"paused": False}})
    assert sorted(replica_sets(apps_v1, "checkout")) == [1, 2]
    assert rollout_complete(apps_v1.read_namespaced_deployment("checkout", NS))


def test_bad_image_never_becomes_ready_and_backs_off() -> None:
    bad = "shop/checkout:1.4.0"
    with K8sEmulator(rollout_delay=0, crash_interval=10, bad_images={bad}) as emulator:
        api_client = client.ApiClient(emulator.client_configuration())
        apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
        body = deployment_body("checkout", "shop/checkout:1.3.2", progressDeadlineSeconds=30)
        apps.create_namespaced_deployment(NS, body)
        set_image(apps, "checkout", bad)
        crashing = core.list_namespaced_pod(NS, field_selector="status.phase=Running").items
        bad_pods = [p for p in crashing if must(p.spec).containers[0].image == bad]
        assert len(bad_pods) == 1  # 25% surge; the old pods stay available
        name = must(must(bad_pods[0].metadata).name)

        emulator.advance(35)

        pod = core.read_namespaced_pod(name, NS)
        container = must(must(pod.status).container_statuses)[0]
        # Restarts at 0 s, 10 s and 30 s: the back-off doubles like the kubelet's.
        assert (container.ready, container.restart_count) == (False, 3)
        assert must(must(container.state).waiting).reason == "CrashLoopBackOff"
        events = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}")
        backoff = [e for e in events.items if e.reason == "BackOff"]
        assert [e.type for e in backoff] == ["Warning"]
        assert (backoff[0].count or 0) >= 2  # one event, re-counted at each observed restart
        deployment = apps.read_namespaced_deployment("checkout", NS)
        assert must(deployment.status).ready_replicas == 3
        with pytest.raises(AssertionError, match="has timed out progressing"):
            rollout_complete(deployment)


def test_delete_cascades_to_replicasets_and_pods_unless_orphaned(
    apps_v1: client.AppsV1Api, core_v1: client.CoreV1Api
) -> None:
    apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1", replicas=2))
    apps_v1.create_namespaced_deployment(NS, deployment_body("billing", "b:1", replicas=1))
    apps_v1.delete_namespaced_deployment("checkout", NS)
    apps_v1.delete_namespaced_deployment(
        "billing", NS, body=client.V1DeleteOptions(propagation_policy="Orphan")
    )
    assert replica_sets(apps_v1, "checkout") == {}
    assert pod_images(core_v1, "checkout") == []
    assert list(replica_sets(apps_v1, "billing")) == [1]
    assert pod_images(core_v1, "billing") == ["b:1"]


# --- nodes, selectors ------------------------------------------------------------------------


def test_cordon_marks_the_node_and_steers_scheduling(
    apps_v1: client.AppsV1Api, core_v1: client.CoreV1Api
) -> None:
    for name in ("node-a", "node-b"):
        core_v1.create_node(node(name))
    core_v1.patch_node("node-a", {"spec": {"unschedulable": True}})

    node_a = core_v1.read_node("node-a")
    assert must(node_a.spec).unschedulable is True
    taints = [(t.key, t.effect) for t in must(node_a.spec).taints or []]
    assert taints == [("node.kubernetes.io/unschedulable", "NoSchedule")]
    apps_v1.create_namespaced_deployment(NS, deployment_body("checkout", "c:1", replicas=2))
    on_b = core_v1.list_namespaced_pod(NS, field_selector="spec.nodeName=node-b").items
    assert len(on_b) == 2
    cordoned = core_v1.list_node(field_selector="spec.unschedulable=true").items
    assert [must(n.metadata).name for n in cordoned] == ["node-a"]

    core_v1.patch_node("node-b", {"spec": {"unschedulable": True}})
    apps_v1.patch_namespaced_deployment_scale("checkout", NS, {"spec": {"replicas": 3}})
    pending = core_v1.list_namespaced_pod(NS, field_selector="status.phase=Pending").items
    assert len(pending) == 1
    scheduled = must(must(pending[0].status).conditions)[0]
    assert (scheduled.type, scheduled.status, scheduled.reason) == (
        "PodScheduled",
        "False",
        "Unschedulable",
    )

    core_v1.patch_node("node-a", {"spec": {"unschedulable": False}})
    assert must(core_v1.read_node("node-a").spec).taints is None
    assert len(core_v1.list_namespaced_pod(NS, field_selector="spec.nodeName=node-a").items) == 1


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=checkout", ["canary", "stable"]),
        ("app==checkout,tier=web", ["stable"]),
        ("app!=checkout", ["billing"]),
        ("tier in (web, worker)", ["billing", "stable"]),
        ("tier notin (web)", ["billing", "canary"]),
        ("track", ["canary"]),
        ("!track", ["billing", "stable"]),
    ],
)
def test_label_selectors(core_v1: client.CoreV1Api, selector: str, expected: list[str]) -> None:
    pods = {
        "stable": {"app": "checkout", "tier": "web"},
        "canary": {"app": "checkout", "track": "canary"},
        "billing": {"app": "billing", "tier": "worker"},
    }
    for name, labels in pods.items():
        core_v1.create_namespaced_pod(
            NS, must(client.V1Pod.from_dict(pod_manifest(name, "i:1", labels)))
        )
    found = core_v1.list_namespaced_pod(NS, label_selector=selector).items
    assert sorted(must(p.metadata).name or "" for p in found) == expected


@pytest.mark.parametrize(
    ("labels", "fields", "message"),
    [
        ("app in (a", None, "unable to parse requirement"),
        (None, "spec.image=x", 'field label not supported: "spec.image"'),
    ],
)
def test_bad_selectors_are_400(
    core_v1: client.CoreV1Api, labels: str | None, fields: str | None, message: str
) -> None:
    with pytest.raises(ApiException) as error:
        core_v1.list_namespaced_pod(NS, label_selector=labels, field_selector=fields)
    assert error.value.status == 400
    assert message in status_of(error.value)["message"]


# --- faults, runners, demo -------------------------------------------------------------------


def _no_retries(emulator: K8sEmulator) -> client.CoreV1Api:
    # urllib3 on its own retries idempotent requests after a reset or a 429 with Retry-After.
    return client.CoreV1Api(client.ApiClient(emulator.client_configuration(retries=False)))


def test_fault_injection_answers_429_with_retry_after(k8s_emulator: K8sEmulator) -> None:
    core = _no_retries(k8s_emulator)
    k8s_emulator.inject_faults(FaultPlan(kinds=("429",), retry_after_seconds=3, limit=1))
    with pytest.raises(ApiException) as error:
        core.list_node()
    assert error.value.status == 429
    assert must(error.value.headers)["Retry-After"] == "3"
    body = status_of(error.value)
    assert (body["reason"], body["details"]["retryAfterSeconds"]) == ("TooManyRequests", 3)
    assert core.list_node().items == []  # the plan's limit of one fault is used up


def test_fault_injection_500_and_connection_reset(k8s_emulator: K8sEmulator) -> None:
    core = _no_retries(k8s_emulator)
    k8s_emulator.inject_faults(FaultPlan(kinds=("500",)))
    with pytest.raises(ApiException) as error:
        core.list_node()
    assert error.value.status == 500
    k8s_emulator.inject_faults(FaultPlan(kinds=("reset",)))
    with pytest.raises(urllib3.exceptions.ProtocolError):
        core.list_node()
    assert [f.kind for f in k8s_emulator.faults.injected] == ["reset"]


def test_fault_injection_is_seeded(k8s_emulator: K8sEmulator) -> None:
    core = _no_retries(k8s_emulator)

    def pattern() -> list[bool]:
        k8s_emulator.inject_faults(FaultPlan(rate=0.5, kinds=("500",), seed=11))
        outcomes = []
        for _ in range(16):
            try:
                core.list_node()
                outcomes.append(True)
            except ApiException:
                outcomes.append(False)
        return outcomes

    first = pattern()
    assert first == pattern()
    assert True in first
    assert False in first


async def test_async_runner_serves_the_official_client() -> None:
    async with K8sEmulator(rollout_delay=0) as emulator:
        core = client.CoreV1Api(client.ApiClient(emulator.client_configuration()))
        # The client blocks, so it must run off the loop that serves it.
        await asyncio.to_thread(core.create_node, node("n1"))
        nodes = await asyncio.to_thread(core.list_node)
        assert [must(n.metadata).name for n in nodes.items] == ["n1"]
        url = emulator.url
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        client.CoreV1Api(client.ApiClient(client.Configuration(host=url))).list_node()


def test_seed_demo_stages_a_crash_looping_second_revision(k8s_emulator: K8sEmulator) -> None:
    k8s_emulator.seed_demo()
    api_client = client.ApiClient(k8s_emulator.client_configuration())
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    by_revision = replica_sets(apps, "checkout")
    assert sorted(by_revision) == [1, 2]
    assert (
        must(must(must(by_revision[1].spec).template).spec).containers[0].image
        == "shop/checkout:1.3.2"
    )
    assert must(by_revision[2].status).ready_replicas is None
    assert pod_images(core, "checkout") == ["shop/checkout:1.3.2"] * 2 + ["shop/checkout:1.4.0"] * 2
    assert len(core.list_node().items) == 2
    assert not rollout_complete(apps.read_namespaced_deployment("checkout", NS))


def test_module_entry_point_serves_the_demo(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    command = [sys.executable, "-m", "worker.k8s_emulator", "--port", "0", "--demo"]
    process = subprocess.Popen(
        [*command, "--kubeconfig", str(kubeconfig)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        stdout = must(process.stdout)
        ready, _, _ = select.select([stdout], [], [], 30)
        assert ready, "the emulator printed nothing within 30 s"
        banner = stdout.readline()
        assert banner.startswith("Kubernetes API emulator serving on http://127.0.0.1:")
        server = json.loads(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        assert banner.split()[-1] == server
        # The written kubeconfig is one the official loader accepts.
        loaded = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]  # kubernetes.config is untyped
        apps = client.AppsV1Api(loaded)
        deployment = apps.read_namespaced_deployment("checkout", NS)
        assert must(must(deployment.metadata).annotations)[REVISION] == "2"
    finally:
        process.terminate()
        process.wait(timeout=10)
