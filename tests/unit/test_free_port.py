"""`free_port` hands a child a port that no outgoing connection can take first.

A port found by binding port 0 comes from the kernel's ephemeral range, and
between our closing it and the child binding it, any outgoing connection in the
meantime (a pool to PostgreSQL, a Kafka client) may get it as its source port:
CI lost a run to exactly that ("Address already in use" for the api child).
"""

from __future__ import annotations

import socket
from pathlib import Path

from customer_launcher.embedded.process import free_port

RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral() -> tuple[int, int]:
    low, high = RANGE.read_text().split()
    return int(low), int(high)


def test_a_free_port_is_outside_the_ephemeral_range() -> None:
    low, high = _ephemeral()
    ports = [free_port() for _ in range(200)]
    assert all(1024 <= p < low or p > high for p in ports), sorted(ports)[:5]


def test_a_process_is_never_handed_the_same_port_twice() -> None:
    # Callers pick several ports before any child binds one (gRPC and metrics).
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)


def test_a_handed_out_port_is_bindable_on_every_address() -> None:
    # The api binds the wildcard ("[::]:port"), not only loopback.
    port = free_port()
    with socket.socket() as s:
        s.bind(("0.0.0.0", port))


def test_the_preferred_port_when_it_is_free_and_another_when_it_is_taken() -> None:
    wanted = free_port()
    assert free_port(wanted) == wanted
    with socket.socket() as held:
        held.bind(("127.0.0.1", wanted))
        held.listen()
        other = free_port(wanted)
    assert other != wanted
