"""The upload service layer: every catalog query and S3 call of the tus server.

How an upload's bytes are kept
------------------------------
Each upload is one S3 multipart upload to ``originals/{video_id}/source``. A PATCH body
streams through a fixed buffer of ``upload_part_size`` bytes into parts, with up to
``upload_part_concurrency`` part uploads in flight, so memory per request is bounded no
matter what the client announces. A tail shorter than S3's 5 MiB minimum that is not the
end of the file is parked as a small S3 object and prepended to the next PATCH.

What counts as written
----------------------
A PATCH *commits* in one catalog transaction: the new parts' rows (``upload_parts``:
number, size, ETag), the new offset and the parked piece's key. Parts S3 holds beyond
the committed ones are leftovers of a PATCH that failed (checksum mismatch, crash) and
are ignored; the next PATCH overwrites those part numbers. So a checksum is verified
before anything commits, and an interrupted PATCH without a checksum commits the bytes
that did arrive (tus: keep as much as possible).

The offset is rebuilt from S3 and the catalog whenever a process meets an upload state it
did not write itself (after a restart, or when another replica wrote last): the committed
parts that ListParts still shows with the same size and ETag, plus the parked piece if it
is still there. If S3 lost something, the offset moves back and the client resends from
there. For a state the process committed itself, a PATCH only checks the tail (the last
committed part and the parked piece), so its cost does not grow with the part count;
completion then presents every committed ETag to S3, which refuses any part that changed.

One writer at a time: see :mod:`vidflow.uploads.locks`. Completion (the last byte) runs
CompleteMultipartUpload with the committed ETags, then one transaction flips the upload
to ``completed``, the video to ``processing`` and adds the outbox message announcing it
(:mod:`vidflow.outbox`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from anyio import CancelScope, to_thread
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import OperationalError

from vidflow.catalog.db import get_engine
from vidflow.catalog.models import Upload, UploadPart, Video
from vidflow.config import Settings
from vidflow.outbox import enqueue, relay_once
from vidflow.problems import Problem
from vidflow.storage import original_key
from vidflow.uploads import locks
from vidflow.uploads.protocol import (
    MAX_PARTS,
    MIN_PART_SIZE,
    ChecksumMismatch,
    ChunkRequest,
    Hasher,
    UploadTooLarge,
    VideoMetadata,
)
from vidflow.uploads.store import (
    MultipartGone,
    MultipartStore,
    PartRejected,
    StoredPart,
    new_parked_key,
    staging_prefix,
    upload_s3_client,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

REASON_EXPIRED: Final = "upload expired"
REASON_TERMINATED: Final = "upload terminated by its creator"
REASON_LOST: Final = "upload failed: its stored data disappeared from object storage"


# --- errors -------------------------------------------------------------------------------


class UploadNotFound(Problem):
    status = 404
    title = "Upload not found"

    def __init__(self) -> None:
        super().__init__("no such upload")


class UploadGone(Problem):
    status = 410
    title = "Upload expired"

    def __init__(self, detail: str = "the upload expired before it was completed") -> None:
        super().__init__(detail)


class OffsetConflict(Problem):
    status = 409
    title = "Offset mismatch"


class UploadComplete(Problem):
    status = 409
    title = "Upload already complete"


class StorageUnavailable(Problem):
    status = 503
    title = "Storage unavailable"

    def __init__(self) -> None:
        super().__init__(
            "object storage or the catalog failed while handling the upload; HEAD the upload "
            "and resume from its Upload-Offset",
            headers={"Retry-After": "2"},
        )


# --- public shapes ------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadStatus:
    """What a tus response says about an upload."""

    upload_id: uuid.UUID
    video_id: uuid.UUID
    length: int
    offset: int
    state: str
    expires_at: datetime
    metadata: dict[str, str]

    @property
    def complete(self) -> bool:
        return self.state == "completed"


@dataclass(frozen=True)
class CreatedUpload:
    """A new upload, and why its first chunk was refused (creation-with-upload) if so."""

    status: UploadStatus
    chunk_error: Problem | None = None


class DigestCache:
    """sha256 of the bytes so far of uploads this process has received from byte 0.

    A hash state cannot be persisted, so when an upload moves to another replica (or this
    one restarts) its sha256 becomes unknown and the outbox message carries ``null``.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._items: OrderedDict[uuid.UUID, tuple[int, Hasher]] = OrderedDict()
        self._capacity = capacity

    def resume(self, upload_id: uuid.UUID, offset: int) -> Hasher | None:
        """A hasher positioned at ``offset`` (a copy: nothing counts until committed)."""
        if offset == 0:
            return hashlib.sha256()
        item = self._items.get(upload_id)
        if item is None or item[0] != offset:
            return None
        return item[1].copy()

    def commit(self, upload_id: uuid.UUID, offset: int, hasher: Hasher | None) -> None:
        self._items.pop(upload_id, None)
        if hasher is not None:
            self._items[upload_id] = (offset, hasher)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def hexdigest(self, upload_id: uuid.UUID, length: int) -> str | None:
        item = self._items.get(upload_id)
        if item is None or item[0] != length:
            return None
        return item[1].digest().hex()

    def forget(self, upload_id: uuid.UUID) -> None:
        self._items.pop(upload_id, None)


