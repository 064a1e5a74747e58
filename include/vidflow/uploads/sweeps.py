"""Termination by the creator, and the sweeps the upload_maintenance DAG runs: expiry of
unfinished uploads and completion of uploads whose last byte committed but whose
completion did not run."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from anyio import CancelScope
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection, select
from sqlalchemy.exc import OperationalError

from vidflow.catalog.models import Upload
from vidflow.uploads import locks
from vidflow.uploads.completion import complete_upload, publish_now
from vidflow.uploads.errors import (
    REASON_EXPIRED,
    REASON_TERMINATED,
    StorageUnavailable,
    UploadComplete,
)
from vidflow.uploads.state import (
    UploadBackend,
    discard,
    in_thread,
    read_row,
    utcnow,
    visible_row,
)

log = logging.getLogger(__name__)


def _terminate(
    backend: UploadBackend, conn: Connection, user_id: uuid.UUID, upload_id: uuid.UUID
) -> None:
    with conn.begin():
        row = visible_row(read_row(conn, upload_id), user_id, utcnow())
    if row.state == "completed" or row.offset == row.length:
        raise UploadComplete(
            "the upload is complete and its video is being processed; it cannot be terminated"
        )
    discard(backend, conn, row, state="terminated", reason=REASON_TERMINATED)


async def terminate_upload(
    *, backend: UploadBackend, user_id: uuid.UUID, upload_id: uuid.UUID
) -> None:
    """tus termination: abort the multipart upload, remove parked pieces, and mark the
    video failed. 423 while a PATCH is writing, 409 once complete."""
    conn = await in_thread(locks.acquire, backend.lock_engine, upload_id)
    try:
        await in_thread(_terminate, backend, conn, user_id, upload_id)
    except (BotoCoreError, ClientError, OperationalError) as exc:
        log.error("upload %s: termination failed: %s", upload_id, exc)
        raise StorageUnavailable() from exc
    finally:
        with CancelScope(shield=True):
            await in_thread(locks.release, conn, upload_id)


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
    now = now or utcnow()
    expired = []
    candidates = _candidates(
        backend, Upload.expires_at <= now, Upload.offset < Upload.length, only=only, limit=limit
    )
    for upload_id in candidates:
        try:
            with locks.upload_lock(backend.lock_engine, upload_id) as conn:
                with conn.begin():
                    row = read_row(conn, upload_id)
                if (
                    row is not None
                    and row.state == "active"
                    and row.offset < row.length
                    and row.expires_at <= now
                ):
                    discard(backend, conn, row, state="expired", reason=REASON_EXPIRED)
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
    cutoff = utcnow() + timedelta(seconds=backend.settings.upload_expiry_seconds) - older_than
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
                    row = read_row(conn, upload_id)
                if row is None:
                    continue
                row, outbox_id = complete_upload(backend, conn, row, None)
                if row.state == "completed":
                    done.append(upload_id)
                if outbox_id is not None:
                    publish_now(backend, outbox_id)
        except locks.UploadLocked:
            continue
    return done
