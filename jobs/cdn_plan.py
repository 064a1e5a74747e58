"""``cdn_requests`` of one hour -> silver aggregates, decayed popularity and each edge's
warm plan for the next hour.

    spark-submit jobs/cdn_plan.py --window run/window.json --plans run/plans.json

* ``cdn/cdn_object_hourly``: per hour, region and object: requests, bytes sent, edge hits
  (Hit, RefreshHit), shield hits (misses the shield answered: OriginShieldHit), origin
  fetches and egress, hit ratio per tier; ``cdn/cdn_video_hourly``: per hour, region and
  video: plays (master playlist requests), requests and bytes. ``replaceWhere`` the hour.
* ``cdn/cdn_popularity``: at the window's end, per region, every object's and video's
  decayed score ``sum 2^-(age / half_life)`` over the last ``lookback_hours`` and the rate
  per hour it stands for (:mod:`vidflow.cdn.popularity`). ``replaceWhere`` as_of.
* ``cdn/cdn_warm_plan``: per region, :func:`vidflow.cdn.warm.plan_warm` on those scores
  with the run's byte budget; also written to ``--plans`` (JSON) for the prefetch task.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from vidflow.cdn.bronze import read_requests
from vidflow.cdn.payloads import CdnWindow
from vidflow.cdn.popularity import ObjectStats
from vidflow.cdn.prefetch import PREFETCH_USER_AGENT
from vidflow.cdn.warm import WarmPlan, admission_list, plan_warm
from vidflow.config import Settings, get_settings
from vidflow.spark import LakeTableMissing, get_spark, lake_path


def _between(column: str, start: object, end: object) -> Column:
    return (F.col(column) >= F.lit(start)) & (F.col(column) < F.lit(end))


def object_hourly(requests: DataFrame) -> DataFrame:
    edge_hit = F.col("result_type").isin("Hit", "RefreshHit")
    shield_hit = ~edge_hit & (F.col("detailed_result_type") == "OriginShieldHit")
    origin = ~edge_hit & ~shield_hit & (F.col("result_type") == "Miss")
    out = requests.groupBy("request_hour", "region", "uri_stem").agg(
        F.first("video_id", ignorenulls=True).alias("video_id"),
        F.first("object_kind").alias("object_kind"),
        F.count(F.lit(1)).alias("requests"),
        F.sum("sc_bytes").alias("bytes_sent"),
        F.max("object_bytes").alias("object_bytes"),
        F.sum(edge_hit.cast("int")).alias("edge_hits"),
        F.sum(shield_hit.cast("int")).alias("shield_hits"),
        F.sum(origin.cast("int")).alias("origin_fetches"),
        F.sum(F.when(origin, F.col("object_bytes")).otherwise(0)).alias("origin_bytes"),
    )
    misses = F.col("requests") - F.col("edge_hits")
    return out.select(
        F.to_date("request_hour").alias("request_date"),
        "*",
        (F.col("edge_hits") / F.col("requests")).alias("edge_hit_ratio"),
        F.when(misses > 0, F.col("shield_hits") / misses).alias("shield_hit_ratio"),
    )


def video_hourly(requests: DataFrame) -> DataFrame:
    return (
        requests.where(F.col("video_id").isNotNull())
        .groupBy("request_hour", "region", "video_id")
        .agg(
            F.sum((F.col("object_kind") == "master").cast("int")).alias("plays"),
            F.count(F.lit(1)).alias("requests"),
            F.sum("sc_bytes").alias("bytes_sent"),
        )
        .select(F.to_date("request_hour").alias("request_date"), "*")
    )


def popularity(requests: DataFrame, window: CdnWindow) -> DataFrame:
    """Decayed scores at ``window.end``: level ``object`` (id = path) and ``video``."""
    cacheable = requests.where(
        (F.col("sc_status").isin(200, 206)) & (F.col("result_type") != "Error")
    )
    age = F.unix_timestamp(F.lit(window.end)) - F.unix_timestamp("request_ts")
    weighted = cacheable.withColumn(
        "w", F.pow(F.lit(2.0), -age / F.lit(window.half_life_hours * 3600.0))
    )
    objects = weighted.groupBy("region", "uri_stem").agg(
        F.sum("w").alias("score"),
        F.max("object_bytes").alias("size"),
        F.count(F.lit(1)).alias("requests"),
    )
    videos = (
        weighted.where(F.col("object_kind") == "master")
        .groupBy("region", "video_id")
        .agg(
            F.sum("w").alias("score"),
            F.lit(None).cast("bigint").alias("size"),
            F.count(F.lit(1)).alias("requests"),
        )
    )
    rate = F.col("score") * F.lit(0.6931471805599453 / window.half_life_hours)
    return (
        objects.select(F.lit("object").alias("level"), F.col("uri_stem").alias("id"), "*")
        .drop("uri_stem")
        .unionByName(
            videos.select(F.lit("video").alias("level"), F.col("video_id").alias("id"), "*").drop(
                "video_id"
            )
        )
        .select(
            F.lit(window.end).alias("as_of"),
            F.to_date(F.lit(window.end)).alias("as_of_date"),
            "region",
            "level",
            "id",
            "score",
            rate.alias("rate_per_hour"),
            "size",
            "requests",
        )
    )


def replace(frame: DataFrame, path: str, predicate: str, partitions: tuple[str, ...]) -> None:
    (
        frame.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .partitionBy(*partitions)
        .save(path)
    )


def _scope(window: CdnWindow, condition: str) -> str:
    return condition + (f" AND region = '{window.region}'" if window.region else "")


def run(spark: SparkSession, settings: Settings, window: CdnWindow) -> list[WarmPlan]:
    requests = read_requests(spark, settings)
    # Pushes are not demand (see vidflow.cdn.prefetch).
    requests = requests.where(
        ~F.coalesce(F.col("user_agent"), F.lit("")).startswith(PREFETCH_USER_AGENT)
    )
    if window.region:
        requests = requests.where(F.col("region") == window.region)
    hour = requests.where(_between("request_ts", window.start, window.end))
    hour_predicate = _scope(
        window,
        f"request_hour >= TIMESTAMP'{window.start.isoformat()}' "
        f"AND request_hour < TIMESTAMP'{window.end.isoformat()}'",
    )
    parts = ("request_date", "region")
    replace(
        object_hourly(hour), lake_path(settings, "cdn", "cdn_object_hourly"), hour_predicate, parts
    )
    replace(
        video_hourly(hour), lake_path(settings, "cdn", "cdn_video_hourly"), hour_predicate, parts
    )

    lookback = window.end.timestamp() - window.lookback_hours * 3600
    recent = requests.where(
        (F.col("request_date") >= F.to_date(F.lit(window.start)) - 1)
        & (F.unix_timestamp("request_ts") >= F.lit(lookback))
        & (F.col("request_ts") < F.lit(window.end))
    )
    scores = popularity(recent, window).persist()
    as_of = _scope(window, f"as_of = TIMESTAMP'{window.end.isoformat()}'")
    replace(scores, lake_path(settings, "cdn", "cdn_popularity"), as_of, ("as_of_date", "region"))

    plans = []
    rows = scores.where(F.col("level") == "object").collect()
    for region in window.regions:
        stats = {
            r["id"]: ObjectStats(
                r["id"], int(r["size"] or 0), float(r["score"]), int(r["requests"])
            )
            for r in rows
            if r["region"] == region
        }
        plan = plan_warm(
            region,
            stats,
            budget_bytes=window.byte_budget,
            half_life_hours=window.half_life_hours,
        )
        # Only the plan of the hour about to start changes what a live edge admits: a
        # backfilled hour's list would be stale.
        if settings.cdn_edge_admit_threshold > 0 and is_current(window):
            admit = admission_list(
                stats,
                half_life_hours=window.half_life_hours,
                threshold=settings.cdn_edge_admit_threshold,
                plan=plan,
            )
            plan = dataclasses.replace(plan, admit=tuple(sorted(admit)))
        plans.append(plan)
    scores.unpersist()
    plan_rows = [
        (window.end, window.end.date(), p.edge, o.rank, o.key, o.size, o.expected_requests)
        for p in plans
        for o in p.objects
    ]
    frame = spark.createDataFrame(
        plan_rows,
        "as_of timestamp, as_of_date date, region string, rank int, key string, size bigint, "
        "expected_requests double",
    )
    replace(frame, lake_path(settings, "cdn", "cdn_warm_plan"), as_of, ("as_of_date", "region"))
    return plans


def is_current(window: CdnWindow, *, now: datetime | None = None) -> bool:
    """Whether the window's end (the plan's hour) is within an hour of now."""
    moment = now or datetime.now(UTC)
    return abs((window.end - moment).total_seconds()) <= 3600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--window", type=Path, required=True)
    parser.add_argument("--plans", type=Path, required=True, help="write the plans here")
    args = parser.parse_args(argv)
    settings = get_settings()
    window = CdnWindow.read(args.window)
    try:
        plans = run(get_spark("cdn_plan", settings), settings, window)
    except LakeTableMissing as missing:
        print(f"cdn_plan: {missing}", file=sys.stderr)
        return 2
    args.plans.parent.mkdir(parents=True, exist_ok=True)
    args.plans.write_text(json.dumps([p.to_xcom() for p in plans]))
    for p in plans:
        print(f"warm plan {p.edge}: {len(p.objects)} objects, {p.total_bytes} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
