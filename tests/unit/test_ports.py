"""worker.ports: a port handed out once is never handed out again in this process."""

from __future__ import annotations

import socket

import pytest

from worker import ports


def test_a_port_the_kernel_offers_twice_is_handed_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel really does offer a just-closed probe port again; make it do so every time
    # for the first three probes, as it did when the API and Temporal got the same port.
    offered = iter([41001, 41001, 41001, 41002])

    class Probe:
        def __enter__(self) -> Probe:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def bind(self, address: tuple[str, int]) -> None:
            self.port = next(offered)

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(ports, "_handed_out", set())
    monkeypatch.setattr(socket, "socket", Probe)
    assert [ports.free_port(), ports.free_port()] == [41001, 41002]


def test_free_port_is_bindable_and_distinct() -> None:
    picked = [ports.free_port() for _ in range(50)]
    assert len(set(picked)) == 50
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", picked[-1]))
