"""Small manifest builders for seeding the emulator and for tests."""

from __future__ import annotations

from typing import Any

from worker.k8s_emulator.resources import Obj


def deployment_manifest(
    name: str,
    image: str,
    *,
    replicas: int = 3,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> Obj:
    """An apps/v1 Deployment with one container named after it; `spec` adds spec fields."""
    pod_labels = labels or {"app": name}
    metadata: Obj = {"name": name, "labels": dict(pod_labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(pod_labels)},
            "template": {
                "metadata": {"labels": dict(pod_labels)},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
            **spec,
        },
    }


def pod_manifest(name: str, image: str, labels: dict[str, str] | None = None) -> Obj:
    """A core/v1 Pod with one container `main`."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {"containers": [{"name": "main", "image": image}]},
    }


def node_manifest(name: str, labels: dict[str, str] | None = None) -> Obj:
    """A core/v1 Node; the emulated kubelet registers it as Ready."""
    node_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    node_labels.update(labels or {})
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": node_labels}}
