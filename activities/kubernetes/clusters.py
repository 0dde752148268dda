"""Named clusters: where a cluster's credentials come from and which task queue it serves.

Activities for a cluster run on that cluster's task queue, so a worker inside each cluster
holds its own credentials: the worker for cluster ``eu-1`` builds one ``ApiClient`` from its
:class:`ClusterConfig` and registers :class:`~activities.kubernetes.actions.KubernetesActions`
bound to it on ``fireline-k8s-eu-1`` (unless ``task_queue`` says otherwise).

The vendor library is imported inside :func:`build_api_client`, so loading fireline.yaml
(which embeds these models) never pays for importing the Kubernetes client.

Exceptions::

    ClusterConfigError (ValueError)    the kubeconfig or in-cluster credentials cannot be used
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

TASK_QUEUE_PREFIX = "fireline-k8s-"


class ClusterConfigError(ValueError):
    """A cluster's credentials cannot be loaded; the message names the cluster and why."""


class ClusterConfig(BaseModel):
    """How the worker of one named cluster reaches its Kubernetes API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Default: $KUBECONFIG, else ~/.kube/config (the official client's own rule).
    kubeconfig: Path | None = None
    # Default: the kubeconfig's current-context.
    context: str | None = Field(default=None, min_length=1)
    # Use the pod's service account (token, CA and KUBERNETES_SERVICE_HOST/PORT).
    in_cluster: bool = False
    # Default: fireline-k8s-<name>.
    task_queue: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_credential_source(self) -> Self:
        if self.in_cluster and (self.kubeconfig is not None or self.context is not None):
            raise ValueError(
                "in_cluster uses the pod's service account; drop kubeconfig and context"
            )
        return self

    def queue(self, name: str) -> str:
        """The task queue this cluster's actions run on."""
        return self.task_queue or f"{TASK_QUEUE_PREFIX}{name}"


def build_api_client(cluster: ClusterConfig, *, name: str = "") -> ApiClient:
    """A new official ``ApiClient`` for ``cluster``; raises :class:`ClusterConfigError`."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    label = f"cluster '{name}'" if name else "cluster"
    try:
        if cluster.in_cluster:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # kubernetes.config is untyped
            return client.ApiClient(configuration)
        path = str(cluster.kubeconfig.expanduser()) if cluster.kubeconfig is not None else None
        # persist_config=False: a worker must never rewrite an operator's (often read-only,
        # mounted) kubeconfig when an auth plugin refreshes its token.
        api_client: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]  # kubernetes.config is untyped
            config_file=path, context=cluster.context, persist_config=False
        )
        return api_client
    except ConfigException as exc:
        raise ClusterConfigError(f"{label}: {exc}") from None
    except OSError as exc:
        raise ClusterConfigError(f"{label}: cannot read kubeconfig: {exc}") from None
