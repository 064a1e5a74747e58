"""Daily gold aggregates of the watch events (see ``vidflow.analytics.gold``).

    spark-submit jobs/watch_gold_daily.py --dates 2026-11-24[,2026-11-25] [--region eu-west]
        [--lake DIR|s3a://...] [--summary PATH]

extract: silver ``analytics/watch_events`` of the requested days and the day before each
(context for sessions crossing midnight), in the region if one is given; transform: the
pure transforms of ``vidflow.analytics.gold``; load: ``video_daily_stats``,
``user_video_daily`` and ``video_likers`` with Delta ``replaceWhere`` on exactly the
requested (event_date[, region]) partitions, so a re-run replaces its rows instead of
appending, and a day that lost all its events is emptied. The three loads run at once
(``load_all``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from vidflow.analytics.gold import (
    SILVER_COLUMNS,
    GoldSummary,
    context_dates,
    credited_watch_seconds,
    replace_where,
    session_video_daily,
    user_video_daily,
    video_daily_stats,
    video_likers,
)
from vidflow.analytics.payloads import DailyJobArgs
from vidflow.config import Settings, get_settings
from vidflow.spark import get_spark, lake_path


@dataclass(frozen=True)
class GoldPaths:
    silver: str
    video_daily_stats: str
    user_video_daily: str
    video_likers: str

    @classmethod
    def of(cls, settings: Settings) -> GoldPaths:
        return cls(
            silver=lake_path(settings, "analytics", "watch_events"),
            video_daily_stats=lake_path(settings, "analytics", "video_daily_stats"),
            user_video_daily=lake_path(settings, "analytics", "user_video_daily"),
            video_likers=lake_path(settings, "analytics", "video_likers"),
        )


def extract(spark: SparkSession, path: str, dates: Sequence[date], region: str | None) -> DataFrame:
    """Silver events of ``dates`` and the day before each (partition-pruned)."""
    events = spark.read.format("delta").load(path)
    wanted = F.col("event_date").isin(*context_dates(dates))
    if region:
        wanted = wanted & (F.col("region") == region)
    return events.where(wanted).select(*SILVER_COLUMNS)


def transform(events: DataFrame, dates: Sequence[date]) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(video_daily_stats, user_video_daily, video_likers) of ``dates``, all three derived
    from one per-session frame, cached and materialised here: the scan, shuffle and window
    over the events (nearly all the work) run once."""
    sessions = session_video_daily(credited_watch_seconds(events), dates).persist()
    sessions.count()
    return video_daily_stats(sessions), user_video_daily(sessions), video_likers(sessions)


def load(frame: DataFrame, path: str, dates: Sequence[date], region: str | None) -> int:
    """Replace exactly the run's partitions; returns the rows written (counted as they
    pass, by an observation: reading them back from the table's history would cost a
    log read and a Spark job per table)."""
    written = Observation()
    (
        frame.observe(written, F.count(F.lit(1)).alias("rows"))
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", replace_where(dates, region))
        .partitionBy("event_date", "region")
        .save(path)
    )
    return int(written.get["rows"])


def load_all(
    writes: Sequence[tuple[DataFrame, str]], dates: Sequence[date], region: str | None
) -> list[int]:
    """Every ``(frame, table path)`` loaded at the same time, one driver thread each.

    The frames are small aggregates of the cached sessions, so a load is mostly Delta's
    fixed cost on the driver (reading the log, the replaceWhere file scan, the commit and
    its history): independent tables, no conflict, so the three overlap instead of
    queueing. Rows written, in order; the first failure is raised.
    """
    with ThreadPoolExecutor(max_workers=len(writes), thread_name_prefix="gold-load") as pool:
        futures = [pool.submit(load, frame, path, dates, region) for frame, path in writes]
        return [future.result() for future in futures]


def run(
    spark: SparkSession, settings: Settings, dates: Sequence[date], region: str | None
) -> GoldSummary:
    paths = GoldPaths.of(settings)
    video_stats, user_video, likers = transform(extract(spark, paths.silver, dates, region), dates)
    try:
        stats_rows, user_rows, likers_rows = load_all(
            [
                (video_stats, paths.video_daily_stats),
                (user_video, paths.user_video_daily),
                (likers, paths.video_likers),
            ],
            dates,
            region,
        )
    finally:
        spark.catalog.clearCache()
    return GoldSummary(
        dates=tuple(d.isoformat() for d in dates),
        region=region,
        video_daily_stats_rows=stats_rows,
        user_video_daily_rows=user_rows,
        video_likers_rows=likers_rows,
    )


def main(argv: list[str] | None = None) -> None:
    args = DailyJobArgs.parse(argv, __doc__)
    settings = get_settings()
    if args.lake:
        settings = settings.model_copy(update={"lake_uri": args.lake})
    spark = get_spark("watch_gold_daily", settings)
    summary = run(spark, settings, args.dates, args.region)
    args.report("watch_gold_daily", summary.to_xcom())


if __name__ == "__main__":
    main()
