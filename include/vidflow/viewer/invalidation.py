"""Cross-process invalidation of cached answers: one PostgreSQL LISTEN connection per API
process.

Migrations 0006 and 0007 put triggers on what an answer is made from. They notify the
channel :data:`CHANNEL` when the transaction commits:

* ``v:<user_id>``: that viewer's precomputed list or watch history changed; their
  answers are stale;
* ``v:<user_id>:<video_id>``: that viewer's session row of that video was written (one
  per event batch and video); their answers are stale, except those made while that
  video already led the session (see
  :meth:`~vidflow.viewer.answers.AnswerCache.invalidate_viewer`): most events are a
  player's heartbeats on the video being watched;
* ``*:<table>``: related lists, trending or a video's card changed; every answer is
  stale. (The batch writers touch many viewers at once, daily or hourly.)

The listener applies each notification to the process's :class:`~vidflow.viewer.answers.AnswerCache`
as it arrives. It checks its connection every ``ping_seconds`` (a dead peer does not
always close the socket); when the connection fails it tells the cache, which then
serves from memory only briefly, and reconnects with a growing pause, up to
:data:`RETRY_MAX_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Final

import psycopg

from vidflow.viewer.answers import AnswerCache
from vidflow.viewer.readpool import UNAVAILABLE

log = logging.getLogger(__name__)

#: The notification channel of the serving triggers (migration 0006).
CHANNEL: Final = "vidflow_serving"
EVERYTHING: Final = "*"
VIEWER_PREFIX: Final = "v:"
RETRY_MIN_SECONDS: Final = 0.2
RETRY_MAX_SECONDS: Final = 5.0
#: Seconds between two warnings about a lost listener.
WARN_EVERY_SECONDS: Final = 30.0


def apply(cache: AnswerCache, payload: str) -> None:
    """One notification's effect on the cache. Anything unexpected invalidates
    everything: a wasted read is cheap, a stale answer is not."""
    if payload.startswith(VIEWER_PREFIX):
        viewer_text, _, video_text = payload[len(VIEWER_PREFIX) :].partition(":")
        try:
            viewer = uuid.UUID(viewer_text)
            video = uuid.UUID(video_text) if video_text else None
        except ValueError:
            cache.invalidate_all()
            return
        cache.invalidate_viewer(viewer, session_video=video)
        return
    cache.invalidate_all()


class InvalidationListener:
    """Keeps one LISTEN connection open and feeds its notifications to ``cache``."""

    def __init__(self, conninfo: str, cache: AnswerCache, *, ping_seconds: float = 5.0) -> None:
        self.conninfo = conninfo
        self.cache = cache
        self.ping_seconds = ping_seconds
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._tried = asyncio.Event()
        self._last_warning = 0.0

    def start(self) -> None:
        """Start listening on the running event loop (returns at once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="vidflow-serving-listener"
            )

    async def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the first attempt to listen; whether the
        listener listens."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._tried.wait()
        return self._connected.is_set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        pause = RETRY_MIN_SECONDS
        while True:
            try:
                await self._listen()
            except (*UNAVAILABLE, psycopg.Error, OSError) as exc:
                if self._connected.is_set():
                    pause = RETRY_MIN_SECONDS  # it was up: retry soon
                self._connected.clear()
                self._tried.set()
                self.cache.listener_lost()
                self._warn(exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_SECONDS)

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            # From here on no notification is missed; what came before is unknown.
            self.cache.listener_connected()
            self._connected.set()
            self._tried.set()
            log.info("serving cache listening on %s", CHANNEL)
            while True:
                async for notify in conn.notifies(timeout=self.ping_seconds):
                    apply(self.cache, notify.payload)
                async with asyncio.timeout(max(1.0, self.ping_seconds)):
                    await conn.execute("SELECT 1")

    def _warn(self, exc: BaseException) -> None:
        if time.monotonic() - self._last_warning >= WARN_EVERY_SECONDS:
            self._last_warning = time.monotonic()
            log.warning(
                "serving cache listener lost (%s): cached answers live %.1f s at most "
                "until it is back",
                type(exc).__name__,
                self.cache.unsynced_ttl,
            )
