"""The cdn_analytics DAG on logs of real requests through the real edges, a prefetch
through an edge, and re-running an hour."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from vidflow.cdn.prefetch import push_plan, summarise
from vidflow.cdn.warm import PlannedObject, WarmPlan
from vidflow.config import Settings
from vidflow.spark import lake_path
from vidflow.storage import s3_client

DAG_ID = "cdn_analytics"
REGION = "sa-east"


def put_video(settings: Settings, segments: int = 3) -> str:
    """A small video in the media bucket, in the publish step's layout; its path prefix."""
    video = str(uuid.uuid4())
    prefix = f"media/videos/{video}/v1/"
    s3 = s3_client(settings)
    names = [f"seg_{k:05d}.m4s" for k in range(1, segments + 1)]
    bodies = {
        "master.m3u8": b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p/index.m3u8\n",
        "360p/index.m3u8": ("#EXTM3U\n" + "".join(f"#EXTINF:6,\n{n}\n" for n in names)).encode(),
        "360p/init.mp4": os.urandom(900),
        **{f"360p/{n}": os.urandom(40_000 + 1000 * k) for k, n in enumerate(names)},
    }
    for name, body in bodies.items():
        s3.put_object(Bucket=settings.bucket_media, Key=prefix + name, Body=body)
    return "/" + prefix


def play(edge: str, prefix: str, segments: int = 3) -> list[tuple[str, str, str]]:
    """What a player fetches; (path, X-Cache-Edge, request id) per request."""
    paths = [prefix + "master.m3u8", prefix + "360p/index.m3u8", prefix + "360p/init.mp4"]
    paths += [prefix + f"360p/seg_{k:05d}.m4s" for k in range(1, segments + 1)]
    out = []
    with httpx.Client(timeout=30) as client:
        for path in paths:
            response = client.get(edge + path)
            assert response.status_code == 200, (path, response.status_code)
            out.append((path, response.headers["X-Cache-Edge"], response.headers["X-Amz-Cf-Id"]))
    return out


def test_a_prefetch_makes_the_next_viewer_request_an_edge_hit(stack: Settings) -> None:
    prefix = put_video(stack, segments=1)
    key = prefix + "360p/seg_00001.m4s"
    plan = WarmPlan(REGION, 10**6, (PlannedObject(key, 40_000, 5.0, 1),))
    edge = stack.edge_urls()[REGION]
    results = push_plan(plan, edge)
    assert [(r.status, r.cache, r.bytes) for r in results] == [(200, "MISS", 40_000)]
    assert summarise(results)["pushed"] == 1
    viewer = httpx.get(edge + key, timeout=30)
    assert viewer.status_code == 200 and viewer.headers["X-Cache-Edge"] == "HIT"


def _run(airflow: Any, hour: datetime, end: datetime) -> tuple[str, dict[str, str]]:
    airflow.wait_for_dag(DAG_ID)
    run = airflow.request(
        "POST",
        f"/dags/{DAG_ID}/dagRuns",
        json={
            "logical_date": datetime.now(UTC).isoformat(),
            "data_interval_start": hour.isoformat(),
            "data_interval_end": end.isoformat(),
            "conf": {"region": REGION, "byte_budget": "1m", "half_life_hours": 1.0},
        },
    )
    final = airflow.wait_for_run(DAG_ID, run["dag_run_id"], timeout=1200)
    states = {t["task_id"]: t["state"] for t in airflow.task_instances(DAG_ID, run["dag_run_id"])}
    assert final["state"] == "success", states
    return run["dag_run_id"], states


def _snapshot(
    spark: Any, settings: Settings, video: str, hour: datetime, end: datetime
) -> dict[str, list[Any]]:
    from pyspark.sql import functions as F

    def table(name: str) -> Any:
        return spark.read.format("delta").load(lake_path(settings, "cdn", name))

    def rows(frame: Any) -> list[Any]:
        return sorted(tuple(r) for r in frame.collect())

    return {
        # The viewers' requests (the prefetch's own GETs through the edge are logged too,
        # and land in the same hour when the test re-runs it).
        "requests": rows(
            table("cdn_requests").where(
                (F.col("video_id") == video) & ~F.col("user_agent").startswith("vidflow-prefetch")
            )
        ),
        "object_hourly": rows(
            table("cdn_object_hourly").where(
                (F.col("video_id") == video) & (F.col("request_hour") >= F.lit(hour))
            )
        ),
        "popularity": rows(
            table("cdn_popularity").where(
                (F.col("as_of") == F.lit(end)) & F.col("id").contains(video)
            )
        ),
        "replay": rows(
            table("cdn_replay")
            .where((F.col("hour") == F.lit(hour)) & (F.col("region") == REGION))
            .select("policy", "cache_bytes")
        ),
    }


@pytest.mark.timeout(2400)
def test_the_dag_on_real_edge_logs_and_a_rerun_gives_identical_tables(
    stack: Settings, airflow: Any, spark: Any
) -> None:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    prefix = put_video(stack)
    video = prefix.split("/")[3]
    edge = stack.edge_urls()[REGION]
    first = play(edge, prefix)
    second = play(edge, prefix)
    # The first viewer misses everything; the second hits the segments and init (the
    # playlists live 2 s, so they may be refetched).
    assert {c for p, c, _ in first} == {"MISS"}
    assert all(c == "HIT" for p, c, _ in second if p.endswith((".m4s", ".mp4")))
    httpx.post(f"http://{stack.bind_host}:{stack.cdn_shipper_port}/v1/flush", timeout=60)
    # The window is the hour of the requests (two, if they straddled an hour boundary).
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)

    _run(airflow, hour, end)
    snap = _snapshot(spark, stack, video, hour, end)
    by_id = {r[0]: r for r in snap["requests"]}
    # Every request made, once, with the edge's own request id and cache result.
    assert set(by_id) == {rid for _, _, rid in first + second}
    result_col = 14  # position of result_type in REQUESTS_SCHEMA
    for path, cache, rid in first + second:
        assert by_id[rid][5] == path
        assert by_id[rid][result_col] == ("Hit" if cache == "HIT" else "Miss")
    # Silver: 2 requests per object (summed over the window's hours).
    per_object: dict[str, int] = {}
    for r in snap["object_hourly"]:
        per_object[r[3]] = per_object.get(r[3], 0) + r[6]
    assert per_object == {p: 2 for p, _, _ in first}
    assert sorted(r[0] for r in snap["replay"]) == ["belady", "lru", "warmed"]
    assert snap["popularity"], "the video has a popularity score"

    _run(airflow, hour, end)
    assert _snapshot(spark, stack, video, hour, end) == snap
