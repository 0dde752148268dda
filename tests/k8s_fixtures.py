"""Pytest fixtures: the Kubernetes API emulator on loopback and official-client APIs for it.

Use with `pytest_plugins = ["tests.k8s_fixtures"]` in a test module (or a conftest).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from worker.k8s_emulator.server import K8sEmulator


@pytest.fixture
def k8s_emulator() -> Iterator[K8sEmulator]:
    """A fresh emulator on a free loopback port; rollouts finish inside the request."""
    with K8sEmulator(rollout_delay=0, seed=7) as emulator:
        yield emulator


@pytest.fixture
def k8s_api_client(k8s_emulator: K8sEmulator) -> Iterator[client.ApiClient]:
    """An official `ApiClient` configured for `k8s_emulator`."""
    with client.ApiClient(k8s_emulator.client_configuration()) as api_client:
        yield api_client


@pytest.fixture
def apps_v1(k8s_api_client: client.ApiClient) -> client.AppsV1Api:
    """`AppsV1Api` against the emulator."""
    return client.AppsV1Api(k8s_api_client)


@pytest.fixture
def core_v1(k8s_api_client: client.ApiClient) -> client.CoreV1Api:
    """`CoreV1Api` against the emulator."""
    return client.CoreV1Api(k8s_api_client)
