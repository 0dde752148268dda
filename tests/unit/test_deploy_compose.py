"""docker-compose.yml and its deploy/compose/ files: valid, pinned, secret-free, consistent.

Docker cannot run here, so the stack is validated, not started: against the vendored Compose
Specification schema (always), with ``docker-compose config`` when it is installed (it needs
no Docker daemon), with ``promtool`` / ``amtool`` when installed, and against fireline's own
code (the alert intake route, the search attributes, the config loader).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest
import yaml
from fastapi.routing import APIRoute

from worker.alert_api import alert_router
from worker.alert_intake import AlertIntake
from worker.config import FirelineConfig, load_config
from worker.metrics import Registry
from workflows import search_attributes

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_DIR = ROOT / "deploy" / "compose"
SCHEMA = ROOT / "tests" / "schemas" / "compose-spec.json"
FIRELINE_SERVICES = ("fireline-worker", "fireline-api")
# Values for the file's required `${VAR:?...}` secrets, so compose can interpolate it.
REQUIRED_ENV = {
    "POSTGRES_PASSWORD": "test-postgres-password",
    "FIRELINE_ACK_SECRET": "test-ack-secret",
    "FIRELINE_TOKEN_ALICE": "test-token-alice",
}
_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


def _raw() -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(COMPOSE_FILE.read_text()))


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` substitution."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":?", "?"):
            raise KeyError(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    return _INTERPOLATION.sub(one, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as compose reads it: anchors merged, variables substituted."""
    return cast(dict[str, Any], _interpolate(_raw(), REQUIRED_ENV))


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], compose["services"])


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "write environment as a mapping"
    return {k: str(v) for k, v in env.items()}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path → host source of each bind mount written ./path:/target[:ro]."""
    found: dict[str, str] = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = source
    return found


# --- the Compose specification ---------------------------------------------------------------


def test_matches_the_compose_specification_schema(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    # The file names draft 2019-09 by a URL jsonschema does not recognise; say it directly.
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: e.json_path)
    assert [f"{e.json_path}: {e.message}" for e in errors] == []


def test_schema_rejects_an_unknown_service_key(compose: dict[str, Any]) -> None:
    # The schema is only worth running if it catches typos.
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["fireline-api"]["helthcheck"] = {"test": ["CMD", "true"]}
    with pytest.raises(jsonschema.ValidationError, match="helthcheck"):
        jsonschema.Draft201909Validator(schema).validate(broken)


def _docker_compose() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.mark.skipif(_docker_compose() is None, reason="neither docker-compose nor docker compose")
def test_docker_compose_config_accepts_it() -> None:
    command = cast(list[str], _docker_compose())
    # No daemon is needed for `config`; pointing DOCKER_HOST nowhere proves it.
    env = {**os.environ, **REQUIRED_ENV, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(_docker_compose() is None, reason="neither docker-compose nor docker compose")
def test_docker_compose_config_refuses_a_missing_secret() -> None:
    command = cast(list[str], _docker_compose())
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED_ENV}
    env |= {**REQUIRED_ENV, "FIRELINE_ACK_SECRET": "", "DOCKER_HOST": "unix:///nonexistent"}
    result = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "set FIRELINE_ACK_SECRET" in result.stderr


# --- images, secrets, health ------------------------------------------------------------------


def test_every_image_is_pinned_to_a_version(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        image = service.get("image")
        assert image, f"{name}: no image"
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag"
        assert re.search(r"\d", tag), f"{name}: {image} is not pinned to a version"
        assert "latest" not in tag, f"{name}: {image} is not pinned"


def test_the_dockerfile_pins_its_base_image() -> None:
    text = (ROOT / "Dockerfile").read_text()
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.MULTILINE)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base)
    assert re.search(r"^USER 10001:10001$", text, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["fireline"]' in text
    assert 'CMD ["worker"]' in text


def test_no_secret_is_written_in_the_file() -> None:
    raw = _raw()
    secretish = re.compile(r"(PASSWORD|PWD|SECRET|TOKEN|API_KEY)$")
    for name, service in cast(dict[str, dict[str, Any]], raw["services"]).items():
        for key, value in _environment(service).items():
            if secretish.search(key):
                match = _INTERPOLATION.fullmatch(value)
                message = f"{name}.{key} must be a required ${{VAR:?message}}, not a literal"
                assert match, message
                assert match["op"] == ":?", message
    # Secret files come from outside the repository's tracked files.
    for secret in raw["secrets"].values():
        assert secret["file"].startswith("${"), secret


def test_services_wait_for_what_they_need_to_be_healthy(compose: dict[str, Any]) -> None:
    services = _services(compose)
    healthy = {name for name, s in services.items() if "healthcheck" in s}
    for name, service in services.items():
        for needed, rule in service.get("depends_on", {}).items():
            assert needed in services, f"{name} depends on unknown {needed}"
            if rule["condition"] == "service_healthy":
                assert needed in healthy, f"{name} waits for {needed}, which has no healthcheck"
    assert services["temporal"]["depends_on"] == {"postgresql": {"condition": "service_healthy"}}
    for part in FIRELINE_SERVICES:
        assert services[part]["depends_on"] == {
            "temporal-init": {"condition": "service_completed_successfully"}
        }
    assert services["temporal-init"]["depends_on"]["temporal"]["condition"] == "service_healthy"


def test_api_healthcheck_probes_the_readiness_route(compose: dict[str, Any]) -> None:
    test = " ".join(_services(compose)["fireline-api"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8080/readyz" in test


# --- fireline's processes ---------------------------------------------------------------------


def test_worker_and_api_share_config_temporal_and_secrets(compose: dict[str, Any]) -> None:
    services = _services(compose)
    worker, api = (_environment(services[p]) for p in FIRELINE_SERVICES)
    assert {k: v for k, v in api.items() if not k.startswith("FIRELINE_API_")} == worker
    assert worker["FIRELINE_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert api["FIRELINE_API_HOST"] == "0.0.0.0"
    config_mounts = [_mounts(services[p])[worker["FIRELINE_CONFIG"]] for p in FIRELINE_SERVICES]
    assert config_mounts == ["./deploy/compose/fireline.yaml"] * 2
    assert [services[p]["command"] for p in FIRELINE_SERVICES] == [["worker"], ["api"]]
    for part in FIRELINE_SERVICES:
        assert services[part]["build"] == "."
        assert services[part]["read_only"] is True


def test_the_mounted_config_loads_with_fireline_and_allows_binding_all_interfaces(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in REQUIRED_ENV.items():
        monkeypatch.setenv(name, value)
    text = (COMPOSE_DIR / "fireline.yaml").read_text()
    token_file = tmp_path / "alertmanager-token"
    token_file.write_text("test-alertmanager-token\n")
    # The container reads the token from its Docker secret; here, from a temporary file.
    secret_path = "/run/secrets/fireline_alertmanager_token"
    assert secret_path in text
    local = tmp_path / "fireline.yaml"
    local.write_text(text.replace(secret_path, str(token_file)))
    config = load_config(local)
    # Local mode binds loopback only; the API listens on 0.0.0.0 in its container.
    assert config.auth.tokens
    assert [i.kind for i in config.integrations.values()] == ["alertmanager"]


def test_the_config_is_not_git_ignored() -> None:
    # The root .gitignore ignores every fireline.yaml; deploy/compose/.gitignore re-includes it.
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    result = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/compose/fireline.yaml"], cwd=ROOT, check=False
    )
    assert result.returncode == 1, "deploy/compose/fireline.yaml would not be committed"


def test_every_bind_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        for source in _mounts(service).values():
            assert (ROOT / source).exists(), f"{name}: {source} does not exist"


# --- Temporal ---------------------------------------------------------------------------------


def test_temporal_runs_on_postgresql(compose: dict[str, Any]) -> None:
    services = _services(compose)
    env = _environment(services["temporal"])
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert env["DB_PORT"] == "5432"
    assert env["POSTGRES_PWD"] == _environment(services["postgresql"])["POSTGRES_PASSWORD"]
    assert env["POSTGRES_USER"] == _environment(services["postgresql"])["POSTGRES_USER"]
    # auto-setup's Custom*Field attributes would take a Datetime slot fireline needs.
    assert env["SKIP_ADD_CUSTOM_SEARCH_ATTRIBUTES"] == "true"
    dynamic = _mounts(services["temporal"])["/etc/temporal/" + env["DYNAMIC_CONFIG_FILE_PATH"]]
    assert isinstance(yaml.safe_load((ROOT / dynamic).read_text()), dict)


def test_init_registers_exactly_fireline_search_attributes(compose: dict[str, Any]) -> None:
    init = _services(compose)["temporal-init"]
    script = ROOT / _mounts(init)[init["entrypoint"][-1]]
    body = script.read_text().split("<<ATTRIBUTES\n", 1)[1].split("\nATTRIBUTES\n", 1)[0]
    registered = [line.replace(" ", "=") for line in body.splitlines()]
    expected = search_attributes.cli_flags()[1::2]  # ["--search-attribute", "Name=Type", ...]
    assert registered == expected
    env = _environment(init)
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    fireline_env = _environment(_services(compose)["fireline-worker"])
    assert env["FIRELINE_NAMESPACE"] == fireline_env["FIRELINE_NAMESPACE"]


def test_ui_decodes_payloads_through_fireline_codec_server(compose: dict[str, Any]) -> None:
    services = _services(compose)
    ui = _environment(services["temporal-ui"])
    api = _environment(services["fireline-api"])
    assert ui["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == f"{api['FIRELINE_PUBLIC_URL']}/codec"
    assert api["FIRELINE_TEMPORAL_UI_ORIGINS"] == ui["TEMPORAL_CORS_ORIGINS"]


# --- Prometheus and Alertmanager --------------------------------------------------------------


def _alertmanager_intake_path() -> str:
    """The path fireline serves Alertmanager webhooks on, read from its router."""
    router = alert_router(FirelineConfig(), cast(AlertIntake, object()), Registry())
    (path,) = [
        r.path for r in router.routes if isinstance(r, APIRoute) and r.name == "alertmanager"
    ]
    return path


def _host_port(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host, int(port)


def _published_or_internal_port(compose: dict[str, Any], service: str, port: int) -> bool:
    spec = _services(compose)[service]
    env = _environment(spec)
    declared = {int(p.split(":")[-1]) for p in spec.get("ports", [])}
    declared |= {int(v.rpartition(":")[2]) for k, v in env.items() if k == "PROMETHEUS_ENDPOINT"}
    if env.get("FIRELINE_API_PORT"):
        declared.add(int(env["FIRELINE_API_PORT"]))
    return port in declared


def test_alertmanager_delivers_to_fireline_intake_with_its_token(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((COMPOSE_DIR / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    (webhook,) = receivers[config["route"]["receiver"]]["webhook_configs"]
    url = webhook["url"]
    match = re.fullmatch(r"http://(?P<host>[a-z0-9-]+):(?P<port>\d+)(?P<path>/.*)", url)
    assert match, url
    assert match["path"] == _alertmanager_intake_path()
    assert match["host"] == "fireline-api"
    assert _published_or_internal_port(compose, "fireline-api", int(match["port"]))
    assert webhook["send_resolved"] is True
    # fireline's integrations accept `Authorization: Bearer <token>`; the token file is the
    # Docker secret that the API's config reads too.
    auth = webhook["http_config"]["authorization"]
    assert auth.get("type", "Bearer") == "Bearer"
    services = _services(compose)
    assert services["alertmanager"]["secrets"] == ["fireline_alertmanager_token"]
    assert services["fireline-api"]["secrets"] == ["fireline_alertmanager_token"]
    assert auth["credentials_file"] == "/run/secrets/fireline_alertmanager_token"
    fireline_config = yaml.safe_load((COMPOSE_DIR / "fireline.yaml").read_text())
    tokens = [
        i["token"] for i in fireline_config["integrations"].values() if i["kind"] == "alertmanager"
    ]
    assert tokens == [{"file": auth["credentials_file"]}]


def test_prometheus_scrapes_fireline_and_temporal_and_alerts_alertmanager(
    compose: dict[str, Any],
) -> None:
    config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    targets = {
        name: [t for sc in job["static_configs"] for t in sc["targets"]]
        for name, job in jobs.items()
    }
    assert targets["fireline-api"] == ["fireline-api:8080"]
    assert jobs["fireline-api"].get("metrics_path", "/metrics") == "/metrics"
    assert targets["temporal"] == ["temporal:8000"]
    services = _services(compose)
    for name, job_targets in targets.items():
        for target in job_targets:
            host, port = _host_port(target)
            if host == "localhost":
                continue
            assert host in services, f"job {name} scrapes unknown service {host}"
            assert _published_or_internal_port(compose, host, port), f"{name}: {target}"
    (am,) = [
        t
        for a in config["alerting"]["alertmanagers"]
        for sc in a["static_configs"]
        for t in sc["targets"]
    ]
    assert _host_port(am) == ("alertmanager", 9093)
    prometheus = services["prometheus"]
    rules_dir = _mounts(prometheus)["/etc/prometheus/rules"]
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert list((ROOT / rules_dir).glob("*.yml")), "no example rule file"


def test_example_rules_route_to_services_in_the_config() -> None:
    catalog = yaml.safe_load((COMPOSE_DIR / "fireline.yaml").read_text())["services"]
    rules = yaml.safe_load((COMPOSE_DIR / "rules" / "fireline.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert alerts
    for rule in alerts:
        assert rule["labels"]["service"] in catalog, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "error", "warning", "info")
    # The fireline metric the example rule watches is the one the API exports.
    exported = Registry().render()
    for name in set(re.findall(r"\bfireline_[a-z_]+\b", json.dumps(alerts))):
        assert f"# TYPE {name} " in exported, name


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_accepts_the_prometheus_config_and_rules() -> None:
    for args in (
        ["check", "config", str(COMPOSE_DIR / "prometheus.yml")],
        ["check", "rules", str(COMPOSE_DIR / "rules" / "fireline.yml")],
    ):
        result = subprocess.run(
            ["promtool", *args], capture_output=True, text=True, check=False, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed")
def test_amtool_accepts_the_alertmanager_config() -> None:
    result = subprocess.run(
        ["amtool", "check-config", str(COMPOSE_DIR / "alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
