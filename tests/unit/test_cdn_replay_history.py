"""``history --cdn-logs``: the player's requests of simulated playbacks, as CloudFront log
objects the parser reads back, deterministic, with hit/miss from the edge LRUs."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

from vidflow.cdn.config import parse_nginx_size
from vidflow.cdn.logformat import LogObjectName, LogRecord, iter_lines
from vidflow.cdn.popularity import parse_object
from vidflow.config import Settings
from vidflow.traffic.cdnlogs import (
    RENDITIONS,
    choose_rendition,
    segment_count,
    write_cdn_logs,
)
from vidflow.traffic.model import build_population


def test_rendition_choice_and_segments() -> None:
    assert RENDITIONS[choose_rendition(2.5e6)][0] == "540p"  # 2.0M <= 0.8 x 2.5M
    assert RENDITIONS[choose_rendition(0.1e6)][0] == "234p"  # nothing fits: lowest
    assert RENDITIONS[choose_rendition(20e6)][0] == "1080p"
    assert segment_count(12.0) == 2 and segment_count(12.5) == 3 and segment_count(1) == 1
    assert parse_nginx_size("256m") == 256 * 1024**2 and parse_nginx_size("100") == 100


def _write(settings: Settings) -> dict[str, bytes]:
    population = build_population(
        5, viewers=60, videos=20, start=datetime(2026, 11, 20, tzinfo=UTC), days=1
    )
    out: dict[str, bytes] = {}
    result = write_cdn_logs(
        population, settings, out.__setitem__, lambda _: None, tag="t1", late_share=0.05
    )
    assert result.objects == len(out) and result.requests > 0
    return out


def test_logs_parse_and_follow_the_player() -> None:
    settings = Settings(cdn_edge_cache_max_size="20m")
    objects = _write(settings)
    records: list[LogRecord] = []
    late = 0
    for key, body in objects.items():
        name = LogObjectName.parse(key)
        assert key.startswith("cdn-logs/vidflow-")
        for _, item in iter_lines(gzip.decompress(body).decode("ascii")):
            assert isinstance(item, LogRecord), item
            assert name.distribution == f"vidflow-{item.edge_location}"
            assert item.hour <= name.hour
            late += item.hour < name.hour
            records.append(item)
    assert late > 0  # some lines sit in a later hour's file
    records.sort(key=lambda r: (r.timestamp, r.x_edge_request_id))
    kinds = {parse_object(r.cs_uri_stem).kind for r in records}
    assert kinds == {"master", "playlist", "init", "segment"}
    # Every viewer (client address) starts with a master playlist (in its first second:
    # log times are whole seconds, and the first requests come within 0.4 s).
    first: dict[str, set[str]] = {}
    start: dict[str, datetime] = {}
    for r in records:
        start.setdefault(r.c_ip, r.timestamp)
        if r.timestamp == start[r.c_ip]:
            first.setdefault(r.c_ip, set()).add(parse_object(r.cs_uri_stem).kind)
    assert all("master" in kinds for kinds in first.values())
    results = {r.x_edge_result_type for r in records}
    assert results == {"Hit", "Miss"}
    # Hit only for an object this edge served before.
    seen: set[tuple[str, str]] = set()
    for r in records:
        if r.x_edge_result_type == "Hit":
            assert (r.edge_location, r.cs_uri_stem) in seen
        seen.add((r.edge_location, r.cs_uri_stem))
    assert len({r.x_edge_request_id for r in records}) == len(records)


def test_same_arguments_same_bytes() -> None:
    settings = Settings()
    assert _write(settings) == _write(settings)
