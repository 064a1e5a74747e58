"""Completion: the last byte completes the multipart upload and hands the video to
processing (the outbox message); HEAD finishes a completion a crash interrupted."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from anyio import CancelScope
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection, update
from sqlalchemy.exc import OperationalError

from vidflow.catalog.models import Upload, Video
from vidflow.outbox import enqueue, relay_once
from vidflow.processing.contracts import ProcessingMessage
from vidflow.uploads import locks
from vidflow.uploads.errors import (
    REASON_LOST,
)
from vidflow.uploads.state import (
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
    PartRejected,
    staging_prefix,
)

log = logging.getLogger(__name__)

# --- completion ---------------------------------------------------------------------------


def complete_upload(
    backend: UploadBackend, conn: Connection, row: UploadRow, sha256: str | None
) -> tuple[UploadRow, int | None]:
    """Complete the multipart upload and hand the video to processing. Idempotent: safe
    to rerun after a crash at any point. Returns the row and the outbox message id."""
    with conn.begin():
        current = read_row(conn, row.upload_id)
        parts = committed_parts(conn, row.upload_id)
    if current is None or current.state != "active" or current.offset != current.length:
        return (current or row), None
    row = current
    assert row.s3_multipart_id is not None
    try:
        backend.store.complete(row.s3_key, row.s3_multipart_id, parts)
    except MultipartGone:
        # Completed by an earlier attempt that crashed before its commit, or lost.
        if backend.store.size(row.s3_key) != row.length:
            discard(backend, conn, row, state="terminated", reason=REASON_LOST)
            return replace(row, state="terminated"), None
    except PartRejected as exc:
        discard(
            backend,
            conn,
            row,
            state="terminated",
            reason=f"upload failed: object storage rejected its parts ({exc}); upload again",
        )
        return replace(row, state="terminated"), None
    now = utcnow()
    message = ProcessingMessage.for_video(row.video_id, size=row.length, sha256=sha256)
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
        outbox_id = enqueue(
            conn, topic=backend.settings.processing_queue, payload=message.to_payload()
        )
    try:
        backend.store.delete_prefix(staging_prefix(row.upload_id))
    except (BotoCoreError, ClientError) as exc:
        log.warning("upload %s: staging clean-up failed: %s", row.upload_id, exc)
    backend.digests.forget(row.upload_id)
    backend.verified.forget(row.upload_id)
    log.info("upload %s complete: video %s is processing", row.upload_id, row.video_id)
    return replace(row, state="completed"), outbox_id


def publish_now(backend: UploadBackend, outbox_id: int) -> None:
    """Relay the new message at once; if that fails, the relay's next sweep sends it."""
    try:
        relay_once(settings=backend.settings, ids=[outbox_id])
    except Exception as exc:
        log.warning("outbox row %s left for the relay: %s", outbox_id, exc)


async def finish(
    backend: UploadBackend,
    conn: Connection,
    row: UploadRow,
    sha256: str | None,
    to_publish: list[int],
) -> UploadRow:
    """Complete the upload on the lock's connection; its outbox message id goes to
    ``to_publish``, for the caller to publish once it has released the lock, so that an
    upload holds one catalog connection at a time."""
    row, outbox_id = await in_thread(complete_upload, backend, conn, row, sha256)
    if outbox_id is not None:
        to_publish.append(outbox_id)
    return row


async def publish_all(backend: UploadBackend, outbox_ids: list[int]) -> None:
    for outbox_id in outbox_ids:
        await in_thread(publish_now, backend, outbox_id)


# --- reading -------------------------------------------------------------------------------


def _read_visible(backend: UploadBackend, user_id: uuid.UUID, upload_id: uuid.UUID) -> UploadRow:
    with backend.catalog.connect() as conn:
        return visible_row(read_row(conn, upload_id), user_id, utcnow())


async def get_upload_status(
    *, backend: UploadBackend, user_id: uuid.UUID, upload_id: uuid.UUID
) -> UploadStatus:
    """The upload's offset and length for HEAD. An upload whose last byte is committed
    but not yet completed (a crash in between) is completed here, if no one writes it."""
    row = await in_thread(_read_visible, backend, user_id, upload_id)
    if row.state == "active" and row.offset == row.length:
        try:
            conn = await in_thread(locks.acquire, backend.lock_engine, upload_id)
        except (locks.UploadLocked, locks.ServerBusy):
            return row.status()
        to_publish: list[int] = []
        try:
            sha256 = backend.digests.hexdigest(upload_id, row.length)
            row = await finish(backend, conn, row, sha256, to_publish)
        except (BotoCoreError, ClientError, OperationalError) as exc:
            log.warning("upload %s: completion retry failed: %s", upload_id, exc)
        finally:
            with CancelScope(shield=True):
                await in_thread(locks.release, conn, upload_id)
        await publish_all(backend, to_publish)
    return row.status()
