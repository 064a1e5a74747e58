"""Spark + Delta round trips on the local lake and on s3a:// against the S3 endpoint,
and a job run through spark-submit."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from jobs.platform_smoke import extract, load, views_by_region
from vidflow.config import REPO_ROOT, Settings
from vidflow.spark import get_spark, lake_path, submit_command
from vidflow.storage import s3_client


def _round_trip(spark: Any, path: str) -> None:
    day = date(2026, 11, 24)
    frame = views_by_region(extract(spark, day, rows=90))
    load(frame, path, day)
    load(frame, path, day)  # a rerun replaces its partition instead of appending
    back = spark.read.format("delta").load(path)
    assert back.count() == 3
    assert back.agg(F.sum("views")).first()[0] == 90
    table = DeltaTable.forPath(spark, path)
    assert [r.operation for r in table.history().collect()] == ["WRITE", "WRITE"]
    # MERGE, the platform's other idempotent load
    updates = spark.createDataFrame(
        [(day, "eu", 1000, 1.0)], "event_date date, region string, views long, watch_seconds double"
    )
    (
        table.alias("t")
        .merge(updates.alias("u"), "t.event_date = u.event_date AND t.region = u.region")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )
    eu = spark.read.format("delta").load(path).where("region = 'eu'").first()
    assert eu.views == 1000


def test_delta_round_trip_on_local_lake(spark: Any, tmp_path: Path) -> None:
    _round_trip(spark, str(tmp_path / "views"))


def test_delta_round_trip_on_s3a(spark: Any, stack: Settings, unique: str) -> None:
    s3_settings = stack.model_copy(update={"lake_uri": f"s3a://{stack.bucket_lake}/tests"})
    session = get_spark("vidflow-tests", s3_settings)
    path = lake_path(s3_settings, unique, "views")
    _round_trip(session, path)
    keys = [
        o["Key"]
        for o in s3_client(stack).list_objects_v2(
            Bucket=stack.bucket_lake, Prefix=f"tests/{unique}/views/"
        )["Contents"]
    ]
    assert any(k.endswith(".parquet") for k in keys)
    assert any("/_delta_log/" in k and k.endswith(".json") for k in keys)


def test_job_runs_through_spark_submit(stack: Settings, tmp_path: Path) -> None:
    table = tmp_path / "smoke"
    cmd = submit_command(
        str(REPO_ROOT / "jobs" / "platform_smoke.py"),
        ["--date", "2026-11-23", "--table", str(table)],
        stack,
    )
    bin_dir = Path(sys.executable).parent
    cmd[0] = str(bin_dir / "spark-submit")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYSPARK_PYTHON": sys.executable}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "platform_smoke: 3 region rows for 2026-11-23" in result.stdout
    assert (table / "_delta_log" / "00000000000000000000.json").exists()
    assert (table / "event_date=2026-11-23").is_dir()
