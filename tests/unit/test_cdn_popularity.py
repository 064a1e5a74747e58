"""Object paths, decayed popularity (hand-computed) and reading log directories with
late and malformed lines."""

from __future__ import annotations

import gzip
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.test_cdn_replay import _record
from vidflow.cdn.logformat import gzip_file
from vidflow.cdn.popularity import (
    Request,
    decay_weight,
    object_scores,
    parse_object,
    rate_per_hour,
    read_log_dir,
    requests_from_records,
    video_scores,
)

VID = "0b0e2d1c-1111-4222-8333-944455556666"
BASE = f"/media/videos/{VID}/v1/"


def test_parse_object_kinds() -> None:
    assert parse_object(BASE + "master.m3u8").kind == "master"
    ref = parse_object(BASE + "720p/index.m3u8")
    assert (ref.kind, ref.video_id, ref.rendition) == ("playlist", VID, "720p")
    assert parse_object(BASE + "360p/init.mp4").kind == "init"
    ref = parse_object(BASE + "1080p/seg_00042.m4s")
    assert (ref.kind, ref.segment, ref.version) == ("segment", 42, "v1")
    assert parse_object("/favicon.ico").kind == "other"
    assert parse_object(BASE + "720p/seg_x.m4s").kind == "other"


def test_decay_hand_computed() -> None:
    assert decay_weight(0, 1) == 1.0
    assert decay_weight(3600, 1) == 0.5
    assert decay_weight(7200, 2) == 0.5
    assert decay_weight(3 * 3600, 1) == 0.125
    with pytest.raises(ValueError):
        decay_weight(1, 0)
    t0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
    requests = [
        Request((t0 - timedelta(hours=1)).timestamp(), "us-east", "/a", 10),
        Request((t0 - timedelta(hours=2)).timestamp(), "us-east", "/a", 12),
        Request((t0 - timedelta(hours=1)).timestamp(), "us-east", "/b", 5),
        Request(t0.timestamp(), "us-east", "/b", 5),  # at t0: not before it, not counted
    ]
    stats = object_scores(requests, as_of=t0, half_life_hours=1)
    assert stats["/a"].score == pytest.approx(0.75)
    assert stats["/a"].size == 12 and stats["/a"].requests == 2
    assert stats["/b"].score == pytest.approx(0.5)
    # 0.75 x ln 2 requests per hour: a steady rate r gives a score of r / ln 2.
    assert rate_per_hour(0.75, 1) == pytest.approx(0.75 * math.log(2))


def test_a_rising_video_overtakes_within_the_hour() -> None:
    # Old: 8 plays 5 h ago. New: 3 plays in the last 10 minutes. With a 1 h half-life the
    # new one leads (3 x ~0.9 > 8 / 32); with 24 h it does not yet.
    t0 = datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()
    old, new = f"/media/videos/{VID}/v1/master.m3u8", f"/media/videos/{VID[:-1]}7/v1/master.m3u8"
    requests = [Request(t0 - 5 * 3600, "x", old, 1)] * 8 + [Request(t0 - 600, "x", new, 1)] * 3
    fast = video_scores(object_scores(requests, as_of=t0, half_life_hours=1).values())
    slow = video_scores(object_scores(requests, as_of=t0, half_life_hours=24).values())
    assert fast[VID[:-1] + "7"] > fast[VID]
    assert slow[VID[:-1] + "7"] < slow[VID]


def test_read_log_dir_keeps_late_lines_and_skips_malformed(tmp_path: Path) -> None:
    h10 = datetime(2026, 11, 20, 10, 59, 58, tzinfo=UTC)
    h11 = datetime(2026, 11, 20, 11, 0, 3, tzinfo=UTC)
    # The file of hour 11 carries a late line of 10:59:58; one line is truncated.
    body = gzip.decompress(gzip_file([_record(h11, "/b", 5, 2), _record(h10, "/a", 5, 1)]))
    body += b"2026-11-20\t11:00:09\tus-east\n"
    (tmp_path / "vidflow-eu-west.2026-11-20-11.x.gz").write_bytes(gzip.compress(body))
    records = list(read_log_dir(tmp_path))
    assert [r.cs_uri_stem for r in records] == ["/b", "/a"]
    requests = requests_from_records(records)
    assert [r.key for r in requests] == ["/a", "/b"]  # time order
    assert requests_from_records(records, edge="us-east") == []
