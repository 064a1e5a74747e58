"""Per-item validation of posted viewer events (vidflow.viewer.intake)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vidflow.events import StoredEvent
from vidflow.viewer.intake import EventRules, check_events

NOW = datetime(2026, 3, 14, 9, 30, 0, tzinfo=UTC)
RULES = EventRules(max_clock_skew=timedelta(seconds=300), max_lateness=timedelta(hours=72))
EVENT_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")
VIDEO_ID = uuid.UUID("22222222-2222-4222-8222-222222222222")
SESSION_ID = uuid.UUID("33333333-3333-4333-8333-333333333333")
USER_ID = uuid.UUID("44444444-4444-4444-8444-444444444444")


def event(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "event_id": str(EVENT_ID),
        "event_type": "heartbeat",
        "video_id": str(VIDEO_ID),
        "session_id": str(SESSION_ID),
        "client_ts": "2026-03-14T10:29:00+01:00",  # 09:29 UTC, one minute before NOW
        "position_seconds": 42.5,
        "region": "eu-west",
        "device": "phone",
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not ...}


def reason_of(item: object) -> str:
    intake = check_events([item], user_id=None, received_at=NOW, rules=RULES)
    assert intake.accepted == ()
    (rejected,) = intake.rejected
    assert rejected.index == 0
    return rejected.reason


def test_a_valid_event_is_stored_in_utc_with_user_and_receive_time() -> None:
    intake = check_events([event()], user_id=USER_ID, received_at=NOW, rules=RULES)
    assert intake.rejected == ()
    assert intake.accepted == (
        StoredEvent(
            event_id=str(EVENT_ID),
            event_type="heartbeat",
            video_id=str(VIDEO_ID),
            session_id=str(SESSION_ID),
            user_id=str(USER_ID),
            client_ts=datetime(2026, 3, 14, 9, 29, tzinfo=UTC),
            received_at=NOW,
            position_seconds=42.5,
            region="eu-west",
            device="phone",
        ),
    )
    line = intake.accepted[0].to_json_line()
    assert '"client_ts":"2026-03-14T09:29:00.000Z"' in line
    assert '"received_at":"2026-03-14T09:30:00.000Z"' in line


def test_anonymous_events_carry_no_user() -> None:
    intake = check_events([event()], user_id=None, received_at=NOW, rules=RULES)
    assert intake.accepted[0].user_id is None
    assert '"user_id":null' in intake.accepted[0].to_json_line()


@pytest.mark.parametrize(
    ("client_ts", "accepted"),
    [
        ("2026-03-14T09:35:00Z", True),  # exactly 300 s ahead: the limit itself
        ("2026-03-14T09:35:01Z", False),  # 301 s ahead
        ("2026-03-11T09:30:00Z", True),  # exactly 72 h old
        ("2026-03-11T09:29:59Z", False),  # 72 h and 1 s old
    ],
)
def test_clock_skew_and_lateness_limits(client_ts: str, accepted: bool) -> None:
    intake = check_events([event(client_ts=client_ts)], user_id=None, received_at=NOW, rules=RULES)
    assert len(intake.accepted) == (1 if accepted else 0)


def test_skew_and_lateness_reasons_say_what_is_wrong() -> None:
    ahead = reason_of(event(client_ts="2026-03-14T09:40:00Z"))
    assert "600 s ahead" in ahead and "300 s" in ahead
    late = reason_of(event(client_ts="2026-03-01T00:00:00Z"))
    assert "more than 72 hours in the past" in late


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (event(region="mars"), "region: Input should be 'us-east', 'eu-west'"),
        (event(device="fridge"), "device: Input should be 'phone', 'desktop' or 'tv'"),
        (event(event_type="rewind"), "event_type: Input should be 'play'"),
        (event(video_id="not-a-uuid"), "video_id: Input should be a valid UUID"),
        (event(session_id=12), "session_id: UUID input should be a string"),
        (event(extra_field=1), "extra_field: Extra inputs are not permitted"),
        (event(client_ts="2026-03-14T09:29:00"), "client_ts: Input should have timezone info"),
        (event(position_seconds=-1), "position_seconds: Input should be greater than or equal"),
        (event(position_seconds=12 * 3600 + 1), "position_seconds: Input should be less than"),
        (event(device=..., region=...), "missing fields: region, device"),
        ("a string", "an event must be a JSON object"),
        ([1, 2], "an event must be a JSON object"),
        (None, "an event must be a JSON object"),
    ],
)
def test_bad_items_are_rejected_with_the_reason(item: object, expected: str) -> None:
    assert expected in reason_of(item)


def test_rejections_name_the_event_id_when_readable() -> None:
    intake = check_events(
        [event(region="mars"), event(event_id="garbage", region="mars"), 7],
        user_id=None,
        received_at=NOW,
        rules=RULES,
    )
    assert [(r.index, r.event_id) for r in intake.rejected] == [(0, EVENT_ID), (1, None), (2, None)]


def test_good_items_of_a_mixed_batch_are_accepted_and_bad_ones_keep_their_index() -> None:
    ids = [uuid.UUID(int=n) for n in range(1, 6)]
    items: list[object] = [
        event(event_id=str(ids[0])),
        event(event_id=str(ids[1]), device="vcr"),
        event(event_id=str(ids[2])),
        "junk",
        event(event_id=str(ids[4]), client_ts="2030-01-01T00:00:00Z"),
    ]
    intake = check_events(items, user_id=None, received_at=NOW, rules=RULES)
    assert [e.event_id for e in intake.accepted] == [str(ids[0]), str(ids[2])]
    assert [(r.index, r.event_id) for r in intake.rejected] == [
        (1, ids[1]),
        (3, None),
        (4, ids[4]),
    ]


def test_a_repeated_event_id_in_one_batch_is_rejected_after_the_first() -> None:
    intake = check_events(
        [event(), event(position_seconds=50), event(event_type="pause")],
        user_id=None,
        received_at=NOW,
        rules=RULES,
    )
    assert len(intake.accepted) == 1 and intake.accepted[0].position_seconds == 42.5
    assert [(r.index, r.reason) for r in intake.rejected] == [
        (1, "duplicate of item 0 (same event_id)"),
        (2, "duplicate of item 0 (same event_id)"),
    ]


def test_long_unknown_field_names_are_not_echoed_whole() -> None:
    reason = reason_of(event(**{"x" * 5000: 1}))
    assert len(reason) < 200
