"""Serving recommendations: a viewer's list, "more like this" and regional trending.

Each answer is one catalog round trip: a single statement reads the precomputed rows
(``recommendations``, ``related_videos``, ``trending_videos``), the viewer's session
(``session_activity``), their history where it meets the candidates (``watch_history``)
and the candidates' titles and posters (``videos``), every part an index lookup by its
shard key. :mod:`vidflow.viewer.ranking` assembles the list; no model runs here.

The reads run on the event loop over a small pool of async autocommit connections
(:mod:`vidflow.viewer.readpool`) with short connect, statement and pool-wait timeouts
(``VIDFLOW_RECS_CATALOG_TIMEOUT_MS``). When the catalog is unavailable the answer is
degraded, never an error: the same request's answer of the last
``VIDFLOW_RECS_CACHE_SECONDS`` (``cache``), else the region's last known trending list
(``trending``). Only a process that never reached the catalog answers 503.

Answers are rendered to JSON bytes once and kept in the process's
:class:`~vidflow.viewer.answers.AnswerCache` until a catalog write invalidates them
(:mod:`vidflow.viewer.invalidation`): most answers are sent from memory, by the route or,
cheaper still, by :class:`~vidflow.viewer.fastpath.CachedRecommendations` before
FastAPI sees the request.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any, Final, Literal

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from vidflow.config import Settings
from vidflow.problems import Problem
from vidflow.viewer import ranking
from vidflow.viewer.answers import AnswerCache, Freshness
from vidflow.viewer.edges import RegionUrls
from vidflow.viewer.invalidation import InvalidationListener
from vidflow.viewer.ranking import Pick, Ranked, Related
from vidflow.viewer.readpool import UNAVAILABLE, ReadPool, serving_conninfo
from vidflow.viewer.schemas import RecommendationList, RecommendedVideo
from vidflow.viewer.session import SessionWriter

log = logging.getLogger(__name__)

Degraded = Literal["cache", "trending"]
#: Response header naming how a degraded answer was made.
DEGRADED_HEADER: Final = "X-Vidflow-Degraded"
#: The catalog errors of the (SQLAlchemy) session writes that mean "unavailable now".
CATALOG_DOWN: Final = (OperationalError, InterfaceError, PoolTimeout)
#: The errors that degrade an answer (a bug in a statement still fails loudly).
READS_DOWN: Final = (*UNAVAILABLE, *CATALOG_DOWN)
#: Answers kept per process (served while fresh, and in degraded mode): about 7 kB each
#: for a list of 20, so some 140 MB at most.
CACHE_ENTRIES: Final = 20_000
#: Seconds between two warnings about an unavailable catalog.
WARN_EVERY_SECONDS: Final = 10.0
RETRY_AFTER: Final = 2
#: Async catalog connections per process for the session writes (the reads have their own).
SESSION_CONNECTIONS: Final = 4
#: application_name of the invalidation listener's catalog connection.
LISTENER_NAME: Final = "vidflow-viewer-listener"


class CatalogUnavailable(Problem):
    status = 503
    title = "Catalog unavailable"

    def __init__(self) -> None:
        super().__init__(
            "recommendations cannot be read right now and none are cached; retry shortly",
            headers={"Retry-After": str(RETRY_AFTER)},
        )


class VideoNotServed(Problem):
    status = 404
    title = "Video not found"

    def __init__(self) -> None:
        super().__init__("no published video has this id")


@dataclass(frozen=True)
class Made:
    """A list as read now, and for how many seconds it stays right if nothing is written
    (None: until a write; a viewer's list changes when a session row leaves the window)."""

    answer: RecommendationList
    valid_for: float | None = None
    #: The viewer's most recent session video the list was made with.
    session_head: uuid.UUID | None = None


@dataclass(frozen=True)
class Served:
    """An answer's JSON bytes; when the catalog was unavailable, how it was made instead;
    whether it came from memory (``hit``, ``ttl``) or was read now (``miss``)."""

    body: bytes
    degraded: Degraded | None = None
    cache: Freshness | Literal["miss"] = "miss"


def render(answer: RecommendationList) -> bytes:
    """The JSON bytes of an answer (what FastAPI would send for the response model)."""
    return answer.__pydantic_serializer__.to_json(answer)


def viewer_key(user_id: uuid.UUID, region: str, device: str | None, limit: int) -> Hashable:
    """The cache key of a viewer's answer (shared with the fast path)."""
    return ("viewer", user_id, region, device, limit)


# --- the reads ------------------------------------------------------------------------------

_TRENDING = """
trend AS (
    SELECT region, rank, video_id, score, model_version, generated_at FROM trending_videos
    WHERE region IN (%(region)s, 'global') AND rank <= %(depth)s
)"""
_TRENDING_JSON = """
    (SELECT json_agg(json_build_array(video_id, score, region, model_version, generated_at)
            ORDER BY region = 'global', rank) FROM trend) AS trending"""
_VIDEOS_JSON = """
    (SELECT json_agg(json_build_array(v.video_id, v.title, v.duration_seconds, v.thumbnail_urls))
     FROM videos v WHERE v.video_id IN (SELECT video_id FROM cand) AND v.status = 'processed')
     AS videos"""

VIEWER_READ: Final = f"""
WITH sess AS (
    SELECT video_id, last_event_at FROM session_activity
    WHERE user_id = %(user_id)s AND last_event_at > %(since)s
    ORDER BY last_event_at DESC LIMIT %(session_videos)s
), recs AS (
    SELECT rank, video_id, score, source, model_version, generated_at FROM recommendations
    WHERE user_id = %(user_id)s ORDER BY rank LIMIT %(depth)s
), rel AS (
    SELECT video_id AS anchor, related_video_id, rank, score, source FROM related_videos
    WHERE video_id IN (SELECT video_id FROM sess) AND rank <= %(depth)s
), {_TRENDING}, cand AS (
    SELECT video_id FROM sess UNION SELECT video_id FROM recs
    UNION SELECT related_video_id FROM rel UNION SELECT video_id FROM trend
)
SELECT
    (SELECT json_agg(video_id ORDER BY last_event_at DESC) FROM sess) AS session,
    (SELECT min(last_event_at) FROM sess) AS session_oldest,
    (SELECT json_agg(json_build_array(video_id, score, source, model_version, generated_at)
            ORDER BY rank) FROM recs) AS recs,
    (SELECT json_agg(json_build_array(anchor, related_video_id, rank, score, source))
     FROM rel) AS related,
    {_TRENDING_JSON},
    (SELECT json_agg(w.video_id) FROM watch_history w
     WHERE w.user_id = %(user_id)s AND w.video_id IN (SELECT video_id FROM cand)) AS watched,
    {_VIDEOS_JSON}
"""  # noqa: S608 (constant fragments; every value is a bound parameter)

VIDEO_READ: Final = f"""
WITH rel AS (
    SELECT video_id AS anchor, related_video_id, rank, score, source, model_version,
           generated_at
    FROM related_videos WHERE video_id = %(video_id)s AND rank <= %(depth)s
), {_TRENDING}, cand AS (
    SELECT CAST(%(video_id)s AS uuid) AS video_id UNION SELECT related_video_id FROM rel
    UNION SELECT video_id FROM trend
)
SELECT
    (SELECT json_agg(json_build_array(anchor, related_video_id, rank, score, source,
                                      model_version, generated_at) ORDER BY rank)
     FROM rel) AS related,
    {_TRENDING_JSON},
    {_VIDEOS_JSON}
"""  # noqa: S608 (constant fragments; every value is a bound parameter)

REGION_READ: Final = f"""
WITH {_TRENDING}, cand AS (SELECT video_id FROM trend)
SELECT {_TRENDING_JSON}, {_VIDEOS_JSON}
"""  # noqa: S608


@dataclass(frozen=True)
class Card:
    """What an item shows of a video."""

    title: str
    duration_seconds: float | None
    thumbnails: dict[str, str]


@dataclass(frozen=True)
class Stamp:
    """Which model made a list, and when."""

    model_version: str | None = None
    generated_at: datetime | None = None

    @classmethod
    def of(cls, row: Sequence[Any] | None) -> Stamp:
        if row is None:
            return cls()
        return cls(str(row[0]), datetime.fromisoformat(row[1]))


@dataclass(frozen=True)
class TrendingList:
    """A region's trending list as last read, for degraded answers."""

    rows: tuple[Ranked, ...]
    cards: dict[str, Card]
    stamp: Stamp


def _cards(rows: list[list[Any]] | None) -> dict[str, Card]:
    return {r[0]: Card(r[1], r[2], r[3] or {}) for r in rows or ()}


def _trending_rows(rows: list[list[Any]] | None) -> tuple[Ranked, ...]:
    return tuple(Ranked(r[0], float(r[1]), r[2]) for r in rows or ())


def _related_rows(rows: list[list[Any]] | None) -> list[Related]:
    return [Related(r[0], r[1], int(r[2]), float(r[3]), r[4]) for r in rows or ()]


@lru_cache(maxsize=4)
def _writer_engine(url: str, timeout_ms: int) -> Engine:
    """The session writes' engine: short connect and statement timeouts, so a slow
    catalog costs an event post the re-rank, not its answer."""
    return create_engine(
        url,
        pool_size=5,
        max_overflow=5,
        pool_timeout=timeout_ms / 1000,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": max(2, math.ceil(timeout_ms / 1000)),
            "options": f"-c statement_timeout={timeout_ms}",
        },
    )


