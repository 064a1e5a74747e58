"""The running stack: every service answers, and nothing listens beyond loopback."""

from __future__ import annotations

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
    exposed = [entry for entry in listening if entry[1] not in ("127.0.0.1", "::1")]
    assert exposed == []


def test_postgres_does_not_run_as_root(stack: Settings) -> None:
    if os.geteuid() != 0:
        return
    pids = _stack_pids(stack)
    postgres = [p for p in map(psutil.Process, pids) if p.name() == "postgres"]
    assert postgres and all(p.username() == "postgres" for p in postgres)
