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

    def put(self, ticket: Ticket, body: bytes, *, valid_for: float | None = None) -> None:
        """Keep the answer of a finished read: fresh unless an invalidation overtook it,
        for ``ttl`` seconds at most, or ``valid_for`` when shorter (counted from the
        start of the read)."""
        self._inflight.discard(ticket)
        if self.ttl <= 0:
            return
        fresh = not ticket.stale
        # Made while the listener was down or lost during the read: it may have missed
        # an invalidation, so it counts as unsynced.
        synced = ticket.synced and self.synced
        self._drop(ticket.key)
        lifetime = self.ttl if valid_for is None else min(self.ttl, valid_for)
        self._items[ticket.key] = _Entry(
            body, ticket.started_at, ticket.started_at + lifetime, ticket.viewer, fresh, synced
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

    def invalidate_viewer(self, viewer: uuid.UUID) -> None:
        """Something of ``viewer`` changed (their session): their answers are stale."""
        self.stats.viewer_invalidations += 1
        for key in self._by_viewer.get(viewer, ()):
            self._items[key].fresh = False
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
