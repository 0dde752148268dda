"""One way to connect to Temporal, for the worker, the API, the CLI tools and tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverter

from worker import telemetry
from worker.codec import EncryptionCodec, keyring_from_settings
from worker.settings import Settings


class _EncryptedFailureConverter(DefaultFailureConverter):
    """Failure messages and stack traces go into an encoded payload, so the codec covers them."""

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)


def data_converter(settings: Settings) -> DataConverter:
    """fireline's one data converter: pydantic, plus AES-GCM when keys are configured.

    Raises ``worker.codec.EncryptionKeyError`` when the key settings are wrong.
    """
    keyring = keyring_from_settings(settings)
    if keyring is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=_EncryptedFailureConverter,
    )


def connect_options(settings: Settings) -> dict[str, Any]:
    """``Client.connect`` keyword arguments for these settings (TLS, API key, converter)."""
    tls: bool | TLSConfig = False
    # An API key (Temporal Cloud) or a client certificate only makes sense over TLS.
    if settings.temporal_tls or settings.temporal_tls_cert or settings.temporal_api_key:
        tls = TLSConfig(
            server_root_ca_cert=_read(settings.temporal_tls_ca),
            client_cert=_read(settings.temporal_tls_cert),
            client_private_key=_read(settings.temporal_tls_key),
            domain=settings.temporal_tls_server_name,
        )
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return {
        "namespace": settings.namespace,
        "data_converter": data_converter(settings),
        "tls": tls,
        "api_key": api_key,
        "runtime": telemetry.runtime(settings),
        "interceptors": telemetry.tracing_interceptors(settings),
    }


async def connect(settings: Settings) -> Client:
    """Connect with fireline's data converter, TLS and API key as configured."""
    return await Client.connect(settings.address, **connect_options(settings))


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path else None
