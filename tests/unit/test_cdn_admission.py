"""The edge's admission list: the policy the replay simulates, the list the planner makes,
the nginx map the edge reads."""

from __future__ import annotations

import math
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vidflow.cdn.__main__ import prepare
from vidflow.cdn.config import (
    admission_map,
    admission_map_path,
    conf_path,
    find_tier,
    render_conf,
    tier_dir,
)
from vidflow.cdn.popularity import ObjectStats, Request
from vidflow.cdn.replay import AdmissionLRU, replay_edge
from vidflow.cdn.warm import PlannedObject, WarmPlan, admission_list
from vidflow.config import Settings


def test_admission_lru_stores_only_listed_segments_and_anything_else() -> None:
    cache = AdmissionLRU(10, frozenset({"/a.m4s"}))
    # b is off the list: served twice, stored never; a is stored at its first miss;
    # a playlist is always stored.
    assert [
        cache.access("/b.m4s", 5),
        cache.access("/b.m4s", 5),
        cache.access("/a.m4s", 5),
        cache.access("/a.m4s", 5),
        cache.access("/p.m3u8", 5),
        cache.access("/a.m4s", 5),
    ] == [False, False, False, True, False, True]
    assert cache.keys() == ["/p.m3u8", "/a.m4s"]
    # A push stores whatever it is given (the plan's objects are on the list), evicting
    # the least recently used (the playlist).
    assert cache.push("/b.m4s", 5) is False
    assert cache.keys() == ["/a.m4s", "/b.m4s"]
    assert cache.access("/b.m4s", 5) is True


def test_admission_lru_without_a_list_is_lru() -> None:
    cache = AdmissionLRU(10)
    assert [cache.access(k, 5) for k in ("/x.m4s", "/y.m4s", "/x.m4s", "/z.m4s", "/y.m4s")] == [
        False,
        False,
        True,
        False,  # evicts y (x was used after it)
        False,
    ]


def _req(ts: float, key: str) -> Request:
    return Request(ts, "us-east", key, 5)


def test_replay_with_an_admission_list_hand_worked() -> None:
    # Cache 5 B, objects 5 B. Next hour: A X1 A X2 A.
    # LRU: every request evicts the one before: 0 hits.
    # List {A}: A stored; X1, X2 served through; A hits twice: 10 of 25 bytes.
    # Belady: X1 and X2 are never needed again, so it keeps A: 10 of 25 bytes.
    upcoming = [
        _req(10 + i, k) for i, k in enumerate(["/A.m4s", "/X1.m4s", "/A.m4s", "/X2.m4s", "/A.m4s"])
    ]
    plan = WarmPlan("us-east", 0, ())
    result = replay_edge([], upcoming, plan, 5, frozenset({"/A.m4s"}))
    assert result.lru.hit_bytes == 0
    assert result.warmed.hit_bytes == 0
    assert result.admitted is not None
    assert (result.admitted.hits, result.admitted.hit_bytes) == (2, 10)
    assert result.belady.hit_bytes == 10
    assert result.gap_share == pytest.approx(0.0)
    assert result.admitted_gap_share == pytest.approx(1.0)
    assert result.to_dict()["admit_objects"] == 1
    # Without a list there is no admitted policy.
    assert replay_edge([], upcoming, plan, 5).admitted_gap_share is None


def test_admission_list_by_expected_requests_plus_the_plan() -> None:
    # Half-life 1 h: a score S stands for S ln 2 requests next hour.
    # seg_1: 3 ln 2 = 2.08 >= 2 (listed); seg_2: 2 ln 2 = 1.39 (not); seg_3: 0.69, but
    # planned (listed); the playlist is expected most but is not a segment (always stored).
    objects = {
        key: ObjectStats(key, 100, score, 1)
        for key, score in {
            "/x/seg_1.m4s": 3.0,
            "/x/seg_2.m4s": 2.0,
            "/x/seg_3.m4s": 1.0,
            "/x/index.m3u8": 10.0,
        }.items()
    }
    assert 3 * math.log(2) >= 2.0 > 2 * math.log(2)
    plan = WarmPlan("us-east", 100, (PlannedObject("/x/seg_3.m4s", 100, 0.69, 1),))
    listed = admission_list(objects, half_life_hours=1.0, threshold=2.0, plan=plan)
    assert listed == frozenset({"/x/seg_1.m4s", "/x/seg_3.m4s"})
    assert admission_list(objects, half_life_hours=1.0, threshold=1.0) == frozenset(
        {"/x/seg_1.m4s", "/x/seg_2.m4s"}
    )
    with pytest.raises(ValueError, match="positive"):
        admission_list(objects, half_life_hours=1.0, threshold=0)
    planned = WarmPlan("us-east", 100, plan.objects, tuple(sorted(listed)))
    assert WarmPlan.from_xcom(planned.to_xcom()) == planned


def test_admission_map_text() -> None:
    assert admission_map(None) == "default 0;\n"
    text = admission_map(["/v/seg_2.m4s", "/v/seg_1.m4s", '/v/x";.m4s', "/v/a b.m4s"])
    # Exact keys beat the regex in an nginx map; keys nginx could not read are left out.
    assert text == "default 0;\n~\\.m4s$ 1;\n/v/seg_1.m4s 0;\n/v/seg_2.m4s 0;\n"


def test_edges_store_segments_through_the_list_and_the_shield_has_none() -> None:
    settings = Settings(cdn_edge_admit_threshold=2.0)
    edge = render_conf(settings, find_tier(settings, "edge-us-east"))
    assert f"include {settings.state_dir}/cdn/edge-us-east/admit.map;" in edge
    # Only the segment location consults the list.
    assert edge.count("proxy_no_cache $vidflow_not_admitted;") == 1
    segments = edge.split("location ~* \\.(m4s")[1].split("location ~* \\.(m3u8")[0]
    assert "proxy_no_cache $vidflow_not_admitted;" in segments
    assert "admit.map" not in render_conf(settings, find_tier(settings, "shield"))
    off = Settings()  # the default: no admission list
    assert off.cdn_edge_admit_threshold == 0
    assert "vidflow_not_admitted" not in render_conf(off, find_tier(off, "edge-us-east"))


def test_nginx_accepts_an_edge_with_a_list(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, cdn_edge_admit_threshold=2.0)
    tier = find_tier(settings, "edge-sa-east")
    prepare(settings, tier)
    assert admission_map_path(settings, tier).read_text() == "default 0;\n"
    keys = [
        f"/media/videos/{i:08d}-0000-0000-0000-000000000000/v1/720p/seg_00001.m4s"
        for i in range(20000)
    ]
    admission_map_path(settings, tier).write_text(admission_map(keys))
    where = ["-p", str(tier_dir(settings, tier)), "-c", str(conf_path(settings, tier))]
    result = subprocess.run(
        [settings.cdn_nginx_binary, "-t", "-q", "-e", "stderr", *where],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # prepare keeps an installed list (a restart does not drop it).
    prepare(settings, tier)
    assert admission_map_path(settings, tier).read_text().count(" 0;\n") == 20001


def test_only_the_current_hours_plan_installs_a_list() -> None:
    from jobs.cdn_plan import is_current
    from vidflow.cdn.payloads import CdnWindow

    start = datetime(2026, 11, 30, 20, tzinfo=UTC)
    window = CdnWindow(start, start + timedelta(hours=1), half_life_hours=1.0)
    assert is_current(window, now=start + timedelta(minutes=65))
    assert is_current(window, now=start + timedelta(minutes=5))
    assert not is_current(window, now=start + timedelta(hours=2, minutes=1))
    assert not is_current(window, now=start - timedelta(minutes=1))
