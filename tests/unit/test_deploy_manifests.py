"""deploy/kubernetes/: every manifest is a valid Kubernetes object, least-privileged, non-root.

No apiserver runs here, so each document goes through ``ApiClient.deserialize`` into the
official ``kubernetes`` client's generated models, as if an apiserver had returned it (they
check required fields and enum values), and its keys are compared, recursively, with the
models' ``attribute_map``: the models drop unknown keys silently, so a typo such as
``readinesProbe`` would otherwise pass.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, cast

import kubernetes.client
import pytest
import yaml

from worker.config import load_config

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
NAMESPACE = "fireline"
CLUSTER_QUEUE = "fireline-k8s-prod-eu"
# The runbook's Kubernetes actions, and nothing more (per API group and resource).
WORKLOAD_RULES = {
    ("apps", "deployments"): {"get", "list", "watch", "patch"},
    ("apps", "replicasets"): {"get", "list"},
    ("", "pods"): {"get", "list"},
    ("", "events"): {"get", "list"},
    ("events.k8s.io", "events"): {"get", "list"},
}
NODE_RULES = {("", "nodes"): {"get", "patch"}}
Doc = dict[str, Any]


def _documents() -> list[tuple[str, Doc]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                found.append((path.name, cast(Doc, doc)))
    return found


DOCS = _documents()


def _model_name(doc: Doc) -> str:
    """``apps/v1`` + ``Deployment`` → ``V1Deployment``, the generated model's name."""
    version = doc["apiVersion"].rpartition("/")[2]
    return f"{version.capitalize()}{doc['kind']}"


def _unknown_keys(value: Any, type_name: str, where: str) -> list[str]:
    """Keys in ``value`` that the OpenAPI model ``type_name`` does not define, recursively."""
    if type_name.startswith("List[") and isinstance(value, list):
        inner = type_name[5:-1]
        return [p for i, v in enumerate(value) for p in _unknown_keys(v, inner, f"{where}[{i}]")]
    if type_name.startswith("Dict[") and isinstance(value, dict):
        inner = type_name[5:-1].split(", ", 1)[1]
        return [p for k, v in value.items() for p in _unknown_keys(v, inner, f"{where}.{k}")]
    model = getattr(kubernetes.client, type_name, None)
    if model is None or not isinstance(value, dict):
        return []  # str, int, bool, object (e.g. IntOrString), datetime
    by_json_key = {json_key: attr for attr, json_key in model.attribute_map.items()}
    problems = []
    for key, item in value.items():
        if key not in by_json_key:
            problems.append(f"{where}.{key}: not a field of {type_name}")
        else:
            nested = model.openapi_types[by_json_key[key]]
            problems += _unknown_keys(item, nested, f"{where}.{key}")
    return problems


def _of_kind(kind: str) -> list[Doc]:
    return [doc for _, doc in DOCS if doc["kind"] == kind]


def _named(kind: str, name: str) -> Doc:
    (doc,) = [d for d in _of_kind(kind) if d["metadata"]["name"] == name]
    return doc


# --- every document is a Kubernetes object ----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "doc"), DOCS, ids=[f"{s}:{d['kind']}/{d['metadata']['name']}" for s, d in DOCS]
)
def test_document_deserializes_into_the_official_model(source: str, doc: Doc) -> None:
    name = _model_name(doc)
    model = getattr(kubernetes.client, name)
    obj = kubernetes.client.ApiClient().deserialize(json.dumps(doc), name, "application/json")
    assert isinstance(model, type)
    assert isinstance(obj, model)
    assert _unknown_keys(doc, name, source) == []


def test_the_key_check_catches_a_typo() -> None:
    deployment = json.loads(json.dumps(_named("Deployment", "fireline-api")))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    assert _unknown_keys(deployment, "V1Deployment", "api.yaml") == [
        "api.yaml.spec.template.spec.containers[0].readinesProbe: not a field of V1Container"
    ]


def test_the_models_reject_a_missing_required_field() -> None:
    deployment = json.loads(json.dumps(_named("Deployment", "fireline-api")))
    del deployment["spec"]["selector"]
    with pytest.raises(ValueError, match="selector"):
        kubernetes.client.ApiClient().deserialize(
            json.dumps(deployment), "V1Deployment", "application/json"
        )


def test_kustomization_lists_every_manifest_once() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    files = sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files
    # A kustomize `namespace:` would move the RoleBinding out of the namespace it grants.
    assert "namespace" not in kustomization


def test_names_are_unique_per_kind_and_namespace() -> None:
    keys = Counter(
        (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for _, d in DOCS
    )
    assert [k for k, n in keys.items() if n > 1] == []


# --- workloads --------------------------------------------------------------------------------


def _pod(deployment: Doc) -> Doc:
    return cast(Doc, deployment["spec"]["template"]["spec"])


def _api_routes() -> set[str]:
    """GET routes declared in worker/api.py (``@app.get("/path")``), read from its syntax tree.

    Read rather than built: building the app needs a live Temporal client.
    """
    tree = ast.parse((ROOT / "worker" / "api.py").read_text())
    routes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Attribute)
                    and decorator.func.attr == "get"
                    and decorator.args
                    and isinstance(decorator.args[0], ast.Constant)
                ):
                    routes.add(str(decorator.args[0].value))
    return routes


