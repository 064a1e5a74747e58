"""Bronze transforms on hand-built lines: every rule's reason, %-decoding (a plus stays a
plus), the media path columns, a late line kept in its own hour, duplicates once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.unit.test_cdn_replay import _record
from vidflow.cdn.bronze import accepted_requests, check_lines, quarantined_lines
from vidflow.cdn.logformat import format_line

KEY11 = "cdn-logs/vidflow-eu-west.2026-11-20-11.abc.gz"
VID = "0b0e2d1c-1111-4222-8333-944455556666"
SEG = f"/media/videos/{VID}/v1/720p/seg_00007.m4s"


def frame(spark: Any, lines: list[str]) -> Any:
    return spark.createDataFrame(
        [(line, KEY11) for line in lines], "raw_line string, source_key string"
    )


def test_reasons_and_typed_rows(spark: Any) -> None:
    late = format_line(_record(datetime(2026, 11, 20, 10, 59, 59, tzinfo=UTC), SEG, 600, 1))
    on_time = format_line(_record(datetime(2026, 11, 20, 11, 0, 2, tzinfo=UTC), "/a+b c", 9, 2))
    fields = on_time.split("\t")
    bad_ts = "\t".join(["2026-13-40", *fields[1:]])
    bad_num = "\t".join([*fields[:3], "12x", *fields[4:]])
    missing = "\t".join([*fields[:14], "-", *fields[15:]])  # x-edge-request-id
    edge = "\t".join([*fields[:2], "mars-1", *fields[3:]])
    result = "\t".join([*fields[:13], "Maybe", *fields[14:]])
    lines = [late, on_time, on_time, "a\tb", bad_ts, bad_num, missing, edge, result]
    checked = check_lines(frame(spark, lines))
    reasons = sorted(r.reason for r in quarantined_lines(checked).collect())
    assert reasons == sorted(
        ["field_count", "bad_timestamp", "bad_number", "missing_field", "unknown_edge",
         "unknown_result_type"]
    )  # fmt: skip
    quarantine = quarantined_lines(checked).collect()
    assert {(r.region, str(r.file_hour)) for r in quarantine} == {
        ("eu-west", "2026-11-20 11:00:00")
    }
    rows = {r.request_id: r for r in accepted_requests(checked).collect()}
    assert set(rows) == {"r1", "r2"}  # the duplicate line once
    assert str(rows["r1"].request_hour) == "2026-11-20 10:00:00"  # late: its own hour
    assert (rows["r1"].object_kind, rows["r1"].video_id, rows["r1"].rendition) == (
        "segment",
        VID,
        "720p",
    )
    assert rows["r1"].segment == 7 and rows["r1"].object_bytes == 600
    assert rows["r2"].uri_stem == "/a+b c"  # written /a+b%20c: %20 decoded, + kept
    assert rows["r2"].user_agent == "test agent"
    assert rows["r2"].object_kind == "other" and rows["r2"].video_id is None
