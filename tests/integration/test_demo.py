"""``make demo`` against the running stack, with small sizes but the real path: clips
through tus and video_processing, history and live traffic, platform_analytics,
cdn_analytics, recs_training and recs_scoring through the scheduler.

The demo runs once for the module (about 5 minutes on a busy 2-core machine); the tests
check its summary against independent sources (the catalog, the Delta lake, MLflow), that
a second run reuses everything and says the same, and that a broken step is named by the
command line with a non-zero exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from mlflow import MlflowClient
from pyspark.sql import functions as F
from sqlalchemy import text

from vidflow.catalog.db import session_scope
from vidflow.config import REPO_ROOT, Settings
from vidflow.platform.demo import DemoReport, run_demo
from vidflow.platform.demo_summary import format_summary
from vidflow.platform.demo_traffic import DEMO_VIEWER, clip_specs
from vidflow.recs.registry import CHAMPION
from vidflow.spark import lake_path

#: Small but real: 2 clips, two days of 120 viewers over 60 videos (what recs_training
#: needs for a holdout day), 20 s of 2 live viewers, 2 cdn_analytics hours. The seed
#: keeps the test's population apart from the real demo's.
SIZES: dict[str, Any] = {
    "demo_seed": 9102,
    "demo_clips": 2,
    "demo_history_days": 2,
    "demo_history_viewers": 120,
    "demo_history_videos": 60,
    "demo_live_seconds": 20.0,
    "demo_live_viewers": 2,
    "demo_cdn_hours": 2,
}
MODEL = "tests-demo"
#: The module's demo runs in the first test's setup: clips, three DAGs through the
#: scheduler; a loaded machine needs far more than the default 900 s.
pytestmark = pytest.mark.timeout(3600)


@pytest.fixture(scope="module")
def small(stack: Settings) -> Settings:
    return stack.model_copy(update=SIZES)


@pytest.fixture(scope="module")
def demo(small: Settings) -> Iterator[tuple[DemoReport, list[str]]]:
    said: list[str] = []
    report = run_demo(small, said.append, up=lambda: None, model_name=MODEL)
    yield report, said


def test_the_demo_says_each_step_and_its_figures_match_the_platform(
    small: Settings, demo: tuple[DemoReport, list[str]], spark: Any
) -> None:
    report, said = demo
    plan, s = report.plan, report.summary
    assert s is not None and report.history is not None and report.viewer is not None
    for n, step in enumerate(("stack", "history", "catalog", "live", "analytics"), start=1):
        assert f"step {n}/8: {step}" in said
    assert set(report.timings) == {
        "stack", "catalog", "history", "live", "analytics", "recs", "cdn", "summary"
    }  # fmt: skip

    # videos: the clips are processed, with the model's titles and topics as tags
    assert s.clips_processed == 2
    assert report.catalog is not None
    with session_scope(small) as session:
        rows = session.execute(
            text(
                "SELECT title, tags, status, manifest_url FROM videos "
                "WHERE video_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": list(report.catalog.video_ids)},
        ).all()
    specs = {c.title: list(c.tags) for c in clip_specs(SIZES["demo_seed"], 2)}
    assert {r.title: list(r.tags) for r in rows} == specs
    assert all(r.status == "processed" and r.manifest_url for r in rows)

    # events: every history event the generator wrote is in the lake, none lost or doubled
    days = [plan.first_day + timedelta(days=d) for d in range(plan.history_days)]
    events = spark.read.format("delta").load(lake_path(small, "analytics", "watch_events"))
    stored = events.where(
        F.col("video_id").isin(list(report.history.video_ids))
        & F.col("event_date").isin([d.isoformat() for d in days])
    ).count()
    assert stored == report.history.events == s.history_events > 0
    assert s.analytics_accepted >= s.history_events + s.viewer_events + s.live_events
    assert s.viewer_events == 6 and s.live_events > 0

    # warming: the same share from the cdn_replay table the replay job wrote
    replay = spark.read.format("delta").load(lake_path(small, "cdn", "cdn_replay"))
    hours = [h.replace(tzinfo=None) for h in plan.cdn_hours_utc()]
    rows = replay.where(F.col("hour").isin(hours)).collect()
    hit = {p: sum(r.hit_bytes for r in rows if r.policy == p) for p in ("lru", "warmed", "belady")}
    total = sum(r.bytes for r in rows if r.policy == "lru")
    assert total > 0 and s.warming.hours == 2
    assert s.warming.lru_byte_hit_ratio == pytest.approx(hit["lru"] / total)
    assert s.warming.belady_byte_hit_ratio == pytest.approx(hit["belady"] / total)
    if hit["belady"] > hit["lru"]:
        share = (hit["warmed"] - hit["lru"]) / (hit["belady"] - hit["lru"])
        assert s.warming.gap_share == pytest.approx(share)

    # the champion: what MLflow's registry says
    client = MlflowClient(small.tracking_uri)
    assert report.recs is not None and report.recs.model_name == MODEL
    champion = client.get_model_version_by_alias(MODEL, CHAMPION)
    assert s.champion is not None and s.champion.version == champion.version
    metrics = client.get_run(champion.run_id).data.metrics
    assert s.champion.ndcg_at_10 == pytest.approx(metrics["ndcg_at_10"])
    popularity = s.champion.popularity_ndcg_at_10
    assert popularity is not None and 0.0 <= popularity <= 1.0
    assert metrics["popularity_ndcg_at_10"] == pytest.approx(popularity)

    # the demo viewer has precomputed recommendations of processed, unwatched videos
    with session_scope(small) as session:
        recs = session.execute(
            text(
                "SELECT r.video_id::text FROM recommendations r JOIN videos v USING (video_id) "
                "WHERE r.user_id = :u AND v.status = 'processed'"
            ),
            {"u": uuid.UUID(report.viewer.user_id)},
        ).all()
    assert len(recs) == s.recommendations_for_viewer > 0
    assert not {r[0] for r in recs} & set(report.viewer.watched)

    printed = format_summary(
        s, small, clips=2, first_day=plan.first_day, today=plan.today, timings=report.timings
    )
    assert f"http://{small.bind_host}:{small.viewer_port}/app/" in printed
    assert f"sign in as {DEMO_VIEWER} / {small.demo_password.get_secret_value()}" in printed
    assert "2/2 demo clips processed" in printed


def test_a_second_demo_reuses_what_exists(
    small: Settings, demo: tuple[DemoReport, list[str]]
) -> None:
    first, _ = demo
    said: list[str] = []
    started = time.monotonic()
    again = run_demo(small, said.append, up=lambda: None, model_name=MODEL)
    assert time.monotonic() - started < 120, again.timings
    assert again.catalog is not None and again.history is not None
    assert again.catalog.uploaded == 0 and again.history.reused
    assert again.analytics is not None and again.recs is not None
    assert again.analytics.platform.origin == "reused"
    assert {r.origin for r in again.analytics.cdn} == {"reused"}
    assert again.recs.training.origin == "reused"
    assert any("reusing its live traffic" in line for line in said)
    assert first.summary is not None and again.summary is not None
    same = ("clips_processed", "history_events", "live_events", "viewer_events", "warming")
    for name in same:
        assert getattr(again.summary, name) == getattr(first.summary, name), name


def test_a_broken_step_is_named_and_fails_the_command(
    small: Settings, demo: tuple[DemoReport, list[str]]
) -> None:
    # Live viewers get no time to play: the live step (after reused catalog and history)
    # breaks; the command says which step, and exits non-zero. The analytics run of the
    # same sizes exists, so a new day's tag keeps this run from reusing its live traffic.
    env = {
        **os.environ,
        **{f"VIDFLOW_{k.upper()}": str(v) for k, v in SIZES.items()},
        "VIDFLOW_DEMO_LIVE_SECONDS": "0.001",
        "VIDFLOW_DEMO_HISTORY_VIEWERS": "121",
    }
    done = subprocess.run(
        [sys.executable, "-m", "vidflow.stack", "demo"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 1, done.stdout[-2000:]
    assert "step 4/8 'live' failed: " in done.stderr, done.stderr[-2000:]
    assert "no live playback finished" in done.stderr
    assert "step 2/8: history done" in done.stdout


def test_a_clip_counts_as_present_only_while_its_stream_is_stored(stack: Settings) -> None:
    """A catalog that outlived its objects (an in-memory store restarted, or a change of
    object store) lists processed clips whose streams are gone: those are uploaded again."""
    from vidflow.platform.demo_traffic import stream_stored
    from vidflow.processing.objects import public_url
    from vidflow.storage import s3_client

    s3 = s3_client(stack)
    key = f"media/videos/{uuid.uuid4()}/vtest/master.m3u8"
    s3.put_object(Bucket=stack.bucket_media, Key=key, Body=b"#EXTM3U\n")
    try:
        assert stream_stored(stack, s3, public_url(stack, key))
        assert not stream_stored(stack, s3, public_url(stack, key.replace("vtest", "gone")))
        # the same key under another endpoint (the old in-memory S3's port)
        assert not stream_stored(stack, s3, f"http://127.0.0.1:1/{stack.bucket_media}/{key}")
        assert not stream_stored(stack, s3, None)
    finally:
        s3.delete_object(Bucket=stack.bucket_media, Key=key)
