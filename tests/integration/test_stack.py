"""The running stack: every service answers, and nothing listens beyond loopback."""

from __future__ import annotations

import ipaddress
import os

import psutil

from vidflow.config import Settings
from vidflow.stack import supervisor
from vidflow.stack.cli import service_healthy
from vidflow.stack.services import services


def test_every_service_is_running_and_healthy(stack: Settings) -> None:
    states = supervisor.program_states(stack)
    unhealthy = [
        svc.name
        for svc in services(stack)
        if states.get(svc.name) != "RUNNING" or not service_healthy(stack, svc)
    ]
    assert unhealthy == []


def _stack_pids(settings: Settings) -> set[int]:
    root = supervisor.daemon_pid(settings)
    assert root is not None
    daemon = psutil.Process(root)
    return {root, *(p.pid for p in daemon.children(recursive=True))}


def test_nothing_listens_beyond_loopback(stack: Settings) -> None:
    pids = _stack_pids(stack)
    listening = [
        (c.pid, c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    assert listening, "expected the stack's services to listen somewhere"
    exposed = [entry for entry in listening if not _is_loopback(entry[1])]
    assert exposed == []


def _is_loopback(ip: str) -> bool:
    """Loopback, including the IPv4-mapped form a JVM reports for 127.0.0.1 (::ffff:127.0.0.1)."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def test_loopback_check_rejects_wildcard_and_public_addresses() -> None:
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("::ffff:127.0.0.1")
    for exposed in ("0.0.0.0", "::", "::ffff:10.0.0.5", "192.168.1.2", "fe80::1%eth0"):
        assert not _is_loopback(exposed), exposed


def test_postgres_does_not_run_as_root(stack: Settings) -> None:
    if os.geteuid() != 0:
        return
    pids = _stack_pids(stack)
    postgres = [p for p in map(psutil.Process, pids) if p.name() == "postgres"]
    assert postgres and all(p.username() == "postgres" for p in postgres)
