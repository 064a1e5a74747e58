"""The transcode queue on a real Celery worker (``VIDFLOW_TRANSCODE_EXECUTOR=celery``).

The local stack then runs Redis on loopback and ``airflow celery worker --queues
transcode``; Airflow runs the LocalExecutor and the CeleryExecutor side by side and only
the transcode tasks name the latter. Here a video is processed through the real scheduler
and the task instances (REST API) and the worker's own log show that its encodes, and
nothing else, ran on that worker. Then the worker is stopped the way supervisord stops it,
with SIGTERM to its main process, while encodes run: Celery's warm shutdown lets them
finish (no retry, no failure), a queued encode waits in Redis, and once the worker is back
the video is processed with every task on its first try.

Skipped when the stack runs its transcodes with the LocalExecutor (the setting's value).
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.test_video_processing import (
    H264,
    SINE,
    Shape,
    create_video,
    lavfi,
    make_source,
    upload_source,
)
from vidflow.airflow_api import AirflowClient
from vidflow.config import Settings
from vidflow.processing.catalog import video_state
from vidflow.stack import supervisor
from vidflow.stack.cli import service_healthy
from vidflow.stack.services import find_service

DAG_ID = "video_processing"
WORKER = "airflow-worker-transcode"


@pytest.fixture(scope="module")
def celery_stack(stack: Settings, airflow: AirflowClient) -> Settings:
    if stack.transcode_executor != "celery":
        pytest.skip("the stack runs transcodes locally (VIDFLOW_TRANSCODE_EXECUTOR=local)")
    airflow.wait_for_dag(DAG_ID)
    assert supervisor.program_states(stack).get(WORKER) == "RUNNING"
    return stack


def worker_log(settings: Settings) -> str:
    return (settings.log_dir / f"{WORKER}.log").read_text(errors="replace")


def celery_task_of(log: str, ti_id: str) -> str | None:
    """The Celery task id under which the worker executed task instance ``ti_id``."""
    pattern = rf"\[([0-9a-f-]{{36}})\] Executing workload in Celery: .*id=UUID\('{ti_id}'\)"
    found = re.search(pattern, log)
    return found.group(1) if found else None


def process(
    settings: Settings, tmp_path: Path, shape: Shape, airflow: AirflowClient
) -> tuple[str, str]:
    source = make_source(tmp_path, "source", shape)
    video_id = uuid.uuid4()
    create_video(settings, video_id)
    upload_source(settings, video_id, source)
    run_id = airflow.trigger(DAG_ID, {"video_id": str(video_id), "force": False})
    return str(video_id), run_id


def transcodes(airflow: AirflowClient, run_id: str) -> list[dict[str, Any]]:
    return [ti for ti in airflow.task_instances(DAG_ID, run_id) if ti["task_id"] == "transcode"]


def test_encodes_run_on_the_transcode_worker_and_nothing_else_does(
    celery_stack: Settings, airflow: AirflowClient, tmp_path: Path
) -> None:
    shape = Shape(
        lavfi("testsrc2=size=320x240:rate=30:duration=2") + lavfi(f"{SINE}:duration=2"),
        [*H264, "-c:a", "aac", "-shortest"],
    )
    video_id, run_id = process(celery_stack, tmp_path, shape, airflow)
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=600)["state"] == "success"
    state = video_state(settings=celery_stack, video_id=video_id)
    assert state is not None and state["status"] == "processed", state

    instances = airflow.task_instances(DAG_ID, run_id)
    encodes = [ti for ti in instances if ti["task_id"] == "transcode"]
    others = [ti for ti in instances if ti["task_id"] != "transcode"]
    assert encodes and others
    log = worker_log(celery_stack)
    for ti in encodes:
        assert (ti["executor"], ti["queue"], ti["state"]) == (
            "CeleryExecutor",
            "transcode",
            "success",
        ), ti
        celery_id = celery_task_of(log, ti["id"])
        assert celery_id, f"the worker's log never executed {ti['id']}"
        # Celery logs "succeeded" when the task process has exited, which can be after
        # Airflow already recorded the task (and the run) as a success.
        deadline = time.monotonic() + 60
        while not re.search(rf"Task execute_workload\[{celery_id}\] succeeded", log):
            assert time.monotonic() < deadline, f"the worker never finished {celery_id}"
            time.sleep(1)
            log = worker_log(celery_stack)
    for ti in others:
        # Every other task stays with the default executor, the LocalExecutor.
        assert ti["executor"] in (None, "", "LocalExecutor"), ti
        assert celery_task_of(log, ti["id"]) is None, ti["task_id"]


def worker_pid(settings: Settings) -> int:
    return int(supervisor.ctl(settings, "pid", WORKER).stdout.strip())


def runs_under(pid: int | None, ancestor: int) -> bool:
    if not pid:
        return False
    try:
        return ancestor in {p.pid for p in psutil.Process(pid).parents()}
    except psutil.NoSuchProcess:
        return False


def start_worker(settings: Settings) -> None:
    supervisor.ctl(settings, "start", WORKER, check=False)
    svc = find_service(settings, WORKER)
    deadline = time.monotonic() + 180
    while not service_healthy(settings, svc):
        assert time.monotonic() < deadline, "the transcode worker did not come back"
        time.sleep(2)


def test_stopping_the_worker_lets_running_encodes_finish_and_loses_none(
    celery_stack: Settings, airflow: AirflowClient, tmp_path: Path
) -> None:
    shape = Shape(lavfi("testsrc2=size=640x360:rate=30:duration=20"), H264)
    video_id, run_id = process(celery_stack, tmp_path, shape, airflow)
    main_pid = worker_pid(celery_stack)
    deadline = time.monotonic() + 300
    running: list[dict[str, Any]] = []
    while not running:
        assert time.monotonic() < deadline, "no encode started on the worker"
        running = [ti for ti in transcodes(airflow, run_id) if ti["state"] == "running"]
        time.sleep(0.5)
    # The running encode's process is a descendant of the worker (not of the scheduler).
    assert any(runs_under(ti.get("pid"), main_pid) for ti in running), running

    log_before = len(worker_log(celery_stack))
    started = time.monotonic()
    try:
        # What `make down` and supervisord do: SIGTERM to the worker's main process; the
        # call returns once it has exited.
        supervisor.ctl(celery_stack, "stop", WORKER)
        stop_seconds = time.monotonic() - started
        assert supervisor.program_states(celery_stack).get(WORKER) == "STOPPED"
        shutdown = worker_log(celery_stack)[log_before:]
        assert "Warm shutdown" in shutdown, shutdown[-2000:]
        by_index = {ti["map_index"]: ti for ti in transcodes(airflow, run_id)}
        for ti in running:
            # Finished during the warm shutdown, on their first try.
            after = by_index[ti["map_index"]]
            assert (after["state"], after["try_number"]) == ("success", 1), after
    finally:
        start_worker(celery_stack)

    assert airflow.wait_for_run(DAG_ID, run_id, timeout=600)["state"] == "success"
    finished = transcodes(airflow, run_id)
    assert all((ti["state"], ti["try_number"]) == ("success", 1) for ti in finished), finished
    state = video_state(settings=celery_stack, video_id=video_id)
    assert state is not None and state["status"] == "processed", state
    print(
        f"\nwarm shutdown took {stop_seconds:.1f}s with {len(running)} running encode(s); "
        f"{len(finished) - len(running)} more ran after the restart"
    )
