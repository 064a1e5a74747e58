"""Run a Spark job in ``jobs/`` from a DAG through Airflow's Spark provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from vidflow.config import REPO_ROOT, get_settings
from vidflow.spark import public_submit_conf, spark_jars

JOBS_DIR = REPO_ROOT / "jobs"


def job_path(name: str) -> str:
    """Absolute path of a job entry point, e.g. ``job_path("platform_smoke.py")``."""
    return str(JOBS_DIR / name)


class VidflowSparkSubmitOperator(SparkSubmitOperator):
    """``SparkSubmitOperator`` that takes jars and Spark settings from vidflow's settings
    when the task runs (never at DAG parse time). Credentials are not put on the
    command line: the job's session factory sets them inside the driver."""

    def __init__(self, *, application: str, conn_id: str = "spark_default", **kwargs: Any):
        super().__init__(application=application, conn_id=conn_id, **kwargs)

    def execute(self, context: Any) -> None:
        settings = get_settings()
        self.conf = {**public_submit_conf(settings), **(self.conf or {})}
        self.jars = ",".join(spark_jars(settings))
        self.name = self.name or Path(self.application).stem
        super().execute(context)