class VerifiedOffsets:
    """The offset of each upload whose state this process committed or fully verified
    last; a PATCH that finds the catalog there only checks the tail in S3."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._items: OrderedDict[uuid.UUID, int] = OrderedDict()
        self._capacity = capacity

    def get(self, upload_id: uuid.UUID) -> int | None:
        return self._items.get(upload_id)

    def set(self, upload_id: uuid.UUID, offset: int) -> None:
        self._items.pop(upload_id, None)
        self._items[upload_id] = offset
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def forget(self, upload_id: uuid.UUID) -> None:
        self._items.pop(upload_id, None)


@dataclass
class UploadBackend:
    """Everything the service functions need: settings, the originals bucket, the lock
    connections and this process's running digests. One per process."""

    settings: Settings
    store: MultipartStore
    lock_engine: Engine
    digests: DigestCache = field(default_factory=DigestCache)
    verified: VerifiedOffsets = field(default_factory=VerifiedOffsets)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, lock_pool_size: int | None = None
    ) -> UploadBackend:
        return cls(
            settings=settings,
            store=MultipartStore(upload_s3_client(settings), settings.bucket_originals),
            lock_engine=locks.lock_engine(settings, lock_pool_size),
        )

    @property
    def catalog(self) -> Engine:
        return get_engine(self.settings)

    def close(self) -> None:
        self.lock_engine.dispose()


# --- catalog rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    """The columns of ``uploads`` the service works with."""

    upload_id: uuid.UUID
    video_id: uuid.UUID
    user_id: uuid.UUID
    state: str
    length: int
    offset: int
    s3_key: str
    s3_multipart_id: str | None
    upload_metadata: dict[str, str]
    expires_at: datetime
    parked_key: str | None
    parked_size: int

    @classmethod
    def from_mapping(cls, m: Any) -> _Row:
        return cls(**{f: m[f] for f in cls.__dataclass_fields__})

    def status(self) -> UploadStatus:
        return UploadStatus(
            upload_id=self.upload_id,
            video_id=self.video_id,
            length=self.length,
            offset=self.offset,
            state=self.state,
            expires_at=self.expires_at,
            metadata=dict(self.upload_metadata),
        )


_ROW_COLUMNS = [getattr(Upload, name) for name in _Row.__dataclass_fields__]


def _now() -> datetime:
    return datetime.now(UTC)


def _read_row(conn: Connection, upload_id: uuid.UUID) -> _Row | None:
    found = conn.execute(select(*_ROW_COLUMNS).where(Upload.upload_id == upload_id)).mappings()
    first = found.one_or_none()
    return _Row.from_mapping(first) if first is not None else None


def _committed_parts(conn: Connection, upload_id: uuid.UUID) -> list[StoredPart]:
    rows = conn.execute(
        select(UploadPart.part_number, UploadPart.size, UploadPart.etag)
        .where(UploadPart.upload_id == upload_id)
        .order_by(UploadPart.part_number)
    )
    return [StoredPart(number, size, etag) for number, size, etag in rows]


def _visible_row(row: _Row | None, user_id: uuid.UUID, now: datetime) -> _Row:
    """The row if ``user_id`` may see it: 404 for someone else's (its existence is not
    revealed) or a terminated one, 410 once expired."""
    if row is None or row.user_id != user_id or row.state == "terminated":
        raise UploadNotFound()
    if row.state == "expired" or (
        row.state == "active" and row.offset < row.length and row.expires_at <= now
    ):
        raise UploadGone()
    return row


