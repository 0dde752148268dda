"""The fireline worker as a separate process that the chaos run SIGKILLs and replaces."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fireline_env(**settings: object) -> dict[str, str]:
    """This process's environment with FIRELINE_* replaced by ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRELINE_")}
    env.update({f"FIRELINE_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class WorkerProcess:
    """``fireline worker`` processes, one alive at a time, each with its own log.

    They run :mod:`chaos.worker_process`: ``fireline worker``, plus an optional planted bug.
    """

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        """Workers run with ``env``; logs go to ``log_dir/worker-<n>.log``."""
        self.env = env
        self.log_dir = log_dir
        self.started = 0
        self.killed = 0
        self.crashed = 0
        self._popen: subprocess.Popen[bytes] | None = None
        # Every process ever started, so none can outlive the run.
        self._all: list[subprocess.Popen[bytes]] = []

    @property
    def alive(self) -> bool:
        """Whether the current worker process is running."""
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        """Start a new worker; never two at once (a leftover one would dodge the kills)."""
        if self.alive:
            raise RuntimeError("a worker is still running")
        self.started += 1
        log = (self.log_dir / f"worker-{self.started}.log").open("wb")
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "chaos.worker_process"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        self._all.append(self._popen)
        log.close()  # the child holds its own descriptor

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, in-flight activities and workflow tasks just vanish."""
        if self._popen is not None and self._popen.poll() is None:
            self._popen.send_signal(signal.SIGKILL)
            self._popen.wait(30)
            self.killed += 1
        # Gone on purpose: ensure_running must not count (and replace) it as a crash.
        self._popen = None

    def ensure_running(self) -> None:
        """Replace a worker that exited on its own (e.g. while Temporal was down)."""
        if self._popen is not None and self._popen.poll() is not None:
            self.crashed += 1
            self.start()

    def stop(self) -> None:
        """End every worker for good (SIGTERM, then SIGKILL)."""
        for popen in self._all:
            if popen.poll() is None:
                popen.terminate()
                try:
                    popen.wait(15)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait()
