"""Gold -> catalog: watch_history and videos' view/like counts (absolute totals).

    spark-submit jobs/watch_catalog_sync.py --dates 2026-11-24[,...] [--region eu-west]
        [--lake DIR|s3a://...] [--summary PATH]

extract: the gold tables ``analytics/user_video_daily``, ``analytics/video_daily_stats`` and
``analytics/video_likers`` (all days); transform: for each user/video pair and each video
with a gold row on the run's days (in its region if given), its totals over ALL days and
regions (``vidflow.analytics.gold.user_video_totals`` / ``video_totals``), collected to the
driver (one row per touched key); load: ``vidflow.analytics.catalog_sync.sync_catalog``,
one transaction per catalog hash partition, values set, never incremented, so a re-run
writes the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from vidflow.analytics.catalog_sync import SyncSummary, sync_catalog, video_totals, watch_totals
from vidflow.analytics.gold import user_video_totals
from vidflow.analytics.gold import video_totals as gold_video_totals
from vidflow.analytics.payloads import DailyJobArgs
from vidflow.catalog.db import get_engine
from vidflow.config import Settings, get_settings
from vidflow.spark import get_spark, lake_path


def extract(spark: SparkSession, settings: Settings) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(user_video_daily, video_daily_stats, video_likers), every day."""
    read = spark.read.format("delta")
    return (
        read.load(lake_path(settings, "analytics", "user_video_daily")),
        read.load(lake_path(settings, "analytics", "video_daily_stats")),
        read.load(lake_path(settings, "analytics", "video_likers")),
    )


def run(
    spark: SparkSession, settings: Settings, dates: Sequence[date], region: str | None
) -> SyncSummary:
    user_video, video_stats, likers = extract(spark, settings)
    pairs = user_video_totals(user_video, dates, region).select(
        "user_id",
        "video_id",
        F.unix_micros("watched_at").alias("watched_at_micros"),
        "watch_duration_seconds",
    )
    videos = gold_video_totals(video_stats, likers, dates, region)
    watch, rejected_watch = watch_totals(r.asDict() for r in pairs.collect())
    counts, rejected_videos = video_totals(r.asDict() for r in videos.collect())
    return sync_catalog(
        get_engine(settings),
        watch,
        counts,
        dates=[d.isoformat() for d in dates],
        region=region,
        rejected=[*rejected_watch, *rejected_videos],
    )


def main(argv: list[str] | None = None) -> None:
    args = DailyJobArgs.parse(argv, __doc__)
    settings = get_settings()
    if args.lake:
        settings = settings.model_copy(update={"lake_uri": args.lake})
    spark = get_spark("watch_catalog_sync", settings)
    summary = run(spark, settings, args.dates, args.region)
    args.report("watch_catalog_sync", summary.to_xcom())


if __name__ == "__main__":
    main()