async def _in_thread(func: Callable[..., T], *args: Any) -> T:
    return await to_thread.run_sync(func, *args)


# --- creation -------------------------------------------------------------------------


def _insert_upload(
    backend: UploadBackend,
    *,
    upload_id: uuid.UUID,
    video_id: uuid.UUID,
    user_id: uuid.UUID,
    length: int,
    metadata: VideoMetadata,
    multipart_id: str,
) -> _Row:
    expires_at = _now() + timedelta(seconds=backend.settings.upload_expiry_seconds)
    with backend.catalog.begin() as conn:
        conn.execute(
            insert(Video).values(
                video_id=video_id,
                user_id=user_id,
                title=metadata.title,
                description=metadata.description,
                tags=list(metadata.tags),
                status="uploading",
            )
        )
        conn.execute(
            insert(Upload).values(
                upload_id=upload_id,
                video_id=video_id,
                user_id=user_id,
                state="active",
                length=length,
                offset=0,
                s3_key=original_key(video_id),
                s3_multipart_id=multipart_id,
                upload_metadata=metadata.as_upload_metadata(),
                expires_at=expires_at,
            )
        )
        row = _read_row(conn, upload_id)
    assert row is not None
    return row


async def create_upload(
    *,
    backend: UploadBackend,
    user_id: uuid.UUID,
    length: int,
    metadata: VideoMetadata,
    first_chunk: ChunkRequest | None = None,
    body: AsyncIterator[bytes] | None = None,
) -> CreatedUpload:
    """Create an upload and its ``videos`` row (status ``uploading``); with
    creation-with-upload, write the request body as the first chunk."""
    upload_id, video_id = uuid.uuid4(), uuid.uuid4()
    key = original_key(video_id)
    try:
        multipart_id = await _in_thread(backend.store.create, key)
    except (BotoCoreError, ClientError) as exc:
        log.error("cannot start multipart upload for %s: %s", key, exc)
        raise StorageUnavailable() from exc
    try:
        row = await _in_thread(
            lambda: _insert_upload(
                backend,
                upload_id=upload_id,
                video_id=video_id,
                user_id=user_id,
                length=length,
                metadata=metadata,
                multipart_id=multipart_id,
            )
        )
    except BaseException:
        with CancelScope(shield=True):
            await _in_thread(backend.store.abort, key, multipart_id)
        raise
    if first_chunk is None or body is None:
        return CreatedUpload(row.status())
    try:
        status = await write_chunk(
            backend=backend, user_id=user_id, upload_id=upload_id, chunk=first_chunk, body=body
        )
    except Problem as problem:
        # The upload exists: the client still needs its URL to resume.
        return CreatedUpload(row.status(), chunk_error=problem)
    return CreatedUpload(status)


# --- writing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _WriteState:
    row: _Row
    next_part: int


def _rebuild(backend: UploadBackend, conn: Connection, row: _Row) -> _WriteState:
    """The upload's state as S3 and the catalog prove it (see the module docstring):
    the committed parts that ListParts shows unchanged, plus the parked piece. Repairs the
    catalog if S3 no longer holds what it records."""
    with conn.begin():
        committed = _committed_parts(conn, row.upload_id)
    assert row.s3_multipart_id is not None
    in_s3 = backend.store.list_parts(row.s3_key, row.s3_multipart_id)
    valid: list[StoredPart] = []
    for part in committed:
        if in_s3.get(part.number) != part:
            break
        valid.append(part)
    parked_ok = (
        row.parked_key is not None
        and len(valid) == len(committed)
        and backend.store.size(row.parked_key) == row.parked_size
    )
    offset = sum(p.size for p in valid) + (row.parked_size if parked_ok else 0)
    next_part = valid[-1].number + 1 if valid else 1
    if offset == row.offset and (parked_ok or row.parked_key is None):
        return _WriteState(row, next_part)
    log.warning(
        "upload %s: catalog offset %d, but S3 proves %d (%d of %d parts, parked piece %s); "
        "rolling back to what S3 holds",
        row.upload_id,
        row.offset,
        offset,
        len(valid),
        len(committed),
        "none" if row.parked_key is None else ("ok" if parked_ok else "missing"),
    )
    parked_key = row.parked_key if parked_ok else None
    parked_size = row.parked_size if parked_ok else 0
    with conn.begin():
        conn.execute(
            delete(UploadPart).where(
                UploadPart.upload_id == row.upload_id, UploadPart.part_number >= next_part
            )
        )
        conn.execute(
            update(Upload)
            .where(Upload.upload_id == row.upload_id)
            .values(offset=offset, parked_key=parked_key, parked_size=parked_size)
        )
    backend.digests.forget(row.upload_id)
    row = replace(row, offset=offset, parked_key=parked_key, parked_size=parked_size)
    return _WriteState(row, next_part)


