"""Gold and catalog sync end to end: a small silver table written with Spark into a
scratch lake, the gold job for two days, then the catalog sync run twice (and after a
gold re-run): the catalog holds the hand-computed absolute totals every time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from jobs import watch_catalog_sync, watch_gold_daily
from vidflow.catalog.db import get_engine
from vidflow.config import Settings
from vidflow.spark import lake_path

D1, D2 = date(2026, 11, 24), date(2026, 11, 25)
T1 = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SILVER_SCHEMA = (
    "event_id string, event_type string, video_id string, session_id string, "
    "user_id string, event_ts timestamp, received_at timestamp, position_seconds double, "
    "device string, ingest_hour timestamp, event_date date, region string"
)


class Ids:
    def __init__(self) -> None:
        self.user = uuid.uuid4()  # in the catalog
        self.stranger = uuid.uuid4()  # not in the catalog: skipped
        self.v1, self.v2 = uuid.uuid4(), uuid.uuid4()  # in the catalog
        self.v_unknown = uuid.uuid4()  # not in the catalog: skipped


def silver_rows(ids: Ids) -> list[tuple[Any, ...]]:
    def ev(
        kind: str,
        video: uuid.UUID,
        session: str,
        user: uuid.UUID | None,
        at: datetime,
        pos: float,
        region: str,
    ) -> tuple[Any, ...]:
        hour = at.replace(minute=0, second=0, microsecond=0)
        return (
            str(uuid.uuid4()),
            kind,
            str(video),
            session,
            str(user) if user else None,
            at,
            at,
            float(pos),
            "phone",
            hour,
            at.date(),
            region,
        )

    s = timedelta(seconds=1)
    a, b, c, d, e = (str(uuid.uuid4()) for _ in range(5))
    return [
        # D1 eu-west. user on v1: 10 + 10 = 20 s, one play, a like.
        ev("play", ids.v1, a, ids.user, T1, 0, "eu-west"),
        ev("heartbeat", ids.v1, a, ids.user, T1 + 10 * s, 10, "eu-west"),
        ev("like", ids.v1, a, ids.user, T1 + 15 * s, 15, "eu-west"),
        ev("heartbeat", ids.v1, a, ids.user, T1 + 20 * s, 20, "eu-west"),
        # stranger on v1: one play, 5 s.
        ev("play", ids.v1, b, ids.stranger, T1, 0, "eu-west"),
        ev("heartbeat", ids.v1, b, ids.stranger, T1 + 5 * s, 5, "eu-west"),
        # anonymous on v2: one play, completes.
        ev("play", ids.v2, c, None, T1, 0, "eu-west"),
        ev("complete", ids.v2, c, None, T1 + 30 * s, 30, "eu-west"),
        # D2 us-east. user on v1 again: one play, 7 s, and a second like of v1 (the user
        # already liked it on D1: the catalog's like_count must count them once);
        # user on the unknown video: 3 s.
        ev("play", ids.v1, d, ids.user, T2, 0, "us-east"),
        ev("like", ids.v1, d, ids.user, T2 + 5 * s, 5, "us-east"),
        ev("heartbeat", ids.v1, d, ids.user, T2 + 7 * s, 7, "us-east"),
        ev("play", ids.v_unknown, e, ids.user, T2, 0, "us-east"),
        ev("heartbeat", ids.v_unknown, e, ids.user, T2 + 3 * s, 3, "us-east"),
    ]


@pytest.fixture
def catalog_rows(stack: Settings, unique: str) -> Iterator[Ids]:
    ids = Ids()
    engine = get_engine(stack)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (user_id, username, email, password_hash) "
                "VALUES (:u, :n, :e, 'x')"
            ),
            {"u": ids.user, "n": f"gold-{unique}", "e": f"gold-{unique}@example.test"},
        )
        for video in (ids.v1, ids.v2):
            conn.execute(
                text(
                    "INSERT INTO videos (video_id, user_id, title, view_count, like_count) "
                    "VALUES (:v, :u, 'gold test', 99, 99)"
                ),
                {"v": video, "u": ids.user},
            )
    yield ids
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM watch_history WHERE user_id = :u"), {"u": ids.user})
        conn.execute(
            text("DELETE FROM videos WHERE video_id IN (:a, :b)"), {"a": ids.v1, "b": ids.v2}
        )
        conn.execute(text("DELETE FROM users WHERE user_id = :u"), {"u": ids.user})


def catalog_state(settings: Settings, ids: Ids) -> dict[str, Any]:
    with get_engine(settings).connect() as conn:
        history = conn.execute(
            text(
                "SELECT video_id, watched_at, watch_duration_seconds FROM watch_history "
                "WHERE user_id = :u ORDER BY video_id"
            ),
            {"u": ids.user},
        ).all()
        videos = conn.execute(
            text("SELECT video_id, view_count, like_count FROM videos WHERE video_id IN (:a, :b)"),
            {"a": ids.v1, "b": ids.v2},
        ).all()
    return {
        "history": {(v, w, s) for v, w, s in history},
        "videos": {(v, n, likes) for v, n, likes in videos},
    }


def test_gold_then_sync_twice_gives_absolute_totals(
    spark: Any, stack: Settings, tmp_path: Path, catalog_rows: Ids
) -> None:
    ids = catalog_rows
    settings = stack.model_copy(update={"lake_uri": str(tmp_path / "lake")})
    (
        spark.createDataFrame(silver_rows(ids), SILVER_SCHEMA)
        .write.format("delta")
        .partitionBy("event_date", "region")
        .save(lake_path(settings, "analytics", "watch_events"))
    )
    gold = watch_gold_daily.run(spark, settings, [D1, D2], None)
    # v1 eu D1, v2 eu D1, v1 us D2, v_unknown us D2; user x (v1 D1, v1 D2, v_unknown D2)
    # and stranger x v1 D1.
    assert (gold.video_daily_stats_rows, gold.user_video_daily_rows) == (4, 4)
    # likers: user on v1 on D1 (eu-west) and again on D2 (us-east)
    assert gold.video_likers_rows == 2
    stats = {
        (r.event_date, r.region, r.video_id): (
            r.plays,
            r.unique_viewers,
            r.watch_seconds,
            r.completion_rate,
            r.likes,
        )
        for r in spark.read.format("delta")
        .load(lake_path(settings, "analytics", "video_daily_stats"))
        .collect()
    }
    assert stats[(D1, "eu-west", str(ids.v1))] == (2, 2, 25.0, 0.0, 1)
    assert stats[(D1, "eu-west", str(ids.v2))] == (1, 1, 30.0, 1.0, 0)

    # The sync for D2 touches (user, v1), (user, v_unknown), v1 and v_unknown.
    first = watch_catalog_sync.run(spark, settings, [D2], None)
    assert (first.watch_history_rows, first.skipped_unknown_users) == (2, 0)
    assert (first.video_rows, first.skipped_unknown_videos) == (1, 1)
    assert sum(s.staged for s in first.shards if s.table == "watch_history") == 2
    d2_state = {
        # v1 over both days: 20 s on D1 + 7 s on D2, last event D2's heartbeat
        ("history", ids.v1, T2 + timedelta(seconds=7), 27.0),
        # watch_history has no FK to videos: the unknown video's row is kept (3 s)
        ("history", ids.v_unknown, T2 + timedelta(seconds=3), 3.0),
        # v1: plays 2 (D1) + 1 (D2); likes 1: one viewer, though they liked on both days
        # (the per-day likes sum to 2); v2 not touched on D2: still 99/99
        ("video", ids.v1, 3, 1),
        ("video", ids.v2, 99, 99),
    }

    def flat(state: dict[str, Any]) -> set[tuple[Any, ...]]:
        return {("history", *h) for h in state["history"]} | {
            ("video", *v) for v in state["videos"]
        }

    assert flat(catalog_state(stack, ids)) == d2_state
    again = watch_catalog_sync.run(spark, settings, [D2], None)
    assert again == first
    assert flat(catalog_state(stack, ids)) == d2_state

    # D1, region eu-west: the stranger is skipped (not in the catalog); v2 gets 1 play.
    d1 = watch_catalog_sync.run(spark, settings, [D1], "eu-west")
    assert (d1.watch_history_rows, d1.skipped_unknown_users) == (1, 1)
    assert (d1.video_rows, d1.skipped_unknown_videos) == (2, 0)
    full_state = (d2_state - {("video", ids.v2, 99, 99)}) | {("video", ids.v2, 1, 0)}
    assert flat(catalog_state(stack, ids)) == full_state

    # Re-running gold and then the sync of both days changes nothing: no double count.
    assert watch_gold_daily.run(spark, settings, [D1, D2], None) == gold
    watch_catalog_sync.run(spark, settings, [D1, D2], None)
    assert flat(catalog_state(stack, ids)) == full_state
