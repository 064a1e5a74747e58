"""``history --cdn-logs``: the requests the simulated playbacks make through their edges,
as CloudFront log objects (the format of :mod:`vidflow.cdn.logformat`, the names the
shipper uses), so days of CDN traffic exist without playing them.

Each playback of :func:`vidflow.traffic.simulate.simulate` becomes what the live player
(:mod:`vidflow.traffic.live`) fetches from its region's edge: the master playlist, the
rendition playlist of the highest rendition within 80 % of the session's bandwidth, that
rendition's init segment, then each 6 s segment one segment ahead of the playhead up to
where the viewer stopped (a seek skips what it jumps over; a pause delays the rest).

Media is synthetic but shaped like the publish step's: ``/media/videos/{id}/v1/...`` with
a six-rung ladder of Apple's bitrates (:data:`RENDITIONS`); a segment's size is its
rendition's bitrate x 6 s x a per-segment factor in [0.55, 0.85) (fixed per video and
segment, so every viewer sees the same object).

Hit or miss is decided like the tiers would: one LRU per edge of
``cdn_edge_cache_max_size`` and one shield LRU of ``cdn_shield_cache_max_size``; a
playlist is fresh for ``cdn_playlist_max_age_seconds`` (then refetched: a Miss). A miss
the shield holds is an ``OriginShieldHit``. ``late_share`` of the lines are written to the
file of the following hour, as CloudFront sometimes does. Objects are one per edge and
hour, ``{prefix}vidflow-{region}.YYYY-MM-DD-HH.h{tag}.gz``: the same arguments give the
same keys and bytes.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import numpy as np

from vidflow.cdn.config import parse_nginx_size
from vidflow.cdn.logformat import (
    HIT,
    MISS,
    ORIGIN_SHIELD_HIT,
    LogObjectName,
    LogRecord,
    distribution_name,
    gzip_file,
)
from vidflow.config import Settings
from vidflow.regions import DEVICES, REGION_NAMES
from vidflow.traffic.model import Population
from vidflow.traffic.simulate import Day, simulate

#: (name, peak bits/s as BANDWIDTH in the master playlist), smallest first.
RENDITIONS: Final[tuple[tuple[str, int], ...]] = (
    ("234p", 145_000),
    ("360p", 365_000),
    ("432p", 1_100_000),
    ("540p", 2_000_000),
    ("720p", 4_500_000),
    ("1080p", 7_800_000),
)
SEGMENT_SECONDS: Final = 6.0
BANDWIDTH_HEADROOM: Final = 0.8
VERSION: Final = "v1"
USER_AGENTS: Final = {
    "phone": "VidflowPlayer/1.0 (Android 14; phone)",
    "desktop": "Mozilla/5.0 (X11; Linux x86_64) VidflowWeb/1.0",
    "tv": "VidflowTV/1.0 (tvOS 18)",
}
CONTENT_TYPES: Final = {
    "m3u8": "application/vnd.apple.mpegurl",
    "mp4": "video/mp4",
    "m4s": "video/iso.segment",
}
HEADER_BYTES: Final = 320

Put = Callable[[str, bytes], None]
Say = Callable[[str], None]


def choose_rendition(bandwidth_bps: float) -> int:
    """Index of the highest rendition within the headroom, else the lowest."""
    fitting = [i for i, (_, peak) in enumerate(RENDITIONS) if peak <= bandwidth_bps * 0.8]
    return fitting[-1] if fitting else 0


def segment_count(duration: float) -> int:
    return max(1, math.ceil(duration / SEGMENT_SECONDS - 1e-9))


def segment_size(video: int, rendition: int, number: int) -> int:
    """Bytes of a segment: bitrate x 6 s x a factor fixed per (video, segment)."""
    digest = hashlib.blake2b(f"{video}/{number}".encode(), digest_size=4).digest()
    factor = 0.55 + 0.3 * int.from_bytes(digest, "big") / 2**32
    return int(RENDITIONS[rendition][1] * SEGMENT_SECONDS / 8 * factor)


@dataclass(frozen=True)
class PlayerRequest:
    ts: float
    region: int
    viewer: int
    device: int
    path: str
    size: int


@dataclass
class _Tier:
    """An LRU of bytes; playlists also expire after ``max_age`` seconds."""

    capacity: int
    max_age: float
    used: int = 0
    items: OrderedDict[str, tuple[int, float]] = field(default_factory=OrderedDict)

    def access(self, key: str, size: int, now: float, playlist: bool) -> bool:
        held = self.items.get(key)
        if held is not None and not (playlist and now - held[1] > self.max_age):
            self.items.move_to_end(key)
            return True
        if held is not None:
            self.used -= held[0]
            del self.items[key]
        if size <= self.capacity:
            while self.used + size > self.capacity:
                _, (evicted, _) = self.items.popitem(last=False)
                self.used -= evicted
            self.items[key] = (size, now)
            self.used += size
        return False


def playback_requests(population: Population, day: Day) -> Iterator[PlayerRequest]:
    """What each playback of ``day`` fetches through its edge (unordered across playbacks)."""
    plays, sessions, cat = day.playbacks, day.sessions, population.catalog
    for p in range(len(plays)):
        s = int(plays.session[p])
        v = int(plays.video[p])
        region, viewer, device = (
            int(sessions.region[s]),
            int(sessions.viewer[s]),
            int(sessions.device[s]),
        )
        rendition = choose_rendition(float(sessions.bandwidth_mbps[s]) * 1e6)
        name = RENDITIONS[rendition][0]
        duration = float(cat.duration[v])
        n_segments = segment_count(duration)
        base = f"/media/videos/{cat.video_ids[v]}/{VERSION}/"
        t0 = float(plays.start_ts[p])

        def req(
            at: float, path: str, size: int, who: tuple[int, int, int] = (region, viewer, device)
        ) -> PlayerRequest:
            return PlayerRequest(at, *who, path, size)

        yield req(t0, base + "master.m3u8", 180 + 130 * len(RENDITIONS))
        yield req(t0 + 0.2, f"{base}{name}/index.m3u8", 160 + 40 * n_segments)
        yield req(t0 + 0.4, f"{base}{name}/init.mp4", 760 + 12 * rendition)
        end = float(plays.end_position[p])
        seek_at = float(plays.seek_at[p])
        jump = float(plays.seek_jump[p])
        pause_at, pause = float(plays.pause_at[p]), float(plays.pause_seconds[p])
        # (playhead seconds at which the range starts, first position, last position)
        ranges = [(0.0, 0.0, end)]
        if not math.isnan(seek_at):
            ranges = [(0.0, 0.0, seek_at), (seek_at, max(seek_at + jump, 0.0), end)]
        for played_before, first, last in ranges:
            lo = int(first // SEGMENT_SECONDS) + 1
            hi = min(segment_count(max(last, first + 1e-3)), n_segments)
            for k in range(lo, hi + 1):
                # Fetched one segment ahead of the playhead.
                tau = played_before + max(0.0, (k - 2) * SEGMENT_SECONDS - first)
                if not math.isnan(pause_at) and tau > pause_at:
                    tau += pause
                yield req(
                    t0 + 0.5 + tau, f"{base}{name}/seg_{k:05d}.m4s", segment_size(v, rendition, k)
                )


@dataclass
class CdnLogResult:
    requests: int = 0
    hits: int = 0
    objects: int = 0
    bytes: int = 0
    late_lines: int = 0
    keys: list[str] = field(default_factory=list)


class CdnLogWriter:
    """Turns time-ordered player requests into log records and objects, carrying the
    caches' state from one batch (day) to the next."""

    def __init__(
        self, settings: Settings, tag: str, *, late_share: float = 0.002, seed: int = 0
    ) -> None:
        edge_bytes = parse_nginx_size(settings.cdn_edge_cache_max_size)
        shield_bytes = parse_nginx_size(settings.cdn_shield_cache_max_size)
        max_age = float(settings.cdn_playlist_max_age_seconds)
        self.edges = [_Tier(edge_bytes, max_age) for _ in REGION_NAMES]
        self.shield = _Tier(shield_bytes, max_age)
        self.hosts = [f"{settings.bind_host}:{settings.cdn_edge_port(r)}" for r in REGION_NAMES]
        self.tag, self.late_share = tag, late_share
        self.rng = np.random.default_rng([seed, 11])
        self.counter = 0
        #: (region, file hour) -> records
        self.files: dict[tuple[int, int], list[LogRecord]] = {}

    def add(self, requests: list[PlayerRequest]) -> int:
        """Decide hit/miss for time-ordered requests and file their records; returns hits."""
        hits = 0
        late = self.rng.random(len(requests)) < self.late_share
        for request, is_late in zip(requests, late.tolist(), strict=True):
            playlist = request.path.endswith(".m3u8")
            edge = self.edges[request.region]
            if edge.access(request.path, request.size, request.ts, playlist):
                result, detailed = HIT, HIT
                hits += 1
            elif self.shield.access(request.path, request.size, request.ts, playlist):
                result, detailed = MISS, ORIGIN_SHIELD_HIT
            else:
                result, detailed = MISS, MISS
            record = self._record(request, result, detailed)
            hour = int(request.ts // 3600) + (1 if is_late else 0)
            self.files.setdefault((request.region, hour), []).append(record)
        return hits

    def _record(self, r: PlayerRequest, result: str, detailed: str) -> LogRecord:
        self.counter += 1
        request_id = hashlib.blake2b(
            f"{self.tag}/{self.counter}".encode(), digest_size=16
        ).hexdigest()
        hit = result == HIT
        taken = round(0.001 + (0.0 if hit else 0.02 + r.size / 2e8), 3)
        host = self.hosts[r.region]
        return LogRecord(
            timestamp=datetime.fromtimestamp(int(r.ts), UTC),
            edge_location=REGION_NAMES[r.region],
            sc_bytes=r.size + HEADER_BYTES,
            c_ip=f"10.{r.region}.{(r.viewer >> 8) & 255}.{r.viewer & 255}",
            cs_method="GET",
            cs_host=host,
            cs_uri_stem=r.path,
            sc_status=200,
            cs_referer=None,
            cs_user_agent=USER_AGENTS[DEVICES[r.device]],
            cs_uri_query=None,
            cs_cookie=None,
            x_edge_result_type=result,
            x_edge_request_id=request_id,
            x_host_header=host,
            cs_protocol="http",
            cs_bytes=180,
            time_taken=taken,
            x_forwarded_for=None,
            ssl_protocol=None,
            ssl_cipher=None,
            x_edge_response_result_type=result,
            cs_protocol_version="HTTP/1.1",
            fle_status=None,
            fle_encrypted_fields=None,
            c_port=20000 + self.counter % 40000,
            time_to_first_byte=taken if hit else round(taken / 2, 3),
            x_edge_detailed_result_type=detailed,
            sc_content_type=CONTENT_TYPES[r.path.rsplit(".", 1)[1]],
            sc_content_len=r.size,
            sc_range_start=None,
            sc_range_end=None,
        )

    def flush(self, before_hour: int | None, prefix: str, put: Put, result: CdnLogResult) -> None:
        """Write (and forget) every file of an hour before ``before_hour`` (all: None)."""
        for region, hour in sorted(self.files):
            if before_hour is not None and hour >= before_hour:
                continue
            records = self.files.pop((region, hour))
            name = LogObjectName(
                distribution_name(REGION_NAMES[region]),
                datetime.fromtimestamp(hour * 3600, UTC),
                f"h{self.tag}",
            )
            body = gzip_file(records)
            put(name.key(prefix), body)
            result.objects += 1
            result.bytes += len(body)
            result.keys.append(name.key(prefix))
            result.late_lines += sum(
                1 for r in records if int(r.timestamp.timestamp()) < hour * 3600
            )


def write_cdn_logs(
    population: Population,
    settings: Settings,
    put: Put,
    say: Say = print,
    *,
    tag: str,
    late_share: float = 0.002,
    prefix: str | None = None,
    max_requests: int | None = None,
) -> CdnLogResult:
    """Simulate every day of ``population`` and write its edges' log objects through
    ``put`` (keys under ``prefix``, default ``cdn_log_prefix``). ``max_requests`` stops
    after about that many requests (whole hours)."""
    prefix = settings.cdn_log_prefix if prefix is None else prefix
    writer = CdnLogWriter(settings, tag, late_share=late_share, seed=population.seed)
    result = CdnLogResult()
    carry: list[PlayerRequest] = []
    for day in simulate(population):
        day_end = day.start_ts + 86400
        batch = carry + list(playback_requests(population, day))
        batch.sort(key=lambda r: (r.ts, r.region, r.path))
        cut = next((i for i, r in enumerate(batch) if r.ts >= day_end), len(batch))
        now, carry = batch[:cut], batch[cut:]
        if max_requests is not None and result.requests + len(now) > max_requests:
            room = max_requests - result.requests
            last_hour = int(now[room].ts // 3600) if room < len(now) else None
            now = [r for r in now if last_hour is None or int(r.ts // 3600) < last_hour]
            carry = []
            result.requests += len(now)
            result.hits += writer.add(now)
            writer.flush(None, prefix, put, result)
            break
        result.requests += len(now)
        result.hits += writer.add(now)
        writer.flush(int(day_end // 3600), prefix, put, result)
        say(
            f"cdn day {day.index + 1}/{population.days}: {len(now)} requests; total "
            f"{result.requests} ({result.hits / max(result.requests, 1):.1%} edge hits), "
            f"{result.objects} objects"
        )
    else:
        if carry:
            result.requests += len(carry)
            result.hits += writer.add(carry)
    writer.flush(None, prefix, put, result)
    return result