def _check_tail(backend: UploadBackend, conn: Connection, row: _Row) -> _WriteState | None:
    """For a state this process committed itself: S3 still has the last committed part
    (same ETag) and the parked piece. One short ListParts instead of all of them, so a
    PATCH costs the same at part 5 as at part 5000. None if anything differs."""
    with conn.begin():
        last = conn.execute(
            select(UploadPart.part_number, UploadPart.size, UploadPart.etag)
            .where(UploadPart.upload_id == row.upload_id)
            .order_by(UploadPart.part_number.desc())
            .limit(1)
        ).first()
    assert row.s3_multipart_id is not None
    if last is not None:
        number, size, etag = last
        tail = backend.store.list_parts(row.s3_key, row.s3_multipart_id, after=number - 1)
        if tail.get(number) != StoredPart(number, size, etag):
            return None
    if row.parked_key is not None and backend.store.size(row.parked_key) != row.parked_size:
        return None
    return _WriteState(row, last[0] + 1 if last is not None else 1)


def _load_for_write(
    backend: UploadBackend, conn: Connection, user_id: uuid.UUID, upload_id: uuid.UUID
) -> _WriteState:
    with conn.begin():
        row = _visible_row(_read_row(conn, upload_id), user_id, _now())
    if row.state != "active" or row.offset == row.length:
        return _WriteState(row, 0)
    try:
        if backend.verified.get(upload_id) == row.offset:
            state = _check_tail(backend, conn, row)
            if state is not None:
                return state
        # First sight of this state in this process (a restart, another replica wrote it,
        # or the tail check failed): verify every part.
        state = _rebuild(backend, conn, row)
        backend.verified.set(upload_id, state.row.offset)
        return state
    except MultipartGone:
        # Aborted behind our back (or by an interrupted clean-up): nothing to resume.
        _discard(backend, conn, row, state="expired", reason=REASON_LOST)
        raise UploadGone("the upload's stored data is gone; start a new upload") from None


@dataclass(frozen=True)
class _Written:
    """What one request body left in S3, to be committed."""

    parts: list[StoredPart]
    parked_key: str | None
    parked_size: int


class _ChunkWriter:
    """Streams one request body into S3 parts through a fixed buffer.

    Memory: one buffer of ``part_size`` plus at most ``concurrency`` parts in flight,
    whatever the client's Content-Length says.
    """

    def __init__(
        self,
        *,
        store: MultipartStore,
        row: _Row,
        part_size: int,
        concurrency: int,
        first_part: int,
        parked: bytes,
        checksum: Hasher | None,
        digest: Hasher | None,
    ) -> None:
        assert row.s3_multipart_id is not None
        self._store = store
        self._upload_id = row.upload_id
        self._key = row.s3_key
        self._multipart_id = row.s3_multipart_id
        self._part_size = part_size
        self._concurrency = concurrency
        self._next_part = first_part
        self._remaining = row.length - row.offset
        self._buffer = memoryview(bytearray(part_size))
        self._filled = len(parked)
        self._buffer[: self._filled] = parked
        self._in_flight: set[asyncio.Task[StoredPart]] = set()
        self._written: list[StoredPart] = []
        self.checksum = checksum
        self.digest = digest
        self.received = 0

    async def feed(self, data: bytes) -> None:
        size = len(data)
        if self.received + size > self._remaining:
            raise UploadTooLarge(
                f"the body runs past Upload-Length: only {self._remaining} more byte(s) fit"
            )
        self.received += size
        if self.checksum is not None:
            self.checksum.update(data)
        if self.digest is not None:
            self.digest.update(data)
        view, pos = memoryview(data), 0
        while pos < size:
            take = min(self._part_size - self._filled, size - pos)
            self._buffer[self._filled : self._filled + take] = view[pos : pos + take]
            self._filled += take
            pos += take
            if self._filled == self._part_size:
                await self._submit(bytes(self._buffer))
                self._filled = 0

    async def _submit(self, data: bytes) -> None:
        while len(self._in_flight) >= self._concurrency:
            done, self._in_flight = await asyncio.wait(
                self._in_flight, return_when=asyncio.FIRST_COMPLETED
            )
            self._written.extend(task.result() for task in done)
        number = self._next_part
        if number > MAX_PARTS:
            raise UploadTooLarge(f"the upload needs more than {MAX_PARTS} parts")
        self._next_part += 1
        upload = self._store.upload_part
        self._in_flight.add(
            asyncio.ensure_future(_in_thread(upload, self._key, self._multipart_id, number, data))
        )

    async def finish(self, *, final: bool) -> _Written:
        """Write the buffered tail (as the last part, as a part of its own if S3 allows,
        or as a parked piece) and wait for every part."""
        tail = bytes(self._buffer[: self._filled])
        parked_key: str | None = None
        if tail and (final or len(tail) >= MIN_PART_SIZE):
            await self._submit(tail)
        elif tail:
            parked_key = new_parked_key(self._upload_id)
            await _in_thread(self._store.put, parked_key, tail)
        while self._in_flight:
            done, self._in_flight = await asyncio.wait(self._in_flight)
            self._written.extend(task.result() for task in done)
        parts = sorted(self._written, key=lambda p: p.number)
        return _Written(parts, parked_key, len(tail) if parked_key else 0)

    async def abandon(self) -> None:
        """Wait for the parts in flight and forget them: nothing of this body commits."""
        with CancelScope(shield=True):
            if self._in_flight:
                await asyncio.wait(self._in_flight)
            for task in self._in_flight:
                if not task.cancelled():
                    task.exception()  # retrieved, so asyncio does not log it
            self._in_flight = set()


