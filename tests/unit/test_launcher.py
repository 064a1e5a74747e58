"""The launcher that starts the scheduler and the Celery worker with the task modules
imported: which components it preloads, that the preload imports them and builds the
storage clients without leaving a thread or a socket for a fork to inherit, and that the
stack starts those two components (and only those) through it."""

from __future__ import annotations

import json
import subprocess
import sys

from vidflow.config import Settings
from vidflow.orchestration.launcher import TASK_MODULES, forks_tasks
from vidflow.stack.services import services

PROBE = """
import json, os, sys, threading
from vidflow.orchestration.launcher import preload
before = set(sys.modules)
preload()
def target(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # the descriptor listdir itself had open
        return ""
sockets = [fd for fd in os.listdir("/proc/self/fd") if target(fd).startswith("socket:")]
print(json.dumps({
    "new": sorted(set(sys.modules) - before),
    "threads": threading.active_count(),
    "sockets": len(sockets),
}))
"""


def test_only_the_components_that_fork_tasks_are_preloaded() -> None:
    assert forks_tasks(["scheduler", "--skip-serve-logs"])
    assert forks_tasks(["celery", "worker", "--queues", "transcode"])
    for other in (["dag-processor"], ["triggerer"], ["api-server"], ["celery", "flower"], []):
        assert not forks_tasks(other), other


def test_preload_imports_the_task_modules_and_leaves_no_thread_or_socket() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True, timeout=120
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(TASK_MODULES) <= set(found["new"])
    assert {"boto3", "botocore.client", "sqlalchemy"} <= set(found["new"])
    assert found["threads"] == 1
    assert found["sockets"] == 0


def test_the_stack_starts_the_scheduler_and_the_worker_through_the_launcher(
    settings: Settings,
) -> None:
    celery = settings.model_copy(update={"transcode_executor": "celery"})
    commands = {svc.name: svc.command for svc in services(celery)}
    launcher = ["-m", "vidflow.orchestration.launcher"]
    assert commands["airflow-scheduler"][1:4] == [*launcher, "scheduler"]
    assert commands["airflow-worker-transcode"][1:5] == [*launcher, "celery", "worker"]
    for name in ("airflow-dag-processor", "airflow-triggerer", "airflow-api-server"):
        assert "vidflow.orchestration.launcher" not in commands[name], name
