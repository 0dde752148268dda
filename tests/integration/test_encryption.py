"""Payload encryption against the real dev server: what reaches its SQLite file, and the
codec server the Temporal UI decrypts through.

The control run declares an incident the same way without keys and finds its title and note
in the same kind of file, so the absence check of the encrypted run is able to fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client

from tests.support import demo_config, eventually, free_port
from worker.api import create_app
from worker.codec import ENCODING, KEY_ID_METADATA
from worker.config import FirelineConfig
from worker.devserver import DevServer
from worker.runner import build_worker
from worker.settings import Settings
from worker.temporal_client import connect

pytestmark = pytest.mark.integration

TASK_QUEUE = "fireline-encryption-tests"
TOKEN = "codec-test-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
KEYS = f"it-2={base64.b64encode(bytes(range(32))).decode()}"
UI_ORIGIN = "http://127.0.0.1:8233"

SECRET_TITLE = "Zanzibar ledger drift at checkout"
SECRET_NOTE = "Quokka-4471 rolled back the payments canary"
CLEAR_TITLE = "Okapi queue backlog at checkout"
CLEAR_NOTE = "Narwhal-9182 drained the retry queue"


def token_config() -> FirelineConfig:
    raw = demo_config().model_dump(mode="json")
    raw["auth"] = {
        "tokens": [{"user": "alice", "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}]
    }
    return FirelineConfig.model_validate(raw)


@dataclass
class Run:
    """A dev server with one incident declared and noted through the API."""

    server: DevServer
    client: Client
    http: httpx.AsyncClient
    incident: str

    def stored(self) -> bytes:
        """Every byte of the server's SQLite database: the main file and its WAL."""
        files = sorted(self.server.state_dir.glob("temporal.db*"))
        assert any(f.name == "temporal.db" for f in files), files
        return b"".join(f.read_bytes() for f in files)


@asynccontextmanager
async def incident_run(
    state_dir: Path, title: str, note: str, **settings: object
) -> AsyncIterator[Run]:
    server = DevServer(state_dir=state_dir, port=free_port(), ui_port=None)
    await server.start()
    try:
        client = await connect(Settings(temporal_address=server.address, **settings))  # type: ignore[arg-type]
        app = create_app(token_config(), client, TASK_QUEUE, ui_origins=[UI_ORIGIN])
        transport = httpx.ASGITransport(app=app)
        async with (
            build_worker(client, TASK_QUEUE),
            httpx.AsyncClient(transport=transport, base_url="http://fireline") as http,
        ):
            declared = await http.post(
                "/v1/incidents",
                json={"title": title, "service": "checkout", "severity": "SEV2"},
                headers=BEARER,
            )
            assert declared.status_code == 201, declared.text
            incident = declared.json()["id"]
            noted = await http.post(
                f"/v1/incidents/{incident}/notes", json={"text": note}, headers=BEARER
            )
            assert noted.status_code == 200, noted.text

            async def listed() -> None:
                # The title comes back from the (encrypted) memo in visibility.
                rows = (await http.get("/v1/incidents", headers=BEARER)).json()
                assert [r["title"] for r in rows if r["id"] == incident] == [title]

            await eventually(listed)
            yield Run(server, client, http, incident)
    finally:
        await server.stop()


