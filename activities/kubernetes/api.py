"""The few Kubernetes API calls the actions make, through the official client, as raw JSON.

Responses are read with ``_preload_content=False`` and kept as the apiserver's JSON instead
of the client's models: a rollback copies a ReplicaSet's pod template back into its
Deployment, and a model from an older client would silently drop fields a newer apiserver
added, so the restored template would differ from the one that ran.

Every call is synchronous (the client is) and classifies its failure once, here; the
actions run these calls with ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from activities.kubernetes.errors import KubernetesPermanentError, api_error, unreachable

Obj = dict[str, Any]

# Large namespaces (events!) are listed in pages rather than in one response.
_PAGE_SIZE = 500


class KubeApi:
    """Deployments, ReplicaSets, Pods, Events and Nodes of one cluster, as JSON objects."""

    def __init__(self, api_client: Any, *, request_timeout: float = 30.0) -> None:
        """Use ``api_client`` (an official ``ApiClient``); every request times out."""
        self._apps = client.AppsV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        # A hung apiserver must not pin a worker thread: threads cannot be cancelled.
        self._timeout = request_timeout

    # --- apps/v1 -----------------------------------------------------------------------------

    def get_deployment(self, namespace: str, name: str) -> Obj:
        """The Deployment; raises ``KubernetesNotFound`` when it does not exist."""
        what = _deployment(namespace, name)
        return self._call(what, self._apps.read_namespaced_deployment, name, namespace)

    def list_deployments(self, namespace: str) -> list[Obj]:
        """Every Deployment in ``namespace``."""
        return self._list(
            f"deployments in namespace {namespace}",
            self._apps.list_namespaced_deployment,
            namespace,
        )

    def patch_deployment(
        self, namespace: str, name: str, body: Any, *, content_type: str | None = None
    ) -> Obj:
        """Patch the Deployment (a list body is a JSON patch, a dict a strategic merge)."""
        return self._call(
            _deployment(namespace, name),
            self._apps.patch_namespaced_deployment,
            name,
            namespace,
            body,
            _content_type=content_type,
        )

    def get_scale(self, namespace: str, name: str) -> Obj:
        """The Deployment's ``scale`` subresource."""
        what = _deployment(namespace, name)
        return self._call(what, self._apps.read_namespaced_deployment_scale, name, namespace)

    def patch_scale(self, namespace: str, name: str, replicas: int) -> Obj:
        """Set the Deployment's replica count through its ``scale`` subresource."""
        return self._call(
            _deployment(namespace, name),
            self._apps.patch_namespaced_deployment_scale,
            name,
            namespace,
            {"spec": {"replicas": replicas}},
        )

    def list_replica_sets(self, namespace: str, label_selector: str = "") -> list[Obj]:
        """ReplicaSets in ``namespace`` matching ``label_selector``."""
        return self._list(
            f"replicasets in namespace {namespace}",
            self._apps.list_namespaced_replica_set,
            namespace,
            label_selector=label_selector or None,
        )

    # --- core/v1 -----------------------------------------------------------------------------

    def list_pods(self, namespace: str, label_selector: str = "") -> list[Obj]:
        """Pods in ``namespace`` matching ``label_selector``."""
        return self._list(
            f"pods in namespace {namespace}",
            self._core.list_namespaced_pod,
            namespace,
            label_selector=label_selector or None,
        )

    def list_events(self, namespace: str) -> list[Obj]:
        """Every Event in ``namespace``."""
        return self._list(
            f"events in namespace {namespace}", self._core.list_namespaced_event, namespace
        )

    def get_node(self, name: str) -> Obj:
        """The Node; raises ``KubernetesNotFound`` when it does not exist."""
        return self._call(f"node {name}", self._core.read_node, name)

    def patch_node(self, name: str, body: Obj) -> Obj:
        """Strategic-merge-patch the Node."""
        return self._call(f"node {name}", self._core.patch_node, name, body)

    # --- plumbing ----------------------------------------------------------------------------

    def _call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        try:
            response = method(
                *args, _preload_content=False, _request_timeout=self._timeout, **kwargs
            )
        except ApiException as exc:
            headers = dict(exc.headers) if exc.headers is not None else None
            # Not chained: Temporal records causes too, and this one adds nothing.
            raise api_error(
                int(exc.status or 0), str(exc.reason or ""), exc.body, headers, what
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise unreachable(exc, what) from None
        try:
            decoded: Any = json.loads(response.data)
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            raise KubernetesPermanentError(f"{what}: the Kubernetes API answered with no object")
        return decoded

    def _list(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Obj]:
        items: list[Obj] = []
        token: str | None = None
        while True:
            page = self._call(what, method, *args, limit=_PAGE_SIZE, _continue=token, **kwargs)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                return items


def _deployment(namespace: str, name: str) -> str:
    return f"deployment {namespace}/{name}"
