"""The transcode queue on a Celery worker (``VIDFLOW_TRANSCODE_EXECUTOR=celery``): Airflow
runs the LocalExecutor and the CeleryExecutor side by side, the local stack gains Redis and
a worker of the `transcode` queue, and the DAG sends exactly its transcode tasks there.
It is the default; with ``local`` the stack runs neither Redis nor the worker. The integration test
tests/integration/test_transcode_worker.py runs the real worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.dags.isolated import parse_in_fresh_interpreter
from vidflow.config import REPO_ROOT, Settings
from vidflow.stack.services import Service, airflow_env, services
from vidflow.stack.supervisor import render_conf

CELERY_KEYS = ("AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND")


def celery(**overrides: object) -> Settings:
    return Settings(transcode_executor="celery", pg_password=SecretStr("pw"), **overrides)  # type: ignore[arg-type]


def by_name(settings: Settings) -> dict[str, Service]:
    return {svc.name: svc for svc in services(settings)}


def test_transcodes_run_on_celery_by_default() -> None:
    settings = Settings()
    assert settings.transcode_executor == "celery"
    assert airflow_env(settings)["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor,CeleryExecutor"
    assert {"redis", "airflow-worker-transcode"} <= set(by_name(settings))


def test_local_transcodes_run_no_broker_and_no_worker() -> None:
    settings = Settings(transcode_executor="local")
    env = airflow_env(settings)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert not any(key.startswith("AIRFLOW__CELERY__") for key in env)
    assert {"redis", "airflow-worker-transcode"}.isdisjoint(by_name(settings))


def test_celery_runs_both_executors_with_redis_and_the_catalog_server() -> None:
    env = airflow_env(celery(redis_port=6390, transcode_pool_slots=3))
    # The first executor is the default: every task but the transcodes stays local.
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor,CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6390/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == (
        "db+postgresql+psycopg://vidflow:pw@127.0.0.1:5433/airflow"
    )
    assert env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "3"  # one per pool slot
    explicit = airflow_env(celery(transcode_worker_concurrency=1))
    assert explicit["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "1"


def test_celery_stack_has_redis_on_loopback_and_a_transcode_worker_after_the_scheduler() -> None:
    found = by_name(celery())
    redis = found["redis"]
    assert redis.port == 6380 and redis.stage == 0 and not redis.needs_env
    args = redis.command
    assert args[args.index("--bind") + 1] == "127.0.0.1"
    assert args[args.index("--port") + 1] == "6380"
    assert args[args.index("--dir") + 1] == str(REPO_ROOT / ".local" / "redis")

    worker = found["airflow-worker-transcode"]
    assert worker.stage > found["airflow-scheduler"].stage
    args = worker.command
    assert args[1:5] == ["-m", "vidflow.orchestration.launcher", "celery", "worker"]
    assert args[args.index("--queues") + 1] == "transcode"
    assert args[args.index("--concurrency") + 1] == "2"
    # Airflow's log server would listen on every interface; the worker serves none.
    assert "--skip-serve-logs" in args and worker.port == 0
    assert worker.health_command is not None and "ping" in worker.health_command
    assert worker.stop_as_group is False and worker.stop_wait_seconds == 300


def test_a_shared_broker_replaces_the_local_redis() -> None:
    settings = celery(celery_broker_url="redis://broker.internal:6379/1")
    assert airflow_env(settings)["AIRFLOW__CELERY__BROKER_URL"] == "redis://broker.internal:6379/1"
    names = by_name(settings)
    assert "redis" not in names and "airflow-worker-transcode" in names


def _program(conf: str, name: str) -> dict[str, str]:
    body = conf.split(f"[program:{name}]\n")[1].split("\n\n")[0]
    return dict(line.split("=", 1) for line in body.splitlines())


def test_stopping_the_worker_signals_only_its_main_process_and_waits_for_encodes() -> None:
    settings = celery(transcode_worker_stop_seconds=120)
    conf = render_conf(settings, services(settings), "fp")
    worker = _program(conf, "airflow-worker-transcode")
    # SIGTERM to the Celery main process alone is a warm shutdown; the group kill stays
    # the last resort.
    assert worker["stopasgroup"] == "false" and worker["killasgroup"] == "true"
    assert worker["stopwaitsecs"] == "120" and worker["stopsignal"] == "TERM"
    scheduler = _program(conf, "airflow-scheduler")
    assert scheduler["stopasgroup"] == "true" and scheduler["stopwaitsecs"] == "30"


SCRIPT = r"""
import importlib.util, json, sys
from pathlib import Path

from airflow.dag_processing.dagbag import _validate_executor_fields

path = Path(sys.argv[1]) / "video_processing.py"
spec = importlib.util.spec_from_file_location("dagfile_video_processing", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
dag = module.video_processing()
try:
    _validate_executor_fields(dag)
    problem = None
except Exception as exc:
    problem = type(exc).__name__
def executor(t):
    return t.partial_kwargs.get("executor") if "Mapped" in type(t).__name__ else t.executor

tasks = {t.task_id: {"executor": executor(t), "queue": t.queue} for t in dag.tasks}
print(json.dumps({"tasks": tasks, "problem": problem}))
"""


def _parse(tmp_path: Path, executor: str, airflow_executors: str) -> dict[str, object]:
    return parse_in_fresh_interpreter(
        ["-c", SCRIPT, str(REPO_ROOT / "dags")],
        tmp_path,
        {
            "VIDFLOW_TRANSCODE_EXECUTOR": executor,
            "AIRFLOW__CORE__EXECUTOR": airflow_executors,
            "VIDFLOW_AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
        },
    )


@pytest.mark.parametrize("executor", ["celery", "local"])
def test_only_the_transcode_tasks_name_the_celery_executor(tmp_path: Path, executor: str) -> None:
    # The Airflow side comes from the same settings as the DAG's (vidflow.stack.services).
    airflow_executors = "LocalExecutor,CeleryExecutor" if executor == "celery" else "LocalExecutor"
    report = _parse(tmp_path, executor, airflow_executors)
    tasks = report["tasks"]
    assert isinstance(tasks, dict)
    expected = "CeleryExecutor" if executor == "celery" else None
    assert tasks["transcode"] == {"executor": expected, "queue": "transcode"}
    for name in ("probe", "publish", "report"):
        assert tasks[name]["executor"] is None, name
    assert report["problem"] is None


def test_a_dag_naming_celery_fails_to_import_where_airflow_runs_no_celery(tmp_path: Path) -> None:
    """Why the DAG and Airflow's executors must come from one setting."""
    report = _parse(tmp_path, "celery", "LocalExecutor")
    assert report["problem"] == "UnknownExecutorException", json.dumps(report)