def _commit(
    backend: UploadBackend, conn: Connection, row: _Row, received: int, written: _Written
) -> _Row:
    """Make a body's bytes count: its parts, the new offset and parked piece, in one
    transaction on the lock's own connection."""
    expires_at = _now() + timedelta(seconds=backend.settings.upload_expiry_seconds)
    new_offset = row.offset + received
    with conn.begin():
        if written.parts:
            conn.execute(
                insert(UploadPart),
                [
                    {
                        "upload_id": row.upload_id,
                        "part_number": p.number,
                        "size": p.size,
                        "etag": p.etag,
                    }
                    for p in written.parts
                ],
            )
        result = conn.execute(
            update(Upload)
            .where(
                Upload.upload_id == row.upload_id,
                Upload.offset == row.offset,
                Upload.state == "active",
            )
            .values(
                offset=new_offset,
                parked_key=written.parked_key,
                parked_size=written.parked_size,
                expires_at=expires_at,
            )
        )
        if result.rowcount != 1:
            raise OffsetConflict("the upload changed while this request was writing; HEAD it")
    return replace(
        row,
        offset=new_offset,
        parked_key=written.parked_key,
        parked_size=written.parked_size,
        expires_at=expires_at,
    )


def _delete_quietly(store: MultipartStore, key: str) -> None:
    try:
        store.delete(key)
    except (BotoCoreError, ClientError) as exc:
        # Left-overs under the staging prefix go when the upload finishes or expires.
        log.warning("could not delete %s: %s", key, exc)


async def write_chunk(
    *,
    backend: UploadBackend,
    user_id: uuid.UUID,
    upload_id: uuid.UUID,
    chunk: ChunkRequest,
    body: AsyncIterator[bytes],
) -> UploadStatus:
    """Append a PATCH body at ``chunk.offset``. 409 on an offset mismatch, 423 while
    another request writes the upload, 460 on a checksum mismatch (nothing appended)."""
    phases = _Phases()
    try:
        conn = await _in_thread(locks.acquire, backend.lock_engine, upload_id)
    except OperationalError as exc:
        raise StorageUnavailable() from exc
    phases.mark("lock")
    try:
        state = await _in_thread(_load_for_write, backend, conn, user_id, upload_id)
        phases.mark("rebuild")
        return await _write(backend, conn, state, chunk, body, phases)
    except (BotoCoreError, ClientError, OperationalError) as exc:
        log.error("upload %s: storage failure during PATCH: %s", upload_id, exc)
        raise StorageUnavailable() from exc
    finally:
        with CancelScope(shield=True):
            await _in_thread(locks.release, conn, upload_id)
        phases.mark("unlock")
        log.debug("upload %s PATCH at %d: %s", upload_id, chunk.offset, phases)


