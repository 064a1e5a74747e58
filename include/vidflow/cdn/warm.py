"""The warm plan of an edge: which objects to push before the next hour, under a byte
budget, by expected hits per byte.

Expected requests of an object in the next hour come from two estimates, the larger wins:

* **observed**: the object's own decayed request rate (:mod:`vidflow.cdn.popularity`);
* **modelled** (what a video's audience will fetch): plays of the video (decayed master
  playlist requests) x the share of its plays on each rendition (the renditions devices in
  this region actually pick, from its rendition playlist requests; the region's overall
  mix when the video has none) x the share of plays that reach segment *k* (the region's
  survival curve). This covers playlists and init segments (every play of a rendition
  fetches them), early segments (nearly every play reaches them) and segments of a rising
  video nobody here fetched yet.

Objects expected fewer than ``min_expected`` requests are left out (pushing them only
evicts something), then a greedy knapsack fills the budget by density. ``objective``
``bytes`` (the default, for byte hit ratio) values an object by the origin bytes its hits
save, so its density is its expected requests; ``requests`` (for object hit ratio)
values each hit the same, so small objects come first. Ties go to the smaller object.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from vidflow.cdn.popularity import ObjectStats, parse_object, rate_per_hour

Objective = Literal["bytes", "requests"]
#: Videos (by plays) whose unseen segments the model may add.
MODEL_TOP_VIDEOS: Final = 50


@dataclass(frozen=True)
class PlannedObject:
    key: str
    size: int
    expected_requests: float
    #: 1 is pushed last (most valuable, most recently used afterwards).
    rank: int

    def to_xcom(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "size": self.size,
            "expected_requests": self.expected_requests,
            "rank": self.rank,
        }

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> PlannedObject:
        return cls(
            str(value["key"]),
            int(value["size"]),
            float(value["expected_requests"]),
            int(value["rank"]),
        )


@dataclass(frozen=True)
class WarmPlan:
    edge: str
    budget_bytes: int
    objects: tuple[PlannedObject, ...]
    #: The segments the edge may store next hour (:func:`admission_list`); None: all.
    admit: tuple[str, ...] | None = None

    @property
    def total_bytes(self) -> int:
        return sum(o.size for o in self.objects)

    def push_order(self) -> list[PlannedObject]:
        """Least valuable first, so the most valuable ends most recently used."""
        return sorted(self.objects, key=lambda o: -o.rank)

    def to_xcom(self) -> dict[str, Any]:
        return {
            "edge": self.edge,
            "budget_bytes": self.budget_bytes,
            "objects": [o.to_xcom() for o in self.objects],
            "admit": None if self.admit is None else list(self.admit),
        }

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> WarmPlan:
        return cls(
            str(value["edge"]),
            int(value["budget_bytes"]),
            tuple(PlannedObject.from_xcom(o) for o in value["objects"]),
            None if value.get("admit") is None else tuple(str(k) for k in value["admit"]),
        )


def knapsack(
    candidates: Mapping[str, tuple[float, int]],
    budget_bytes: int,
    *,
    objective: Objective = "bytes",
    min_expected: float = 0.3,
) -> list[PlannedObject]:
    """Greedy knapsack over ``key -> (expected requests, size)``: by density, then smaller
    size, then key; an item that does not fit is skipped and smaller ones still tried."""

    def density(item: tuple[str, tuple[float, int]]) -> tuple[float, int, str]:
        key, (expected, size) = item
        value = expected if objective == "bytes" else expected / max(size, 1)
        return (-value, size, key)

    chosen: list[PlannedObject] = []
    left = budget_bytes
    for key, (expected, size) in sorted(candidates.items(), key=density):
        if expected < min_expected or size <= 0 or size > left:
            continue
        left -= size
        chosen.append(PlannedObject(key, size, round(expected, 6), len(chosen) + 1))
    return chosen


def expected_requests(
    objects: Mapping[str, ObjectStats], half_life_hours: float
) -> dict[str, tuple[float, int]]:
    """``key -> (expected requests next hour, size)``: observed and modelled (see module)."""
    out = {k: (rate_per_hour(s.score, half_life_hours), s.size) for k, s in objects.items()}
    plays: dict[str, float] = defaultdict(float)
    rendition_score: dict[tuple[str, str], float] = defaultdict(float)
    region_rendition: dict[str, float] = defaultdict(float)
    segment_score: dict[int, float] = defaultdict(float)
    seg_sizes: dict[tuple[str, str], list[int]] = defaultdict(list)
    prefix: dict[str, str] = {}
    last_segment: dict[str, int] = defaultdict(int)
    for key, stats in objects.items():
        ref = parse_object(key)
        if ref.video_id is None:
            continue
        if ref.kind == "master":
            plays[ref.video_id] += stats.score
            prefix[ref.video_id] = key[: -len("master.m3u8")]
        elif ref.kind == "playlist" and ref.rendition:
            rendition_score[ref.video_id, ref.rendition] += stats.score
            region_rendition[ref.rendition] += stats.score
        elif ref.kind == "segment" and ref.rendition and ref.segment is not None:
            segment_score[ref.segment] += stats.score
            seg_sizes[ref.video_id, ref.rendition].append(stats.size)
            last_segment[ref.video_id] = max(last_segment[ref.video_id], ref.segment)
    total_plays = sum(plays.values())
    if total_plays <= 0:
        return out
    # Share of plays reaching segment k (summed over renditions), non-increasing in k.
    reach: dict[int, float] = {}
    running = 1.0
    for k in sorted(segment_score):
        running = min(running, segment_score[k] / total_plays)
        reach[k] = running
    seen = sorted(reach)

    def reach_of(k: int) -> float:
        """Share reaching k: that of the first seen segment at or after k (a lower bound,
        the curve being non-increasing); 0 past the last one."""
        at = bisect.bisect_left(seen, k)
        return reach[seen[at]] if at < len(seen) else 0.0

    region_total = sum(region_rendition.values())
    top = sorted(plays, key=lambda v: (-plays[v], v))[:MODEL_TOP_VIDEOS]
    for video in top:
        if video not in prefix:
            continue
        rate = rate_per_hour(plays[video], half_life_hours)
        mine = {r: s for (v, r), s in rendition_score.items() if v == video}
        mine_total = sum(mine.values())
        if mine_total > 0:
            shares = {r: s / mine_total for r, s in mine.items()}
        elif region_total > 0:
            shares = {r: s / region_total for r, s in region_rendition.items()}
        else:
            continue
        for rendition, share in shares.items():
            base = prefix[video] + rendition + "/"
            for name in ("index.m3u8", "init.mp4"):
                _raise(out, base + name, rate * share, objects)
            sizes = seg_sizes.get((video, rendition))
            if not sizes:
                continue
            typical = sum(sizes) // len(sizes)
            for k in range(1, last_segment[video] + 1):
                key = f"{base}seg_{k:05d}.m4s"
                expected = rate * share * reach_of(k)
                if key in out:
                    _raise(out, key, expected, objects)
                elif expected > 0:
                    out[key] = (expected, typical)
    return out


def _raise(
    out: dict[str, tuple[float, int]],
    key: str,
    expected: float,
    objects: Mapping[str, ObjectStats],
) -> None:
    """Raise a known object's estimate to the modelled one (unknown objects need a size)."""
    if key in out:
        current, size = out[key]
        out[key] = (max(current, expected), size)
    elif key in objects:
        out[key] = (expected, objects[key].size)


