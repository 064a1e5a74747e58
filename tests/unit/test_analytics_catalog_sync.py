"""Pure parts of the catalog sync: key validation, partition bounds, the summary."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from vidflow.analytics.catalog_sync import (
    HashPartition,
    Rejected,
    ShardResult,
    SyncSummary,
    VideoTotal,
    WatchTotal,
    parse_hash_bound,
    summarize,
    video_totals,
    watch_totals,
)

U = uuid.UUID("00000000-0000-4000-8000-000000000001")
V = uuid.UUID("00000000-0000-4000-8000-000000000002")


def test_watch_totals_convert_micros_to_utc_and_refuse_bad_keys() -> None:
    # 1_700_000_000 s after the epoch is 2023-11-14 22:13:20 UTC (a well-known instant).
    rows = [
        {
            "user_id": str(U),
            "video_id": str(V),
            "watched_at_micros": 1_700_000_000_500_000,
            "watch_duration_seconds": 12.5,
        },
        {
            "user_id": "not-a-uuid",
            "video_id": str(V),
            "watched_at_micros": 0,
            "watch_duration_seconds": 1.0,
        },
        {
            "user_id": str(U),
            "video_id": str(V),
            "watched_at_micros": 0,
            "watch_duration_seconds": float("nan"),
        },
    ]
    totals, rejected = watch_totals(rows)
    assert totals == [
        WatchTotal(U, V, datetime(2023, 11, 14, 22, 13, 20, 500_000, tzinfo=UTC), 12.5)
    ]
    assert [r.key for r in rejected] == [f"not-a-uuid/{V}", f"{U}/{V}"]
    assert "not a UUID" in rejected[0].reason and "nan" in rejected[1].reason


def test_video_totals_refuse_bad_keys_and_negative_counts() -> None:
    totals, rejected = video_totals(
        [
            {"video_id": str(V), "view_count": 3, "like_count": 1},
            {"video_id": "v-1", "view_count": 1, "like_count": 0},
            {"video_id": str(U), "view_count": -1, "like_count": 0},
        ]
    )
    assert totals == [VideoTotal(V, 3, 1)]
    assert rejected == [
        Rejected("v-1", "video_id is not a UUID"),
        Rejected(str(U), "negative count"),
    ]


def test_parse_hash_bound() -> None:
    bound = "FOR VALUES WITH (modulus 8, remainder 3)"
    assert parse_hash_bound("videos", "videos_p3", bound) == HashPartition(
        "videos", "videos_p3", 8, 3
    )
    with pytest.raises(ValueError, match="not a hash partition"):
        parse_hash_bound("videos", "videos_x", "FOR VALUES IN (1)")


def test_summary_totals_and_round_trip() -> None:
    shards = [
        ShardResult("watch_history", "watch_history_p0", staged=3, written=2),
        ShardResult("watch_history", "watch_history_p1", staged=1, written=1),
        ShardResult("videos", "videos_p0", staged=2, written=1),
    ]
    rejected = [Rejected(f"k{i}", "bad") for i in range(25)]
    summary = summarize(["2026-11-24"], "eu-west", shards, rejected)
    assert (summary.watch_history_rows, summary.skipped_unknown_users) == (3, 1)
    assert (summary.video_rows, summary.skipped_unknown_videos) == (1, 1)
    assert summary.rejected_count == 25 and len(summary.rejected) == 20
    assert SyncSummary.from_xcom(summary.to_xcom()) == summary
    assert summary.to_xcom()["skipped_unknown_users"] == 1
