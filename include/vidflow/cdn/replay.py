"""Replay an edge's requests against cache policies: LRU, LRU warmed by a plan, Belady.

    python -m vidflow.cdn.replay --history DIR --next DIR --cache-bytes N --budget N \\
        [--half-life-hours 1] [--edge us-east] [--objective bytes]

reads CloudFront-format log files (``*.gz`` or plain) under both directories, plans each
edge's warming from the history (:mod:`vidflow.cdn.warm`) and prints JSON metrics per
edge: byte hit ratio, object hit ratio and origin egress of the next hour's requests for

* ``lru``: an LRU cache of ``cache_bytes`` that has seen the history (the edge's own
  policy and state, no warming);
* ``warmed``: the same, after the plan's objects were pushed (least valuable first);
* ``belady``: Belady's offline optimum for variable sizes over history + next hour: evict
  what is needed farthest in the future, and do not admit an object needed later than
  everything it would displace. Per byte this is the byte-level Belady (every byte of an
  object is next needed at the object's next request), the bound for byte hit ratio.

Only the next hour's requests are counted; the history only sets the starting state (so
all three start from the same information, and Belady also sees the future). ``gap_share``
is ``(warmed - lru) / (belady - lru)`` in byte hit ratio (None when Belady gains nothing).
Objects larger than the cache are never cached. An object's size is the largest seen for
its key. Playlist freshness (the edges' 2 s max-age) is not modelled: a VOD playlist is
as cacheable as a segment here.

The simulators take ``(key, size)`` sequences; :func:`libcachesim_trace` writes the same
sequence in libCacheSim's oracleGeneral binary format, the reference the unit tests
compare against.
"""

from __future__ import annotations

import argparse
import heapq
import json
import struct
import sys
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from vidflow.cdn.popularity import (
    Request,
    object_scores,
    read_log_dir,
    requests_from_records,
)
from vidflow.cdn.warm import Objective, WarmPlan, admission_list, plan_warm

NEVER: Final = sys.maxsize
Access = tuple[str, int]


@dataclass
class CacheStats:
    requests: int = 0
    hits: int = 0
    bytes: int = 0
    hit_bytes: int = 0

    def record(self, size: int, hit: bool) -> None:
        self.requests += 1
        self.bytes += size
        if hit:
            self.hits += 1
            self.hit_bytes += size

    @property
    def byte_hit_ratio(self) -> float:
        return self.hit_bytes / self.bytes if self.bytes else 0.0

    @property
    def object_hit_ratio(self) -> float:
        return self.hits / self.requests if self.requests else 0.0

    @property
    def origin_bytes(self) -> int:
        return self.bytes - self.hit_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "byte_hit_ratio": round(self.byte_hit_ratio, 6),
            "object_hit_ratio": round(self.object_hit_ratio, 6),
            "origin_bytes": self.origin_bytes,
        }


