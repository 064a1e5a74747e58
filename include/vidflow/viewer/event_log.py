"""Group commit of accepted viewer events into NDJSON objects of the events bucket.

Every API process keeps one open batch. A request appends its accepted events and waits
until the object holding them is written; only then is it answered, so an acknowledged
event is in object storage and a ``kill -9`` loses none. The open batch is sealed and
written when it reaches ``events_flush_bytes``, when its oldest event has waited
``events_flush_seconds``, or when the receive hour changes (one object holds one hour:
the analytics runs read the objects of their hour). A failed write fails every request
waiting on that batch (the API answers 503 and acknowledges nothing; the clients resend
and the analytics jobs drop duplicates by ``event_id``). A clean stop seals and writes
what is pending.

:class:`CommitBuffer` is the batching rule as pure logic; :class:`EventLog` runs it on
asyncio with one flusher task, the blocking S3 write in a thread. Each process writes
under its own ``writer_id`` with its own sequence, so processes never overwrite each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from vidflow.config import Settings
from vidflow.events import StoredEvent, event_object_key
from vidflow.storage import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

#: Writes one object: (key, body). Raises when the object was not stored.
Writer = Callable[[str, bytes], None]

HOUR: Final = timedelta(hours=1)
#: Sealed batches waiting for their write before new events are refused (503).
MAX_UNWRITTEN_BATCHES: Final = 32


class EventsNotStored(Exception):
    """The events of a request could not be written; none of them is acknowledged."""


def receive_hour(moment: datetime) -> datetime:
    """The UTC hour ``moment`` falls in (the folder of its object)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def new_writer_id() -> str:
    """Unique per process and start: host, pid and a random suffix (a restarted process
    may get an old pid back; its sequence starts again at 1)."""
    host = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()).strip("-")[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


@dataclass
class Batch:
    """The events of one future object."""

    number: int
    hour: datetime
    opened_at: float
    lines: list[str] = field(default_factory=list)
    size: int = 0

    def body(self) -> bytes:
        return "".join(line + "\n" for line in self.lines).encode()


class CommitBuffer:
    """The batching rule, without I/O or clocks of its own: callers pass ``now`` (a
    monotonic time, for ages) and ``wall`` (UTC, for hour boundaries)."""

    def __init__(self, *, flush_bytes: int, flush_seconds: float) -> None:
        self.flush_bytes = flush_bytes
        self.flush_seconds = flush_seconds
        self._open: Batch | None = None
        self._next_number = 1

    @property
    def open_batch(self) -> Batch | None:
        return self._open

    def _seal(self) -> list[Batch]:
        sealed, self._open = self._open, None
        return [sealed] if sealed is not None else []

    def append(
        self, lines: Sequence[str], *, hour: datetime, now: float
    ) -> tuple[Batch, list[Batch]]:
        """Add ``lines`` (received in ``hour``) to the open batch. Returns the batch that
        holds them, and the batches sealed by this append, in write order: the open batch
        of an earlier hour, then the one holding ``lines`` if it reached the size limit."""
        sealed = []
        if self._open is not None and self._open.hour != hour:
            sealed += self._seal()
        if self._open is None:
            self._open = Batch(self._next_number, hour, now)
            self._next_number += 1
        batch = self._open
        batch.lines.extend(lines)
        batch.size += sum(len(line.encode()) + 1 for line in lines)
        if batch.size >= self.flush_bytes:
            sealed += self._seal()
        return batch, sealed

    def due(self, *, now: float, wall: datetime) -> list[Batch]:
        """The open batch, sealed, once its oldest event waited ``flush_seconds`` or its
        hour is over."""
        batch = self._open
        if batch is None:
            return []
        if now - batch.opened_at >= self.flush_seconds or wall >= batch.hour + HOUR:
            return self._seal()
        return []

    def seconds_until_due(self, *, now: float, wall: datetime) -> float | None:
        """How long until :meth:`due` seals the open batch (None: nothing is open)."""
        batch = self._open
        if batch is None:
            return None
        by_age = batch.opened_at + self.flush_seconds - now
        by_hour = (batch.hour + HOUR - wall).total_seconds()
        return max(0.0, min(by_age, by_hour))

    def seal_all(self) -> list[Batch]:
        return self._seal()


def s3_writer(settings: Settings, s3: S3Client | None = None) -> Writer:
    """A writer putting objects into the events bucket."""
    client = s3 or s3_client(settings)
    bucket = settings.bucket_events

    def write(key: str, body: bytes) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")

    return write


class EventLog:
    """Group commit on asyncio: :meth:`append` returns once the events are stored."""

    def __init__(
        self,
        *,
        write: Writer,
        flush_bytes: int,
        flush_seconds: float,
        writer_id: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.writer_id = writer_id or new_writer_id()
        self._write_fn = write
        self._buffer = CommitBuffer(flush_bytes=flush_bytes, flush_seconds=flush_seconds)
        self._monotonic = monotonic
        self._wall = wall
        self._sealed: deque[Batch] = deque()
        self._done: dict[int, asyncio.Future[None]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> EventLog:
        return cls(
            write=s3_writer(settings),
            flush_bytes=settings.events_flush_bytes,
            flush_seconds=settings.events_flush_seconds,
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flusher(), name="event-log-flusher")

    def begin_shutdown(self) -> None:
        """Write what is pending now, and every later append at once (the process is
        stopping: requests still in flight should not wait for the age limit)."""
        if not self._closing:
            self._closing = True
            self._sealed.extend(self._buffer.seal_all())
            self._wake.set()

    async def close(self) -> None:
        """Write everything pending, then stop the flusher; later appends fail."""
        self.begin_shutdown()
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def append(self, events: Sequence[StoredEvent]) -> None:
        """Store ``events`` (all received in one hour) in the next object; returns when
        the object is written, raises EventsNotStored when it could not be."""
        if not events:
            return
        if self._task is None or self._closed:
            raise EventsNotStored("the event log is not running (the service is stopping)")
        if len(self._sealed) >= MAX_UNWRITTEN_BATCHES:
            raise EventsNotStored("object storage is not keeping up with the events")
        hour = receive_hour(events[0].received_at)
        if any(receive_hour(e.received_at) != hour for e in events):
            raise ValueError("one append carries the events of one receive hour")
        batch, sealed = self._buffer.append(
            [e.to_json_line() for e in events], hour=hour, now=self._monotonic()
        )
        done = self._done.get(batch.number)
        if done is None:
            done = self._done[batch.number] = asyncio.get_running_loop().create_future()
            # Nobody may be left waiting (cancelled requests): never warn about it.
            done.add_done_callback(_consume)
        if self._closing:
            sealed += self._buffer.seal_all()
        self._sealed.extend(sealed)
        # A new batch changes the flusher's deadline; a sealed one needs writing.
        self._wake.set()
        # Shielded: a cancelled request must not cancel the batch other requests wait on.
        await asyncio.shield(done)

    async def _flusher(self) -> None:
        while True:
            self._sealed.extend(self._buffer.due(now=self._monotonic(), wall=self._wall()))
            if self._sealed:
                await self._write(self._sealed.popleft())
                continue
            if self._closed and self._buffer.open_batch is None:
                return
            self._wake.clear()
            timeout = self._buffer.seconds_until_due(now=self._monotonic(), wall=self._wall())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _write(self, batch: Batch) -> None:
        key = event_object_key(batch.hour, self.writer_id, batch.number)
        done = self._done.pop(batch.number)
        try:
            await asyncio.to_thread(self._write_fn, key, batch.body())
        except Exception as exc:
            log.warning("writing %s (%d events) failed: %s", key, len(batch.lines), exc)
            done.set_exception(EventsNotStored(f"object storage refused the write: {exc}"))
        else:
            done.set_result(None)


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