def test_api_probes_use_routes_the_api_serves() -> None:
    routes = _api_routes()
    assert {"/healthz", "/readyz"} <= routes
    (api,) = _pod(_named("Deployment", "fireline-api"))["containers"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for deployment in _of_kind("Deployment"):
        for container in _pod(deployment)["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe in container:
                    assert container[probe]["httpGet"]["path"] in routes
                    port = container[probe]["httpGet"]["port"]
                    assert port in {p["name"] for p in container["ports"]}


def test_api_service_selects_the_api_pods_on_the_named_port() -> None:
    service = _named("Service", "fireline-api")
    api = _named("Deployment", "fireline-api")
    assert service["spec"]["selector"] == api["spec"]["template"]["metadata"]["labels"]
    (port,) = service["spec"]["ports"]
    (container,) = _pod(api)["containers"]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    assert {"name": "FIRELINE_API_HOST", "value": "0.0.0.0"} in container["env"]


@pytest.mark.parametrize("name", ["fireline-api", "fireline-worker", "fireline-worker-prod-eu"])
def test_pods_run_as_non_root_with_a_read_only_root(name: str) -> None:
    deployment = _named("Deployment", name)
    pod = _pod(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    writable = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]["memory"]
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+", container["image"])
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        # The state directory and /tmp are the only writable places.
        assert {mounts["/var/lib/fireline"], mounts["/tmp"]} <= writable


def test_every_part_gets_the_same_settings_config_and_secrets() -> None:
    settings = _named("ConfigMap", "fireline-settings")["data"]
    for deployment in _of_kind("Deployment"):
        pod = _pod(deployment)
        (container,) = pod["containers"]
        assert container["envFrom"] == [
            {"configMapRef": {"name": "fireline-settings"}},
            {"secretRef": {"name": "fireline-secrets"}},
        ]
        config_volume = next(v for v in pod["volumes"] if v["name"] == "config")
        assert config_volume["configMap"]["name"] == "fireline-config"
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert f"{mounts['config']}/fireline.yaml" == settings["FIRELINE_CONFIG"]
    assert settings["FIRELINE_STATE_DIR"] == "/var/lib/fireline"


def test_the_cluster_worker_polls_its_cluster_task_queue() -> None:
    (container,) = _pod(_named("Deployment", "fireline-worker-prod-eu"))["containers"]
    assert container["args"] == ["worker"]
    assert {"name": "FIRELINE_TASK_QUEUE", "value": CLUSTER_QUEUE} in container["env"]
    (main,) = _pod(_named("Deployment", "fireline-worker"))["containers"]
    assert "env" not in main  # the main worker keeps fireline-settings' queue
    assert _named("ConfigMap", "fireline-settings")["data"]["FIRELINE_TASK_QUEUE"] == "fireline"


def test_the_config_map_file_loads_with_fireline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = _named("ConfigMap", "fireline-config")["data"]["fireline.yaml"]
    names = re.findall(r"\b(?:token_env|env): (FIRELINE_[A-Z_]+)", text)
    assert names, "the config names its secrets"
    for name in names:
        monkeypatch.setenv(name, f"test-{name.lower()}")
    path = tmp_path / "fireline.yaml"
    path.write_text(text)
    config = load_config(path)
    assert config.auth.tokens  # the API binds 0.0.0.0, which local mode refuses


# --- RBAC -------------------------------------------------------------------------------------


def _rules(role: Doc) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert "*" not in rule["verbs"]
        assert "*" not in rule["resources"]
        assert "*" not in rule["apiGroups"]
        assert "resourceNames" not in rule or rule["resourceNames"]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def test_roles_grant_exactly_what_the_runbook_actions_need() -> None:
    assert _rules(_named("ClusterRole", "fireline-runbook-workloads")) == WORKLOAD_RULES
    assert _rules(_named("ClusterRole", "fireline-runbook-nodes")) == NODE_RULES
    assert len(_of_kind("ClusterRole")) + len(_of_kind("Role")) == 2


def test_only_the_cluster_worker_is_bound_and_workloads_only_per_namespace() -> None:
    worker_sa = {
        "kind": "ServiceAccount",
        "name": "fireline-worker-prod-eu",
        "namespace": NAMESPACE,
    }
    bindings = _of_kind("RoleBinding") + _of_kind("ClusterRoleBinding")
    assert bindings
    for binding in bindings:
        assert binding["subjects"] == [worker_sa]
    # Cluster-wide only for nodes, which are cluster-scoped; workloads per namespace.
    (cluster_binding,) = _of_kind("ClusterRoleBinding")
    assert cluster_binding["roleRef"]["name"] == "fireline-runbook-nodes"
    for binding in _of_kind("RoleBinding"):
        assert binding["roleRef"]["name"] == "fireline-runbook-workloads"
        assert binding["metadata"]["namespace"] != NAMESPACE


def test_service_accounts_mount_a_token_only_where_it_is_used() -> None:
    accounts = {sa["metadata"]["name"]: sa for sa in _of_kind("ServiceAccount")}
    assert set(accounts) == {"fireline-api", "fireline-worker", "fireline-worker-prod-eu"}
    for deployment in _of_kind("Deployment"):
        pod = _pod(deployment)
        account = accounts[pod["serviceAccountName"]]
        uses_kubernetes = pod["serviceAccountName"] == "fireline-worker-prod-eu"
        assert pod["automountServiceAccountToken"] is uses_kubernetes
        assert account["automountServiceAccountToken"] is uses_kubernetes


def test_namespace_enforces_the_restricted_pod_security_standard() -> None:
    (namespace,) = _of_kind("Namespace")
    assert namespace["metadata"]["name"] == NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    namespaced = [d for _, d in DOCS if d["kind"] not in ("Namespace", "ClusterRole")]
    namespaced = [d for d in namespaced if d["kind"] != "ClusterRoleBinding"]
    assert {d["metadata"]["namespace"] for d in namespaced if d["kind"] != "RoleBinding"} == {
        NAMESPACE
    }