class _Phases:
    """Where a PATCH spent its time, for the debug log."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self._spent: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self._spent[phase] = self._spent.get(phase, 0.0) + now - self._last
        self._last = now

    def __str__(self) -> str:
        return " ".join(f"{name}={seconds * 1000:.0f}ms" for name, seconds in self._spent.items())


async def _write(
    backend: UploadBackend,
    conn: Connection,
    state: _WriteState,
    chunk: ChunkRequest,
    body: AsyncIterator[bytes],
    phases: _Phases,
) -> UploadStatus:
    row = state.row
    if row.state == "active" and row.offset == row.length:
        # The last byte committed but completion did not run (a crash): finish it now.
        row = await _finish(
            backend, conn, row, backend.digests.hexdigest(row.upload_id, row.length)
        )
        phases.mark("complete")
    if row.state == "completed" or row.offset == row.length:
        if chunk.offset == row.length and not chunk.content_length:
            return row.status()
        raise UploadComplete(f"all {row.length} bytes of this upload have been received")
    if chunk.offset != row.offset:
        raise OffsetConflict(
            f"Upload-Offset {chunk.offset} does not match the upload's offset {row.offset}; "
            "resume from the offset HEAD reports",
            headers={"Upload-Offset": str(row.offset)},
        )
    remaining = row.length - row.offset
    if chunk.content_length is not None and chunk.content_length > remaining:
        raise UploadTooLarge(
            f"Content-Length {chunk.content_length} runs past Upload-Length: "
            f"only {remaining} more byte(s) fit"
        )
    if chunk.content_length == 0:
        return row.status()
    settings = backend.settings
    parked = await _in_thread(backend.store.get, row.parked_key) if row.parked_key else b""
    phases.mark("parked")
    writer = _ChunkWriter(
        store=backend.store,
        row=row,
        part_size=settings.upload_part_size,
        concurrency=settings.upload_part_concurrency,
        first_part=state.next_part,
        parked=parked,
        checksum=chunk.checksum.hasher() if chunk.checksum else None,
        digest=backend.digests.resume(row.upload_id, row.offset),
    )
    del parked
    interrupted = False
    stream = body.__aiter__()
    try:
        while True:
            try:
                data = await stream.__anext__()
            except StopAsyncIteration:
                break
            except Exception as exc:
                # The client went away mid-body (or the transport failed).
                log.info(
                    "upload %s: body interrupted after %d bytes: %r",
                    row.upload_id,
                    writer.received,
                    exc,
                )
                interrupted = True
                break
            await writer.feed(data)
        if chunk.checksum is not None and (
            interrupted or writer.checksum is None or not chunk.checksum.matches(writer.checksum)
        ):
            await writer.abandon()
            raise ChecksumMismatch(
                f"the {chunk.checksum.algorithm} checksum of the body does not match "
                "Upload-Checksum; none of its bytes were appended"
            )
        if writer.received == 0:
            await writer.abandon()
            return row.status()
        phases.mark("receive")
        final = row.offset + writer.received == row.length
        written = await writer.finish(final=final)
        phases.mark("flush")
    except BaseException:
        await writer.abandon()
        raise
    row = await _in_thread(_commit, backend, conn, row, writer.received, written)
    backend.digests.commit(row.upload_id, row.offset, writer.digest)
    backend.verified.set(row.upload_id, row.offset)
    if state.row.parked_key and state.row.parked_key != row.parked_key:
        await _in_thread(_delete_quietly, backend.store, state.row.parked_key)
    phases.mark("commit")
    if final:
        sha256 = backend.digests.hexdigest(row.upload_id, row.length)
        row = await _finish(backend, conn, row, sha256)
        phases.mark("complete")
    return row.status()


# --- completion ---------------------------------------------------------------------------


def _complete(
    backend: UploadBackend, conn: Connection, row: _Row, sha256: str | None
) -> tuple[_Row, int | None]:
    """Complete the multipart upload and hand the video to processing. Idempotent: safe
    to rerun after a crash at any point. Returns the row and the outbox message id."""
    with conn.begin():
        current = _read_row(conn, row.upload_id)
        parts = _committed_parts(conn, row.upload_id)
    if current is None or current.state != "active" or current.offset != current.length:
        return (current or row), None
    row = current
    assert row.s3_multipart_id is not None
    try:
        backend.store.complete(row.s3_key, row.s3_multipart_id, parts)
    except MultipartGone:
        # Completed by an earlier attempt that crashed before its commit, or lost.
        if backend.store.size(row.s3_key) != row.length:
            _discard(backend, conn, row, state="terminated", reason=REASON_LOST)
            return replace(row, state="terminated"), None
    except PartRejected as exc:
        _discard(
            backend,
            conn,
            row,
            state="terminated",
            reason=f"upload failed: object storage rejected its parts ({exc}); upload again",
        )
        return replace(row, state="terminated"), None
    now = _now()
    message = {
        "video_id": str(row.video_id),
        "source_key": row.s3_key,
        "size": row.length,
        "sha256": sha256,
    }
    with conn.begin():
        conn.execute(
            update(Upload)
            .where(Upload.upload_id == row.upload_id, Upload.state == "active")
            .values(
                state="completed",
                completed_at=now,
                sha256=sha256,
                parked_key=None,
                parked_size=0,
            )
        )
        conn.execute(
            update(Video)
            .where(Video.video_id == row.video_id, Video.status == "uploading")
            .values(status="processing", updated_at=now)
        )
        outbox_id = enqueue(conn, topic=backend.settings.processing_queue, payload=message)
    try:
        backend.store.delete_prefix(staging_prefix(row.upload_id))
    except (BotoCoreError, ClientError) as exc:
        log.warning("upload %s: staging clean-up failed: %s", row.upload_id, exc)
    backend.digests.forget(row.upload_id)
    backend.verified.forget(row.upload_id)
    log.info("upload %s complete: video %s is processing", row.upload_id, row.video_id)
    return replace(row, state="completed"), outbox_id


def _publish_now(backend: UploadBackend, outbox_id: int) -> None:
    """Relay the new message at once; if that fails, the relay's next sweep sends it."""
    try:
        relay_once(settings=backend.settings, ids=[outbox_id])
    except Exception as exc:
        log.warning("outbox row %s left for the relay: %s", outbox_id, exc)


