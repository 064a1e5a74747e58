"""Gold transforms on small hand-built silver frames; every expected value below is
worked out by hand from the events (see the comments), not taken from the code."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from chispa import assert_df_equality

from vidflow.analytics.gold import (
    SILVER_COLUMNS,
    USER_VIDEO_DAILY_SCHEMA,
    VIDEO_DAILY_STATS_SCHEMA,
    VIDEO_LIKERS_SCHEMA,
    GoldSummary,
    context_dates,
    credited_watch_seconds,
    replace_where,
    session_video_daily,
    user_video_daily,
    user_video_totals,
    video_daily_stats,
    video_likers,
    video_totals,
)
from vidflow.analytics.payloads import parse_dates

DAY = date(2026, 11, 24)
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SILVER_SCHEMA = (
    "event_id string, event_type string, video_id string, session_id string, "
    "user_id string, event_ts timestamp, position_seconds double, event_date date, "
    "region string"
)
EU, US = "eu-west", "us-east"
V1, V2 = "v1", "v2"
U1, U2 = "u1", "u2"


def _events(
    rows: list[tuple[str, str, str, str | None, float, float, str]],
) -> list[tuple[Any, ...]]:
    """(session, video, type, user, seconds after T0, position, region) -> silver rows."""
    out = []
    for n, (session, video, kind, user, offset, position, region) in enumerate(rows):
        ts = T0 + timedelta(seconds=offset)
        out.append((f"e{n:03d}", kind, video, session, user, ts, position, ts.date(), region))
    return out


# S1 (u1 on v1): play, heartbeat, seek, heartbeat, pause, play, like, heartbeat, a jump
# the wall clock cannot explain, complete. Credits per event, in order:
#   play 0 (first) | hb +10 | seek 0 (seek target) | hb +10 (110-100 in 10 s) |
#   pause +5 | play 0 (was paused) | like 0 (not a report) | hb +10 (125-115 in 10.5 s,
#   the like in between is ignored) | hb 0 (+75 in 9.5 s > 9.5 + 2) | complete +10  = 45
S1 = [
    ("s1", V1, "play", U1, 0, 0.0, EU),
    ("s1", V1, "heartbeat", U1, 10, 10.0, EU),
    ("s1", V1, "seek", U1, 15, 100.0, EU),
    ("s1", V1, "heartbeat", U1, 25, 110.0, EU),
    ("s1", V1, "pause", U1, 30, 115.0, EU),
    ("s1", V1, "play", U1, 90, 115.0, EU),
    ("s1", V1, "like", U1, 100, 125.0, EU),
    ("s1", V1, "heartbeat", U1, 100.5, 125.0, EU),
    ("s1", V1, "heartbeat", U1, 110, 200.0, EU),
    ("s1", V1, "complete", U1, 120, 210.0, EU),
]
S1_CREDITS = [0.0, 10.0, 0.0, 10.0, 5.0, 0.0, 0.0, 10.0, 0.0, 10.0]
# S2 (u1 again, another session): +11.5 in 10 s is within the 2 s slack; a like. = 11.5
S2 = [
    ("s2", V1, "play", U1, 1000, 0.0, EU),
    ("s2", V1, "heartbeat", U1, 1010, 11.5, EU),
    ("s2", V1, "like", U1, 1020, 21.0, EU),
]
# S3 (anonymous): +5, backwards 0, +10, then the same viewer likes twice. = 15
S3 = [
    ("s3", V1, "play", None, 2000, 0.0, EU),
    ("s3", V1, "heartbeat", None, 2005, 5.0, EU),
    ("s3", V1, "heartbeat", None, 2010, 3.0, EU),
    ("s3", V1, "complete", None, 2020, 13.0, EU),
    ("s3", V1, "like", None, 2021, 13.0, EU),
    ("s3", V1, "like", None, 2022, 13.0, EU),
]
# S4 (u2 on v2): no play that day, first report 0, then +10. = 10
S4 = [
    ("s4", V2, "heartbeat", U2, 50, 30.0, EU),
    ("s4", V2, "heartbeat", U2, 60, 40.0, EU),
]
# S5 (u2 on v2) plays across midnight: the play is on the day before (12 h before T0 is
# 00:00 UTC, so -12h-10s is 23:59:50 of the 23rd); +15 in 15 s is credited to the 24th.
S5 = [
    ("s5", V2, "play", U2, -12 * 3600 - 10, 0.0, EU),
    ("s5", V2, "heartbeat", U2, -12 * 3600 + 5, 15.0, EU),
]
# S6 (anonymous, another region): one play, nothing else.
S6 = [("s6", V1, "play", None, 300, 0.0, US)]


@pytest.fixture
def silver(spark: Any) -> Any:
    return spark.createDataFrame(_events(S1 + S2 + S3 + S4 + S5 + S6), SILVER_SCHEMA)


def test_credits_follow_the_player_state(spark: Any) -> None:
    events = spark.createDataFrame(_events(S1), SILVER_SCHEMA)
    credited = credited_watch_seconds(events).orderBy("event_id")
    assert credited.columns == [*SILVER_COLUMNS, "watch_seconds"]
    assert [r.watch_seconds for r in credited.collect()] == S1_CREDITS


def test_video_daily_stats(spark: Any, silver: Any) -> None:
    sessions = session_video_daily(credited_watch_seconds(silver), [DAY])
    expected = spark.createDataFrame(
        [
            # plays: s1 2 + s2 1 + s3 1; viewers u1, s3; 45 + 11.5 + 15 s;
            # s1, s2, s3 played and s1, s3 completed; likes by u1 (twice) and s3 (twice)
            (DAY, EU, V1, 4, 2, 71.5, 2 / 3, 2),
            # no play on the 24th (s5's was the day before): viewer u2 in two sessions
            (DAY, EU, V2, 0, 1, 25.0, 0.0, 0),
            (DAY, US, V1, 1, 1, 0.0, 0.0, 0),
        ],
        VIDEO_DAILY_STATS_SCHEMA,
    )
    assert_df_equality(
        video_daily_stats(sessions),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
        allow_nan_equality=False,
    )


def test_user_video_daily_only_signed_in(spark: Any, silver: Any) -> None:
    sessions = session_video_daily(credited_watch_seconds(silver), [DAY])
    expected = spark.createDataFrame(
        [
            # u1 on v1: s1 45 + s2 11.5; last event s2's like at T0 + 1020 s
            (DAY, EU, U1, V1, 56.5, T0 + timedelta(seconds=1020)),
            # u2 on v2: s4 10 + s5 15; last event s4's at T0 + 60 s
            (DAY, EU, U2, V2, 25.0, T0 + timedelta(seconds=60)),
        ],
        USER_VIDEO_DAILY_SCHEMA,
    )
    assert_df_equality(
        user_video_daily(sessions), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_the_day_before_is_context_only(silver: Any) -> None:
    sessions = session_video_daily(credited_watch_seconds(silver), [DAY - timedelta(days=1)])
    rows = video_daily_stats(sessions).collect()
    # On the 23rd only s5's play exists: one play, one viewer, nothing credited.
    assert [
        (r.event_date, r.video_id, r.plays, r.unique_viewers, r.watch_seconds) for r in rows
    ] == [(DAY - timedelta(days=1), V2, 1, 1, 0.0)]


def test_event_order_ties_break_on_event_id(spark: Any) -> None:
    rows = _events(
        [
            ("s", V1, "play", None, 0, 0.0, EU),
            ("s", V1, "heartbeat", None, 10, 10.0, EU),
            ("s", V1, "heartbeat", None, 10, 10.0, EU),
        ]
    )
    credited = credited_watch_seconds(spark.createDataFrame(rows, SILVER_SCHEMA))
    assert sorted(r.watch_seconds for r in credited.collect()) == [0.0, 0.0, 10.0]


GOLD_DAY2 = DAY + timedelta(days=1)


def test_totals_cover_all_days_of_touched_keys(spark: Any) -> None:
    user_video = spark.createDataFrame(
        [
            (DAY, EU, U1, V1, 10.0, T0),
            (GOLD_DAY2, US, U1, V1, 5.0, T0 + timedelta(days=1)),
            (DAY, EU, U2, V1, 7.0, T0),  # not touched on day 2
            (GOLD_DAY2, EU, U2, V2, 3.0, T0 + timedelta(days=1, hours=1)),
        ],
        USER_VIDEO_DAILY_SCHEMA,
    )
    expected = spark.createDataFrame(
        [(U1, V1, T0 + timedelta(days=1), 15.0), (U2, V2, T0 + timedelta(days=1, hours=1), 3.0)],
        "user_id string, video_id string, watched_at timestamp, watch_duration_seconds double",
    )
    assert_df_equality(
        user_video_totals(user_video, [GOLD_DAY2]),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    # Only eu-west touched on day 2: u2/v2, but its totals still span every region.
    assert [
        (r.user_id, r.video_id) for r in user_video_totals(user_video, [GOLD_DAY2], EU).collect()
    ] == [(U2, V2)]


def test_video_likers_are_distinct_viewers_per_day(spark: Any, silver: Any) -> None:
    sessions = session_video_daily(credited_watch_seconds(silver), [DAY])
    # v1 in eu-west: u1 liked in s1 and again in s2 (one viewer), anonymous s3 liked
    # twice (one viewer: its session). Nobody liked v2, nobody in us-east.
    expected = spark.createDataFrame([(DAY, EU, V1, U1), (DAY, EU, V1, "s3")], VIDEO_LIKERS_SCHEMA)
    assert_df_equality(
        video_likers(sessions), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_video_totals(spark: Any) -> None:
    stats = spark.createDataFrame(
        [
            (DAY, EU, V1, 4, 2, 10.0, 0.5, 2),
            (GOLD_DAY2, US, V1, 3, 1, 1.0, 0.0, 1),
            (DAY, EU, V2, 9, 9, 9.0, 1.0, 9),  # not touched on day 2
            (GOLD_DAY2, EU, "v3", 1, 1, 0.0, 0.0, 0),  # touched, never liked
        ],
        VIDEO_DAILY_STATS_SCHEMA,
    )
    likers = spark.createDataFrame(
        [
            (DAY, EU, V1, U1),
            (DAY, EU, V1, "s9"),
            (GOLD_DAY2, US, V1, U1),  # u1 likes v1 again on day 2, in another region
            (DAY, EU, V2, U2),
        ],
        VIDEO_LIKERS_SCHEMA,
    )
    # v1: plays 4 + 3 = 7; likers u1 and s9 = 2 (the per-day likes sum to 3: u1 twice).
    # v3: 1 play, no liker: 0. v2 is not touched on day 2.
    expected = spark.createDataFrame(
        [(V1, 7, 2), ("v3", 1, 0)], "video_id string, view_count long, like_count long"
    )
    assert_df_equality(
        video_totals(stats, likers, [GOLD_DAY2]),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert [tuple(r) for r in video_totals(stats, likers, [GOLD_DAY2], US).collect()] == [
        (V1, 7, 2)
    ]


def test_a_viewer_liking_on_two_days_counts_once(spark: Any) -> None:
    # u1 likes v1 on the 24th and again on the 25th; anonymous session c likes it on the 25th.
    silver = spark.createDataFrame(
        _events(
            [
                ("a", V1, "play", U1, 0, 0.0, EU),
                ("a", V1, "like", U1, 5, 5.0, EU),
                ("b", V1, "play", U1, 86400, 0.0, EU),
                ("b", V1, "like", U1, 86405, 5.0, EU),
                ("c", V1, "play", None, 86400, 0.0, EU),
                ("c", V1, "like", None, 86410, 10.0, EU),
            ]
        ),
        SILVER_SCHEMA,
    )
    sessions = session_video_daily(credited_watch_seconds(silver), [DAY, GOLD_DAY2])
    stats, likers = video_daily_stats(sessions), video_likers(sessions)
    # Per day: 1 like on the 24th, 2 on the 25th. All time: u1 and c = 2 likers; 3 plays.
    assert sorted((r.event_date, r.likes) for r in stats.collect()) == [(DAY, 1), (GOLD_DAY2, 2)]
    assert [tuple(r) for r in video_totals(stats, likers, [GOLD_DAY2]).collect()] == [(V1, 3, 2)]


def test_replace_where_names_exactly_the_runs_partitions() -> None:
    assert replace_where([date(2026, 11, 25), date(2026, 11, 24)], None) == (
        "event_date IN (DATE'2026-11-24', DATE'2026-11-25')"
    )
    assert replace_where([DAY], EU) == "event_date IN (DATE'2026-11-24') AND region = 'eu-west'"
    with pytest.raises(ValueError):
        replace_where([], None)
    with pytest.raises(ValueError):
        replace_where([DAY], "x' OR '1'='1")


def test_dates_parsing_and_context() -> None:
    assert parse_dates("2026-11-25, 2026-11-24,2026-11-25") == [DAY, GOLD_DAY2]
    with pytest.raises(ValueError, match="'2026-13-01'"):
        parse_dates("2026-13-01")
    with pytest.raises(ValueError, match="no date"):
        parse_dates(" , ")
    assert context_dates([DAY, GOLD_DAY2]) == [DAY - timedelta(days=1), DAY, GOLD_DAY2]


def test_summary_round_trips() -> None:
    summary = GoldSummary(("2026-11-24",), EU, 3, 2, 1)
    assert GoldSummary.from_xcom(summary.to_xcom()) == summary
