"""The demo sandbox's starting state: a shop whose latest checkout release crash-loops."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.k8s_emulator.manifests import deployment_manifest, node_manifest
from worker.k8s_emulator.patch import STRATEGIC_MERGE_PATCH
from worker.k8s_emulator.resources import DEPLOYMENTS, NODES, Obj

if TYPE_CHECKING:
    from worker.k8s_emulator.server import K8sEmulator

GOOD_IMAGE = "shop/checkout:1.3.2"
BAD_IMAGE = "shop/checkout:1.4.0"
CHANGE_CAUSE = "kubernetes.io/change-cause"
DEMO_NODES = ("sandbox-node-1", "sandbox-node-2")


def seed_demo(emulator: K8sEmulator, namespace: str = "shop") -> None:
    """Two nodes and Deployment `checkout`: revision 1 healthy, revision 2 crash-looping."""
    emulator.bad_images.add(BAD_IMAGE)
    for index, name in enumerate(DEMO_NODES):
        zone = {"topology.kubernetes.io/zone": f"sandbox-{'ab'[index % 2]}"}
        emulator.api.create(NODES, "", node_manifest(name, zone), dry_run=False)
    emulator.api.create(DEPLOYMENTS, namespace, checkout_deployment(), dry_run=False)
    # Let revision 1 become fully available before revision 2 starts rolling out.
    emulator.advance(emulator.settings.rollout_delay + 0.01)
    release: Obj = {
        "metadata": {"annotations": {CHANGE_CAUSE: f"deploy {BAD_IMAGE}"}},
        "spec": {"template": {"spec": {"containers": [{"name": "checkout", "image": BAD_IMAGE}]}}},
    }
    emulator.api.patch(
        DEPLOYMENTS,
        namespace,
        "checkout",
        STRATEGIC_MERGE_PATCH,
        release,
        subresource=None,
        dry_run=False,
    )
    # Far enough for the new pods to have started and crashed at least once.
    emulator.advance(emulator.settings.rollout_delay + 0.01)


def checkout_deployment() -> Obj:
    """The demo's `checkout` Deployment at revision 1."""
    manifest = deployment_manifest(
        "checkout",
        GOOD_IMAGE,
        replicas=3,
        labels={"app": "checkout", "tier": "backend"},
        annotations={CHANGE_CAUSE: f"deploy {GOOD_IMAGE}"},
        # One pod may be down and one extra may exist, so a bad release visibly hurts (two
        # of four pods crash) instead of stalling quietly behind the default 25%.
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
    )
    manifest["spec"]["selector"] = {"matchLabels": {"app": "checkout"}}
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"name": "http", "containerPort": 8080}]
    return manifest
