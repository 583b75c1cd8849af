"""Python runs this at the start of every process whose path holds this folder: conftest puts it
on PYTHONPATH, so every CLI subprocess a test starts refuses to reach the network exactly as the
test process does (connections to this machine stay allowed: torchrun, gloo ranks)."""

import os
import socket

LOCAL = ("127.0.0.1", "::1", "localhost")


class NetworkBlocked(RuntimeError):
    pass


def block_network() -> None:
    """Replace ``socket.socket.connect``/``connect_ex`` with versions that refuse remote hosts
    (once: a second call changes nothing)."""
    for name in ("connect", "connect_ex"):
        real = getattr(socket.socket, name)
        if getattr(real, "ganx_blocked", False):
            continue

        def refuse(self, address, *args, _real=real, **kwargs):
            if isinstance(address, tuple) and address and address[0] not in LOCAL:
                raise NetworkBlocked(f"test tried to reach the network: {address}")
            return _real(self, address, *args, **kwargs)

        refuse.ganx_blocked = True
        setattr(socket.socket, name, refuse)


if os.environ.get("GANX_TESTS_BLOCK_NETWORK") == "1":
    block_network()
