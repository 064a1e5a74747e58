"""The same job runs on a Spark standalone cluster by configuration alone.

The test starts a standalone master and one worker (pyspark's own ``bin/spark-class``)
bound to 127.0.0.1, points ``VIDFLOW_SPARK_MASTER`` and ``AIRFLOW_CONN_SPARK_DEFAULT`` at
the master, and runs the daily gold job through the DAGs' ``VidflowSparkSubmitOperator``
on a scratch lake. Its gold tables must equal what the same transforms give in the
test's ``local[2]`` session. Both cluster processes are stopped at the end.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyspark
import pytest

from jobs import watch_gold_daily
from vidflow.analytics.gold import (
    USER_VIDEO_DAILY_COLUMNS,
    VIDEO_DAILY_STATS_COLUMNS,
    VIDEO_LIKERS_COLUMNS,
)
from vidflow.config import Settings, get_settings
from vidflow.spark import lake_path
from vidflow.stack.services import airflow_connections

DAYS = [date(2026, 11, 24), date(2026, 11, 25)]
SILVER_SCHEMA = (
    "event_id string, event_type string, video_id string, session_id string, "
    "user_id string, event_ts timestamp, received_at timestamp, position_seconds double, "
    "device string, ingest_hour timestamp, event_date date, region string"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(check: Any, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError, httpx.HTTPError):  # not up yet
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def standalone_cluster(tmp_path: Path) -> Iterator[str]:
    """A master and one worker (1 core, 1 GiB) on loopback; yields the master URL."""
    spark_home = Path(pyspark.__file__).parent
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(tmp_path / "logs"),
    }
    port, ui_port, worker_ui_port = _free_port(), _free_port(), _free_port()
    master_url = f"spark://127.0.0.1:{port}"
    spark_class = str(spark_home / "bin" / "spark-class")
    commands = {
        "master": [
            spark_class, "org.apache.spark.deploy.master.Master",
            "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port),
        ],
        "worker": [
            spark_class, "org.apache.spark.deploy.worker.Worker", master_url,
            "--host", "127.0.0.1", "--cores", "1", "--memory", "1g",
            "--webui-port", str(worker_ui_port), "--work-dir", str(tmp_path / "work"),
        ],
    }  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, command in commands.items():
            with (tmp_path / f"{name}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        command, env=env, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )  # fmt: skip
            if name == "master":
                _wait(lambda: socket.create_connection(("127.0.0.1", port), 1), "master")
        state_url = f"http://127.0.0.1:{ui_port}/json/"
        _wait(
            lambda: [w for w in httpx.get(state_url).json()["workers"] if w["state"] == "ALIVE"],
            "worker",
        )
        yield master_url
    finally:
        for process in reversed(processes):
            _stop(process)
    assert all(p.poll() is not None for p in processes)


def seeded_silver(seed: int = 7) -> list[tuple[Any, ...]]:
    """Sessions of a few users and anonymous viewers over two days and three regions."""
    rng = random.Random(seed)
    videos = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(6)]
    users = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(8)]
    rows = []
    for n in range(60):
        session = str(uuid.UUID(int=rng.getrandbits(128)))
        user = rng.choice([*users, None, None])
        video, region = rng.choice(videos), rng.choice(["eu-west", "us-east", "ap-south"])
        at = datetime(2026, 11, 24, tzinfo=UTC) + timedelta(seconds=rng.randrange(2 * 86400))
        position = 0.0
        for step in range(rng.randrange(2, 25)):
            kind = (
                "play" if step == 0 else rng.choice(["heartbeat"] * 6 + ["seek", "pause", "like"])
            )
            if kind == "seek":
                position = rng.uniform(0, 600)
            elif kind != "like":
                position += rng.choice([10.0, 10.0, 9.5, 40.0])
            hour = at.replace(minute=0, second=0, microsecond=0)
            rows.append(
                (f"{n}-{step}", kind, video, session, user, at, at, position, "tv", hour,
                 at.date(), region)
            )  # fmt: skip
            at += timedelta(seconds=10)
    return rows


def _sorted_rows(frame: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in frame.collect())


def test_gold_job_on_standalone_cluster_matches_local(
    spark: Any,
    stack: Settings,
    standalone_cluster: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lake = str(tmp_path / "lake")
    local = stack.model_copy(update={"lake_uri": lake})
    silver = spark.createDataFrame(seeded_silver(), SILVER_SCHEMA)
    silver.write.format("delta").partitionBy("event_date", "region").save(
        lake_path(local, "analytics", "watch_events")
    )
    # local[2]: the same transforms in this process's session.
    events = watch_gold_daily.extract(
        spark, lake_path(local, "analytics", "watch_events"), DAYS, None
    )
    expected_stats, expected_users, expected_likers = (
        _sorted_rows(f) for f in watch_gold_daily.transform(events, DAYS)
    )
    spark.catalog.clearCache()
    assert len(expected_stats) > 10 and len(expected_users) > 10 and expected_likers

    # The cluster: configuration only (environment), through the DAGs' operator.
    cluster = stack.model_copy(update={"spark_master": standalone_cluster, "lake_uri": lake})
    bin_dir = Path(sys.executable).parent
    for name, value in {
        "VIDFLOW_SPARK_MASTER": standalone_cluster,
        "VIDFLOW_LAKE_URI": lake,
        "VIDFLOW_SPARK_DRIVER_MEMORY": "1g",
        "AIRFLOW_CONN_SPARK_DEFAULT": airflow_connections(cluster)["AIRFLOW_CONN_SPARK_DEFAULT"],
        "PYSPARK_PYTHON": sys.executable,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        from vidflow.orchestration.spark import VidflowSparkSubmitOperator, job_path

        operator = VidflowSparkSubmitOperator(
            task_id="gold_on_cluster",
            application=job_path("watch_gold_daily.py"),
            application_args=["--dates", ",".join(d.isoformat() for d in DAYS)],
            conf={"spark.executor.memory": "1g", "spark.cores.max": "1"},
        )
        assert operator._get_hook()._connection["master"] == standalone_cluster
        operator.execute(context={})
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()

    # The application ran on the cluster: the worker launched an executor for it.
    assert any((tmp_path / "work").glob("app-*/*/stderr"))
    read = spark.read.format("delta")
    stats = read.load(lake_path(local, "analytics", "video_daily_stats"))
    users = read.load(lake_path(local, "analytics", "user_video_daily"))
    assert _sorted_rows(stats.select(*VIDEO_DAILY_STATS_COLUMNS)) == expected_stats
    assert _sorted_rows(users.select(*USER_VIDEO_DAILY_COLUMNS)) == expected_users
    likers = read.load(lake_path(local, "analytics", "video_likers"))
    assert _sorted_rows(likers.select(*VIDEO_LIKERS_COLUMNS)) == expected_likers
