"""What an edge served, as a trace, and how popular each object and video is.

A CDN request is one :class:`Request`: when, which edge, which object (the URL path the
player asked for) and how many bytes the object has. The media layout of the publish step
(``/media/videos/{video_id}/{version}/master.m3u8``, ``{rendition}/index.m3u8``,
``{rendition}/init.mp4``, ``{rendition}/seg_NNNNN.m4s``) makes every path an
:class:`ObjectRef`: its video, rendition, kind and segment number.

Popularity is a time-decayed count: a request at time ``t`` weighs ``2^-((t0 - t) / h)``
at time ``t0`` (``h`` the half-life). The sum ``S`` of the weights is a score; since the
kernel integrates to ``h / ln 2``, ``S x ln 2 / h`` is the recent request *rate* per hour,
the planner's estimate of the next hour's requests. A short half-life notices a video
rising in one region within the hour; a long one smooths noise.

Pure Python (no Spark): the replay CLI and the planner use it on log files; the Spark
job computes the same scores in SQL (:func:`decay_weight` is the formula of both).
"""

from __future__ import annotations

import gzip
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from vidflow.cdn.logformat import ERROR, LogRecord, iter_lines

ObjectKind = Literal["master", "playlist", "init", "segment", "other"]

_MEDIA_PATH: Final = re.compile(
    r"/media/videos/(?P<video>[0-9a-fA-F-]{36})/(?P<version>[^/]+)/"
    r"(?:(?P<master>master\.m3u8)|(?P<rendition>[^/]+)/"
    r"(?:(?P<playlist>index\.m3u8)|(?P<init>init\.mp4)|seg_(?P<segment>\d+)\.m4s))"
)


@dataclass(frozen=True)
class ObjectRef:
    """The media object a URL path names (``other`` for anything else)."""

    path: str
    kind: ObjectKind
    video_id: str | None = None
    version: str | None = None
    rendition: str | None = None
    segment: int | None = None


def parse_object(path: str) -> ObjectRef:
    """The :class:`ObjectRef` of a request path (query strings are not part of it)."""
    match = _MEDIA_PATH.fullmatch(path)
    if match is None:
        return ObjectRef(path, "other")
    video, version = match["video"].lower(), match["version"]
    if match["master"]:
        return ObjectRef(path, "master", video, version)
    rendition = match["rendition"]
    if match["playlist"]:
        return ObjectRef(path, "playlist", video, version, rendition)
    if match["init"]:
        return ObjectRef(path, "init", video, version, rendition)
    return ObjectRef(path, "segment", video, version, rendition, int(match["segment"]))


@dataclass(frozen=True)
class Request:
    """One request an edge served: unix seconds, edge (region), object path, its size."""

    ts: float
    edge: str
    key: str
    size: int


def object_size(record: LogRecord) -> int:
    """Bytes of the object a request fetched: the Content-Length, else the bytes sent."""
    return record.sc_content_len if record.sc_content_len is not None else record.sc_bytes


def is_cacheable(record: LogRecord) -> bool:
    """A GET the edge answered with a whole object (200) or a part (206), not an error."""
    return (
        record.cs_method == "GET"
        and record.sc_status in (200, 206)
        and record.x_edge_result_type != ERROR
    )


def request_of(record: LogRecord) -> Request:
    return Request(
        record.timestamp.timestamp(), record.edge_location, record.cs_uri_stem, object_size(record)
    )


def read_log_dir(directory: Path) -> Iterator[LogRecord]:
    """Every well-formed record of the ``*.gz`` (and plain) log files under ``directory``
    (malformed lines are skipped: the bronze job is where they are counted)."""
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8", "replace")
        for _, item in iter_lines(text):
            if isinstance(item, LogRecord):
                yield item


def requests_from_records(records: Iterable[LogRecord], edge: str | None = None) -> list[Request]:
    """The cacheable requests (of one edge, or all), in time order (stable)."""
    out = [
        request_of(r)
        for r in records
        if is_cacheable(r) and (edge is None or r.edge_location == edge)
    ]
    out.sort(key=lambda r: r.ts)
    return out


# --- decay ---------------------------------------------------------------------------------


def decay_weight(age_seconds: float, half_life_hours: float) -> float:
    """Weight of a request ``age_seconds`` before the scoring time."""
    if half_life_hours <= 0:
        raise ValueError("half_life_hours must be positive")
    return float(2.0 ** (-max(age_seconds, 0.0) / (half_life_hours * 3600.0)))


def rate_per_hour(score: float, half_life_hours: float) -> float:
    """The request rate a decayed score stands for (the kernel integrates to h / ln 2)."""
    return score * math.log(2) / half_life_hours


@dataclass(frozen=True)
class ObjectStats:
    """What the planner knows of one object at the scoring time."""

    key: str
    size: int
    score: float
    requests: int


def object_scores(
    requests: Iterable[Request], *, as_of: datetime | float, half_life_hours: float
) -> dict[str, ObjectStats]:
    """Decayed score per object key over the requests before ``as_of`` (its size: the
    largest seen)."""
    t0 = as_of.timestamp() if isinstance(as_of, datetime) else float(as_of)
    scores: dict[str, float] = {}
    sizes: dict[str, int] = {}
    counts: dict[str, int] = {}
    for r in requests:
        if r.ts >= t0:
            continue
        scores[r.key] = scores.get(r.key, 0.0) + decay_weight(t0 - r.ts, half_life_hours)
        sizes[r.key] = max(sizes.get(r.key, 0), r.size)
        counts[r.key] = counts.get(r.key, 0) + 1
    return {k: ObjectStats(k, sizes[k], scores[k], counts[k]) for k in scores}


def video_scores(objects: Iterable[ObjectStats]) -> dict[str, float]:
    """Decayed plays per video: the score of its master playlist requests."""
    out: dict[str, float] = {}
    for stats in objects:
        ref = parse_object(stats.key)
        if ref.kind == "master" and ref.video_id is not None:
            out[ref.video_id] = out.get(ref.video_id, 0.0) + stats.score
    return out


def hour_floor(ts: float) -> datetime:
    return datetime.fromtimestamp(ts - ts % 3600, UTC)
