"""The platform_analytics DAG through the REST API and the running scheduler: events
written as StoredEvent lines into the events bucket end up in silver exactly once, in the
partition of their event time; bad lines land in quarantine with their reason; the
data-quality gate fails the run above the allowed ratio; and (end to end) events posted to
the viewer API reach watch_events through a real run.

Each test owns its UTC day (no other test writes there; the gold tests use 2026-11-2x) and
clears that day's event objects first, so the gate sees exactly this test's lines."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from pyspark.sql import functions as F
from sqlalchemy import insert

from vidflow.airflow_api import AirflowClient
from vidflow.analytics import QUARANTINE_TABLE, SILVER_TABLE
from vidflow.catalog.db import session_scope
from vidflow.catalog.models import Video
from vidflow.config import REPO_ROOT, Settings
from vidflow.events import StoredEvent, event_object_key, hour_prefix
from vidflow.spark import lake_path
from vidflow.storage import s3_client

DAG_ID = "platform_analytics"
SILVER_DAY = date(2025, 5, 14)
GATE_DAY = date(2025, 5, 20)
DAILY_JOBS = ("watch_gold_daily.py", "watch_catalog_sync.py")


def daily_jobs_exist() -> bool:
    return all((REPO_ROOT / "jobs" / name).exists() for name in DAILY_JOBS)


def create_videos(settings: Settings, count: int) -> list[str]:
    ids = [uuid.uuid4() for _ in range(count)]
    with session_scope(settings) as session:
        for video_id in ids:
            session.execute(
                insert(Video).values(
                    video_id=video_id,
                    user_id=uuid.uuid4(),
                    title="analytics test",
                    status="processed",
                )
            )
    return [str(v) for v in ids]


def event(
    video_id: str,
    received_at: datetime,
    *,
    region: str = "eu-west",
    late: timedelta = timedelta(seconds=2),
    event_id: str | None = None,
    user_id: str | None = None,
) -> StoredEvent:
    return StoredEvent(
        event_id=event_id or str(uuid.uuid4()),
        event_type="heartbeat",
        video_id=video_id,
        session_id=str(uuid.uuid4()),
        user_id=user_id,
        client_ts=received_at - late,
        received_at=received_at,
        position_seconds=12.0,
        region=region,
        device="phone",
    )


def clear_day(settings: Settings, day: date) -> None:
    client = s3_client(settings)
    prefix = hour_prefix(datetime.combine(day, datetime.min.time(), tzinfo=UTC)).rsplit("hour=", 1)[
        0
    ]
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=settings.bucket_events, Prefix=prefix
    )
    for page in pages:
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=settings.bucket_events, Key=obj["Key"])


def put_lines(settings: Settings, hour: datetime, writer: str, lines: Iterable[str]) -> str:
    key = event_object_key(hour, writer, 1)
    body = "\n".join(lines) + "\n"
    s3_client(settings).put_object(Bucket=settings.bucket_events, Key=key, Body=body.encode())
    return key


def run_dag(
    airflow: AirflowClient, conf: dict[str, Any]
) -> tuple[str, dict[str, Any], dict[str, str]]:
    airflow.wait_for_dag(DAG_ID)
    run_id = airflow.trigger(DAG_ID, conf)
    run = airflow.wait_for_run(DAG_ID, run_id, timeout=900)
    states = {ti["task_id"]: ti["state"] for ti in airflow.task_instances(DAG_ID, run_id)}
    return run_id, run, states


def task_log(airflow: AirflowClient, run_id: str, task_id: str) -> str:
    page = airflow.request(
        "GET",
        f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1",
        params={"full_content": "true"},
    )
    return str(page)


def silver_rows(spark: Any, settings: Settings, ids: set[str]) -> list[Any]:
    table = spark.read.format("delta").load(lake_path(settings, "analytics", SILVER_TABLE))
    return table.where(F.col("event_id").isin(*ids)).collect()


def partition_snapshot(spark: Any, settings: Settings, days: list[date]) -> list[tuple[Any, ...]]:
    table = spark.read.format("delta").load(lake_path(settings, "analytics", SILVER_TABLE))
    rows = table.where(F.col("event_date").isin(*days)).collect()
    return sorted(tuple(r) for r in rows)


# Two or three Spark jobs per run, two runs: allow for a busy 2-core machine.
@pytest.mark.timeout(1800)
def test_a_backfilled_region_lands_once_in_its_partitions_and_reruns_identically(
    airflow: AirflowClient, stack: Settings, spark: Any
) -> None:
    clear_day(stack, SILVER_DAY)
    video, other = create_videos(stack, 2)
    hour = datetime(2025, 5, 14, 10, tzinfo=UTC)
    user = str(uuid.uuid4())
    on_time = [
        event(video, hour + timedelta(minutes=n), user_id=user if n % 2 else None) for n in range(6)
    ]
    # Received at 10:20 but happened the evening before: silver partition 2025-05-13.
    late = event(other, hour + timedelta(minutes=20), late=timedelta(hours=13))
    # Another region: a region re-run must leave it alone.
    elsewhere = event(video, hour + timedelta(minutes=7), region="us-east")
    # A resent copy, received later (another API process): the first copy is kept.
    resent = event(video, hour + timedelta(minutes=40), event_id=on_time[0].event_id)
    resent = StoredEvent(**{**resent.__dict__, "client_ts": on_time[0].client_ts})
    put_lines(stack, hour, "api-a", [e.to_json_line() for e in [*on_time, late, elsewhere]])
    put_lines(stack, hour + timedelta(hours=3), "api-b", [resent.to_json_line()])

    daily = "auto" if daily_jobs_exist() else "never"
    conf = {
        "start_date": "2025-05-14",
        "end_date": "2025-05-14",
        "region": "eu-west",
        "daily": daily,
    }
    run_id, run, states = run_dag(airflow, conf)
    assert run["state"] == "success", states
    expected_states = {
        "plan": "success",
        "silver": "success",
        "gate": "success",
        "daily": "success",
    }
    expected_states |= (
        {"gold_daily": "success", "catalog_sync": "success"}
        if daily == "auto"
        else {"gold_daily": "skipped", "catalog_sync": "skipped"}
    )
    assert states == expected_states

    ids = {e.event_id for e in [*on_time, late, elsewhere]}
    rows = silver_rows(spark, stack, ids)
    got = sorted((r.event_id, r.event_date, r.region) for r in rows)
    want = sorted(
        [(e.event_id, SILVER_DAY, "eu-west") for e in on_time]
        + [(late.event_id, date(2025, 5, 13), "eu-west")]
    )
    assert got == want  # each once; us-east untouched by the eu-west re-run
    first = next(r for r in rows if r.event_id == on_time[0].event_id)
    assert first.received_at.astimezone(UTC) == on_time[0].received_at  # the first copy
    assert {r.user_id for r in rows if r.event_id != late.event_id} == {user, None}

    summary = airflow.xcom(DAG_ID, run_id, "gate")
    assert summary["duplicates"] == 1 and summary["quarantined"] == {}
    assert summary["days_touched"] == ["2025-05-13", "2025-05-14"]
    if daily == "auto":
        plan = airflow.xcom(DAG_ID, run_id, "daily")
        assert plan == {"dates": ["2025-05-13", "2025-05-14"], "region": "eu-west"}

    before = partition_snapshot(spark, stack, [date(2025, 5, 13), SILVER_DAY])
    conf_again = {**conf, "daily": "never"}
    _, run, states = run_dag(airflow, conf_again)
    assert run["state"] == "success", states
    assert partition_snapshot(spark, stack, [date(2025, 5, 13), SILVER_DAY]) == before


@pytest.mark.timeout(1800)
def test_bad_lines_are_quarantined_and_the_gate_fails_above_the_ratio(
    airflow: AirflowClient, stack: Settings, spark: Any
) -> None:
    clear_day(stack, GATE_DAY)
    (video,) = create_videos(stack, 1)
    hour = datetime(2025, 5, 20, 9, tzinfo=UTC)
    good = [event(video, hour + timedelta(seconds=20 * n)) for n in range(96)]
    future = event(video, hour + timedelta(minutes=50), late=-timedelta(minutes=30))
    unknown_region = StoredEvent(**{**event(video, hour).__dict__, "region": "moon-1"})
    unknown_video = event(str(uuid.uuid4()), hour + timedelta(minutes=5))
    bad = {
        "not_json": "{this is not json",
        "unknown_region": unknown_region.to_json_line(),
        "future_event": future.to_json_line(),
        "unknown_video": unknown_video.to_json_line(),
    }
    key = put_lines(stack, hour, "api-q", [*(e.to_json_line() for e in good), *bad.values()])

    # 4 bad lines of 100: 4% <= 5%, the run succeeds.
    run_id, run, states = run_dag(airflow, {"start_date": "2025-05-20", "daily": "never"})
    assert run["state"] == "success", states
    quarantine = spark.read.format("delta").load(lake_path(stack, "analytics", QUARANTINE_TABLE))
    rows = quarantine.where(F.col("source_key") == key).collect()
    assert sorted((r.reason, r.raw_line) for r in rows) == sorted(
        (reason, line) for reason, line in bad.items()
    )
    regions = {r.reason: (r.region, r.event_date) for r in rows}
    assert regions["not_json"] == ("unknown", GATE_DAY)  # no event time: the receive hour's day
    assert regions["unknown_region"] == ("unknown", GATE_DAY)
    assert regions["unknown_video"] == ("eu-west", GATE_DAY)
    assert len(silver_rows(spark, stack, {e.event_id for e in good})) == 96
    assert "Data Docs" in task_log(airflow, run_id, "gate")

    # 10 more lines of unknown videos two hours later: 14 bad of 120 = 11.7% > 5%.
    later = hour + timedelta(hours=2)
    more_good = [event(video, later + timedelta(seconds=n)) for n in range(10)]
    strangers = [event(str(uuid.uuid4()), later) for _ in range(10)]
    put_lines(stack, later, "api-q", [e.to_json_line() for e in [*more_good, *strangers]])
    run_id, run, states = run_dag(airflow, {"start_date": "2025-05-20", "daily": "never"})
    assert run["state"] == "failed"
    assert states["silver"] == "success" and states["gate"] == "failed", states
    assert states["daily"] in ("upstream_failed", "skipped"), states
    log = task_log(airflow, run_id, "gate")
    assert "data-quality gate FAILED" in log and "14 of 120 rows quarantined (11.7%" in log
    assert "unknown_video [video_known]" in log
    # The batch was not published; its bad lines are in quarantine all the same.
    assert silver_rows(spark, stack, {e.event_id for e in more_good}) == []
    stranger_ids = {e.event_id for e in strangers}
    assert quarantine.where(F.col("event_id").isin(*stranger_ids)).count() == 10


def test_events_posted_to_the_viewer_api_reach_watch_events_once(
    airflow: AirflowClient, stack: Settings, spark: Any
) -> None:
    base = f"http://127.0.0.1:{stack.viewer_port}"
    try:
        httpx.get(f"{base}/healthz", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"the viewer API is not running on {base}: {exc}")
    now = datetime.now(UTC)
    if now.minute == 59 and now.second > 30:  # keep the posts in one receive hour
        time.sleep(61 - now.second)
    (video,) = create_videos(stack, 1)
    session = str(uuid.uuid4())
    start = datetime.now(UTC) - timedelta(seconds=30)
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": kind,
            "video_id": video,
            "session_id": session,
            "client_ts": (start + timedelta(seconds=10 * n)).isoformat(),
            "position_seconds": 10.0 * n,
            "region": "sa-east",
            "device": "desktop",
        }
        for n, kind in enumerate(["play", "heartbeat", "heartbeat", "complete"])
    ]
    for batch in (events, events[:2]):  # the second post resends two events
        answer = httpx.post(f"{base}/v1/events", json={"events": batch}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["accepted"]) == len(batch)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    run = airflow.request(
        "POST",
        f"/dags/{DAG_ID}/dagRuns",
        json={
            # An explicit data interval needs a logical date (unique per run).
            "logical_date": datetime.now(UTC).isoformat(),
            "data_interval_start": hour.isoformat(),
            "data_interval_end": (hour + timedelta(hours=1)).isoformat(),
            "conf": {"region": "sa-east", "daily": "never"},
        },
    )
    final = airflow.wait_for_run(DAG_ID, run["dag_run_id"], timeout=900)
    states = {t["task_id"]: t["state"] for t in airflow.task_instances(DAG_ID, run["dag_run_id"])}
    assert final["state"] == "success", states
    rows = silver_rows(spark, stack, {e["event_id"] for e in events})
    assert sorted((r.event_id, r.event_type) for r in rows) == sorted(
        (e["event_id"], e["event_type"]) for e in events
    )
    event_days = {e["event_id"]: datetime.fromisoformat(e["client_ts"]).date() for e in events}
    assert {(r.event_id, r.event_date, r.region, r.user_id) for r in rows} == {
        (event_id, day, "sa-east", None) for event_id, day in event_days.items()
    }
