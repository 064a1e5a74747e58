"""The answers one API process keeps in memory, ready to send, and when they go stale.

A recommendations answer is the same bytes until something it was made from changes:
the viewer's session, their history, the precomputed lists, a video's card. Every such
catalog write announces itself on the PostgreSQL channel ``vidflow_serving`` (triggers of
migration 0006), and each process's :class:`~vidflow.viewer.invalidation.InvalidationListener`
turns the notifications into :meth:`AnswerCache.invalidate_viewer` (a session write of
one viewer) or :meth:`AnswerCache.invalidate_all` (anything else). So an event posted to
any process changes the next answer of every process, and a fresh answer costs a
dictionary lookup instead of a catalog round trip.

Three rules keep the cache honest:

* **A read that raced an invalidation is not served from memory.** A read registers a
  :class:`Ticket` before it starts; an invalidation of its viewer (or of everything)
  while it runs marks the ticket, and its answer is then kept for degraded mode only.
* **No answer is served from memory for longer than** ``ttl``, nor past its own
  ``valid_for`` (a viewer's list changes without a write when a session row leaves the
  session window).
* **While the listener is down** (:attr:`AnswerCache.synced` false) notifications may be
  missed, so an answer is served from memory for ``unsynced_ttl`` at most; when the
  listener is back everything is invalidated, as it may have missed a notification.

Invalidated answers are not dropped: while the catalog is unavailable they are what
degraded mode serves (``X-Vidflow-Degraded: cache``). Single-threaded: everything runs on
the process's event loop.
"""

from __future__ import annotations

import os
import random
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Final, Literal

#: How a fresh answer was found: ``hit`` while invalidations are received, ``ttl`` while
#: they are not (the answer is younger than the unsynced TTL).
Freshness = Literal["hit", "ttl"]
#: Response header saying whether an answer came from memory (hit, ttl) or the catalog (miss).
CACHE_HEADER: Final = "X-Vidflow-Cache"
#: Response header naming the API process whose cache answered (a random id per process,
#: as CDNs name the node): which process a client reached, e.g. to warm every one.
SERVED_BY_HEADER: Final = "X-Served-By"

#: Share of the TTL by which an answer's lifetime is shortened at random.
TTL_JITTER: Final = 0.5

_instance: tuple[int, str] | None = None


def instance_id() -> str:
    """This process's random id (``viewer-`` and 8 hex digits), new in a forked child."""
    global _instance
    if _instance is None or _instance[0] != os.getpid():
        _instance = (os.getpid(), f"viewer-{secrets.token_hex(4)}")
    return _instance[1]


@dataclass
class _Entry:
    body: bytes
    made_at: float
    expires_at: float
    viewer: uuid.UUID | None
    #: False once invalidated: kept for degraded answers only.
    fresh: bool
    #: Made while the listener was connected.
    synced: bool
    #: The most recent video of the viewer's session when the answer was made, if any.
    session_head: uuid.UUID | None = None


@dataclass(eq=False)
class Ticket:
    """A read in flight for ``key``; ``stale`` once an invalidation concerned it."""

    key: Hashable
    viewer: uuid.UUID | None
    started_at: float
    synced: bool
    stale: bool = False


@dataclass
class CacheStats:
    hits: int = 0
    ttl_hits: int = 0
    misses: int = 0
    viewer_invalidations: int = 0
    full_invalidations: int = 0
    listener_losses: int = 0


