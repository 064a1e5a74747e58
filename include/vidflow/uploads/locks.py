"""One writer per upload, across every replica: a PostgreSQL session advisory lock.

A PATCH, a termination or the expiry sweep holds the lock of the upload it changes, on a
connection of its own for as long as it streams; the commit that advances the offset
runs on that same connection, so a writer that lost its connection (and with it the lock)
cannot commit. If the process dies, PostgreSQL drops the session and the lock with it.
Session advisory locks need a direct (or session-pooled) connection, not a
transaction-pooling proxy.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from vidflow.config import Settings
from vidflow.uploads.errors import ServerBusy, UploadLocked

log = logging.getLogger(__name__)

__all__ = [
    "ServerBusy",
    "UploadLocked",
    "acquire",
    "lock_engine",
    "lock_key",
    "release",
    "upload_lock",
]


def lock_key(upload_id: uuid.UUID) -> int:
    """The 64-bit advisory lock key of an upload (namespaced, so other users of advisory
    locks on the same database do not collide with ours)."""
    digest = hashlib.blake2b(b"vidflow.upload:" + upload_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_engine(settings: Settings, pool_size: int | None = None) -> Engine:
    """An engine whose pool holds one connection per concurrently written upload."""
    size = pool_size or settings.upload_max_parallel_writes
    return create_engine(
        settings.catalog_url,
        pool_size=size,
        max_overflow=0,
        pool_timeout=2,
        pool_pre_ping=True,
    )


def acquire(engine: Engine, upload_id: uuid.UUID) -> Connection:
    """A connection holding the upload's lock; UploadLocked if another writer has it,
    ServerBusy if every lock connection is in use."""
    try:
        conn = engine.connect()
    except PoolTimeout:
        raise ServerBusy() from None
    try:
        locked = conn.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(upload_id)}
        ).scalar_one()
        conn.commit()
    except BaseException:
        conn.invalidate()
        conn.close()
        raise
    if not locked:
        conn.close()
        raise UploadLocked()
    return conn


def release(conn: Connection, upload_id: uuid.UUID) -> None:
    """Unlock and return the connection to the pool; if that fails, drop the connection,
    which ends the session and so releases the lock too."""
    try:
        conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(upload_id)})
        conn.commit()
    except SQLAlchemyError:
        log.warning("could not unlock upload %s; dropping its connection", upload_id)
        conn.invalidate()
    finally:
        conn.close()


@contextmanager
def upload_lock(engine: Engine, upload_id: uuid.UUID) -> Iterator[Connection]:
    """``with upload_lock(engine, id) as conn:`` for synchronous callers."""
    conn = acquire(engine, upload_id)
    try:
        yield conn
    finally:
        release(conn, upload_id)
