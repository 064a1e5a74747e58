"""How a served list is assembled (vidflow.viewer.ranking) and how events fold into the
session signal (vidflow.viewer.session.session_touches). Expected lists are worked out by
hand from the rules in the module docstrings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from vidflow.events import StoredEvent
from vidflow.viewer import ranking
from vidflow.viewer.ranking import Pick, Ranked, Related
from vidflow.viewer.session import session_touches

ALL = {f"v{i}" for i in range(20)} | {"a", "b", "x", "y", "t1", "t2", "t3"}


def ids(picks: list[Pick]) -> list[str]:
    return [p.video_id for p in picks]


@pytest.mark.parametrize(
    ("raw", "default", "expected"),
    [
        ("collaborative", "collaborative", "collaborative"),
        ("CO-WATCH", "collaborative", "co-watch"),
        ("ranker", "collaborative", "collaborative"),
        ("popularity", "collaborative", "trending"),
        ("tags", "collaborative", "content"),
        ("something-new", "co-watch", "co-watch"),
        (None, "collaborative", "collaborative"),
    ],
)
def test_source_names(raw: str | None, default: ranking.Source, expected: str) -> None:
    assert ranking.source_name(raw, default=default) == expected


def test_session_picks_interleave_by_rank_latest_watch_first() -> None:
    related = [
        Related("a", "a2", 2, 0.5, "co-watch"),
        Related("b", "b1", 1, 0.8, "content"),
        Related("a", "a1", 1, 0.9, "co-watch"),
        Related("b", "b2", 2, 0.4, "content"),
        Related("zzz", "z1", 1, 1.0, "co-watch"),  # not in the session: ignored
    ]
    picks = ranking.session_picks(["b", "a"], related)
    assert ids(picks) == ["b1", "a1", "b2", "a2"]
    assert {p.source for p in picks} == {"session"}
    assert [p.anchor for p in picks] == ["b", "a", "b", "a"]


def test_viewer_list_session_then_precomputed_then_trending() -> None:
    precomputed = [
        Ranked("v1", 0.9, "ranker"),  # watched before: dropped
        Ranked("a", 0.85, "ranker"),  # watched in this session: dropped
        Ranked("v2", 0.8, "co-watch"),
        Ranked("x", 0.7, "ranker"),  # moved up by the session, shown once
        Ranked("v3", 0.6, "content"),
        Ranked("v4", 0.5, "ranker"),  # not playable: dropped
    ]
    related = [Related("a", "x", 1, 0.95, "co-watch"), Related("a", "y", 2, 0.6, "content")]
    trending = [Ranked("v2", 9.0, "us-east"), Ranked("t1", 8.0, "us-east")]
    picks = ranking.for_viewer(
        precomputed=precomputed,
        session=["a"],
        related=related,
        trending=trending,
        watched={"v1"},
        playable=ALL - {"v4"},
        limit=6,
    )
    # session slots: (6 + 1) // 2 = 3 >= 2 related; then v2, v3; then trending t1.
    assert ids(picks) == ["x", "y", "v2", "v3", "t1"]
    assert [p.source for p in picks] == ["session", "session", "co-watch", "content", "trending"]
    assert [p.score for p in picks] == [0.95, 0.6, 0.8, 0.6, 8.0]


def test_session_takes_at_most_half_the_list() -> None:
    related = [Related("a", f"v{i}", i, 1.0 / i, "co-watch") for i in range(1, 6)]
    precomputed = [Ranked("v10", 0.5, "ranker"), Ranked("v11", 0.4, "ranker")]
    picks = ranking.for_viewer(
        precomputed=precomputed,
        session=["a"],
        related=related,
        trending=[],
        watched=set(),
        playable=ALL,
        limit=4,
    )
    assert ids(picks) == ["v1", "v2", "v10", "v11"]


def test_new_viewer_gets_trending_and_short_lists_stay_short() -> None:
    trending = [Ranked("t1", 3.0, "us-east"), Ranked("t2", 2.0, "global")]
    picks = ranking.for_viewer(
        precomputed=[],
        session=[],
        related=[],
        trending=trending,
        watched={"t2"},
        playable=ALL,
        limit=20,
    )
    assert ids(picks) == ["t1"]
    assert picks[0].trending_in == "us-east"


def test_related_list_skips_the_video_itself_then_fills_from_trending() -> None:
    related = [
        Related("v1", "v3", 2, 0.5, "content"),
        Related("v1", "v2", 1, 0.7, "weird"),
        Related("v9", "v8", 1, 0.9, "co-watch"),  # another video's row
    ]
    trending = [Ranked("v1", 5.0, "eu-west"), Ranked("v2", 4.0, "eu-west"), Ranked("t1", 1, "x")]
    picks = ranking.for_video(
        video_id="v1", related=related, trending=trending, playable=ALL, limit=3
    )
    assert ids(picks) == ["v2", "v3", "t1"]
    assert [p.source for p in picks] == ["co-watch", "content", "trending"]


def test_region_list_in_order_and_limited() -> None:
    trending = [Ranked(f"t{i}", 10.0 - i, "sa-east") for i in (1, 2, 3)]
    picks = ranking.for_region(trending=trending, playable=ALL - {"t2"}, limit=5)
    assert ids(picks) == ["t1", "t3"]


@pytest.mark.parametrize(
    ("pick", "expected"),
    [
        (Pick("v1", "session", 1.0, "a"), "Because you watched Cats"),
        (Pick("v1", "session", 1.0, "gone"), "Because of what you just watched"),
        (Pick("v1", "trending", 1.0, trending_in="sa-east"), "Trending in sa-east"),
        (Pick("v1", "trending", 1.0, trending_in="global"), "Trending everywhere"),
        (Pick("v1", "co-watch", 1.0, "a"), "Often watched with Cats"),
        (Pick("v1", "content", 1.0), "Similar to videos you watched"),
        (Pick("v1", "collaborative", 1.0), "Picked for you from viewers with similar taste"),
    ],
)
def test_reasons(pick: Pick, expected: str) -> None:
    assert ranking.reason(pick, titles={"a": "Cats"}, region="sa-east") == expected


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
USER = uuid.UUID(int=1)
VIDEO = uuid.UUID(int=2)


def event(
    *, user: uuid.UUID | None = USER, video: uuid.UUID = VIDEO, ago: float, position: float
) -> StoredEvent:
    return StoredEvent(
        event_id=str(uuid.uuid4()),
        event_type="heartbeat",
        video_id=str(video),
        session_id=str(uuid.UUID(int=9)),
        user_id=str(user) if user else None,
        client_ts=NOW - timedelta(seconds=ago),
        received_at=NOW,
        position_seconds=position,
        region="us-east",
        device="phone",
    )


def test_session_touches_fold_per_viewer_and_video() -> None:
    other = uuid.UUID(int=3)
    events = [
        event(ago=30, position=10),
        event(ago=10, position=30),
        event(ago=20, position=20),
        event(video=other, ago=-100, position=5),  # client clock ahead: counts as arrival
        event(user=None, ago=5, position=50),  # anonymous: no session
        event(video=other, ago=3600, position=99),  # older than the window: left out
    ]
    touches = session_touches(events, window=timedelta(minutes=30))
    assert [(t.video_id, t.events) for t in touches] == [(VIDEO, 3), (other, 1)]
    first = touches[0]
    assert first.user_id == USER
    assert first.first_event_at == NOW - timedelta(seconds=30)
    assert first.last_event_at == NOW - timedelta(seconds=10)
    assert first.watched_seconds == 30
    assert touches[1].first_event_at == touches[1].last_event_at == NOW
    assert touches[1].watched_seconds == 5
