"""Payload encryption: round trips, key rotation, tampering, and the key settings' errors."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from worker.cli import build_parser
from worker.codec import (
    ENCODING,
    KEY_ID_METADATA,
    DecryptionError,
    EncryptionCodec,
    EncryptionKeyError,
    Keyring,
    keyring_from_settings,
    parse_keys,
)
from worker.devserver import DevServer
from worker.replay import replay_files
from worker.settings import Settings
from worker.temporal_client import connect_options, data_converter
from workflows.contracts import AddNote

OLD = bytes(range(32))
NEW = bytes(range(32, 64))
OLD_LINE = f"old={base64.b64encode(OLD).decode()}"
NEW_LINE = f"new={base64.b64encode(NEW).decode()}"
HISTORIES = Path(__file__).resolve().parents[1] / "histories"
SECRET_TITLE = b"Checkout payments double-charging customers"


def clear_payload(text: bytes = SECRET_TITLE) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=b'"' + text + b'"')


async def test_round_trip_hides_the_payload_and_restores_it_exactly() -> None:
    codec = EncryptionCodec(parse_keys(OLD_LINE))
    original = clear_payload()
    [encrypted] = await codec.encode([original])
    assert encrypted.metadata["encoding"] == ENCODING
    assert encrypted.metadata[KEY_ID_METADATA] == b"old"
    assert SECRET_TITLE not in encrypted.SerializeToString()
    assert b"json/plain" not in encrypted.SerializeToString()  # metadata is inside, too
    [decrypted] = await codec.decode([encrypted])
    assert decrypted == original


async def test_each_payload_gets_its_own_nonce() -> None:
    codec = EncryptionCodec(parse_keys(OLD_LINE))
    first, second = await codec.encode([clear_payload(), clear_payload()])
    assert first.data != second.data


async def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    before = EncryptionCodec(parse_keys(OLD_LINE))
    [written_before] = await before.encode([clear_payload()])

    after = EncryptionCodec(parse_keys(f"{NEW_LINE}\n{OLD_LINE}"))
    assert after.active_key_id == "new"
    [decoded_old] = await after.decode([written_before])
    assert decoded_old == clear_payload()
    [written_after] = await after.encode([clear_payload(b"after rotation")])
    assert written_after.metadata[KEY_ID_METADATA] == b"new"
    assert await after.decode([written_after]) == [clear_payload(b"after rotation")]
    # The old-only keyring cannot read what the new key wrote, and says which key it needs.
    with pytest.raises(DecryptionError, match="encrypted with key 'new', which is not configured"):
        await before.decode([written_after])


async def test_explicit_active_key_overrides_the_order() -> None:
    keyring = parse_keys(f"{OLD_LINE},{NEW_LINE}", active="new")
    [encrypted] = await EncryptionCodec(keyring).encode([clear_payload()])
    assert encrypted.metadata[KEY_ID_METADATA] == b"new"


async def test_unknown_key_id_names_it_and_the_configured_ones() -> None:
    [encrypted] = await EncryptionCodec(parse_keys(OLD_LINE)).encode([clear_payload()])
    codec = EncryptionCodec(parse_keys(NEW_LINE))
    with pytest.raises(DecryptionError) as err:
        await codec.decode([encrypted])
    assert str(err.value) == (
        "payload was encrypted with key 'old', which is not configured (configured: new); "
        "add it back to FIRELINE_ENCRYPTION_KEYS or FIRELINE_ENCRYPTION_KEYS_FILE"
    )


@pytest.mark.parametrize("where", ["ciphertext", "nonce", "key id"])
async def test_tampering_fails_authentication(where: str) -> None:
    keyring = parse_keys(f"{OLD_LINE}\nother={base64.b64encode(NEW).decode()}")
    codec = EncryptionCodec(keyring)
    [encrypted] = await codec.encode([clear_payload()])
    key_id = "old"
    if where == "ciphertext":
        data = bytearray(encrypted.data)
        data[-20] ^= 0x01
        encrypted.data = bytes(data)
    elif where == "nonce":
        encrypted.data = bytes([encrypted.data[0] ^ 0x80]) + encrypted.data[1:]
    else:
        # Relabelled as another configured key: the associated data binds the id.
        key_id = "other"
        encrypted.metadata[KEY_ID_METADATA] = b"other"
    with pytest.raises(DecryptionError, match=f"key '{key_id}' failed authentication"):
        await codec.decode([encrypted])


async def test_same_id_different_key_material_fails_authentication() -> None:
    [encrypted] = await EncryptionCodec(parse_keys(OLD_LINE)).encode([clear_payload()])
    impostor = EncryptionCodec(parse_keys(f"old={base64.b64encode(NEW).decode()}"))
    with pytest.raises(DecryptionError, match="key configured as 'old' is not the one"):
        await impostor.decode([encrypted])


async def test_unencrypted_payloads_pass_through_decode() -> None:
    codec = EncryptionCodec(parse_keys(OLD_LINE))
    recorded_before_encryption = [clear_payload(), Payload(metadata={"encoding": b"binary/null"})]
    assert await codec.decode(recorded_before_encryption) == recorded_before_encryption


async def test_encrypted_payload_without_key_id_is_refused() -> None:
    codec = EncryptionCodec(parse_keys(OLD_LINE))
    with pytest.raises(DecryptionError, match="has no 'encryption-key-id' metadata"):
        await codec.decode([Payload(metadata={"encoding": ENCODING}, data=b"x" * 40)])


async def test_the_configured_converter_round_trips_fireline_contracts() -> None:
    converter = data_converter(Settings(encryption_keys=SecretStr(OLD_LINE)))
    assert isinstance(converter.payload_codec, EncryptionCodec)
    note = AddNote(actor="alice", text="rolled back 1.4.0")
    [payload] = await converter.encode([note])
    assert b"rolled back" not in payload.SerializeToString()
    assert await converter.decode([payload], [AddNote]) == [note]


def test_without_keys_the_converter_is_plain_pydantic() -> None:
    assert data_converter(Settings()) is pydantic_data_converter
    assert connect_options(Settings())["data_converter"] is pydantic_data_converter


def test_keys_file_with_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2025-06-01\n{NEW_LINE}\n\n{OLD_LINE}\n")
    keyring = keyring_from_settings(Settings(encryption_keys_file=path))
    assert keyring is not None
    assert (keyring.active, keyring.ids) == ("new", ["new", "old"])


def test_no_key_settings_means_encryption_off() -> None:
    assert keyring_from_settings(Settings()) is None
    assert not Settings().encryption_enabled


SHORT = base64.b64encode(b"k" * 16).decode()


@pytest.mark.parametrize(
    ("keys", "active", "message"),
    [
        (
            f"k1={SHORT}",
            None,
            "FIRELINE_ENCRYPTION_KEYS: key 'k1' is 16 bytes; AES-256-GCM needs 32 "
            "(create one with `fireline keys generate`)",
        ),
        (
            "k1=not*base64!",
            None,
            "FIRELINE_ENCRYPTION_KEYS: key 'k1' is not valid base64 "
            "(create one with `fireline keys generate`)",
        ),
        (
            f"{OLD_LINE},{OLD_LINE}",
            None,
            "FIRELINE_ENCRYPTION_KEYS: key id 'old' is listed more than once; every key needs "
            "its own id, or old payloads could not say which key decrypts them",
        ),
        (
            f"{OLD_LINE},{NEW_LINE}",
            "k9",
            "FIRELINE_ENCRYPTION_ACTIVE_KEY: key id 'k9' is not among the listed keys (old, new)",
        ),
        (
            "just-some-words",
            None,
            "FIRELINE_ENCRYPTION_KEYS: entry 1 is not 'key-id=base64key' "
            "(create one with `fireline keys generate`)",
        ),
        (
            base64.b64encode(OLD).decode(),
            None,
            "FIRELINE_ENCRYPTION_KEYS: entry 1 has no key after 'key-id=' (a bare key needs "
            "an id in front: 'key-id=base64key')",
        ),
        (
            f"{OLD_LINE},bad id!={base64.b64encode(NEW).decode()}",
            None,
            "FIRELINE_ENCRYPTION_KEYS: entry 2: the key id is not valid: use 1-64 letters, "
            "digits, '.', '_' or '-', starting with a letter or digit",
        ),
        (
            " , ",
            None,
            "FIRELINE_ENCRYPTION_KEYS holds no keys; expected 'key-id=base64key' entries "
            "(create one with `fireline keys generate`)",
        ),
    ],
)
def test_bad_keys_are_refused_with_what_to_fix(keys: str, active: str | None, message: str) -> None:
    settings = Settings(encryption_keys=SecretStr(keys), encryption_active_key=active)
    with pytest.raises(EncryptionKeyError) as err:
        keyring_from_settings(settings)
    assert str(err.value) == message
    assert isinstance(err.value, ValueError)
    # Key material never appears in an error.
    assert base64.b64encode(OLD).decode() not in str(err.value)
    assert base64.b64encode(NEW).decode() not in str(err.value)


def test_unreadable_keys_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(EncryptionKeyError) as err:
        keyring_from_settings(Settings(encryption_keys_file=missing))
    assert str(err.value) == (
        f"FIRELINE_ENCRYPTION_KEYS_FILE: cannot read {missing}: No such file or directory"
    )


def test_keys_and_keys_file_together_are_ambiguous(tmp_path: Path) -> None:
    settings = Settings(encryption_keys=SecretStr(OLD_LINE), encryption_keys_file=tmp_path)
    with pytest.raises(EncryptionKeyError, match="not both"):
        keyring_from_settings(settings)


def test_active_key_without_keys() -> None:
    with pytest.raises(EncryptionKeyError) as err:
        keyring_from_settings(Settings(encryption_active_key="k1"))
    assert str(err.value) == (
        "FIRELINE_ENCRYPTION_ACTIVE_KEY is set but no keys are: set FIRELINE_ENCRYPTION_KEYS "
        "or FIRELINE_ENCRYPTION_KEYS_FILE"
    )


def test_keyring_refuses_a_key_of_the_wrong_size() -> None:
    with pytest.raises(EncryptionKeyError, match="'k' is 16 bytes; AES-256-GCM needs 32"):
        Keyring(active="k", keys={"k": b"x" * 16})


def test_secrets_are_not_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRELINE_ENCRYPTION_KEYS", OLD_LINE)
    settings = Settings()
    assert settings.encryption_enabled
    secret = base64.b64encode(OLD).decode()
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert secret not in text
    keyring = keyring_from_settings(settings)
    assert keyring is not None
    assert secret not in repr(keyring)
    assert OLD.hex() not in repr(keyring)


def test_keys_generate_prints_a_line_that_loads(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["keys", "generate", "--id", "2025-q3"])
    assert args.func(args) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("2025-q3=")
    keyring = parse_keys(line)
    assert keyring.active == "2025-q3"
    assert len(keyring.keys["2025-q3"]) == 32


def _fireline(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FIRELINE_")}
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("part", ["up", "worker", "api"])
def test_a_bad_key_stops_every_part_at_start(tmp_path: Path, part: str) -> None:
    missing = tmp_path / "keys.txt"
    env = {
        "FIRELINE_ENCRYPTION_KEYS_FILE": str(missing),
        "FIRELINE_STATE_DIR": str(tmp_path / "state"),
        # Nothing listens here: getting as far as connecting would be a different error.
        "FIRELINE_TEMPORAL_PORT": "1",
    }
    done = _fireline(env, part)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"fireline {part}: payload encryption: FIRELINE_ENCRYPTION_KEYS_FILE: cannot read "
        f"{missing}: No such file or directory"
    )
    assert not (tmp_path / "state").exists()  # no Temporal dev server was started


def test_replay_with_a_bad_key_is_a_usage_error() -> None:
    done = _fireline({"FIRELINE_ENCRYPTION_KEYS": "k1=c2hvcnQ="}, "replay", str(HISTORIES))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "fireline: payload encryption: FIRELINE_ENCRYPTION_KEYS: key 'k1' is 5 bytes; "
        "AES-256-GCM needs 32 (create one with `fireline keys generate`)"
    )


async def test_histories_recorded_before_encryption_replay_with_keys_on() -> None:
    converter = data_converter(Settings(encryption_keys=SecretStr(NEW_LINE)))
    results = await replay_files([HISTORIES], converter)
    assert results
    assert [r.path for r in results if not r.ok] == []


def test_the_embedded_ui_is_pointed_at_the_codec_server(tmp_path: Path) -> None:
    with_ui = DevServer(
        state_dir=tmp_path, port=7233, ui_port=8233, ui_codec_endpoint="http://127.0.0.1:8080/codec"
    ).command()
    flag = with_ui.index("--ui-codec-endpoint")
    assert with_ui[flag + 1] == "http://127.0.0.1:8080/codec"
    assert (
        "--ui-codec-endpoint"
        not in DevServer(state_dir=tmp_path, port=7233, ui_port=8233).command()
    )
    settings = Settings(ui_port=9233)
    assert settings.ui_origins == ["http://127.0.0.1:9233", "http://localhost:9233"]
    other = Settings(temporal_ui_origins="https://temporal.example.com, https://ui.example.com")
    assert other.ui_origins == ["https://temporal.example.com", "https://ui.example.com"]
