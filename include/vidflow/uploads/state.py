"""An upload's state as the service sees it: the per-process backend, the catalog row,
the shapes the routes answer with, and the discarding of an unfinished upload."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from anyio import to_thread
from sqlalchemy import Connection, Engine, delete, select, update

from vidflow.catalog.db import get_engine
from vidflow.catalog.models import Upload, UploadPart, Video
from vidflow.config import Settings
from vidflow.problems import Problem
from vidflow.uploads import locks
from vidflow.uploads.errors import UploadError, UploadGone, UploadNotFound
from vidflow.uploads.protocol import (
    Hasher,
)
from vidflow.uploads.store import (
    MultipartStore,
    StoredPart,
    staging_prefix,
    upload_s3_client,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

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
    chunk_error: Problem | UploadError | None = None


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
class UploadRow:
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
    def from_mapping(cls, m: Any) -> UploadRow:
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


_ROW_COLUMNS = [getattr(Upload, name) for name in UploadRow.__dataclass_fields__]


def utcnow() -> datetime:
    return datetime.now(UTC)


def read_row(conn: Connection, upload_id: uuid.UUID) -> UploadRow | None:
    found = conn.execute(select(*_ROW_COLUMNS).where(Upload.upload_id == upload_id)).mappings()
    first = found.one_or_none()
    return UploadRow.from_mapping(first) if first is not None else None


def committed_parts(conn: Connection, upload_id: uuid.UUID) -> list[StoredPart]:
    rows = conn.execute(
        select(UploadPart.part_number, UploadPart.size, UploadPart.etag)
        .where(UploadPart.upload_id == upload_id)
        .order_by(UploadPart.part_number)
    )
    return [StoredPart(number, size, etag) for number, size, etag in rows]


def visible_row(row: UploadRow | None, user_id: uuid.UUID, now: datetime) -> UploadRow:
    """The row if ``user_id`` may see it: 404 for someone else's (its existence is not
    revealed) or a terminated one, 410 once expired."""
    if row is None or row.user_id != user_id or row.state == "terminated":
        raise UploadNotFound()
    if row.state == "expired" or (
        row.state == "active" and row.offset < row.length and row.expires_at <= now
    ):
        raise UploadGone()
    return row


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    return await to_thread.run_sync(func, *args)


def discard(
    backend: UploadBackend, conn: Connection, row: UploadRow, *, state: str, reason: str
) -> None:
    """Remove every byte of an unfinished upload from S3 (multipart parts, parked pieces,
    any object at its key), then record why in the catalog."""
    if row.s3_multipart_id:
        backend.store.abort(row.s3_key, row.s3_multipart_id)
    backend.store.delete_prefix(staging_prefix(row.upload_id))
    backend.store.delete(row.s3_key)
    now = utcnow()
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
