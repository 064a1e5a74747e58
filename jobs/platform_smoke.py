"""Tiny Delta job proving Spark, Delta and the lake work end to end.

    spark-submit jobs/platform_smoke.py --date 2026-11-24   (see `make spark-submit`)

extract: a seeded synthetic batch of watch events for one date; transform: views and
watch time per region; load: Delta ``replaceWhere`` on that date, so a rerun replaces
its own partition instead of appending a duplicate.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from vidflow.config import get_settings
from vidflow.spark import get_spark, lake_path

REGIONS = ("eu", "us", "apac")


def extract(spark: SparkSession, day: date, rows: int = 600) -> DataFrame:
    regions = F.element_at(
        F.array(*[F.lit(r) for r in REGIONS]), (F.col("id") % len(REGIONS) + 1).cast("int")
    )
    return spark.range(rows).select(
        F.lit(day).alias("event_date"),
        regions.alias("region"),
        (F.col("id") % 17).alias("video_seq"),
        ((F.col("id") * 7) % 300).cast("double").alias("watch_seconds"),
    )


def views_by_region(events: DataFrame) -> DataFrame:
    return (
        events.select("event_date", "region", "watch_seconds")
        .groupBy("event_date", "region")
        .agg(F.count(F.lit(1)).alias("views"), F.sum("watch_seconds").alias("watch_seconds"))
        .select("event_date", "region", "views", "watch_seconds")
    )


def load(df: DataFrame, path: str, day: date) -> None:
    (
        df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"event_date = DATE'{day.isoformat()}'")
        .partitionBy("event_date", "region")
        .save(path)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    today = datetime.now(UTC).date()
    parser.add_argument("--date", type=date.fromisoformat, default=today)
    parser.add_argument("--table", default=None, help="Delta path; default: lake/smoke/views")
    args = parser.parse_args(argv)
    settings = get_settings()
    spark = get_spark("platform_smoke", settings)
    path = args.table or lake_path(settings, "smoke", "views_by_region")
    load(views_by_region(extract(spark, args.date)), path, args.date)
    written = spark.read.format("delta").load(path).where(F.col("event_date") == args.date)
    print(f"platform_smoke: {written.count()} region rows for {args.date} in {path}")


if __name__ == "__main__":
    main()
