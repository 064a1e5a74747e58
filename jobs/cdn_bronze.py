"""Edge log objects of one hour -> Delta ``cdn/cdn_requests`` + quarantine, behind a gate.

    spark-submit jobs/cdn_bronze.py --window run/window.json --summary run/bronze.json \\
        [--gate report]

extract: the log objects of every region's distribution named for the window's hour and
the ``late_hours`` before it (objects of an earlier hour can arrive after that hour's run;
lines of a request can sit in a later hour's file); transform:
:mod:`vidflow.cdn.bronze`; gate: the rules' Great Expectations suite (Data Docs under
``$VIDFLOW_STATE_DIR/gx/cdn_data_docs``); load:

* quarantine: ``replaceWhere`` on the listed file hours (and region): a re-run replaces
  its own rows;
* ``cdn_requests`` (partitioned by request_date, region), only when the gate passed:
  ``MERGE`` on ``request_id`` (x-edge-request-id): re-reading an object, or the same hour
  again, leaves the table as it was.

Exit status 3 when the gate fails (``--gate report``: only in the summary).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from vidflow.analytics.payloads import GateOutcome, finish_gated_job
from vidflow.analytics.quality import validate_batch
from vidflow.analytics.silver import object_key
from vidflow.cdn.bronze import (
    PARTITION_COLUMNS,
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    REQUESTS_SCHEMA,
    REQUESTS_TABLE,
    accepted_requests,
    check_lines,
    quarantined_lines,
    request_rules,
)
from vidflow.cdn.logformat import distribution_name, hour_prefix
from vidflow.cdn.payloads import BronzeSummary, CdnWindow
from vidflow.config import Settings, get_settings
from vidflow.spark import ensure_delta_table, get_spark, lake_path
from vidflow.storage import list_keys

T = TypeVar("T")


def log_object_keys(settings: Settings, window: CdnWindow) -> list[str]:
    prefixes = [
        hour_prefix(settings.cdn_log_prefix, distribution_name(region), hour)
        for region in window.regions
        for hour in window.file_hours
    ]
    return list_keys(settings, settings.bucket_cdn_logs, prefixes, ".gz")


def read_lines(spark: SparkSession, settings: Settings, keys: Sequence[str]) -> DataFrame:
    """One row per data line (``#`` headers and blank lines dropped)."""
    paths = [f"s3a://{settings.bucket_cdn_logs}/{key}" for key in keys]
    return (
        spark.read.text(paths)
        .select(
            F.col("value").alias("raw_line"),
            object_key(F.col("_metadata.file_path")).alias("source_key"),
        )
        .where(~F.col("raw_line").startswith("#") & (F.trim("raw_line") != ""))
    )


def merge_requests(table: DeltaTable, rows: DataFrame, dates: Sequence[str]) -> None:
    if not dates:
        return
    date_list = ", ".join(f"DATE'{d}'" for d in dates)
    (
        table.alias("t")
        .merge(
            rows.alias("s"),
            f"t.request_date IN ({date_list}) AND t.request_date = s.request_date "
            "AND t.region = s.region AND t.request_id = s.request_id",
        )
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def quarantine_predicate(window: CdnWindow) -> str:
    first, end = window.file_hours[0], window.end
    condition = (
        f"file_hour >= TIMESTAMP'{first.isoformat()}' AND file_hour < TIMESTAMP'{end.isoformat()}'"
    )
    return condition + (f" AND region = '{window.region}'" if window.region else "")


def run(
    spark: SparkSession, settings: Settings, window: CdnWindow, *, data_docs_dir: Path | None
) -> BronzeSummary:
    seconds: dict[str, float] = {}

    def timed(name: str, step: Callable[[], T]) -> T:
        began = time.monotonic()
        value = step()
        seconds[name] = round(time.monotonic() - began, 2)
        return value

    requests_path = lake_path(settings, "cdn", REQUESTS_TABLE)
    # From the first hour on, even one without a log object: the jobs after bronze then
    # read an empty table, not a path that does not exist.
    table = ensure_delta_table(spark, requests_path, REQUESTS_SCHEMA, PARTITION_COLUMNS)
    keys = timed("list", lambda: log_object_keys(settings, window))
    if not keys:
        return BronzeSummary(0, 0, 0, {}, GateOutcome(True, 0, 0, settings.cdn_max_bad_ratio))
    checked = check_lines(read_lines(spark, settings, keys)).persist()
    lines = timed("read", checked.count)
    rules = request_rules()
    gate = timed(
        "gate",
        lambda: validate_batch(
            checked.drop("parts"),
            rules,
            max_bad_ratio=settings.cdn_max_bad_ratio,
            data_docs_dir=data_docs_dir,
            run_name=f"cdn_requests {window.label}",
        ),
    )
    quarantine = quarantined_lines(checked)
    reasons = {r["reason"]: int(r["count"]) for r in quarantine.groupBy("reason").count().collect()}
    quarantine_path = lake_path(settings, "cdn", QUARANTINE_TABLE)
    ensure_delta_table(spark, quarantine_path, QUARANTINE_SCHEMA, PARTITION_COLUMNS)
    timed(
        "quarantine",
        lambda: (
            quarantine.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", quarantine_predicate(window))
            .partitionBy(*PARTITION_COLUMNS)
            .save(quarantine_path)
        ),
    )
    rows = accepted_requests(checked).persist()
    accepted = rows.count()
    if gate.passed:
        dates = [str(r.request_date) for r in rows.select("request_date").distinct().collect()]
        timed("merge", lambda: merge_requests(table, rows, sorted(dates)))
    rows.unpersist()
    checked.unpersist()
    return BronzeSummary(
        objects=len(keys),
        lines=lines,
        accepted=accepted,
        quarantined=reasons,
        gate=gate,
        published=gate.passed,
        seconds=seconds,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--window", type=Path, required=True, help="the run's window JSON")
    parser.add_argument("--summary", type=Path, required=True)
    parser.add_argument("--gate", choices=("fail", "report"), default="fail")
    args = parser.parse_args(argv)
    settings = get_settings()
    window = CdnWindow.read(args.window)
    spark = get_spark("cdn_bronze", settings)
    summary = run(spark, settings, window, data_docs_dir=settings.state_dir / "gx" / "cdn_docs")
    return finish_gated_job(
        "cdn_bronze",
        summary.to_xcom(),
        summary.gate,
        window_label=window.label,
        summary_path=args.summary,
        fail_on_gate=args.gate == "fail",
    )


if __name__ == "__main__":
    raise SystemExit(main())
