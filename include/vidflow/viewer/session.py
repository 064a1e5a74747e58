"""The session signal: what a signed-in viewer touched in the last minutes, in the catalog.

Every accepted event of a signed-in viewer upserts one ``session_activity`` row per
(viewer, video): first and last event time, event count and the furthest position
reported (``watched_seconds``). The row is committed before ``POST /v1/events`` answers,
so the next recommendations read, by any API process, sees it. The recommendations read
only the rows of the session window (``VIDFLOW_RECS_SESSION_WINDOW_SECONDS``); older rows
are pruned by the writers, at most once a minute per process.

An event's time is its client time, but never later than its arrival: a late batch
(a phone that was offline) belongs to a session long gone and is left out, and a fast
client clock cannot keep a video in the session.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Engine, text

from vidflow.events import StoredEvent
from vidflow.viewer.readpool import ReadPool

log = logging.getLogger(__name__)

#: Seconds between two prunes of one process.
PRUNE_EVERY_SECONDS: Final = 60.0


@dataclass(frozen=True)
class SessionTouch:
    """A batch's events of one viewer on one video, folded into one upsert."""

    user_id: uuid.UUID
    video_id: uuid.UUID
    first_event_at: datetime
    last_event_at: datetime
    events: int
    watched_seconds: float


def session_touches(events: Iterable[StoredEvent], *, window: timedelta) -> list[SessionTouch]:
    """The accepted events of signed-in viewers folded per (viewer, video); anonymous
    events and events older than ``window`` on arrival are left out."""
    folded: dict[tuple[str, str], SessionTouch] = {}
    for event in events:
        if event.user_id is None:
            continue
        at = min(event.client_ts, event.received_at)
        if at < event.received_at - window:
            continue
        key = (event.user_id, event.video_id)
        seen = folded.get(key)
        if seen is None:
            folded[key] = SessionTouch(
                uuid.UUID(event.user_id),
                uuid.UUID(event.video_id),
                at,
                at,
                1,
                event.position_seconds,
            )
        else:
            folded[key] = SessionTouch(
                seen.user_id,
                seen.video_id,
                min(seen.first_event_at, at),
                max(seen.last_event_at, at),
                seen.events + 1,
                max(seen.watched_seconds, event.position_seconds),
            )
    # A fixed order: concurrent batches lock rows in the same order, so never deadlock.
    return sorted(folded.values(), key=lambda t: (t.user_id, t.video_id))


# A row older than the window starts a new session instead of extending the old one.
_UPSERT: Final = """
    INSERT INTO session_activity
        (user_id, video_id, first_event_at, last_event_at, events, watched_seconds)
    VALUES (:user_id, :video_id, :first_event_at, :last_event_at, :events, :watched_seconds)
    ON CONFLICT (user_id, video_id) DO UPDATE SET
        first_event_at = CASE WHEN session_activity.last_event_at < :since
            THEN EXCLUDED.first_event_at
            ELSE LEAST(session_activity.first_event_at, EXCLUDED.first_event_at) END,
        events = CASE WHEN session_activity.last_event_at < :since
            THEN EXCLUDED.events
            ELSE session_activity.events + EXCLUDED.events END,
        watched_seconds = CASE WHEN session_activity.last_event_at < :since
            THEN EXCLUDED.watched_seconds
            ELSE GREATEST(session_activity.watched_seconds, EXCLUDED.watched_seconds) END,
        last_event_at = GREATEST(session_activity.last_event_at, EXCLUDED.last_event_at)
    """
UPSERT: Final = text(_UPSERT)
#: The same statement in psycopg's parameter style, for the event loop's connections.
UPSERT_PSYCOPG: Final = re.sub(r":(\w+)", r"%(\1)s", _UPSERT)
PRUNE: Final = text("DELETE FROM session_activity WHERE last_event_at < :before")


class SessionWriter:
    """Writes the session signal of one API process (thread-safe; blocking calls)."""

    def __init__(self, engine: Engine, *, window: timedelta, pool: ReadPool | None = None) -> None:
        self.engine = engine
        self.window = window
        self.pool = pool
        self._last_prune = 0.0
        self._prune_lock = threading.Lock()

    def _rows(self, events: Sequence[StoredEvent], now: datetime) -> list[dict[str, object]]:
        since = now - self.window
        return [
            {
                "user_id": t.user_id,
                "video_id": t.video_id,
                "first_event_at": t.first_event_at,
                "last_event_at": t.last_event_at,
                "events": t.events,
                "watched_seconds": t.watched_seconds,
                "since": since,
            }
            for t in session_touches(events, window=self.window)
        ]

    def record(self, events: Sequence[StoredEvent], *, now: datetime) -> int:
        """Upsert the session rows of ``events`` in one transaction (and prune, when due).
        Returns the rows written. Raises the database's error when the catalog is down."""
        rows = self._rows(events, now)
        if rows:
            with self.engine.begin() as conn:
                conn.execute(UPSERT, rows)
        if self._prune_due():
            self.prune(before=now - self.window)
        return len(rows)

    async def record_async(self, events: Sequence[StoredEvent], *, now: datetime) -> int:
        """:meth:`record` on the event loop, over ``pool``'s autocommit connections (one
        statement per row: each row is its own upsert): no thread hand-off, no ORM layer.
        At 40 posts a second this cut an event post's CPU from 4.2 to 2.7 ms. The prune,
        once a minute, still runs in a thread. Raises ``readpool.UNAVAILABLE`` errors
        when the catalog is down."""
        if self.pool is None:
            return await asyncio.to_thread(self.record, events, now=now)
        rows = self._rows(events, now)
        if rows:
            async with self.pool.connection() as conn, conn.cursor() as cursor:
                await cursor.executemany(UPSERT_PSYCOPG, rows)
        if self._prune_due():
            await asyncio.to_thread(self.prune, before=now - self.window)
        return len(rows)

    def _prune_due(self) -> bool:
        with self._prune_lock:
            if time.monotonic() - self._last_prune < PRUNE_EVERY_SECONDS:
                return False
            self._last_prune = time.monotonic()
            return True

    def prune(self, *, before: datetime) -> int:
        """Delete the rows whose last event is older than ``before``; returns how many."""
        with self.engine.begin() as conn:
            deleted = conn.execute(PRUNE, {"before": before}).rowcount
        if deleted:
            log.info("pruned %d session_activity rows older than %s", deleted, before)
        return int(deleted)
