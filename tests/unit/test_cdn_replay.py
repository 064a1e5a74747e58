"""Cache replay: LRU and Belady on hand-worked traces, libCacheSim agreement on an
oracleGeneral trace, the warmed replay, and the CLI on CloudFront log files."""

from __future__ import annotations

import json
import random
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vidflow.cdn.logformat import LogRecord, gzip_file
from vidflow.cdn.popularity import Request
from vidflow.cdn.replay import (
    NEVER,
    belady,
    libcachesim_trace,
    lru,
    main,
    next_uses,
    replay_edge,
)
from vidflow.cdn.warm import PlannedObject, WarmPlan

# cap 10: A6 B4 C6 A6 B4
TRACE = [("A", 6), ("B", 4), ("C", 6), ("A", 6), ("B", 4)]


def test_next_uses() -> None:
    assert next_uses(["A", "B", "A", "C", "B"]) == [2, 4, NEVER, NEVER, NEVER]


def test_lru_hand_worked() -> None:
    # A, B miss (full); C evicts A then B; A evicts C; B fits beside A: no hit at all.
    stats = lru(TRACE, 10)
    assert (stats.requests, stats.hits, stats.bytes, stats.hit_bytes) == (5, 0, 26, 0)
    # A5 B5 A5 C5 B5 in 10: A hit; C evicts B (A was used later); B evicts A.
    stats = lru([("A", 5), ("B", 5), ("A", 5), ("C", 5), ("B", 5)], 10)
    assert (stats.hits, stats.hit_bytes, stats.origin_bytes) == (1, 5, 20)
    assert stats.object_hit_ratio == pytest.approx(0.2)


def test_lru_never_caches_an_object_larger_than_the_cache() -> None:
    stats = lru([("big", 11), ("big", 11)], 10)
    assert stats.hits == 0


def test_belady_bypasses_an_object_needed_later_than_what_it_displaces() -> None:
    # C is never needed again: it must not push out A (needed at 3) and B (at 4).
    stats = belady(TRACE, 10)
    assert (stats.hits, stats.hit_bytes, stats.bytes) == (2, 10, 26)
    assert stats.byte_hit_ratio == pytest.approx(10 / 26)


def test_belady_admitting_everything_is_libcachesims_rule() -> None:
    # Admitting C evicts B (next use 4, farthest) then A: both then miss.
    assert belady(TRACE, 10, admit_all=True).hits == 0


def test_belady_evicts_the_farthest_next_use() -> None:
    trace = [("A", 1), ("B", 1), ("C", 1), ("B", 1), ("A", 1), ("C", 1)]
    # C's next use (5) is later than A's (4) and B's (3): bypass; then B, A hit; C miss.
    stats = belady(trace, 2)
    assert stats.hits == 2
    # Counting only from position 3 on: B hit, A hit, C miss.
    counted = belady(trace, 2, count_from=3)
    assert (counted.requests, counted.hits) == (3, 2)


def _random_trace(seed: int, n: int = 4000) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    sizes = {f"o{i}": rng.choice([100, 250, 400, 1000, 1500]) for i in range(80)}
    trace = []
    for _ in range(n):
        if rng.random() < 0.7:
            key = f"o{min(int(rng.paretovariate(1.2)) - 1, 79)}"
        else:
            key = f"o{rng.randrange(80)}"
        trace.append((key, sizes[key]))
    return trace


def test_oracle_general_records(tmp_path: Path) -> None:
    path = tmp_path / "t.bin"
    ids = libcachesim_trace([("A", 6), ("B", 4), ("A", 6)], path, start_ts=100)
    raw = path.read_bytes()
    assert len(raw) == 3 * 24
    records = [struct.unpack("<IQIq", raw[i : i + 24]) for i in range(0, len(raw), 24)]
    # vtimes are 1-based positions; -1: never again.
    assert records == [(100, ids["A"], 6, 3), (101, ids["B"], 4, -1), (102, ids["A"], 6, -1)]


@pytest.mark.parametrize("capacity", [2000, 5000, 12000])
def test_agrees_with_libcachesim(tmp_path: Path, capacity: int) -> None:
    libcachesim = pytest.importorskip("libcachesim")
    trace = _random_trace(7)
    path = tmp_path / "trace.oracleGeneral.bin"
    libcachesim_trace(trace, path)

    def reference(cache_class: type) -> tuple[float, float]:
        reader = libcachesim.TraceReader(
            trace=str(path), trace_type=libcachesim.TraceType.ORACLE_GENERAL_TRACE
        )
        obj_miss, byte_miss = cache_class(capacity).process_trace(reader)
        return obj_miss, byte_miss

    mine = lru(trace, capacity)
    assert (1 - mine.object_hit_ratio, 1 - mine.byte_hit_ratio) == pytest.approx(
        reference(libcachesim.LRU), abs=1e-12
    )
    mine = belady(trace, capacity, admit_all=True)
    assert (1 - mine.object_hit_ratio, 1 - mine.byte_hit_ratio) == pytest.approx(
        reference(libcachesim.Belady), abs=1e-12
    )
    # The bypassing Belady is at least as good as both of libCacheSim's in bytes.
    best = belady(trace, capacity)
    assert 1 - best.byte_hit_ratio <= reference(libcachesim.Belady)[1] + 1e-12
    assert 1 - best.byte_hit_ratio <= reference(libcachesim.BeladySize)[1] + 1e-12