@dataclass
class Serving:
    """The serving reads of one API process, with its answer cache and degraded-mode
    memory. :meth:`start` (on the process's event loop) starts its invalidation
    listener; without it cached answers are served for the unsynced TTL at most."""

    settings: Settings
    answers: AnswerCache = field(init=False)
    _trending: dict[str, TrendingList] = field(default_factory=dict)
    _last_warning: float = 0.0
    _listener: InvalidationListener | None = None
    _region_url: RegionUrls = field(init=False)

    _reads: ReadPool | None = None
    _writes: ReadPool | None = None

    def __post_init__(self) -> None:
        self._region_url = RegionUrls(self.settings)
        self.answers = AnswerCache(
            entries=CACHE_ENTRIES,
            ttl=self.settings.recs_answer_ttl_seconds,
            unsynced_ttl=self.settings.recs_unsynced_ttl_seconds,
        )

    def start(self) -> InvalidationListener:
        """Start listening for invalidations (idempotent)."""
        if self._listener is None:
            # The process id tells one process's listener from another's in pg_stat_activity.
            name = f"{LISTENER_NAME}-{os.getpid()}"
            conninfo = serving_conninfo(self.settings, application_name=name)
            self._listener = InvalidationListener(conninfo, self.answers)
            self._listener.start()
        return self._listener

    async def wait_listening(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the listener to listen; whether it does."""
        if self._listener is None:
            return False
        return await self._listener.wait_connected(timeout)

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if self._reads is not None:
            await self._reads.close()
        if self._writes is not None:
            await self._writes.close()

    @property
    def reads(self) -> ReadPool:
        if self._reads is None:
            self._reads = ReadPool.from_settings(self.settings)
        return self._reads

    @cached_property
    def sessions(self) -> SessionWriter:
        """The session writes, on connections of their own: a burst of event posts (the
        group commit answers a whole batch at once) must not make reads wait for one."""
        engine = _writer_engine(self.settings.catalog_url, self.settings.recs_catalog_timeout_ms)
        self._writes = ReadPool.from_settings(
            self.settings, size=SESSION_CONNECTIONS, application_name="vidflow-viewer-sessions"
        )
        return SessionWriter(
            engine,
            window=timedelta(seconds=self.settings.recs_session_window_seconds),
            pool=self._writes,
        )

    # --- the three lists ------------------------------------------------------------------

    async def for_viewer(
        self,
        *,
        user_id: uuid.UUID,
        region: str,
        device: str | None,
        limit: int,
        now: datetime | None = None,
    ) -> Served:
        """A signed-in viewer's recommendations (see :mod:`vidflow.viewer.ranking`)."""
        settings = self.settings

        async def read() -> Made:
            window = timedelta(seconds=settings.recs_session_window_seconds)
            since = (now or datetime.now(UTC)) - window
            got = await self._read(
                VIEWER_READ,
                user_id=user_id,
                since=since,
                session_videos=settings.recs_session_videos,
                region=region,
                depth=_depth(limit),
            )
            trending = self._remember_trending(region, got)
            cards = _cards(got["videos"])
            recs = got["recs"] or []
            picks = ranking.for_viewer(
                precomputed=[Ranked(r[0], float(r[1]), r[2]) for r in recs],
                session=got["session"] or [],
                related=_related_rows(got["related"]),
                trending=trending.rows,
                watched=set(got["watched"] or ()),
                playable=cards.keys(),
                limit=limit,
            )
            stamp = Stamp.of(recs[0][3:5]) if recs else trending.stamp
            answer = self._answer(picks, cards, stamp, region, device)
            oldest: datetime | None = got["session_oldest"]
            if oldest is None:
                return Made(answer)
            head = uuid.UUID(got["session"][0])
            return Made(answer, max(0.0, (oldest - since).total_seconds()), head)

        key = viewer_key(user_id, region, device, limit)
        return await self._serve(key, region, read, limit=limit, device=device, viewer=user_id)

    async def for_video(self, *, video_id: uuid.UUID, region: str, limit: int) -> Served:
        """ "More like this": VideoNotServed unless the video is processed."""

        async def read() -> Made:
            got = await self._read(
                VIDEO_READ, video_id=video_id, region=region, depth=_depth(limit)
            )
            cards = _cards(got["videos"])
            if str(video_id) not in cards:
                raise VideoNotServed()
            trending = self._remember_trending(region, got)
            rows = got["related"] or []
            picks = ranking.for_video(
                video_id=str(video_id),
                related=_related_rows(rows),
                trending=trending.rows,
                playable=cards.keys(),
                limit=limit,
            )
            stamp = Stamp.of(rows[0][5:7]) if rows else trending.stamp
            return Made(self._answer(picks, cards, stamp, region, None))

        key = ("video", video_id, region, limit)
        return await self._serve(key, region, read, limit=limit, device=None, skip=str(video_id))

    async def for_region(self, *, region: str, limit: int) -> Served:
        """The region's trending list (then the global one), for anonymous viewers."""

        async def read() -> Made:
            got = await self._read(REGION_READ, region=region, depth=_depth(limit))
            trending = self._remember_trending(region, got)
            picks = ranking.for_region(
                trending=trending.rows, playable=trending.cards.keys(), limit=limit
            )
            return Made(self._answer(picks, trending.cards, trending.stamp, region, None))

        key = ("region", region, limit)
        return await self._serve(key, region, read, limit=limit, device=None)

    # --- plumbing -------------------------------------------------------------------------

    async def _read(self, statement: str, **params: Any) -> dict[str, Any]:
        return await self.reads.one(statement, params)

    def _remember_trending(self, region: str, got: dict[str, Any]) -> TrendingList:
        rows = _trending_rows(got["trending"])
        cards = _cards(got["videos"])
        stamp = Stamp.of(got["trending"][0][3:5]) if rows else Stamp()
        trending = TrendingList(
            rows, {r.video_id: cards[r.video_id] for r in rows if r.video_id in cards}, stamp
        )
        self._trending[region] = trending
        return trending

    def _answer(
        self,
        picks: list[Pick],
        cards: dict[str, Card],
        stamp: Stamp,
        region: str,
        device: str | None,
    ) -> RecommendationList:
        titles = {video_id: card.title for video_id, card in cards.items()}
        kind = "large" if device == "tv" else "small"
        items = []
        for pick in picks:
            card = cards[pick.video_id]
            poster = card.thumbnails.get(kind) or card.thumbnails.get("small")
            items.append(
                RecommendedVideo(
                    video_id=uuid.UUID(pick.video_id),
                    title=card.title,
                    duration_seconds=card.duration_seconds,
                    poster_url=self._region_url(poster, region=region) if poster else None,
                    source=pick.source,
                    score=pick.score,
                    reason=ranking.reason(pick, titles=titles, region=region),
                )
            )
        return RecommendationList(
            model_version=stamp.model_version,
            generated_at=stamp.generated_at,
            region=region,
            items=items,
        )

    async def _serve(
        self,
        key: Hashable,
        region: str,
        read: Callable[[], Awaitable[Made]],
        *,
        limit: int,
        device: str | None,
        skip: str | None = None,
        viewer: uuid.UUID | None = None,
    ) -> Served:
        fresh = self.answers.fresh(key)
        if fresh is not None:
            return Served(fresh[0], cache=fresh[1])
        ticket = self.answers.begin(key, viewer=viewer)
        try:
            made = await read()
        except READS_DOWN as exc:
            self.answers.abandon(ticket)
            self._warn(exc)
            cached = self.answers.recent(key, max_age=self.settings.recs_cache_seconds)
            if cached is not None:
                return Served(cached, "cache")
            trending = self._trending.get(region)
            if trending is None:
                raise CatalogUnavailable() from None
            picks = ranking.for_region(
                trending=[r for r in trending.rows if r.video_id != skip],
                playable=trending.cards.keys(),
                limit=limit,
            )
            fallback = self._answer(picks, trending.cards, trending.stamp, region, device)
            return Served(render(fallback), "trending")
        except BaseException:
            self.answers.abandon(ticket)
            raise
        body = render(made.answer)
        self.answers.put(ticket, body, valid_for=made.valid_for, session_head=made.session_head)
        return Served(body)

    def _warn(self, exc: Exception) -> None:
        if time.monotonic() - self._last_warning >= WARN_EVERY_SECONDS:
            self._last_warning = time.monotonic()
            log.warning("catalog unavailable, serving degraded answers: %s", type(exc).__name__)


def _depth(limit: int) -> int:
    """Rows read per precomputed list: room for what the filters drop."""
    return 2 * limit + 10
