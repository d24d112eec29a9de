"""Fixtures shared by the inspection tests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.fixtures.sshd import free_port


@pytest.fixture
def iperf3_server() -> Iterator[int]:
    """A real iperf3 server on loopback, serving tests until the fixture ends."""
    port = free_port()
    proc = subprocess.Popen(
        ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Wait by the socket table: a bare connection would count as a test to the server."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert proc.poll() is None, "iperf3 -s exited"
        listed = subprocess.run(
            ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True
        ).stdout
        if listed.strip():
            return
        time.sleep(0.05)
    raise AssertionError(f"iperf3 -s is not listening on {port} after 5 s")