async def _finish(backend: UploadBackend, conn: Connection, row: _Row, sha256: str | None) -> _Row:
    row, outbox_id = await _in_thread(_complete, backend, conn, row, sha256)
    if outbox_id is not None:
        await _in_thread(_publish_now, backend, outbox_id)
    return row


# --- reading -------------------------------------------------------------------------------


def _read_visible(backend: UploadBackend, user_id: uuid.UUID, upload_id: uuid.UUID) -> _Row:
    with backend.catalog.connect() as conn:
        return _visible_row(_read_row(conn, upload_id), user_id, _now())


async def get_upload_status(
    *, backend: UploadBackend, user_id: uuid.UUID, upload_id: uuid.UUID
) -> UploadStatus:
    """The upload's offset and length for HEAD. An upload whose last byte is committed
    but not yet completed (a crash in between) is completed here, if no one writes it."""
    row = await _in_thread(_read_visible, backend, user_id, upload_id)
    if row.state == "active" and row.offset == row.length:
        try:
            conn = await _in_thread(locks.acquire, backend.lock_engine, upload_id)
        except (locks.UploadLocked, locks.ServerBusy):
            return row.status()
        try:
            sha256 = backend.digests.hexdigest(upload_id, row.length)
            row = await _finish(backend, conn, row, sha256)
        except (BotoCoreError, ClientError, OperationalError) as exc:
            log.warning("upload %s: completion retry failed: %s", upload_id, exc)
        finally:
            with CancelScope(shield=True):
                await _in_thread(locks.release, conn, upload_id)
    return row.status()


# --- termination and expiry -----------------------------------------------------------------


def _discard(
    backend: UploadBackend, conn: Connection, row: _Row, *, state: str, reason: str
) -> None:
    """Remove every byte of an unfinished upload from S3 (multipart parts, parked pieces,
    any object at its key), then record why in the catalog."""
    if row.s3_multipart_id:
        backend.store.abort(row.s3_key, row.s3_multipart_id)
    backend.store.delete_prefix(staging_prefix(row.upload_id))
    backend.store.delete(row.s3_key)
    now = _now()
    with conn.begin():
        conn.execute(delete(UploadPart).where(UploadPart.upload_id == row.upload_id))
        conn.execute(
            update(Upload)
            .where(Upload.upload_id == row.upload_id, Upload.state == "active")
            .values(state=state, parked_key=None, parked_size=0)
        )
        conn.execute(
            update(Video)
            .where(Video.video_id == row.video_id, Video.status == "uploading")
            .values(status="failed", failure_reason=reason, updated_at=now)
        )
    backend.digests.forget(row.upload_id)
    backend.verified.forget(row.upload_id)
    log.info("upload %s %s: %s", row.upload_id, state, reason)


