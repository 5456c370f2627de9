"""Free loopback ports, so a test never collides with a server another run left behind."""

from __future__ import annotations

import socket

# The kernel may hand the same ephemeral port to two probes in a row once the first probe is
# closed; a server started on the first would then make the second fail with EADDRINUSE.
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port no other process listens on now and this process has not handed out."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
