"""The smoke DAG, triggered through the Airflow REST API v2 and run to success by the
running scheduler."""

from __future__ import annotations

from vidflow.airflow_api import AirflowClient
from vidflow.config import Settings
from vidflow.spark import lake_path


def test_smoke_dag_runs_to_success(airflow: AirflowClient, stack: Settings) -> None:
    airflow.wait_for_dag("platform_smoke")
    assert not [e for e in airflow.import_errors() if "platform_smoke" in e["filename"]]
    run_id = airflow.trigger("platform_smoke")
    run = airflow.wait_for_run("platform_smoke", run_id, timeout=600)
    states = {ti["task_id"]: ti["state"] for ti in airflow.task_instances("platform_smoke", run_id)}
    assert run["state"] == "success", states
    assert states == {
        "catalog": "success",
        "object_store": "success",
        "mlflow": "success",
        "delta_job": "success",
    }
    # The Spark task's Delta output for the run's date exists.
    day = run["run_after"][:10]
    table = lake_path(stack, "smoke", "views_by_region")
    assert (stack.state_dir / "lake").exists() and table.startswith(str(stack.state_dir))
    from pathlib import Path

    assert (Path(table) / f"event_date={day}").is_dir()
