"""One way to connect to Temporal, for the worker, the API, the CLI tools and tests."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter

from worker.settings import Settings


async def connect(settings: Settings) -> Client:
    """Connect with fireline's data converter, TLS and API key as configured."""
    tls: bool | TLSConfig = False
    if settings.temporal_tls or settings.temporal_tls_cert or settings.temporal_api_key:
        tls = TLSConfig(
            server_root_ca_cert=_read(settings.temporal_tls_ca),
            client_cert=_read(settings.temporal_tls_cert),
            client_private_key=_read(settings.temporal_tls_key),
            domain=settings.temporal_tls_server_name,
        )
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
        tls=tls,
        api_key=api_key,
    )


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path else None
