"""Every DAG imports with no DB or network access and follows the house rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.dags.isolated import parse_in_fresh_interpreter
from vidflow.config import REPO_ROOT

DAGS_DIR = REPO_ROOT / "dags"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # An unreachable metadata DB and a fresh interpreter: parsing must need neither a DB
    # nor modules some other test already imported.
    script = str(Path(__file__).with_name("dag_report.py"))
    return parse_in_fresh_interpreter(
        [script, str(DAGS_DIR)], tmp_path_factory.mktemp("airflow_home")
    )


@pytest.fixture(scope="module")
def unscheduled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    script = str(Path(__file__).with_name("dag_report.py"))
    return parse_in_fresh_interpreter(
        [script, str(DAGS_DIR)],
        tmp_path_factory.mktemp("airflow_home"),
        {"VIDFLOW_DAG_SCHEDULES": "false"},
    )


#: The DAGs that run on a clock (VIDFLOW_DAG_SCHEDULES switches these off).
TIMED = {
    "cdn_analytics": "CronDataIntervalTimetable",
    "platform_analytics": "CronDataIntervalTimetable",
    "recs_training": "CronTriggerTimetable",
    "upload_maintenance": "CronTriggerTimetable",
    "video_reconciliation": "DeltaTriggerTimetable",
}


def test_schedules_switched_off_leave_only_triggers_and_assets(
    report: dict[str, Any], unscheduled: dict[str, Any]
) -> None:
    scheduled = {d: dag["timetable"] for d, dag in report["dags"].items()}
    off = {d: dag["timetable"] for d, dag in unscheduled["dags"].items()}
    assert unscheduled["errors"] == {}
    assert {d: scheduled[d] for d in TIMED} == TIMED
    assert {d: off[d] for d in TIMED} == dict.fromkeys(TIMED, "NullTimetable")
    # Asset-triggered and manual DAGs do not depend on the switch.
    others = set(scheduled) - set(TIMED)
    assert {"video_processing", "recs_scoring", "platform_smoke"} <= others
    assert {d: off[d] for d in others} == {d: scheduled[d] for d in others}
    assert scheduled["video_processing"] == "AssetTriggeredTimetable"


def test_every_dag_file_imports(report: dict[str, Any]) -> None:
    assert report["errors"] == {}


def test_every_dag_file_defines_a_dag(report: dict[str, Any]) -> None:
    files = {d["file"] for d in report["dags"].values()}
    assert files == {p.name for p in DAGS_DIR.glob("*.py")}


def test_no_heavy_imports_at_parse_time(report: dict[str, Any]) -> None:
    offenders = {f: mods for f, mods in report["heavy_modules"].items() if mods}
    assert offenders == {}


def test_house_rules(report: dict[str, Any]) -> None:
    problems = []
    for dag_id, dag in report["dags"].items():
        if not dag["tags"]:
            problems.append(f"{dag_id}: no tags")
        if not dag["retries"]:
            problems.append(f"{dag_id}: default_args has no retries")
        if len(dag["doc_md"].strip()) < 40:
            problems.append(f"{dag_id}: doc_md missing or too short")
        if dag["start_date_tz"] in (None, "None"):
            problems.append(f"{dag_id}: start_date is not tz-aware")
        if dag["catchup"] is not False:
            problems.append(f"{dag_id}: catchup must be stated as False")
    assert problems == []


def test_platform_smoke_graph(report: dict[str, Any]) -> None:
    tasks = report["dags"]["platform_smoke"]["tasks"]
    assert tasks["delta_job"] == ["catalog", "mlflow", "object_store"]
    assert {t for t, upstream in tasks.items() if not upstream} == {
        "catalog",
        "mlflow",
        "object_store",
    }


def test_platform_analytics_graph(report: dict[str, Any]) -> None:
    dag = report["dags"]["platform_analytics"]
    assert dag["max_active_runs"] == 1
    assert dag["tasks"] == {
        "plan": [],
        "silver": ["plan"],
        "gate": ["plan", "silver"],
        "daily": ["gate", "plan"],
        "gold_daily": ["daily"],
        "catalog_sync": ["gold_daily"],
    }