def _terminate(
    backend: UploadBackend, conn: Connection, user_id: uuid.UUID, upload_id: uuid.UUID
) -> None:
    with conn.begin():
        row = _visible_row(_read_row(conn, upload_id), user_id, _now())
    if row.state == "completed" or row.offset == row.length:
        raise UploadComplete(
            "the upload is complete and its video is being processed; it cannot be terminated"
        )
    _discard(backend, conn, row, state="terminated", reason=REASON_TERMINATED)


async def terminate_upload(
    *, backend: UploadBackend, user_id: uuid.UUID, upload_id: uuid.UUID
) -> None:
    """tus termination: abort the multipart upload, remove parked pieces, and mark the
    video failed. 423 while a PATCH is writing, 409 once complete."""
    conn = await _in_thread(locks.acquire, backend.lock_engine, upload_id)
    try:
        await _in_thread(_terminate, backend, conn, user_id, upload_id)
    except (BotoCoreError, ClientError, OperationalError) as exc:
        log.error("upload %s: termination failed: %s", upload_id, exc)
        raise StorageUnavailable() from exc
    finally:
        with CancelScope(shield=True):
            await _in_thread(locks.release, conn, upload_id)


def _candidates(
    backend: UploadBackend,
    *conditions: Any,
    only: Collection[uuid.UUID] | None,
    limit: int,
) -> list[uuid.UUID]:
    query = select(Upload.upload_id).where(Upload.state == "active", *conditions)
    if only is not None:
        query = query.where(Upload.upload_id.in_(list(only)))
    with backend.catalog.connect() as conn:
        return list(conn.scalars(query.order_by(Upload.expires_at).limit(limit)))


def expire_uploads(
    *,
    backend: UploadBackend,
    now: datetime | None = None,
    only: Collection[uuid.UUID] | None = None,
    limit: int = 1000,
) -> list[uuid.UUID]:
    """Clean up unfinished uploads past their expiry: abort the S3 multipart upload,
    delete parked pieces, mark the video failed ("upload expired"). Uploads a request is
    writing right now are skipped (the next sweep gets them). ``only`` restricts the sweep
    to some uploads. Returns the expired ids."""
    now = now or _now()
    expired = []
    candidates = _candidates(
        backend, Upload.expires_at <= now, Upload.offset < Upload.length, only=only, limit=limit
    )
    for upload_id in candidates:
        try:
            with locks.upload_lock(backend.lock_engine, upload_id) as conn:
                with conn.begin():
                    row = _read_row(conn, upload_id)
                if (
                    row is not None
                    and row.state == "active"
                    and row.offset < row.length
                    and row.expires_at <= now
                ):
                    _discard(backend, conn, row, state="expired", reason=REASON_EXPIRED)
                    expired.append(upload_id)
        except locks.UploadLocked:
            log.info("upload %s is being written; expiring it next time", upload_id)
    return expired


def complete_stalled_uploads(
    *,
    backend: UploadBackend,
    older_than: timedelta = timedelta(minutes=5),
    only: Collection[uuid.UUID] | None = None,
    limit: int = 1000,
) -> list[uuid.UUID]:
    """Reconcile uploads whose last byte committed but whose completion did not run (the
    service died in between) at least ``older_than`` ago: complete them and enqueue
    their message on this backend's processing queue. Idempotent."""
    cutoff = _now() + timedelta(seconds=backend.settings.upload_expiry_seconds) - older_than
    done = []
    for upload_id in _candidates(
        backend,
        Upload.offset == Upload.length,
        Upload.expires_at <= cutoff,
        only=only,
        limit=limit,
    ):
        try:
            with locks.upload_lock(backend.lock_engine, upload_id) as conn:
                with conn.begin():
                    row = _read_row(conn, upload_id)
                if row is None:
                    continue
                row, outbox_id = _complete(backend, conn, row, None)
                if row.state == "completed":
                    done.append(upload_id)
                if outbox_id is not None:
                    _publish_now(backend, outbox_id)
        except locks.UploadLocked:
            continue
    return done