def _req(ts: float, key: str, size: int) -> Request:
    return Request(ts, "us-east", key, size)


def test_warmed_replay_hand_worked() -> None:
    # Cache 10. History: X, Z. Next hour: Y, X, Y.
    # LRU: Y evicts X -> miss, X miss (evicts Z), Y hit: 1 of 3, 5 of 15 bytes.
    # Warmed with Y: pushing Y evicts X; Y hit, X miss (evicts Z), Y hit: 10 of 15.
    # Belady (sees the future): keeps X and Y: Y miss (Z out), X hit, Y hit: 10 of 15.
    history = [_req(0, "X", 5), _req(1, "Z", 5)]
    upcoming = [_req(10, "Y", 5), _req(11, "X", 5), _req(12, "Y", 5)]
    plan = WarmPlan("us-east", 5, (PlannedObject("Y", 5, 2.0, 1),))
    result = replay_edge(history, upcoming, plan, 10)
    assert result.lru.hit_bytes == 5
    assert result.warmed.hit_bytes == 10
    assert result.belady.hit_bytes == 10
    assert result.gap_share == pytest.approx(1.0)
    assert result.prefetch_origin_bytes == 5
    assert result.to_dict()["warmed"]["origin_bytes"] == 5


def _record(ts: datetime, key: str, size: int, n: int, status: int = 200) -> LogRecord:
    return LogRecord(
        timestamp=ts,
        edge_location="eu-west",
        sc_bytes=size + 300,
        c_ip="10.0.0.1",
        cs_method="GET",
        cs_host="127.0.0.1:8102",
        cs_uri_stem=key,
        sc_status=status,
        cs_referer=None,
        cs_user_agent="test agent",
        cs_uri_query=None,
        cs_cookie=None,
        x_edge_result_type="Miss" if status < 400 else "Error",
        x_edge_request_id=f"r{n}",
        x_host_header=None,
        cs_protocol="http",
        cs_bytes=100,
        time_taken=0.01,
        x_forwarded_for=None,
        ssl_protocol=None,
        ssl_cipher=None,
        x_edge_response_result_type="Miss" if status < 400 else "Error",
        cs_protocol_version="HTTP/1.1",
        fle_status=None,
        fle_encrypted_fields=None,
        c_port=5000,
        time_to_first_byte=0.01,
        x_edge_detailed_result_type="Miss" if status < 400 else "Error",
        sc_content_type="video/iso.segment",
        sc_content_len=size if status < 400 else None,
        sc_range_start=None,
        sc_range_end=None,
    )


def test_cli_on_log_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = "/media/videos/0b0e2d1c-1111-4222-8333-944455556666/v1/"
    seg = video + "720p/seg_00001.m4s"
    hist, nxt = tmp_path / "hist", tmp_path / "next"
    hist.mkdir()
    nxt.mkdir()
    h10 = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
    h11 = datetime(2026, 11, 20, 11, 5, tzinfo=UTC)
    # History: the segment twice, a filler that pushes it out of a 1000-byte cache, and a
    # 404 (not cacheable: ignored), then a malformed line (skipped).
    records = [
        _record(h10, seg, 600, 1),
        _record(h10.replace(minute=10), seg, 600, 2),
        _record(h10.replace(minute=20), "/other/filler.bin", 700, 3),
        _record(h10.replace(minute=21), "/missing", 0, 4, status=404),
    ]
    body = gzip_file(records)
    import gzip

    text = gzip.decompress(body).decode() + "not\ta\tlog\tline\n"
    (hist / "vidflow-eu-west.2026-11-20-10.a.gz").write_bytes(gzip.compress(text.encode()))
    (nxt / "vidflow-eu-west.2026-11-20-11.a.gz").write_bytes(gzip_file([_record(h11, seg, 600, 5)]))
    code = main(
        [
            "--history", str(hist), "--next", str(nxt), "--cache-bytes", "1000",
            "--budget", "600", "--half-life-hours", "1", "--min-expected", "0.1",
        ]
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["history_requests"] == 3 and out["next_requests"] == 1
    (edge,) = out["edges"]
    # LRU: the filler evicted the segment: a miss. Warmed: the plan pushes the segment
    # (2 requests about an hour ago, well above 0.1 expected): a hit. Belady: a hit.
    assert edge["lru"]["hits"] == 0
    assert edge["warmed"]["hits"] == 1
    assert edge["belady"]["hits"] == 1
    assert edge["plan_objects"] == 1 and edge["plan_bytes"] == 600
    assert edge["gap_share"] == pytest.approx(1.0)
    assert edge["admitted"] is None and edge["admitted_gap_share"] is None

    # With an admission list: at 11:05 the segment's decayed score is 2^-1 + 2^-(55/60)
    # = 1.03 -> 1.03 ln 2 = 0.71 expected requests: on a list of threshold 0.5 (and planned
    # anyway): pushed and hit, like warmed.
    code = main(
        [
            "--history", str(hist), "--next", str(nxt), "--cache-bytes", "1000",
            "--budget", "600", "--half-life-hours", "1", "--min-expected", "0.1",
            "--admit-threshold", "0.5",
        ]
    )  # fmt: skip
    assert code == 0
    (edge,) = json.loads(capsys.readouterr().out)["edges"]
    assert edge["admit_objects"] == 1
    assert edge["admitted"]["hits"] == 1
    assert edge["admitted_gap_share"] == pytest.approx(1.0)
