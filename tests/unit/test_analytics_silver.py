"""Transforms of vidflow.analytics.silver (bronze lines -> silver + quarantine) on small
hand-built frames, with the rules of vidflow.analytics.quality."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from vidflow.analytics.quality import event_rules
from vidflow.analytics.silver import (
    accepted_events,
    check_events,
    dedupe_events,
    ingest_hour,
    mark_known_videos,
    object_key,
    only_region,
    parse_lines,
    quarantined_lines,
)

VIDEO = "0b7f3e2a-1c4d-4e5f-8a9b-0c1d2e3f4a5b"
OTHER_VIDEO = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
EVENT = "11111111-2222-4333-8444-555555555555"
SESSION = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
USER = "12345678-1234-4234-8234-123456789abc"
KEY = "events/date=2026-03-10/hour=14/api-1-00000001.ndjson"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


HOUR = utc(2026, 3, 10, 14)
RULES = event_rules(max_clock_skew_seconds=300, max_lateness_hours=72)


def line(**changes: Any) -> str:
    """A stored line (the viewer API's form), with fields changed or removed (None)."""
    values: dict[str, Any] = {
        "schema": 1,
        "event_id": EVENT,
        "event_type": "heartbeat",
        "video_id": VIDEO,
        "session_id": SESSION,
        "user_id": USER,
        "client_ts": "2026-03-10T14:05:00.250Z",
        "received_at": "2026-03-10T14:05:01.000Z",
        "position_seconds": 42.5,
        "region": "eu-west",
        "device": "tv",
    }
    for name, value in changes.items():
        if value is ...:
            values.pop(name)
        else:
            values[name] = value
    return json.dumps(values)


def lines_frame(spark: Any, lines: list[str], key: str = KEY) -> Any:
    return spark.createDataFrame(
        [(text, key) for text in lines], "raw_line string, source_key string"
    )


def checked(spark: Any, lines: list[str], known: tuple[str, ...] = (VIDEO,)) -> Any:
    videos = spark.createDataFrame([(v,) for v in known], "video_id string")
    return check_events(mark_known_videos(parse_lines(lines_frame(spark, lines)), videos), RULES)


def test_keys_give_object_key_and_receive_hour(spark: Any) -> None:
    frame = spark.createDataFrame(
        [(f"s3a://vidflow-events/{KEY}",), ("s3a://b/misc/x.ndjson",), (KEY,)], "path string"
    )
    result = frame.select(
        object_key(frame.path).alias("key"), ingest_hour(frame.path).alias("hour")
    )
    expected = spark.createDataFrame(
        [(KEY, HOUR), ("misc/x.ndjson", None), (KEY, HOUR)], "key string, hour timestamp"
    )
    assert_df_equality(result, expected, ignore_nullable=True)


def test_parse_lines_types_a_good_line(spark: Any) -> None:
    parsed = parse_lines(lines_frame(spark, [line()])).drop("raw_line", "source_key")
    expected = spark.createDataFrame(
        [
            (
                HOUR,
                True,
                True,
                1,
                EVENT,
                "heartbeat",
                VIDEO,
                SESSION,
                USER,
                utc(2026, 3, 10, 14, 5, 0, 250000),
                utc(2026, 3, 10, 14, 5, 1),
                42.5,
                "eu-west",
                "tv",
                -0.75,
                0.75 / 3600,
            )
        ],
        "ingest_hour timestamp, is_json_object boolean, types_ok boolean, schema int, "
        "event_id string, event_type string, video_id string, session_id string, "
        "user_id string, event_ts timestamp, received_at timestamp, position_seconds double, "
        "region string, device string, skew_seconds double, lateness_hours double",
    )
    assert_df_equality(parsed, expected, ignore_nullable=True)


def test_parse_lines_flags_non_json_and_wrong_types(spark: Any) -> None:
    lines = ["not json", "[1, 2]", "", line(position_seconds="far"), line(client_ts="soon")]
    parsed = parse_lines(lines_frame(spark, lines)).select(
        "raw_line", "is_json_object", "types_ok", "position_seconds", "event_ts"
    )
    expected = spark.createDataFrame(
        [
            ("not json", False, None, None, None),
            ("[1, 2]", False, None, None, None),
            ("", False, None, None, None),
            # PERMISSIVE keeps the fields that did parse; the row is still wrong_type.
            (lines[3], True, False, None, utc(2026, 3, 10, 14, 5, 0, 250000)),
            (lines[4], True, False, 42.5, None),
        ],
        "raw_line string, is_json_object boolean, types_ok boolean, "
        "position_seconds double, event_ts timestamp",
    )
    assert_df_equality(parsed, expected, ignore_nullable=True, ignore_row_order=True)


def test_known_videos_are_marked_and_a_missing_video_id_is_unknown_not_false(spark: Any) -> None:
    lines = [line(), line(video_id=OTHER_VIDEO), line(video_id=VIDEO.upper()), line(video_id=...)]
    videos = spark.createDataFrame([(VIDEO,), (VIDEO,)], "video_id string")
    marked = mark_known_videos(parse_lines(lines_frame(spark, lines)), videos)
    result = marked.select("raw_line", "video_known")
    expected = spark.createDataFrame(
        [(lines[0], True), (lines[1], False), (lines[2], False), (lines[3], None)],
        "raw_line string, video_known boolean",
    )
    assert_df_equality(result, expected, ignore_nullable=True, ignore_row_order=True)


# One line per reason, each breaking exactly the rule named (hand-made).
BAD_LINES = {
    "not_json": "{oops",
    "wrong_type": line(position_seconds="12s"),
    "missing_field": line(session_id=...),
    "unsupported_schema": line(schema=2),
    "malformed_uuid": line(user_id="user-7"),
    "unknown_event_type": line(event_type="rewind"),
    "unknown_region": line(region="mars-1"),
    "unknown_device": line(device="fridge"),
    "position_out_of_range": line(position_seconds=-1.0),
    "future_event": line(client_ts="2026-03-10T14:11:01.001Z"),  # received 14:05:01
    "too_late": line(client_ts="2026-03-07T14:05:00.999Z"),  # 72 h and 0.001 s before
    "unknown_video": line(video_id=OTHER_VIDEO),
}


def test_every_rule_gives_its_reason_and_good_lines_pass(spark: Any) -> None:
    good = [
        line(),
        line(user_id=None),  # anonymous
        line(client_ts="2026-03-10T14:10:01.000Z"),  # exactly the allowed clock skew
        line(client_ts="2026-03-07T14:05:01.000Z"),  # exactly 72 h late
        line(position_seconds=43200.0),
    ]
    frame = checked(spark, [*BAD_LINES.values(), *good])
    result = frame.select("raw_line", "quarantine_reason")
    expected = spark.createDataFrame(
        [(text, reason) for reason, text in BAD_LINES.items()] + [(text, None) for text in good],
        "raw_line string, quarantine_reason string",
    )
    assert_df_equality(result, expected, ignore_nullable=True, ignore_row_order=True)
    assert {r.reason for r in RULES} == set(BAD_LINES)


def test_the_first_broken_rule_wins(spark: Any) -> None:
    both = line(region="mars-1", device="fridge", video_id=OTHER_VIDEO)
    assert checked(spark, [both]).first()["quarantine_reason"] == "unknown_region"


def test_accepted_events_land_in_the_day_of_their_event_time(spark: Any) -> None:
    late = line(event_id=EVENT.replace("1", "7"), client_ts="2026-03-08T23:59:59.000Z")
    accepted = accepted_events(checked(spark, [line(), late, BAD_LINES["unknown_region"]]))
    result = accepted.select("event_id", "event_date", "region", "ingest_hour")
    expected = spark.createDataFrame(
        [
            (EVENT, date(2026, 3, 10), "eu-west", HOUR),
            (EVENT.replace("1", "7"), date(2026, 3, 8), "eu-west", HOUR),
        ],
        "event_id string, event_date date, region string, ingest_hour timestamp",
    )
    assert_df_equality(result, expected, ignore_nullable=True, ignore_row_order=True)


def test_dedupe_keeps_the_copy_received_first(spark: Any) -> None:
    columns = (
        "event_id string, event_type string, video_id string, session_id string, "
        "user_id string, event_ts timestamp, received_at timestamp, position_seconds double, "
        "device string, ingest_hour timestamp, event_date date, region string, "
        "source_key string"
    )
    ts = utc(2026, 3, 10, 13, 59)
    day = date(2026, 3, 10)

    def row(event: str, received_minute: int, key: str) -> tuple[Any, ...]:
        received = utc(2026, 3, 10, 14, received_minute)
        return (
            event,
            "play",
            VIDEO,
            SESSION,
            None,
            ts,
            received,
            0.0,
            "tv",
            HOUR,
            day,
            "eu-west",
            key,
        )

    accepted = spark.createDataFrame(
        [row("e1", 30, "k2"), row("e1", 10, "k3"), row("e1", 10, "k1"), row("e2", 50, "k1")],
        columns,
    )
    result = dedupe_events(accepted)
    expected = spark.createDataFrame([row("e1", 10, "k1"), row("e2", 50, "k1")], columns).drop(
        "source_key"
    )
    assert_df_equality(result, expected, ignore_nullable=True, ignore_row_order=True)


def test_quarantine_rows_keep_the_line_and_fall_back_to_the_receive_hour(spark: Any) -> None:
    rows = quarantined_lines(
        checked(
            spark,
            [
                "{oops",
                BAD_LINES["unknown_region"],
                BAD_LINES["too_late"],
                line(),  # accepted: not in quarantine
            ],
        )
    )
    expected = spark.createDataFrame(
        [
            ("{oops", "not_json", KEY, HOUR, None, date(2026, 3, 10), "unknown"),
            (
                BAD_LINES["unknown_region"],
                "unknown_region",
                KEY,
                HOUR,
                EVENT,
                date(2026, 3, 10),
                "unknown",
            ),
            (BAD_LINES["too_late"], "too_late", KEY, HOUR, EVENT, date(2026, 3, 7), "eu-west"),
        ],
        "raw_line string, reason string, source_key string, ingest_hour timestamp, "
        "event_id string, event_date date, region string",
    )
    assert_df_equality(rows, expected, ignore_nullable=True, ignore_row_order=True)


@pytest.mark.parametrize(
    ("region", "kept"), [(None, 3), ("eu-west", 1), ("unknown", 1), ("ap-south", 1)]
)
def test_only_region_keeps_that_regions_rows(spark: Any, region: str | None, kept: int) -> None:
    frame = checked(spark, [line(), line(region="ap-south"), BAD_LINES["unknown_region"]])
    assert only_region(frame, region).count() == kept


def test_receive_hour_is_the_folder_not_the_clock(spark: Any) -> None:
    # A line received at 14:59:59.9 but stored in the 15:00 folder belongs to hour 15.
    key = "events/date=2026-03-10/hour=15/api-2-00000009.ndjson"
    parsed = parse_lines(lines_frame(spark, [line(received_at="2026-03-10T14:59:59.900Z")], key))
    hour = parsed.select(F.date_format("ingest_hour", "yyyy-MM-dd HH").alias("h")).first()
    assert hour is not None and hour["h"] == "2026-03-10 15"
