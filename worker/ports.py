"""Picking loopback ports for servers that start a moment later."""

from __future__ import annotations

import socket
import threading

# Ports this process has handed out. The kernel frees a probed port as soon as the probe
# closes, so two calls before either server binds can get the same number back: the API
# and the Temporal server once raced for one port that way (address already in use).
_handed_out: set[int] = set()
_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on now and no earlier call returned."""
    with _lock:
        while True:
            with socket.socket() as sock:
                sock.bind((host, 0))
                port: int = sock.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
