"""Process lifetime for fireline's long-running commands: signals, clean exit.

One stop event per process: SIGINT or SIGTERM sets it and the command shuts its parts down
in order; a second signal exits at once. A process that ran a Temporal ``Worker`` can abort
at interpreter exit (sdk-python #300, ``PyGILState_Release`` while finalizing), so these
commands flush and leave with ``os._exit`` after their clean shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, NoReturn

import uvicorn


def hard_exit(status: int) -> NoReturn:
    """Flush and exit without interpreter finalisation."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, int]]) -> NoReturn:
    """Run ``main(stop)``; the first SIGINT/SIGTERM sets ``stop``, the second exits now."""

    async def wrapper() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if stop.is_set():
                hard_exit(128 + signum)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        return await main(stop)

    hard_exit(asyncio.run(wrapper()))


class ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the command's stop event rules."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signals to ``run_until_signal``."""
        yield


def api_server(app: Any, host: str, port: int) -> ApiServer:
    """A uvicorn server for ``app`` that logs through fireline's handlers."""
    return ApiServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            # Dashboard live streams stay open; stopping must not wait for them to end.
            timeout_graceful_shutdown=5,
        )
    )