@pytest.fixture(scope="module")
async def encrypted(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    state = tmp_path_factory.mktemp("encrypted")
    async with incident_run(
        state, SECRET_TITLE, SECRET_NOTE, encryption_keys=SecretStr(KEYS)
    ) as run:
        yield run


async def test_sqlite_file_holds_no_incident_contents_when_encrypting(encrypted: Run) -> None:
    state = (await encrypted.http.get(f"/v1/incidents/{encrypted.incident}", headers=BEARER)).json()
    assert state["title"] == SECRET_TITLE
    assert [e["text"] for e in state["timeline"] if e["kind"] == "note"] == [SECRET_NOTE]
    stored = encrypted.stored()
    assert encrypted.incident.encode() in stored  # the ids are there: it is the right file
    for secret in (SECRET_TITLE, SECRET_NOTE, "Zanzibar", "Quokka-4471"):
        assert secret.encode() not in stored
        assert secret.encode("utf-16-le") not in stored


async def test_control_without_keys_leaves_title_and_note_in_clear(tmp_path: Path) -> None:
    async with incident_run(tmp_path / "plain", CLEAR_TITLE, CLEAR_NOTE) as run:
        stored = run.stored()
        assert CLEAR_TITLE.encode() in stored
        assert CLEAR_NOTE.encode() in stored


async def test_refusals_keep_their_reason_through_encrypted_failures(encrypted: Run) -> None:
    inc = encrypted.incident
    first = await encrypted.http.post(f"/v1/incidents/{inc}/acknowledge", json={}, headers=BEARER)
    assert first.status_code == 200, first.text
    again = await encrypted.http.post(f"/v1/incidents/{inc}/acknowledge", json={}, headers=BEARER)
    assert again.status_code == 409
    assert "Encoded failure" not in again.json()["reason"]
    assert "acknowledged" in again.json()["reason"]


async def _started_input(run: Run) -> dict[str, object]:
    history = await run.client.get_workflow_handle(f"incident-{run.incident}").fetch_history()
    [payload] = history.events[0].workflow_execution_started_event_attributes.input.payloads
    assert payload.metadata["encoding"] == ENCODING
    assert payload.metadata[KEY_ID_METADATA] == b"it-2"
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


async def test_codec_server_decodes_history_payloads_for_a_token_holder(encrypted: Run) -> None:
    body = {"payloads": [await _started_input(encrypted)]}
    response = await encrypted.http.post(
        "/codec/decode",
        json=body,
        headers={**BEARER, "X-Namespace": "default", "Origin": UI_ORIGIN},
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == UI_ORIGIN
    [decoded] = response.json()["payloads"]
    assert base64.b64decode(decoded["metadata"]["encoding"]) == b"json/plain"
    declared = json.loads(base64.b64decode(decoded["data"]))
    assert (declared["id"], declared["title"]) == (encrypted.incident, SECRET_TITLE)


async def test_codec_server_encode_then_decode_round_trips(encrypted: Run) -> None:
    plain = {
        "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
        "data": base64.b64encode(b'"hello"').decode(),
    }
    encoded = await encrypted.http.post("/codec/encode", json={"payloads": [plain]}, headers=BEARER)
    assert encoded.status_code == 200, encoded.text
    [sealed] = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == ENCODING
    decoded = await encrypted.http.post("/codec/decode", json=encoded.json(), headers=BEARER)
    assert decoded.json() == {"payloads": [plain]}


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "send 'Authorization: Bearer <token>' (CLI: FIRELINE_TOKEN)"),
        (
            {"X-Fireline-User": "alice"},
            "send 'Authorization: Bearer <token>' (CLI: FIRELINE_TOKEN)",
        ),
        ({"Authorization": "Bearer wrong"}, "the bearer token is not valid"),
    ],
)
async def test_codec_server_refuses_decode_without_a_valid_token(
    encrypted: Run, headers: dict[str, str], reason: str
) -> None:
    body = {"payloads": [await _started_input(encrypted)]}
    for path in ("/codec/decode", "/codec/encode"):
        response = await encrypted.http.post(path, json=body, headers=headers)
        assert (response.status_code, response.json()["reason"]) == (401, reason)
        assert SECRET_TITLE not in response.text


async def test_codec_server_bad_body_and_unknown_key(encrypted: Run) -> None:
    bad = await encrypted.http.post("/codec/decode", content=b'{"payloads": 3}', headers=BEARER)
    assert bad.status_code == 400
    assert bad.json()["reason"].startswith('body: expected {"payloads": [')
    foreign = {
        "metadata": {
            "encoding": base64.b64encode(ENCODING).decode(),
            KEY_ID_METADATA: base64.b64encode(b"retired-1").decode(),
        },
        "data": base64.b64encode(b"\0" * 40).decode(),
    }
    unknown = await encrypted.http.post(
        "/codec/decode", json={"payloads": [foreign]}, headers=BEARER
    )
    assert unknown.status_code == 400
    assert "encrypted with key 'retired-1', which is not configured" in unknown.json()["reason"]


async def test_cors_preflight_only_for_the_ui_origin_and_only_on_codec_routes(
    encrypted: Run,
) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    ok = await encrypted.http.options("/codec/decode", headers={**preflight, "Origin": UI_ORIGIN})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == UI_ORIGIN
    assert ok.headers["access-control-allow-credentials"] == "true"
    other = await encrypted.http.options(
        "/codec/decode", headers={**preflight, "Origin": "http://evil.example.com"}
    )
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    api = await encrypted.http.get("/v1/incidents", headers={**BEARER, "Origin": UI_ORIGIN})
    assert "access-control-allow-origin" not in api.headers


async def test_without_keys_there_is_no_codec_server(dev_client: Client) -> None:
    app = create_app(token_config(), dev_client, TASK_QUEUE)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fireline") as http:
        response = await http.post("/codec/decode", json={"payloads": []}, headers=BEARER)
        assert response.status_code == 404
