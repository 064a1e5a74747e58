"""Push a warm plan into an edge: a plain GET of each object through the edge, least
valuable first (so the most valuable ends most recently used), with bounded concurrency.

The body is read and dropped: fetching it whole is what makes nginx store it. What the
edge answered (status, ``X-Cache-Edge``, bytes) is recorded per object: a ``HIT`` was
already there, a ``MISS`` was fetched from the shield (or the origin) and is now cached.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from vidflow.cdn.config import admission_map, admission_map_path, find_tier, pid_path
from vidflow.cdn.payloads import PushResult
from vidflow.cdn.warm import WarmPlan
from vidflow.config import Settings

#: The User-Agent of a push: its log lines are edge traffic (kept in cdn_requests) but
#: not demand, so popularity, the hourly aggregates and the replay leave them out.
PREFETCH_USER_AGENT = "vidflow-prefetch/1"


def push_plan(
    plan: WarmPlan, edge_url: str, *, concurrency: int = 4, timeout: float = 30.0
) -> list[PushResult]:
    """GET every object of ``plan`` through ``edge_url``; never raises for one object."""
    order = plan.push_order()
    base = edge_url.rstrip("/")

    with httpx.Client(timeout=timeout, headers={"User-Agent": PREFETCH_USER_AGENT}) as client:

        def push(key: str) -> PushResult:
            try:
                size = 0
                with client.stream("GET", base + key) as response:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                    cache = response.headers.get("X-Cache-Edge", "")
                    return PushResult(plan.edge, key, response.status_code, cache, size)
            except httpx.HTTPError as exc:
                return PushResult(plan.edge, key, 0, f"error: {type(exc).__name__}", 0)

        # Waves of `concurrency` keep the push order roughly least-valuable-first.
        results: list[PushResult] = []
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            results = list(pool.map(push, [o.key for o in order]))
    return results


def summarise(results: Sequence[PushResult]) -> dict[str, int]:
    """Counts per outcome: ``pushed`` (fetched into the edge), ``already`` (a hit),
    ``failed`` (status not 200/206), and bytes moved."""
    ok = [r for r in results if r.status in (200, 206)]
    return {
        "objects": len(results),
        "pushed": sum(1 for r in ok if r.cache != "HIT"),
        "already": sum(1 for r in ok if r.cache == "HIT"),
        "failed": len(results) - len(ok),
        "bytes": sum(r.bytes for r in ok),
    }


def _workers(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    try:
        return {int(p) for p in children.read_text().split()}
    except OSError:
        return set()


def install_admission(
    settings: Settings, region: str, keys: Iterable[str] | None, *, timeout: float = 30.0
) -> bool:
    """Give a local edge its admission list (None: none, store everything) and reload it.

    The list is written next to the edge's nginx.conf (atomically: a reload never reads
    half a file) and the master is sent SIGHUP; this returns once the workers that ran the
    old list are gone, so a push made afterwards is stored under the new list. False when
    the stack runs no local edges or the edge is not running (nothing installed)."""
    if not settings.cdn_local_edges or settings.cdn_edge_admit_threshold <= 0:
        return False
    tier = find_tier(settings, f"edge-{region}")
    target = admission_map_path(settings, tier)
    try:
        master = int(pid_path(settings, tier).read_text().strip())
        os.kill(master, 0)
    except (OSError, ValueError):
        return False
    partial = target.with_suffix(".map.tmp")
    partial.write_text(admission_map(keys))
    partial.replace(target)
    old = _workers(master)
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while old & _workers(master) and time.monotonic() < deadline:
        time.sleep(0.05)
    if old & _workers(master):
        raise TimeoutError(f"edge-{region} still runs its old workers after {timeout:.0f}s")
    return True
