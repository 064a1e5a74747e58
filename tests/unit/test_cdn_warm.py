"""The warm plan: the knapsack by hand, and the modelled expectations."""

from __future__ import annotations

import math

import pytest

from vidflow.cdn.popularity import ObjectStats
from vidflow.cdn.warm import WarmPlan, expected_requests, knapsack, plan_warm

CANDIDATES = {"a": (10.0, 4), "b": (5.0, 2), "c": (3.0, 1), "d": (0.5, 1)}


def test_knapsack_by_bytes_saved() -> None:
    # Density = expected requests: a (4 B, left 2), b (2 B, left 0); c no longer fits;
    # d is expected fewer than min_expected=1.
    plan = knapsack(CANDIDATES, 6, objective="bytes", min_expected=1.0)
    assert [(p.key, p.rank) for p in plan] == [("a", 1), ("b", 2)]


def test_knapsack_by_requests_per_byte() -> None:
    # Densities a 2.5, b 2.5, c 3: c (left 5), then the tie by size: b (left 3); a (4 B)
    # does not fit.
    plan = knapsack(CANDIDATES, 6, objective="requests", min_expected=1.0)
    assert [p.key for p in plan] == ["c", "b"]


def test_knapsack_skips_what_does_not_fit_and_tries_smaller() -> None:
    plan = knapsack({"big": (9.0, 10), "small": (1.0, 3)}, 5, min_expected=0.0)
    assert [p.key for p in plan] == ["small"]


def test_push_order_ends_with_the_most_valuable() -> None:
    plan = WarmPlan("us-east", 6, tuple(knapsack(CANDIDATES, 6, min_expected=1.0)))
    assert [p.key for p in plan.push_order()] == ["b", "a"]
    assert plan.total_bytes == 6
    assert WarmPlan.from_xcom(plan.to_xcom()) == plan


V = "/media/videos/0b0e2d1c-1111-4222-8333-944455556666/v1/"


def test_model_fills_an_unseen_segment_of_a_played_video() -> None:
    # 4 plays (score 4, 1 h half-life: 4 ln2 an hour), all on 720p; every play reached
    # segment 1, a quarter segment 3; segment 2 was never fetched here. The model gives
    # it 4 ln2 x 1 (share of 720p) x 0.25 (reach of the next seen segment) = ln 2.
    objects = {
        V + "master.m3u8": ObjectStats(V + "master.m3u8", 900, 4.0, 4),
        V + "720p/index.m3u8": ObjectStats(V + "720p/index.m3u8", 400, 4.0, 4),
        V + "720p/init.mp4": ObjectStats(V + "720p/init.mp4", 800, 1.0, 1),
        V + "720p/seg_00001.m4s": ObjectStats(V + "720p/seg_00001.m4s", 3000, 4.0, 4),
        V + "720p/seg_00003.m4s": ObjectStats(V + "720p/seg_00003.m4s", 2000, 1.0, 1),
    }
    expected = expected_requests(objects, half_life_hours=1)
    ln2 = math.log(2)
    assert expected[V + "720p/seg_00002.m4s"] == pytest.approx((ln2, 2500))
    # init observed once (ln 2) but every 720p play fetches it: raised to 4 ln 2.
    assert expected[V + "720p/init.mp4"] == pytest.approx((4 * ln2, 800))
    plan = plan_warm("eu-west", objects, budget_bytes=5000, half_life_hours=1)
    # Four objects expected 4 ln 2, smaller first: playlist 400, init 800, master 900
    # (2100 used); segment 1 (3000) would make 5100 > 5000: skipped. Then ln 2 each:
    # segment 3 (2000, smaller first) makes 4100; segment 2 (2500) no longer fits.
    keys = [p.key.rsplit("/", 1)[1] for p in plan.objects]
    assert keys == ["index.m3u8", "init.mp4", "master.m3u8", "seg_00003.m4s"]
    assert plan.total_bytes == 4100