def admission_list(
    objects: Mapping[str, ObjectStats],
    *,
    half_life_hours: float,
    threshold: float,
    plan: WarmPlan | None = None,
) -> frozenset[str]:
    """The media segments an edge may store next hour: those expected at least
    ``threshold`` requests (observed or modelled, as the plan estimates them), and the
    plan's own. A segment off the list is served through (fetched, not stored): the bytes
    of the segments watched once no longer push out the ones about to be watched again."""
    if threshold <= 0:
        raise ValueError("threshold must be positive")
    candidates = expected_requests(objects, half_life_hours)
    keys = {k for k, (expected, _) in candidates.items() if expected >= threshold}
    if plan is not None:
        keys.update(o.key for o in plan.objects)
    return frozenset(k for k in keys if k.endswith(".m4s"))


def plan_warm(
    edge: str,
    objects: Mapping[str, ObjectStats],
    *,
    budget_bytes: int,
    half_life_hours: float,
    objective: Objective = "bytes",
    min_expected: float = 0.3,
) -> WarmPlan:
    """The plan of one edge from its objects' decayed stats at the planning time."""
    candidates = expected_requests(objects, half_life_hours)
    chosen = knapsack(candidates, budget_bytes, objective=objective, min_expected=min_expected)
    return WarmPlan(edge, budget_bytes, tuple(chosen))
