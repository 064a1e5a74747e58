"""
### Platform smoke test

Proves the local platform works end to end: the catalog is migrated and sharded, the
object store takes a write, the MLflow server answers, and a tiny Spark job writes a
Delta partition through Airflow's Spark provider. `make demo` triggers it; so does the
integration suite. Safe to rerun: every step is keyed by the run and replaces its output.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task

from vidflow.orchestration.spark import VidflowSparkSubmitOperator, job_path


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=2,
    tags=["vidflow", "platform"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=10)},
    doc_md=__doc__,
)
def platform_smoke() -> None:
    @task
    def catalog() -> dict[str, object]:
        from vidflow.config import get_settings
        from vidflow.platform.smoke import as_dict, check_catalog

        return as_dict(check_catalog(get_settings()))

    @task
    def object_store(run_id: str | None = None) -> dict[str, str]:
        from vidflow.config import get_settings
        from vidflow.platform.smoke import check_object_store

        return check_object_store(get_settings(), run_id or "manual")

    @task
    def mlflow() -> str:
        from vidflow.config import get_settings
        from vidflow.platform.smoke import check_mlflow

        return check_mlflow(get_settings())

    delta = VidflowSparkSubmitOperator(
        task_id="delta_job",
        application=job_path("platform_smoke.py"),
        application_args=["--date", "{{ dag_run.run_after | ds }}"],
    )

    [catalog(), object_store(), mlflow()] >> delta


platform_smoke()