class LRUCache:
    """A byte-capacity LRU: a hit moves the object to the front; a miss inserts it,
    evicting from the back until it fits (an object larger than the cache is not kept)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._items: OrderedDict[str, int] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def keys(self) -> list[str]:
        """Least recently used first."""
        return list(self._items)

    def access(self, key: str, size: int) -> bool:
        if key in self._items:
            self._items.move_to_end(key)
            return True
        if size > self.capacity:
            return False
        while self.used + size > self.capacity:
            _, evicted = self._items.popitem(last=False)
            self.used -= evicted
        self._items[key] = size
        self.used += size
        return False


class AdmissionLRU(LRUCache):
    """The edge's policy: an LRU behind an admission list, as nginx does it with
    ``proxy_no_cache`` on a ``map`` of the admitted paths (:mod:`vidflow.cdn.config`).

    A missed media segment (``.m4s``) is stored only if its key is on ``admit``; playlists,
    init segments and anything else are always stored, and a hit is a hit whatever the list
    says. ``admit`` None admits everything (plain LRU). :meth:`push` is the prefetcher's
    GET, which the edge always stores (the plan's objects are on the list)."""

    def __init__(self, capacity: int, admit: frozenset[str] | None = None) -> None:
        super().__init__(capacity)
        self.admit = admit

    def admits(self, key: str) -> bool:
        return self.admit is None or not key.endswith(".m4s") or key in self.admit

    def access(self, key: str, size: int) -> bool:
        if key in self._items or self.admits(key):
            return super().access(key, size)
        return False

    def push(self, key: str, size: int) -> bool:
        """Store ``key`` like a viewer's request would, admitted or not; True if held."""
        return super().access(key, size)


def next_uses(keys: Sequence[str]) -> list[int]:
    """For each position, the position of the next access to the same key (NEVER: none)."""
    out = [NEVER] * len(keys)
    seen: dict[str, int] = {}
    for i in range(len(keys) - 1, -1, -1):
        out[i] = seen.get(keys[i], NEVER)
        seen[keys[i]] = i
    return out


def belady(
    trace: Sequence[Access], capacity: int, *, count_from: int = 0, admit_all: bool = False
) -> CacheStats:
    """Belady (MIN) for variable sizes over ``trace``, counting positions >= count_from.

    Evicts the object whose next use is farthest. By default a missed object is admitted
    only if everything it displaces is needed later than it (else it bypasses the cache);
    ``admit_all`` always admits it (libCacheSim's ``Belady``, for the comparison)."""
    keys = [k for k, _ in trace]
    nxt = next_uses(keys)
    cached: dict[str, int] = {}  # key -> its next use
    sizes: dict[str, int] = {}
    heap: list[tuple[int, str]] = []  # (-next use, key); stale entries skipped
    used = 0
    stats = CacheStats()

    def farthest() -> tuple[int, str] | None:
        while heap:
            neg, key = heap[0]
            if cached.get(key) == -neg:
                return -neg, key
            heapq.heappop(heap)
        return None

    for i, (key, size) in enumerate(trace):
        hit = key in cached
        if i >= count_from:
            stats.record(size, hit)
        if hit:
            cached[key] = nxt[i]
            heapq.heappush(heap, (-nxt[i], key))
            continue
        if size > capacity:
            continue
        victims: list[tuple[int, str]] = []
        room = capacity - used
        while room < size:
            top = farthest()
            assert top is not None
            if not admit_all and top[0] <= nxt[i]:
                break
            heapq.heappop(heap)
            victims.append(top)
            del cached[top[1]]
            room += sizes[top[1]]
        if room < size:  # bypass: put the candidates back
            for use, victim in victims:
                cached[victim] = use
                heapq.heappush(heap, (-use, victim))
            continue
        for _, victim in victims:
            used -= sizes.pop(victim)
        cached[key], sizes[key] = nxt[i], size
        used += size
        heapq.heappush(heap, (-nxt[i], key))
    return stats


def lru(trace: Sequence[Access], capacity: int, *, count_from: int = 0) -> CacheStats:
    cache = LRUCache(capacity)
    stats = CacheStats()
    for i, (key, size) in enumerate(trace):
        hit = cache.access(key, size)
        if i >= count_from:
            stats.record(size, hit)
    return stats


# --- one edge, one hour ------------------------------------------------------------------


@dataclass(frozen=True)
class EdgeReplay:
    """The policies on one edge's next hour, and the plan's own cost.

    ``lru`` is the plain edge, ``warmed`` the plain edge after the pushes, ``admitted`` the
    edge behind its admission list after the pushes (what the edges run when the list is
    on; equal to ``warmed`` without a list), ``belady`` the offline optimum."""

    edge: str
    cache_bytes: int
    lru: CacheStats
    warmed: CacheStats
    belady: CacheStats
    plan_objects: int
    plan_bytes: int
    #: Bytes the pushes fetched (plan objects the LRU did not hold at push time).
    prefetch_origin_bytes: int
    admitted: CacheStats | None = None
    #: Segments on the admission list (None: no list).
    admit_objects: int | None = None

    def share(self, policy: CacheStats) -> float | None:
        """``(policy - lru) / (belady - lru)`` in byte hit ratio (None: no gap)."""
        gap = self.belady.byte_hit_ratio - self.lru.byte_hit_ratio
        if gap <= 1e-9:
            return None
        return (policy.byte_hit_ratio - self.lru.byte_hit_ratio) / gap

    @property
    def gap_share(self) -> float | None:
        """The share warming alone closes."""
        return self.share(self.warmed)

    @property
    def admitted_gap_share(self) -> float | None:
        """The share admission list + warming close (None without a list)."""
        return None if self.admitted is None else self.share(self.admitted)

    def to_dict(self) -> dict[str, Any]:
        share = self.gap_share
        return {
            "edge": self.edge,
            "cache_bytes": self.cache_bytes,
            "lru": self.lru.to_dict(),
            "warmed": self.warmed.to_dict(),
            "belady": self.belady.to_dict(),
            "plan_objects": self.plan_objects,
            "plan_bytes": self.plan_bytes,
            "prefetch_origin_bytes": self.prefetch_origin_bytes,
            "gap_share": None if share is None else round(share, 6),
            "admitted": None if self.admitted is None else self.admitted.to_dict(),
            "admit_objects": self.admit_objects,
            "admitted_gap_share": None
            if self.admitted_gap_share is None
            else round(self.admitted_gap_share, 6),
        }


def replay_edge(
    history: Sequence[Request],
    upcoming: Sequence[Request],
    plan: WarmPlan,
    cache_bytes: int,
    admit: frozenset[str] | None = None,
) -> EdgeReplay:
    """Replay ``upcoming`` (the next hour) after ``history`` under the policies. With
    ``admit``, the history ran under the list made for the hour before; the replay starts
    the list at the top of the hour, which credits the list with nothing it did not do."""
    sizes: dict[str, int] = {}
    for r in (*history, *upcoming):
        sizes[r.key] = max(sizes.get(r.key, 0), r.size)
    for o in plan.objects:
        sizes.setdefault(o.key, o.size)
    past = [(r.key, sizes[r.key]) for r in history]
    future = [(r.key, sizes[r.key]) for r in upcoming]

    lru_stats = lru([*past, *future], cache_bytes, count_from=len(past))

    cache = LRUCache(cache_bytes)
    for key, size in past:
        cache.access(key, size)
    fetched = 0
    for o in plan.push_order():
        if not cache.access(o.key, sizes[o.key]):
            fetched += sizes[o.key]
    warmed = CacheStats()
    for key, size in future:
        warmed.record(size, cache.access(key, size))

    admitted = None
    if admit is not None:
        # Until the top of the hour the edge ran as before (plain LRU state), then the
        # pushes, then the hour behind the list.
        edge = AdmissionLRU(cache_bytes, admit)
        for key, size in past:
            LRUCache.access(edge, key, size)
        for o in plan.push_order():
            edge.push(o.key, sizes[o.key])
        admitted = CacheStats()
        for key, size in future:
            admitted.record(size, edge.access(key, size))

    best = belady([*past, *future], cache_bytes, count_from=len(past))
    return EdgeReplay(
        plan.edge,
        cache_bytes,
        lru_stats,
        warmed,
        best,
        len(plan.objects),
        plan.total_bytes,
        fetched,
        admitted,
        None if admit is None else len(admit),
    )


def evaluate(
    history: Sequence[Request],
    upcoming: Sequence[Request],
    *,
    cache_bytes: int,
    budget_bytes: int,
    half_life_hours: float,
    objective: Objective = "bytes",
    min_expected: float = 0.3,
    edges: Iterable[str] | None = None,
    admit_threshold: float | None = None,
) -> list[EdgeReplay]:
    """Plan from ``history`` and replay ``upcoming``, per edge (both in time order); with
    ``admit_threshold``, also behind the admission list of that threshold."""
    names = sorted(set(edges) if edges is not None else {r.edge for r in upcoming})
    if not upcoming:
        return []
    as_of = min(r.ts for r in upcoming)
    out = []
    for edge in names:
        past = [r for r in history if r.edge == edge and r.ts < as_of]
        future = [r for r in upcoming if r.edge == edge]
        stats = object_scores(past, as_of=as_of, half_life_hours=half_life_hours)
        plan = plan_warm(
            edge,
            stats,
            budget_bytes=budget_bytes,
            half_life_hours=half_life_hours,
            objective=objective,
            min_expected=min_expected,
        )
        admit = None
        if admit_threshold is not None:
            admit = admission_list(
                stats, half_life_hours=half_life_hours, threshold=admit_threshold, plan=plan
            )
        out.append(replay_edge(past, future, plan, cache_bytes, admit))
    return out


# --- libCacheSim's oracleGeneral trace -----------------------------------------------------

ORACLE_RECORD: Final = struct.Struct("<IQIq")


def libcachesim_trace(trace: Sequence[Access], path: Path, *, start_ts: int = 0) -> dict[str, int]:
    """Write ``trace`` as libCacheSim's oracleGeneral binary trace (24-byte records:
    u32 timestamp, u64 object id, u32 size, i64 next access vtime, -1 for none; vtime is
    the request's position, 1-based as libCacheSim counts requests). Returns key -> id."""
    ids: dict[str, int] = {}
    keys = [k for k, _ in trace]
    nxt = next_uses(keys)
    with path.open("wb") as out:
        for i, (key, size) in enumerate(trace):
            obj = ids.setdefault(key, len(ids) + 1)
            nv = -1 if nxt[i] == NEVER else nxt[i] + 1
            out.write(ORACLE_RECORD.pack(start_ts + i, obj, size, nv))
    return ids


# --- the command line -----------------------------------------------------------------------


def _size(text: str) -> int:
    """Bytes, or an nginx size (``256m``, ``2g``, ``512k``)."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    text = text.strip().lower()
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vidflow.cdn.replay",
        description="Plan warming from history logs and replay the next hour's logs "
        "against LRU, warmed LRU and Belady; JSON metrics per edge on stdout.",
    )
    parser.add_argument("--history", type=Path, required=True, help="directory of history logs")
    parser.add_argument("--next", type=Path, required=True, help="directory of next-hour logs")
    parser.add_argument("--cache-bytes", type=_size, required=True, help="edge cache size")
    parser.add_argument("--budget", type=_size, required=True, help="warming byte budget")
    parser.add_argument("--half-life-hours", type=float, default=1.0)
    parser.add_argument("--objective", choices=("bytes", "requests"), default="bytes")
    parser.add_argument(
        "--min-expected",
        type=float,
        default=0.3,
        help="leave out objects expected fewer requests than this next hour",
    )
    parser.add_argument("--edge", action="append", help="only this edge (repeatable)")
    parser.add_argument(
        "--admit-threshold",
        type=float,
        help="also replay the edge behind an admission list: segments expected at least "
        "this many requests next hour (the edges' cdn_edge_admit_threshold)",
    )
    args = parser.parse_args(argv)
    for directory in (args.history, args.next):
        if not directory.is_dir():
            parser.error(f"{directory} is not a directory")
    history = requests_from_records(read_log_dir(args.history))
    upcoming = requests_from_records(read_log_dir(args.next))
    results = evaluate(
        history,
        upcoming,
        cache_bytes=args.cache_bytes,
        budget_bytes=args.budget,
        half_life_hours=args.half_life_hours,
        objective=args.objective,
        min_expected=args.min_expected,
        edges=args.edge,
        admit_threshold=args.admit_threshold,
    )
    print(
        json.dumps(
            {
                "history_requests": len(history),
                "next_requests": len(upcoming),
                "cache_bytes": args.cache_bytes,
                "budget_bytes": args.budget,
                "half_life_hours": args.half_life_hours,
                "edges": [r.to_dict() for r in results],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
