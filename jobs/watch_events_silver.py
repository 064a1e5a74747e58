"""Watch events of some receive hours -> silver ``watch_events`` + quarantine, behind the
data-quality gate.

    spark-submit jobs/watch_events_silver.py --start 2026-11-24T10:00:00+00:00 \\
        --end 2026-11-24T11:00:00+00:00 [--region eu-west] [--summary run.json]

extract: the NDJSON objects of the receive hours ``[start, end)`` in the events bucket
(s3a://), one row per line with its object key, and the catalog's ids of the batch's
videos; transform: :mod:`vidflow.analytics.silver` with the rules of
:mod:`vidflow.analytics.quality`; gate: the rules' Great Expectations suite on the batch
(Data Docs under ``$VIDFLOW_STATE_DIR/gx/data_docs``); load:

* quarantine: ``replaceWhere`` on the window's receive hours (and region), so a re-run
  replaces its own rows, and a line that now passes (its video reached the catalog) leaves;
* silver, only when the gate passed: ``MERGE`` on event_id, inserting new events and
  replacing a stored copy only by one received earlier, so re-running any hour, in any
  order, leaves the same table.

Exit status 3 when the gate fails (``--gate report`` writes the verdict to the summary and
exits 0: the DAG's ``gate`` task fails the run with the message instead of retrying Spark).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sqlalchemy import text

from vidflow.analytics import QUARANTINE_TABLE, SILVER_TABLE
from vidflow.analytics.payloads import (
    AnalyticsWindow,
    GateOutcome,
    SilverSummary,
    finish_gated_job,
)
from vidflow.analytics.quality import UUID_PATTERN, event_rules, validate_batch
from vidflow.analytics.silver import (
    PARTITION_COLUMNS,
    QUARANTINE_SCHEMA,
    SILVER_SCHEMA,
    accepted_events,
    check_events,
    clustered,
    dedupe_events,
    mark_known_videos,
    object_key,
    only_region,
    parse_lines,
    quarantined_lines,
)
from vidflow.catalog.db import get_engine
from vidflow.config import Settings, get_settings
from vidflow.events import hour_prefix
from vidflow.regions import region as known_region
from vidflow.spark import ensure_delta_table, get_spark, lake_path
from vidflow.storage import list_keys

T = TypeVar("T")


# --- extract ---------------------------------------------------------------------------------
def event_object_keys(settings: Settings, hours: Sequence[datetime]) -> list[str]:
    """Keys of the event objects received in ``hours``."""
    prefixes = [hour_prefix(hour) for hour in hours]
    return list_keys(settings, settings.bucket_events, prefixes, ".ndjson")


def read_lines(spark: SparkSession, settings: Settings, keys: Sequence[str]) -> DataFrame:
    """One row per line of the objects: ``raw_line``, ``source_key``."""
    if not keys:
        return spark.createDataFrame([], "raw_line string, source_key string")
    paths = [f"s3a://{settings.bucket_events}/{key}" for key in keys]
    return spark.read.text(paths).select(
        F.col("value").alias("raw_line"),
        object_key(F.col("_metadata.file_path")).alias("source_key"),
    )


def known_videos(spark: SparkSession, settings: Settings, parsed: DataFrame) -> DataFrame:
    """The catalog's ids among the batch's video ids (videos of any status)."""
    candidates = [
        r.video_id
        for r in parsed.where(F.col("video_id").rlike(UUID_PATTERN))
        .select("video_id")
        .distinct()
        .collect()
    ]
    found: list[tuple[str]] = []
    with get_engine(settings).connect() as conn:
        for start in range(0, len(candidates), 5000):
            chunk = candidates[start : start + 5000]
            rows = conn.execute(
                text(
                    "SELECT video_id::text FROM videos WHERE video_id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": chunk},
            )
            found += [(str(row[0]),) for row in rows]
    return spark.createDataFrame(found, "video_id string")


# --- load ------------------------------------------------------------------------------------
def _date_list(dates: Sequence[date]) -> str:
    return ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(dates))


def merge_silver(table: DeltaTable, events: DataFrame, dates: Sequence[date]) -> None:
    """Insert new event_ids; a stored copy is replaced only by one received earlier. The
    literal date list prunes the MERGE to the batch's partitions (a copy of an event has
    the same event time, so the same event_date). The source goes in :func:`clustered`:
    the files the MERGE inserts keep that order, one sorted run each (a file the MERGE
    rewrites for a re-sent event loses it; only gold's speed depends on the order)."""
    if not dates:
        return
    (
        table.alias("t")
        .merge(
            clustered(events).alias("s"),
            f"t.event_date IN ({_date_list(dates)}) AND t.event_date = s.event_date "
            "AND t.event_id = s.event_id",
        )
        .whenMatchedUpdateAll(condition="s.received_at < t.received_at")
        .whenNotMatchedInsertAll()
        .execute()
    )


def quarantine_predicate(window: AnalyticsWindow) -> str:
    condition = (
        f"ingest_hour >= TIMESTAMP'{window.start.isoformat()}' "
        f"AND ingest_hour < TIMESTAMP'{window.end.isoformat()}'"
    )
    return condition + (f" AND region = '{window.region}'" if window.region else "")


def replace_quarantine(path: str, rows: DataFrame, window: AnalyticsWindow) -> None:
    (
        rows.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", quarantine_predicate(window))
        .partitionBy(*PARTITION_COLUMNS)
        .save(path)
    )


def days_touched(
    spark: SparkSession, path: str, window: AnalyticsWindow, since: datetime, lateness_hours: int
) -> tuple[date, ...]:
    """Event dates of silver rows received in ``[since, window.end)`` (in the region)."""
    oldest = (since - timedelta(hours=lateness_hours)).date()
    rows = (
        spark.read.format("delta")
        .load(path)
        .where(
            (F.col("event_date") >= F.lit(oldest))
            & (F.col("ingest_hour") >= F.lit(since))
            & (F.col("ingest_hour") < F.lit(window.end))
        )
    )
    if window.region:
        rows = rows.where(F.col("region") == window.region)
    return tuple(sorted(r.event_date for r in rows.select("event_date").distinct().collect()))


# --- the job ---------------------------------------------------------------------------------
def run(
    spark: SparkSession,
    settings: Settings,
    window: AnalyticsWindow,
    *,
    data_docs_dir: Path | None = None,
) -> SilverSummary:
    seconds: dict[str, float] = {}

    def timed(name: str, step: Callable[[], T]) -> T:
        began = time.monotonic()
        value = step()
        seconds[name] = round(time.monotonic() - began, 2)
        return value

    rules = event_rules(
        max_clock_skew_seconds=settings.events_max_clock_skew_seconds,
        max_lateness_hours=settings.events_max_lateness_hours,
    )
    quarantine_path = lake_path(settings, "analytics", QUARANTINE_TABLE)
    silver_path = lake_path(settings, "analytics", SILVER_TABLE)
    keys = timed("list", lambda: event_object_keys(settings, window.hours))
    if not keys:  # nothing arrived: no table to touch (an idle hour costs one listing)
        touched: tuple[date, ...] = ()
        if window.touched_since is not None and DeltaTable.isDeltaTable(spark, silver_path):
            touched = days_touched(
                spark, silver_path, window, window.touched_since, settings.events_max_lateness_hours
            )
        return SilverSummary(
            start=window.start,
            end=window.end,
            region=window.region,
            objects=0,
            rows_read=0,
            accepted=0,
            duplicates=0,
            quarantined={},
            event_dates=(),
            days_touched=touched,
            gate=GateOutcome(True, 0, 0, settings.analytics_max_bad_ratio),
            seconds=seconds,
        )
    lines = read_lines(spark, settings, keys).persist()
    rows_read = timed("read", lines.count)
    parsed = parse_lines(lines)
    videos = timed("catalog", lambda: known_videos(spark, settings, parsed))
    checked = only_region(check_events(mark_known_videos(parsed, videos), rules), window.region)
    checked = checked.persist()
    batch_rows = checked.count()

    if batch_rows:
        gate = timed(
            "gate",
            lambda: validate_batch(
                checked,
                rules,
                max_bad_ratio=settings.analytics_max_bad_ratio,
                data_docs_dir=data_docs_dir,
                run_name=f"watch_events {window.label}",
            ),
        )
    else:
        gate = GateOutcome(True, 0, 0, settings.analytics_max_bad_ratio)

    quarantine = quarantined_lines(checked)
    reasons = {r["reason"]: int(r["count"]) for r in quarantine.groupBy("reason").count().collect()}
    ensure_delta_table(spark, quarantine_path, QUARANTINE_SCHEMA, PARTITION_COLUMNS)
    timed("quarantine", lambda: replace_quarantine(quarantine_path, quarantine, window))

    accepted = accepted_events(checked)
    events = dedupe_events(accepted).persist()
    accepted_rows, unique_rows = accepted.count(), events.count()
    event_dates = tuple(
        sorted(r.event_date for r in events.select("event_date").distinct().collect())
    )
    table = ensure_delta_table(spark, silver_path, SILVER_SCHEMA, PARTITION_COLUMNS)
    if gate.passed:
        timed("silver", lambda: merge_silver(table, events, event_dates))
    touched = ()
    if window.touched_since is not None:
        since = window.touched_since
        touched = days_touched(
            spark, silver_path, window, since, settings.events_max_lateness_hours
        )
    for frame in (lines, checked, events):
        frame.unpersist()
    assert accepted_rows + sum(reasons.values()) == batch_rows, "a row was lost"
    return SilverSummary(
        start=window.start,
        end=window.end,
        region=window.region,
        objects=len(keys),
        rows_read=rows_read,
        accepted=accepted_rows,
        duplicates=accepted_rows - unique_rows,
        quarantined=reasons,
        event_dates=event_dates,
        days_touched=touched,
        gate=gate,
        published=gate.passed,
        seconds=seconds,
    )


def _moment(value: str) -> datetime | None:
    """An ISO-8601 time with a zone; an empty value (a template's "none") is None."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value} needs a time zone (e.g. +00:00)")
    return moment


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--start", type=_moment, required=True)
    parser.add_argument("--end", type=_moment, required=True)
    parser.add_argument("--region", default="", help="one region; empty: all")
    parser.add_argument("--summary", type=Path, default=None, help="write the summary here")
    parser.add_argument(
        "--touched-since",
        type=_moment,
        default=None,
        help="also report the event dates of silver rows received since then",
    )
    parser.add_argument(
        "--gate",
        choices=("fail", "report"),
        default="fail",
        help="fail: exit 3 when the gate fails; report: only record it in the summary",
    )
    args = parser.parse_args(argv)
    if args.start is None or args.end is None or args.end <= args.start:
        parser.error("--start and --end must be times with a zone, start before end")
    if args.region:
        try:
            known_region(args.region)
        except ValueError as exc:
            parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = get_settings()
    window = AnalyticsWindow(
        start=args.start,
        end=args.end,
        region=args.region or None,
        touched_since=args.touched_since,
    )
    spark = get_spark("watch_events_silver", settings)
    summary = run(spark, settings, window, data_docs_dir=settings.state_dir / "gx" / "data_docs")
    return finish_gated_job(
        "watch_events_silver",
        summary.to_xcom(),
        summary.gate,
        window_label=window.label,
        summary_path=args.summary,
        fail_on_gate=args.gate == "fail",
    )


if __name__ == "__main__":
    raise SystemExit(main())
