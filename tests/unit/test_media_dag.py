"""The video_processing and video_reconciliation DAGs have the shape they should: the SQS
asset watcher, typed Params, the mapped transcode in the `transcode` pool with readable
map indexes, all_done joins, and a serialised watcher that is the common-messaging SQS
trigger on the queue URL built from settings. Parsed in a fresh interpreter with the
network and the metadata DB out of reach, like Airflow's dag-processor would."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.dags.isolated import parse_in_fresh_interpreter
from vidflow.config import REPO_ROOT

SCRIPT = r"""
import importlib.util, json, socket, sys
from pathlib import Path

def refuse(*args, **kwargs):
    raise RuntimeError(f"network access while parsing: {args}")

socket.socket.connect = refuse
socket.create_connection = refuse

from datetime import timedelta

from airflow.serialization.serialized_objects import DagSerialization
from vidflow.config import get_settings

settings = get_settings()

report = {}
for name in ("video_processing", "video_reconciliation"):
    path = Path(sys.argv[1]) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"dagfile_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = getattr(module, name)()
    serialized = DagSerialization.to_dict(dag)["dag"]
    report[name] = {
        "task_timeout": str(timedelta(minutes=settings.processing_task_timeout_minutes)),
        "transcode_timeout": str(timedelta(minutes=settings.transcode_task_timeout_minutes)),
        "schedule": str(serialized.get("timetable", {}).get("__type")),
        "assets": serialized.get("timetable", {}).get("__var", {}),
        "max_active_runs": dag.max_active_runs,
        "params": {k: {"default": p.value, "schema": p.schema} for k, p in dag.params.items()},
        "tasks": {
            t.task_id: {
                "upstream": sorted(t.upstream_task_ids),
                "pool": t.pool,
                "queue": t.queue,
                "trigger_rule": getattr(t.trigger_rule, "value", str(t.trigger_rule)),
                "map_index_template": getattr(t, "partial_kwargs", {}).get("map_index_template")
                or getattr(t, "map_index_template", None),
                "mapped": "Mapped" in type(t).__name__,
                "retries": (
                    t.partial_kwargs.get("retries") if "Mapped" in type(t).__name__ else t.retries
                ),
                "execution_timeout": (
                    t.partial_kwargs.get("execution_timeout")
                    if "Mapped" in type(t).__name__
                    else t.execution_timeout
                ),
            }
            for t in dag.tasks
        },
    }
print(json.dumps(report, default=str))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return parse_in_fresh_interpreter(
        ["-c", SCRIPT, str(REPO_ROOT / "dags")],
        tmp_path_factory.mktemp("airflow_home"),
        {"VIDFLOW_AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "VIDFLOW_SQS_ENDPOINT_URL": None},
    )


def test_processing_is_scheduled_by_the_sqs_watcher(report: dict[str, Any]) -> None:
    dag = report["video_processing"]
    text = json.dumps(dag["assets"])
    assert "vidflow_processing_queue" in text
    # What the triggerer runs: the SQS trigger the common-messaging provider dispatches to.
    assert "airflow.providers.amazon.aws.triggers.sqs.SqsSensorTrigger" in text
    assert "http://127.0.0.1:4566/123456789012/vidflow-processing" in text
    assert "aws_default" in text


def test_processing_params_are_typed(report: dict[str, Any]) -> None:
    params = report["video_processing"]["params"]
    assert params["video_id"]["default"] is None
    assert params["video_id"]["schema"]["type"] == ["null", "string"]
    assert params["force"] == {
        "default": False,
        "schema": {"type": "boolean", **_description(params["force"])},
    }


def _description(param: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in param["schema"].items() if k == "description"}


def test_processing_graph(report: dict[str, Any]) -> None:
    tasks = report["video_processing"]["tasks"]
    upstream = {name: task["upstream"] for name, task in tasks.items()}
    assert upstream == {
        "probe": [],
        "transcode": ["probe"],
        "publish": ["probe", "transcode"],
        "report": ["publish"],
    }
    transcode = tasks["transcode"]
    assert transcode["mapped"] and transcode["pool"] == "transcode"
    assert transcode["queue"] == "transcode"
    assert transcode["map_index_template"] == "{{ task.op_kwargs['encode']['label'] }}"
    for name in ("probe", "publish"):
        assert not tasks[name]["mapped"]
    for name in ("publish", "report"):
        assert tasks[name]["trigger_rule"] == "all_done"
    assert tasks["report"]["retries"] == 0
    assert report["video_processing"]["max_active_runs"] >= 1


def test_reconciliation_is_periodic(report: dict[str, Any]) -> None:
    dag = report["video_reconciliation"]
    assert "Delta" in dag["schedule"] or "delta" in dag["schedule"].lower()
    assert dag["max_active_runs"] == 1
    assert dag["tasks"]["sweep_orphaned_versions"]["upstream"] == ["reenqueue_stuck_videos"]


def test_every_task_has_an_execution_timeout(report: dict[str, Any]) -> None:
    for dag_id in ("video_processing", "video_reconciliation"):
        dag = report[dag_id]
        for name, task in dag["tasks"].items():
            expected = dag["transcode_timeout"] if name == "transcode" else dag["task_timeout"]
            assert task["execution_timeout"] == expected, (dag_id, name)
    # Hand-computed from the defaults (60 min; 12 h for an encode).
    assert report["video_processing"]["task_timeout"] == "1:00:00"
    assert report["video_processing"]["transcode_timeout"] == "12:00:00"


def test_dag_files_exist() -> None:
    for name in ("video_processing.py", "video_reconciliation.py"):
        assert (REPO_ROOT / "dags" / name).is_file()
