"""Write gold totals into the catalog: ``watch_history`` and ``videos`` view/like counts.

``jobs/watch_catalog_sync.py`` computes, for every user/video pair and every video touched
on the run's days, its ABSOLUTE totals over all of gold (``vidflow.analytics.gold``:
``user_video_totals``, ``video_totals``) and hands them here as plain rows. This module
writes them, shard by shard:

* The rows are staged with ``COPY`` into temporary tables on one connection.
* For each hash partition of the target table (the catalog's layout, read from
  PostgreSQL: ``FOR VALUES WITH (MODULUS m, REMAINDER r)``), one transaction upserts the
  staged rows that PostgreSQL itself places in that partition
  (``satisfies_hash_partition``). One transaction never spans two shards, as on Citus.
* ``watch_history`` rows are upserted on (user_id, video_id) with the totals; users the
  catalog does not know (the FK to ``users``) are skipped and counted. ``videos`` rows get
  ``view_count``/``like_count`` set; unknown videos are skipped and counted.

Values are set, never incremented, so a retried or re-run day writes the same numbers.
Keys that are not UUIDs are refused before staging and reported. pyspark is not imported
here: the summary types are safe to import from task code.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Engine

#: Rejected keys listed by name in a summary (the count covers all of them).
MAX_REJECTED_LISTED: Final = 20

_BOUND = re.compile(r"FOR VALUES WITH \(modulus (\d+), remainder (\d+)\)", re.IGNORECASE)


@dataclass(frozen=True)
class WatchTotal:
    user_id: uuid.UUID
    video_id: uuid.UUID
    watched_at: datetime
    watch_duration_seconds: float


@dataclass(frozen=True)
class VideoTotal:
    video_id: uuid.UUID
    view_count: int
    like_count: int


@dataclass(frozen=True)
class Rejected:
    key: str
    reason: str


@dataclass(frozen=True)
class HashPartition:
    table: str
    name: str
    modulus: int
    remainder: int


@dataclass(frozen=True)
class ShardResult:
    """One partition's transaction: rows staged for it, written, skipped (unknown key)."""

    table: str
    partition: str
    staged: int
    written: int

    @property
    def skipped(self) -> int:
        return self.staged - self.written


