"""The write path: creating an upload and appending a PATCH body at its offset.

See :mod:`vidflow.uploads.service` for how bytes are kept and what counts as written.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta

from anyio import CancelScope
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import OperationalError

from vidflow.catalog.models import Upload, UploadPart, Video
from vidflow.problems import Problem
from vidflow.storage import original_key
from vidflow.uploads import locks
from vidflow.uploads.body import FIRST_WINDOW, BodyStalled, TimedBody
from vidflow.uploads.chunks import ChunkWriter, Written
from vidflow.uploads.completion import finish, publish_all
from vidflow.uploads.errors import (
    REASON_LOST,
    BodyTimeout,
    OffsetConflict,
    StorageUnavailable,
    UploadComplete,
    UploadError,
    UploadGone,
)
from vidflow.uploads.protocol import (
    ChecksumMismatch,
    ChunkRequest,
    UploadTooLarge,
    VideoMetadata,
)
from vidflow.uploads.state import (
    CreatedUpload,
    UploadBackend,
    UploadRow,
    UploadStatus,
    committed_parts,
    discard,
    in_thread,
    read_row,
    utcnow,
    visible_row,
)
from vidflow.uploads.store import (
    MultipartGone,
    MultipartStore,
    StoredPart,
)

log = logging.getLogger(__name__)

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
) -> UploadRow:
    expires_at = utcnow() + timedelta(seconds=backend.settings.upload_expiry_seconds)
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
        row = read_row(conn, upload_id)
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
        multipart_id = await in_thread(backend.store.create, key)
    except (BotoCoreError, ClientError) as exc:
        log.error("cannot start multipart upload for %s: %s", key, exc)
        raise StorageUnavailable() from exc
    try:
        row = await in_thread(
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
            await in_thread(backend.store.abort, key, multipart_id)
        raise
    if first_chunk is None or body is None:
        return CreatedUpload(row.status())
    try:
        status = await write_chunk(
            backend=backend, user_id=user_id, upload_id=upload_id, chunk=first_chunk, body=body
        )
    except (Problem, UploadError) as problem:
        # The upload exists: the client still needs its URL to resume.
        return CreatedUpload(row.status(), chunk_error=problem)
    return CreatedUpload(status)


# --- writing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _WriteState:
    row: UploadRow
    next_part: int


def _rebuild(backend: UploadBackend, conn: Connection, row: UploadRow) -> _WriteState:
    """The upload's state as S3 and the catalog prove it (see the module docstring):
    the committed parts that ListParts shows unchanged, plus the parked piece. Repairs the
    catalog if S3 no longer holds what it records."""
    with conn.begin():
        committed = committed_parts(conn, row.upload_id)
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


def _check_tail(backend: UploadBackend, conn: Connection, row: UploadRow) -> _WriteState | None:
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
        row = visible_row(read_row(conn, upload_id), user_id, utcnow())
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
        discard(backend, conn, row, state="expired", reason=REASON_LOST)
        raise UploadGone("the upload's stored data is gone; start a new upload") from None


def _commit(
    backend: UploadBackend, conn: Connection, row: UploadRow, received: int, written: Written
) -> UploadRow:
    """Make a body's bytes count: its parts, the new offset and parked piece, in one
    transaction on the lock's own connection."""
    expires_at = utcnow() + timedelta(seconds=backend.settings.upload_expiry_seconds)
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
    settings = backend.settings
    timed = TimedBody(
        body, idle=settings.upload_body_idle_seconds, total=settings.upload_body_total_seconds
    )
    if chunk.content_length != 0:
        # The first bytes arrive before the lock connection is taken: a client that
        # stalls after its headers holds no catalog connection.
        await timed.prefetch(min(FIRST_WINDOW, chunk.content_length or FIRST_WINDOW))
        if timed.stalled is not None:
            # Not even the first bytes in time: refuse without touching the catalog.
            raise BodyTimeout(str(timed.stalled), offset=None, kept=False)
    phases.mark("first bytes")
    to_publish: list[int] = []
    try:
        conn = await in_thread(locks.acquire, backend.lock_engine, upload_id)
    except OperationalError as exc:
        raise StorageUnavailable() from exc
    phases.mark("lock")
    try:
        state = await in_thread(_load_for_write, backend, conn, user_id, upload_id)
        phases.mark("rebuild")
        return await _write(backend, conn, state, chunk, timed, phases, to_publish)
    except (BotoCoreError, ClientError, OperationalError) as exc:
        log.error("upload %s: storage failure during PATCH: %s", upload_id, exc)
        raise StorageUnavailable() from exc
    finally:
        with CancelScope(shield=True):
            await in_thread(locks.release, conn, upload_id)
            phases.mark("unlock")
            await publish_all(backend, to_publish)
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
    to_publish: list[int],
) -> UploadStatus:
    row = state.row
    if row.state == "active" and row.offset == row.length:
        # The last byte committed but completion did not run (a crash): finish it now.
        sha256 = backend.digests.hexdigest(row.upload_id, row.length)
        row = await finish(backend, conn, row, sha256, to_publish)
        phases.mark("complete")
    if row.state == "completed" or row.offset == row.length:
        if chunk.offset == row.length and not chunk.content_length:
            return row.status()
        raise UploadComplete(f"all {row.length} bytes of this upload have been received")
    if chunk.offset != row.offset:
        raise OffsetConflict(
            f"Upload-Offset {chunk.offset} does not match the upload's offset {row.offset}; "
            "resume from the offset HEAD reports",
            offset=row.offset,
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
    parked = await in_thread(backend.store.get, row.parked_key) if row.parked_key else b""
    phases.mark("parked")
    writer = ChunkWriter(
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
    stalled: str | None = None
    stream = body.__aiter__()
    try:
        while True:
            try:
                data = await stream.__anext__()
            except StopAsyncIteration:
                break
            except BodyStalled as exc:
                log.info(
                    "upload %s: body cut after %d bytes: %s", row.upload_id, writer.received, exc
                )
                interrupted, stalled = True, str(exc)
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
            if stalled is not None:
                raise BodyTimeout(stalled, offset=row.offset, kept=False)
            raise ChecksumMismatch(
                f"the {chunk.checksum.algorithm} checksum of the body does not match "
                "Upload-Checksum; none of its bytes were appended"
            )
        if writer.received == 0:
            await writer.abandon()
            if stalled is not None:
                raise BodyTimeout(stalled, offset=row.offset, kept=False)
            return row.status()
        phases.mark("receive")
        final = row.offset + writer.received == row.length
        written = await writer.finish(final=final)
        phases.mark("flush")
    except BaseException:
        await writer.abandon()
        raise
    row = await in_thread(_commit, backend, conn, row, writer.received, written)
    backend.digests.commit(row.upload_id, row.offset, writer.digest)
    backend.verified.set(row.upload_id, row.offset)
    if state.row.parked_key and state.row.parked_key != row.parked_key:
        await in_thread(_delete_quietly, backend.store, state.row.parked_key)
    phases.mark("commit")
    if final:
        sha256 = backend.digests.hexdigest(row.upload_id, row.length)
        row = await finish(backend, conn, row, sha256, to_publish)
        phases.mark("complete")
    elif stalled is not None:
        raise BodyTimeout(stalled, offset=row.offset, kept=True)
    return row.status()
