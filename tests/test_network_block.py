"""The tests cannot reach the network: neither the test process nor the Python processes it
starts (every CLI test runs ganx in a subprocess)."""

import socket
import subprocess
import sys

import pytest
from conftest import NetworkBlocked

REMOTE = ("192.0.2.1", 80)  # TEST-NET-1: never routed


def test_the_test_process_is_blocked():
    with pytest.raises(NetworkBlocked, match="reach the network"):
        socket.create_connection(REMOTE, timeout=5)
    with socket.socket() as s, pytest.raises(NetworkBlocked):
        s.connect_ex(REMOTE)


def test_subprocesses_are_blocked_and_loopback_is_not():
    code = (
        "import socket\n"
        "server = socket.create_server(('127.0.0.1', 0))\n"
        "socket.create_connection(server.getsockname(), timeout=5).close()\n"
        "print('loopback ok', flush=True)\n"
        f"socket.create_connection({REMOTE!r}, timeout=5)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "loopback ok" in proc.stdout
    assert proc.returncode != 0 and "test tried to reach the network" in proc.stderr
