"""Replay evaluation of one hour: each edge's actual requests of the window against LRU
(the edge's cache size, no warming), LRU warmed by the plan made for this hour, and
Belady (:mod:`vidflow.cdn.replay`), into Delta ``cdn/cdn_replay`` and MLflow.

    spark-submit jobs/cdn_replay.py --window run/window.json --cache-bytes 256m \\
        [--summary run/replay.json] [--no-mlflow]

The plan is the one ``cdn_warm_plan`` holds for ``as_of = window.start`` (what the
previous hour's run planned and pushed); when there is none (the first hour, or a
backfill), it is planned now from the same history with the same function, and the row
says ``plan_source = replanned``. History is the edge's requests of the
``lookback_hours`` before the window. With ``cdn_edge_admit_threshold`` > 0 the edges run
an admission list, and a fourth policy ``admitted`` (the list made from the same history,
then the pushes) is replayed; its ``gap_share`` is the share the list and the warming
close together. Rows: one per hour, region and policy
(``replaceWhere`` the hour: a re-run gives the same rows). MLflow: experiment
``cdn_warming``, one run per edge (``edge-<region>``), metrics stepped by the hour.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from vidflow.cdn.bronze import read_requests
from vidflow.cdn.payloads import CdnWindow
from vidflow.cdn.popularity import Request, object_scores
from vidflow.cdn.prefetch import PREFETCH_USER_AGENT
from vidflow.cdn.replay import EdgeReplay, _size, replay_edge
from vidflow.cdn.warm import PlannedObject, WarmPlan, admission_list, plan_warm
from vidflow.config import Settings, get_settings
from vidflow.spark import LakeTableMissing, get_spark, lake_path

EXPERIMENT = "cdn_warming"


def edge_requests(spark: SparkSession, settings: Settings, window: CdnWindow) -> list[Request]:
    start = window.start.timestamp() - window.lookback_hours * 3600
    rows = (
        read_requests(spark, settings)
        .where(
            (F.col("request_date") >= F.to_date(F.lit(window.start)) - 1)
            & (F.unix_timestamp("request_ts") >= F.lit(start))
            & (F.col("request_ts") < F.lit(window.end))
            & F.col("sc_status").isin(200, 206)
            & (F.col("result_type") != "Error")
            & F.col("region").isin(*window.regions)
            & ~F.coalesce(F.col("user_agent"), F.lit("")).startswith(PREFETCH_USER_AGENT)
        )
        .select(
            F.unix_timestamp("request_ts").alias("ts"),
            "region",
            "uri_stem",
            "object_bytes",
            "request_id",
        )
        .orderBy("ts", "request_id")
        .collect()
    )
    return [Request(float(r.ts), r.region, r.uri_stem, int(r.object_bytes)) for r in rows]


def stored_plan(
    spark: SparkSession, settings: Settings, window: CdnWindow, region: str
) -> WarmPlan | None:
    path = lake_path(settings, "cdn", "cdn_warm_plan")
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    rows = (
        spark.read.format("delta")
        .load(path)
        .where((F.col("as_of") == F.lit(window.start)) & (F.col("region") == region))
        .collect()
    )
    if not rows:
        return None
    objects = tuple(
        PlannedObject(r.key, int(r.size), float(r.expected_requests), int(r.rank))
        for r in sorted(rows, key=lambda r: r.rank)
    )
    return WarmPlan(region, window.byte_budget, objects)


def run(
    spark: SparkSession, settings: Settings, window: CdnWindow, cache_bytes: int
) -> list[tuple[EdgeReplay, str]]:
    requests = edge_requests(spark, settings, window)
    t0 = window.start.timestamp()
    results = []
    for region in window.regions:
        past = [r for r in requests if r.edge == region and r.ts < t0]
        upcoming = [r for r in requests if r.edge == region and r.ts >= t0]
        if not upcoming:
            continue
        plan = stored_plan(spark, settings, window, region)
        source = "stored"
        stats = object_scores(past, as_of=t0, half_life_hours=window.half_life_hours)
        if plan is None:
            plan = plan_warm(
                region,
                stats,
                budget_bytes=window.byte_budget,
                half_life_hours=window.half_life_hours,
            )
            source = "replanned"
        admit = None
        if settings.cdn_edge_admit_threshold > 0:
            admit = admission_list(
                stats,
                half_life_hours=window.half_life_hours,
                threshold=settings.cdn_edge_admit_threshold,
                plan=plan,
            )
        results.append((replay_edge(past, upcoming, plan, cache_bytes, admit), source))
    rows = []
    for result, source in results:
        policies = [("lru", result.lru), ("warmed", result.warmed), ("belady", result.belady)]
        if result.admitted is not None:
            policies.append(("admitted", result.admitted))
        for policy, counted in policies:
            rows.append(
                (
                    window.start,
                    window.start.date(),
                    result.edge,
                    policy,
                    result.cache_bytes,
                    counted.requests,
                    counted.hits,
                    counted.bytes,
                    counted.hit_bytes,
                    counted.byte_hit_ratio,
                    counted.object_hit_ratio,
                    counted.origin_bytes,
                    result.admitted_gap_share if policy == "admitted" else result.gap_share,
                    result.plan_objects,
                    result.plan_bytes,
                    source,
                )
            )
    frame = spark.createDataFrame(
        rows,
        "hour timestamp, hour_date date, region string, policy string, cache_bytes bigint, "
        "requests bigint, hits bigint, bytes bigint, hit_bytes bigint, byte_hit_ratio double, "
        "object_hit_ratio double, origin_bytes bigint, gap_share double, plan_objects int, "
        "plan_bytes bigint, plan_source string",
    )
    predicate = f"hour = TIMESTAMP'{window.start.isoformat()}'" + (
        f" AND region = '{window.region}'" if window.region else ""
    )
    (
        frame.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .partitionBy("hour_date", "region")
        .save(lake_path(settings, "cdn", "cdn_replay"))
    )
    return results


def log_mlflow(
    settings: Settings, window: CdnWindow, results: list[tuple[EdgeReplay, str]]
) -> None:
    """One MLflow run per edge; each hour is a step (hours since the epoch)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    step = int(window.start.timestamp() // 3600)
    millis = int(window.start.timestamp() * 1000)
    for result, _source in results:
        name = f"edge-{result.edge}"
        found = client.search_runs(
            [experiment_id], filter_string=f"tags.mlflow.runName = '{name}'", max_results=1
        )
        run_id = (
            found[0].info.run_id
            if found
            else client.create_run(
                experiment_id, run_name=name, tags={"edge": result.edge}
            ).info.run_id
        )
        metrics = {
            "lru_byte_hit_ratio": result.lru.byte_hit_ratio,
            "warmed_byte_hit_ratio": result.warmed.byte_hit_ratio,
            "belady_byte_hit_ratio": result.belady.byte_hit_ratio,
            "lru_object_hit_ratio": result.lru.object_hit_ratio,
            "warmed_object_hit_ratio": result.warmed.object_hit_ratio,
            "belady_object_hit_ratio": result.belady.object_hit_ratio,
            "lru_origin_bytes": float(result.lru.origin_bytes),
            "warmed_origin_bytes": float(result.warmed.origin_bytes),
            "belady_origin_bytes": float(result.belady.origin_bytes),
            "prefetch_origin_bytes": float(result.prefetch_origin_bytes),
        }
        if result.gap_share is not None:
            metrics["gap_share"] = result.gap_share
        if result.admitted is not None:
            metrics["admitted_byte_hit_ratio"] = result.admitted.byte_hit_ratio
            metrics["admitted_object_hit_ratio"] = result.admitted.object_hit_ratio
            metrics["admitted_origin_bytes"] = float(result.admitted.origin_bytes)
        if result.admitted_gap_share is not None:
            metrics["admitted_gap_share"] = result.admitted_gap_share
        for key, value in metrics.items():
            client.log_metric(run_id, key, value, timestamp=millis, step=step)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--window", type=Path, required=True)
    parser.add_argument(
        "--cache-bytes", type=_size, default=None, help="default: cdn_edge_cache_max_size"
    )
    parser.add_argument("--summary", type=Path)
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args(argv)
    settings = get_settings()
    window = CdnWindow.read(args.window)
    cache_bytes = args.cache_bytes or _size(settings.cdn_edge_cache_max_size)
    try:
        results = run(get_spark("cdn_replay", settings), settings, window, cache_bytes)
    except LakeTableMissing as missing:
        print(f"cdn_replay: {missing}", file=sys.stderr)
        return 2
    if not args.no_mlflow:
        log_mlflow(settings, window, results)
    summary = [{**r.to_dict(), "plan_source": s} for r, s in results]
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=2))
    for item in summary:
        print(
            f"replay {item['edge']} {window.label}: byte hit ratio lru "
            f"{item['lru']['byte_hit_ratio']:.3f}, warmed {item['warmed']['byte_hit_ratio']:.3f}, "
            f"belady {item['belady']['byte_hit_ratio']:.3f}; gap share {item['gap_share']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
