"""Settings from environment and flags, and how they become a Temporal connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import TLSConfig

from worker.settings import Settings, is_loopback
from worker.temporal_client import connect_options


def test_defaults_are_the_embedded_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("API_PORT", "TEMPORAL_ADDRESS", "TEMPORAL_PORT", "STATE_DIR", "CONFIG"):
        monkeypatch.delenv(f"FIRELINE_{name}", raising=False)
    s = Settings()
    assert (s.api_host, s.api_port, s.temporal_port, s.ui_port) == ("127.0.0.1", 8080, 7233, 8233)
    assert s.address == "127.0.0.1:7233"
    assert s.state_dir == Path(".fireline")
    assert s.base_url == "http://127.0.0.1:8080"


def test_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRELINE_API_PORT", "9000")
    monkeypatch.setenv("FIRELINE_TEMPORAL_ADDRESS", "temporal.example.com:7233")
    assert Settings().api_port == 9000
    assert Settings(api_port=9100).api_port == 9100  # a flag beats the environment
    assert Settings().address == "temporal.example.com:7233"


def test_plain_connection_has_no_tls() -> None:
    opts = connect_options(Settings(namespace="ops"))
    assert opts["tls"] is False
    assert opts["api_key"] is None
    assert opts["namespace"] == "ops"


def test_api_key_implies_tls() -> None:
    opts = connect_options(Settings(temporal_api_key=SecretStr("k3y")))
    assert opts["api_key"] == "k3y"
    assert isinstance(opts["tls"], TLSConfig)


def test_mtls_reads_the_certificate_files(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_bytes(f"--{name}--".encode())
    opts = connect_options(
        Settings(
            temporal_tls_ca=tmp_path / "ca.pem",
            temporal_tls_cert=tmp_path / "client.pem",
            temporal_tls_key=tmp_path / "client.key",
            temporal_tls_server_name="temporal.example.com",
        )
    )
    tls = opts["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == b"--ca.pem--"
    assert tls.client_cert == b"--client.pem--"
    assert tls.client_private_key == b"--client.key--"
    assert tls.domain == "temporal.example.com"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("fireline.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
