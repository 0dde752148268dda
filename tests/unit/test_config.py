"""fireline.yaml loading: every problem named with file and field, secrets kept out."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from worker.config import ConfigError, FirelineConfig, load_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fireline.yaml"
    path.write_text(text)
    return path


def test_the_example_config_loads() -> None:
    config = load_config(ROOT / "fireline.example.yaml")
    assert set(config.users) == {"alice", "bob", "carol"}
    assert config.users["alice"].email == "alice@example.com"
    assert config.services["checkout"].depends_on == ["payments-api", "orders-db"]
    assert not config.auth.tokens  # the demo runs in local mode


def test_no_config_means_defaults() -> None:
    config = load_config(None)
    assert config.users == {}
    assert config.severity_policy.rules  # the documented default policy


USERS = "users:\n  alice: {name: Alice, email: alice@example.com}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour: red\n", "{path}: colour: unknown key 'colour'"),
        (
            USERS + "teams:\n  db: {members: [alice, mallory]}\n",
            "{path}: teams.db.members[1]: unknown user 'mallory'",
        ),
        (
            USERS + "teams:\n  db: {members: [alice], manager: zed}\n",
            "{path}: teams.db.manager: unknown user 'zed'",
        ),
        (
            "services:\n  api: {owner_team: ghosts}\n",
            "{path}: services.api.owner_team: unknown team 'ghosts'",
        ),
        (
            "services:\n  api: {depends_on: [db]}\n",
            "{path}: services.api.depends_on[0]: unknown service 'db'",
        ),
        (
            USERS + "auth:\n  tokens:\n    - {user: bob, token_env: X}\n",
            "{path}: auth.tokens[0].user: unknown user 'bob'",
        ),
        (
            USERS + "auth:\n  tokens:\n    - {user: alice}\n",
            "{path}: auth.tokens[0]: give exactly one of token_sha256, token_env, token_file",
        ),
        (
            "users:\n  alice: {name: Alice, email: not-an-email}\n",
            "{path}: users.alice.email: String should match pattern '^[^@\\s]+@[^@\\s]+$'",
        ),
        (
            "incidents:\n  reopen_window: soon\n",
            "{path}: incidents.reopen_window: 'soon' is not a duration: use a number and a unit, "
            "largest unit first, e.g. 30s, 5m, 1h30m, 2d (units: ms s m h d w y)",
        ),
        ("- just\n- a list\n", "{path}: the top level must be a mapping of sections"),
        ("users: [\n", "{path}: not valid YAML: "),
    ],
)
def test_invalid_config_names_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(message.format(path=path))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config: No such file or directory"):
        load_config(tmp_path / "nope.yaml")


def test_token_sources_resolve_to_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "bob.token"
    secret_file.write_text("bob-secret\n")
    monkeypatch.setenv("ALICE_TOKEN", "alice-secret")
    digest = hashlib.sha256(b"carol-secret").hexdigest()
    path = write(
        tmp_path,
        "users:\n"
        "  alice: {name: A, email: alice@example.com}\n"
        "  bob: {name: B, email: bob@example.com}\n"
        "  carol: {name: C, email: carol@example.com}\n"
        "auth:\n  tokens:\n"
        "    - {user: alice, token_env: ALICE_TOKEN}\n"
        f"    - {{user: bob, token_file: {secret_file}}}\n"
        f"    - {{user: carol, token_sha256: {digest}}}\n",
    )
    config = load_config(path)
    assert config.token_user("alice-secret") == "alice"
    assert config.token_user("bob-secret") == "bob"
    assert config.token_user("carol-secret") == "carol"
    assert config.token_user("guess") is None


def test_unset_token_env_fails_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path, USERS + "auth:\n  tokens:\n    - {user: alice, token_env: NO_SUCH_VAR_X}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: auth.tokens[0].token_env: environment variable NO_SUCH_VAR_X is not set"
    )


def test_snapshot_freezes_what_an_incident_needs() -> None:
    config = FirelineConfig.model_validate(
        {
            "users": {"alice": {"name": "Alice", "email": "alice@example.com"}},
            "teams": {"web": {"members": ["alice"]}},
            "services": {"checkout": {"owner_team": "web", "tier": "tier-1"}},
        }
    )
    snap = config.snapshot("checkout")
    assert snap.users["alice"].email == "alice@example.com"
    assert snap.service is not None
    assert (snap.service.name, snap.service.owner_team, snap.service.tier) == (
        "checkout",
        "web",
        "tier-1",
    )
    assert config.snapshot("unlisted").service is None


def test_dependency_closure_is_nearest_first_and_survives_cycles() -> None:
    config = FirelineConfig.model_validate(
        {
            "services": {
                "web": {"depends_on": ["api", "cdn"]},
                "api": {"depends_on": ["db", "web"]},  # a cycle back to web
                "cdn": {},
                "db": {},
            }
        }
    )
    assert config.dependency_closure("web") == ["web", "api", "cdn", "db"]
    assert config.dependency_closure("db") == ["db"]
    assert config.dependency_closure("unlisted") == ["unlisted"]
    assert config.dependency_closure(None) == []


def test_a_bad_matcher_regex_in_routing_names_the_route(tmp_path: Path) -> None:
    path = write(tmp_path, "routing:\n  routes:\n    - matchers: ['service=~\"(unclosed\"']\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: routing.routes[0].matchers[0]: ")
    assert "(unclosed" in message


def test_a_route_naming_an_unknown_time_interval_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "routing:\n  routes:\n    - matchers: ['service=\"x\"']\n"
        "      name: x\n      mute_time_intervals: [holidays]\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (f"{path}: routing: route 'x': unknown time interval 'holidays'")


PAGING_BASE = (
    "users:\n  alice: {{name: Alice, email: alice@example.com}}\n"
    "schedules:\n  primary:\n    timezone: {tz}\n    layers:\n"
    "      - {{name: weekly, users: {members}, rotation: weekly, start: '2026-11-02T09:00:00Z'}}\n"
    "escalation_policies:\n  payments:\n    levels:\n"
    "      - {{targets: [{{user: {target}}}], delay: 5m}}\n"
)


@pytest.mark.parametrize(
    ("tz", "members", "target", "message"),
    [
        (
            "UTC",
            "[]",
            "alice",
            "{path}: schedules.primary.layers[0].users: layer 'weekly' has no users; "
            "list at least one handle",
        ),
        ("Mars/Olympus", "[alice]", "alice", "{path}: schedules.primary.timezone: "),
        (
            "UTC",
            "[alice]",
            "mallory",
            "{path}: escalation_policies.payments.levels[0].targets[0].user: "
            "unknown user 'mallory'",
        ),
        ("UTC", "[mallory]", "alice", "{path}: schedules.primary: unknown user 'mallory'"),
    ],
)
def test_paging_config_errors_name_the_field(
    tmp_path: Path, tz: str, members: str, target: str, message: str
) -> None:
    path = write(tmp_path, PAGING_BASE.format(tz=tz, members=members, target=target))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(message.format(path=path)), str(caught.value)


def test_a_paging_secret_must_be_readable(tmp_path: Path) -> None:
    path = write(tmp_path, "paging:\n  webhook:\n    secret: {sha256: " + "a" * 64 + "}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: paging.webhook.secret: give env or file: fireline must send this secret, "
        "not just check it"
    )


def test_the_example_escalation_snapshot() -> None:
    config = load_config(ROOT / "fireline.example.yaml")
    snapshot = config.escalation_snapshot("INC-9", "checkout")
    assert snapshot is not None
    assert snapshot.policy.name == "payments"
    assert [len(level.targets) for level in snapshot.policy.levels] == [1, 1]
    assert config.escalation_snapshot("INC-9", "search") is None  # search pages nobody