@dataclass
class AnswerCache:
    """Rendered answers by key (see the module docstring)."""

    entries: int
    ttl: float
    unsynced_ttl: float
    clock: Callable[[], float] = time.monotonic
    #: Uniform in [0, 1): spreads the answers' lifetimes (see :data:`TTL_JITTER`).
    rng: Callable[[], float] = random.random
    #: Is the listener connected (are invalidations being received)?
    synced: bool = False
    stats: CacheStats = field(default_factory=CacheStats)
    _items: OrderedDict[Hashable, _Entry] = field(default_factory=OrderedDict)
    _by_viewer: dict[uuid.UUID, set[Hashable]] = field(default_factory=dict)
    _inflight: set[Ticket] = field(default_factory=set)

    # --- reading --------------------------------------------------------------------------

    def fresh(self, key: Hashable) -> tuple[bytes, Freshness] | None:
        """The answer for ``key`` if it may be served as current, and how it was found."""
        entry = self._items.get(key)
        if entry is None or not entry.fresh:
            return None
        now = self.clock()
        if now > entry.expires_at:
            return None
        age = now - entry.made_at
        if self.synced and entry.synced:
            self.stats.hits += 1
            return entry.body, "hit"
        if age > self.unsynced_ttl:
            return None
        self.stats.ttl_hits += 1
        return entry.body, "ttl"

    def recent(self, key: Hashable, *, max_age: float) -> bytes | None:
        """The last answer for ``key`` made within ``max_age`` seconds, fresh or not: what
        a degraded answer may repeat while the catalog is unavailable."""
        entry = self._items.get(key)
        if entry is None or self.clock() - entry.made_at > max_age:
            return None
        return entry.body

    # --- writing --------------------------------------------------------------------------

    def begin(self, key: Hashable, *, viewer: uuid.UUID | None) -> Ticket:
        """Register a read about to start (before its statement is sent)."""
        self.stats.misses += 1
        ticket = Ticket(key, viewer, self.clock(), self.synced)
        self._inflight.add(ticket)
        return ticket

    def abandon(self, ticket: Ticket) -> None:
        """The read failed: nothing to keep."""
        self._inflight.discard(ticket)

    def put(
        self,
        ticket: Ticket,
        body: bytes,
        *,
        valid_for: float | None = None,
        session_head: uuid.UUID | None = None,
    ) -> None:
        """Keep the answer of a finished read: fresh unless an invalidation overtook it,
        for ``ttl`` seconds at most, or ``valid_for`` when shorter (counted from the
        start of the read). ``session_head``: the viewer's most recent session video the
        answer was made with (see :meth:`invalidate_viewer`)."""
        self._inflight.discard(ticket)
        if self.ttl <= 0:
            return
        fresh = not ticket.stale
        # Made while the listener was down or lost during the read: it may have missed
        # an invalidation, so it counts as unsynced.
        synced = ticket.synced and self.synced
        self._drop(ticket.key)
        # Each answer lives 50-100 % of the TTL: answers made together (after a restart,
        # a warm-up, the refill after a full invalidation) must not all expire together
        # again, a miss storm of a few thousand catalog reads on two cores.
        ttl = self.ttl * (1.0 - TTL_JITTER * self.rng())
        lifetime = ttl if valid_for is None else min(ttl, valid_for)
        self._items[ticket.key] = _Entry(
            body,
            ticket.started_at,
            ticket.started_at + lifetime,
            ticket.viewer,
            fresh,
            synced,
            session_head,
        )
        if ticket.viewer is not None:
            self._by_viewer.setdefault(ticket.viewer, set()).add(ticket.key)
        while len(self._items) > self.entries:
            self._drop(next(iter(self._items)))

    def _drop(self, key: Hashable) -> None:
        entry = self._items.pop(key, None)
        if entry is not None and entry.viewer is not None:
            keys = self._by_viewer.get(entry.viewer)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_viewer[entry.viewer]

    # --- invalidation ---------------------------------------------------------------------

    def invalidate_viewer(
        self, viewer: uuid.UUID, *, session_video: uuid.UUID | None = None
    ) -> None:
        """Something of ``viewer`` changed: their answers are stale.

        ``session_video``: the change was only that video's session row (an event of
        the viewer on it). An answer made while that video was already the session's
        most recent stays fresh: the row's time can only grow, so the video stays first,
        the other rows are untouched, and an answer depends on the session's videos and
        their order only (when the oldest row leaves the window the answer's own
        ``valid_for`` ends it). That is most events: a player's heartbeats on the video
        being watched. Reads in flight are marked stale all the same."""
        self.stats.viewer_invalidations += 1
        for key in self._by_viewer.get(viewer, ()):
            entry = self._items[key]
            if session_video is None or entry.session_head != session_video:
                entry.fresh = False
        for ticket in self._inflight:
            if ticket.viewer == viewer:
                ticket.stale = True

    def invalidate_all(self) -> None:
        """Something every answer may depend on changed: every answer is stale."""
        self.stats.full_invalidations += 1
        for entry in self._items.values():
            entry.fresh = False
        for ticket in self._inflight:
            ticket.stale = True

    def listener_lost(self) -> None:
        """Invalidations may be missed from now on: serve from memory briefly only."""
        if self.synced:
            self.stats.listener_losses += 1
        self.synced = False
        for ticket in self._inflight:
            ticket.synced = False

    def listener_connected(self) -> None:
        """The listener listens (again): what was missed meanwhile is unknown, so every
        answer is stale; answers made from now on are served until invalidated."""
        self.invalidate_all()
        self.synced = True

    def __len__(self) -> int:
        return len(self._items)