@dataclass(frozen=True)
class SyncSummary:
    dates: tuple[str, ...]
    region: str | None
    shards: tuple[ShardResult, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    rejected_count: int = 0

    def _total(self, table: str, attr: str) -> int:
        return sum(getattr(s, attr) for s in self.shards if s.table == table)

    @property
    def watch_history_rows(self) -> int:
        return self._total("watch_history", "written")

    @property
    def skipped_unknown_users(self) -> int:
        return self._total("watch_history", "skipped")

    @property
    def video_rows(self) -> int:
        return self._total("videos", "written")

    @property
    def skipped_unknown_videos(self) -> int:
        return self._total("videos", "skipped")

    def to_xcom(self) -> dict[str, Any]:
        return {
            "dates": list(self.dates),
            "region": self.region,
            "shards": [asdict(s) for s in self.shards],
            "rejected": [asdict(r) for r in self.rejected],
            "rejected_count": self.rejected_count,
            "watch_history_rows": self.watch_history_rows,
            "skipped_unknown_users": self.skipped_unknown_users,
            "video_rows": self.video_rows,
            "skipped_unknown_videos": self.skipped_unknown_videos,
        }

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> SyncSummary:
        return cls(
            dates=tuple(value["dates"]),
            region=value["region"],
            shards=tuple(ShardResult(**s) for s in value["shards"]),
            rejected=tuple(Rejected(**r) for r in value["rejected"]),
            rejected_count=value["rejected_count"],
        )


# --- pure parts --------------------------------------------------------------------------


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _utc_from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


def watch_totals(rows: Iterable[Mapping[str, Any]]) -> tuple[list[WatchTotal], list[Rejected]]:
    """Rows of ``user_id, video_id, watched_at_micros, watch_duration_seconds`` (the job
    collects times as UTC epoch microseconds: no time-zone conversion on the way)."""
    totals, rejected = [], []
    for row in rows:
        user, video = _uuid(row["user_id"]), _uuid(row["video_id"])
        key = f"{row['user_id']}/{row['video_id']}"
        seconds = float(row["watch_duration_seconds"])
        if user is None or video is None:
            rejected.append(Rejected(key, "user_id or video_id is not a UUID"))
        elif not seconds >= 0:
            rejected.append(Rejected(key, f"watch_duration_seconds {seconds} is not >= 0"))
        else:
            watched_at = _utc_from_micros(int(row["watched_at_micros"]))
            totals.append(WatchTotal(user, video, watched_at, seconds))
    return totals, rejected


def video_totals(rows: Iterable[Mapping[str, Any]]) -> tuple[list[VideoTotal], list[Rejected]]:
    """Rows of ``video_id, view_count, like_count``."""
    totals, rejected = [], []
    for row in rows:
        video = _uuid(row["video_id"])
        views, likes = int(row["view_count"]), int(row["like_count"])
        if video is None:
            rejected.append(Rejected(str(row["video_id"]), "video_id is not a UUID"))
        elif views < 0 or likes < 0:
            rejected.append(Rejected(str(video), "negative count"))
        else:
            totals.append(VideoTotal(video, views, likes))
    return totals, rejected


def parse_hash_bound(table: str, name: str, bound: str) -> HashPartition:
    """A partition from ``pg_get_expr(relpartbound)``; ValueError if not a hash bound."""
    match = _BOUND.fullmatch(bound.strip())
    if match is None:
        raise ValueError(f"{name} of {table} is not a hash partition: {bound!r}")
    return HashPartition(table, name, int(match[1]), int(match[2]))


def summarize(
    dates: Sequence[str],
    region: str | None,
    shards: Sequence[ShardResult],
    rejected: Sequence[Rejected],
) -> SyncSummary:
    return SyncSummary(
        dates=tuple(dates),
        region=region,
        shards=tuple(shards),
        rejected=tuple(rejected[:MAX_REJECTED_LISTED]),
        rejected_count=len(rejected),
    )


# --- PostgreSQL --------------------------------------------------------------------------

_PARTITIONS_SQL = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = %s AND p.relnamespace = 'public'::regnamespace
ORDER BY c.relname
"""

_STAGE_SQL = """
CREATE TEMPORARY TABLE sync_watch_history (
    user_id uuid NOT NULL, video_id uuid NOT NULL,
    watched_at timestamptz NOT NULL, watch_duration_seconds double precision NOT NULL
);
CREATE TEMPORARY TABLE sync_videos (
    video_id uuid NOT NULL, view_count bigint NOT NULL, like_count bigint NOT NULL
)
"""

# One shard: the staged rows PostgreSQL places in partition (modulus, remainder) of the
# table; rows of users the catalog does not have are left out (counted as skipped).
_UPSERT_WATCH_SQL = """
WITH staged AS (
    SELECT * FROM sync_watch_history
    WHERE satisfies_hash_partition('watch_history'::regclass, %(modulus)s, %(remainder)s,
                                   user_id)
), written AS (
    INSERT INTO watch_history AS w (user_id, video_id, watched_at, watch_duration_seconds)
    SELECT s.user_id, s.video_id, s.watched_at, s.watch_duration_seconds
    FROM staged s JOIN users u ON u.user_id = s.user_id
    ORDER BY s.user_id, s.video_id
    ON CONFLICT (user_id, video_id) DO UPDATE
    SET watched_at = EXCLUDED.watched_at,
        watch_duration_seconds = EXCLUDED.watch_duration_seconds
    RETURNING 1
)
SELECT (SELECT count(*) FROM staged), (SELECT count(*) FROM written)
"""

_UPDATE_VIDEOS_SQL = """
WITH staged AS (
    SELECT * FROM sync_videos
    WHERE satisfies_hash_partition('videos'::regclass, %(modulus)s, %(remainder)s, video_id)
), written AS (
    UPDATE videos v SET view_count = s.view_count, like_count = s.like_count
    FROM staged s WHERE v.video_id = s.video_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM staged), (SELECT count(*) FROM written)
"""


def hash_partitions(cursor: Any, table: str) -> list[HashPartition]:
    """The hash partitions of ``table`` as the catalog has them."""
    cursor.execute(_PARTITIONS_SQL, (table,))
    partitions = [parse_hash_bound(table, name, bound) for name, bound in cursor.fetchall()]
    if not partitions:
        raise ValueError(f"{table} has no partitions: is the catalog migrated?")
    return sorted(partitions, key=lambda p: p.remainder)


def sync_catalog(
    engine: Engine,
    watch: Sequence[WatchTotal],
    videos: Sequence[VideoTotal],
    *,
    dates: Sequence[str],
    region: str | None,
    rejected: Sequence[Rejected] = (),
) -> SyncSummary:
    """Stage the totals, then set them one shard (partition) per transaction."""
    raw = engine.raw_connection()
    pg: Any = raw.driver_connection
    shards: list[ShardResult] = []
    try:
        pg.autocommit = True  # every `with pg.transaction()` below is one real transaction
        with pg.cursor() as cur:
            cur.execute(_STAGE_SQL)
            with cur.copy(
                "COPY sync_watch_history (user_id, video_id, watched_at, "
                "watch_duration_seconds) FROM STDIN"
            ) as copy:
                for w in watch:
                    copy.write_row((w.user_id, w.video_id, w.watched_at, w.watch_duration_seconds))
            with cur.copy("COPY sync_videos (video_id, view_count, like_count) FROM STDIN") as copy:
                for v in videos:
                    copy.write_row((v.video_id, v.view_count, v.like_count))
            for table, sql in (
                ("watch_history", _UPSERT_WATCH_SQL),
                ("videos", _UPDATE_VIDEOS_SQL),
            ):
                for part in hash_partitions(cur, table):
                    with pg.transaction():
                        cur.execute(sql, {"modulus": part.modulus, "remainder": part.remainder})
                        staged, written = cur.fetchone()
                    shards.append(ShardResult(table, part.name, int(staged), int(written)))
            cur.execute("DROP TABLE sync_watch_history, sync_videos")
        pg.autocommit = False
    except BaseException:
        raw.invalidate()  # never hand a connection with staged temp tables back to the pool
        raise
    finally:
        raw.close()
    return summarize(dates, region, shards, rejected)
