"""SQLAlchemy 2 models of the catalog database.

The schema is sharded: ``users``, ``watch_history`` and ``recommendations`` are
hash-partitioned by ``user_id``; ``videos`` and ``renditions`` by ``video_id``. Locally these
are PostgreSQL declarative partitions; on Citus the same keys become distribution columns
(see docs/operations.md, "Catalog and sharding").

Two rules follow from sharding, and the schema keeps to both:

* A unique constraint on a partitioned table must contain the partition key, so the
  global uniqueness of ``username`` and ``email`` lives in the lookup tables
  ``usernames`` and ``user_emails``, each keyed (and shardable) by the value itself. The
  account service writes a user and both lookups in one transaction.
* Foreign keys only join rows that live on the same shard (same distribution key):
  ``watch_history.user_id -> users`` and ``renditions.video_id -> videos``. The
  cross-shard link ``videos.user_id -> users`` is enforced by the services.

The Alembic migrations in ``migrations/versions`` create exactly this schema; a test
compares the two.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

VIDEO_STATUSES: Final = ("uploading", "processing", "processed", "failed")
UPLOAD_STATES: Final = ("active", "completed", "expired", "terminated")

#: Partitioned table -> its partition (shard) key.
PARTITIONED_TABLES: Final[dict[str, str]] = {
    "users": "user_id",
    "usernames": "username",
    "user_emails": "email",
    "videos": "video_id",
    "renditions": "video_id",
    "watch_history": "user_id",
    "recommendations": "user_id",
    "related_videos": "video_id",
    "session_activity": "user_id",
}

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _hash_partitioned(key: str) -> dict[str, Any]:
    return {"postgresql_partition_by": f"HASH ({key})"}


def _created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class User(Base):
    __tablename__ = "users"
    __table_args__ = _hash_partitioned("user_id")

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created_at()


class Username(Base):
    """Global uniqueness of ``users.username`` (see the module docstring)."""

    __tablename__ = "usernames"
    __table_args__ = _hash_partitioned("username")

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class UserEmail(Base):
    """Global uniqueness of ``users.email`` (see the module docstring)."""

    __tablename__ = "user_emails"
    __table_args__ = _hash_partitioned("email")

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class Video(Base):
    __tablename__ = "videos"
    __table_args__ = (
        CheckConstraint(
            "status IN ('uploading', 'processing', 'processed', 'failed')", name="status"
        ),
        # The reconciliation scan: videos stuck in `processing` since before a cut-off.
        Index("ix_videos_status_updated_at", "status", "updated_at"),
        _hash_partitioned("video_id"),
    )

    video_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="uploading")
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")
    )
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    upload_timestamp: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    view_count: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    like_count: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    manifest_url: Mapped[str | None] = mapped_column(Text)
    thumbnail_urls: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    #: The DASH MPD of the published version (manifest_url is the HLS master).
    dash_url: Mapped[str | None] = mapped_column(Text)
    #: The published version: readers see media/videos/{video_id}/{media_version}/.
    media_version: Mapped[str | None] = mapped_column(String(64))
    #: The Airflow run that owns the current processing attempt (last claim wins).
    processing_run_id: Mapped[str | None] = mapped_column(String(250))
    #: Re-enqueues by the reconciliation DAG since the video last left `processing`.
    processing_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class Rendition(Base):
    """One rung of a processed video's bitrate ladder."""

    __tablename__ = "renditions"
    __table_args__ = _hash_partitioned("video_id")

    video_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("videos.video_id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    bandwidth: Mapped[int] = mapped_column(Integer, nullable=False)
    average_bandwidth: Mapped[int | None] = mapped_column(Integer)
    codecs: Mapped[str] = mapped_column(String(128), nullable=False)
    frame_rate: Mapped[float | None] = mapped_column(Float)
    playlist_url: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created_at()


class Upload(Base):
    """State of one resumable (tus) upload; its id is the tus resource id."""

    __tablename__ = "uploads"
    __table_args__ = (
        CheckConstraint("state IN ('active', 'completed', 'expired', 'terminated')", name="state"),
        # The expiry sweep: active uploads ordered by their deadline.
        Index("ix_uploads_state_expires_at", "state", "expires_at"),
    )

    upload_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    video_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False, server_default="active")
    length: Mapped[int] = mapped_column(BigInteger, nullable=False)
    offset: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    s3_key: Mapped[str] = mapped_column(Text, nullable=False)
    s3_multipart_id: Mapped[str | None] = mapped_column(Text)
    upload_metadata: Mapped[dict[str, str]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    sha256: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = _created_at()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The tail piece (< 5 MiB, not the end of the file) parked in S3 between two PATCHes:
    # the bytes [offset - parked_size, offset). Committed together with `offset`.
    parked_key: Mapped[str | None] = mapped_column(Text)
    parked_size: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")


class UploadPart(Base):
    """One committed part of an upload's S3 multipart upload.

    A part counts only once its row commits (with the new ``uploads.offset``): parts that
    S3 holds beyond the committed ones are leftovers of a failed PATCH and are ignored. The
    ETag fences completion: S3 refuses a part that changed after it was committed.
    """

    __tablename__ = "upload_parts"

    upload_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("uploads.upload_id", ondelete="CASCADE"),
        primary_key=True,
    )
    part_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    etag: Mapped[str] = mapped_column(Text, nullable=False)


class WatchHistory(Base):
    __tablename__ = "watch_history"
    __table_args__ = _hash_partitioned("user_id")

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )
    video_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    watched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    watch_duration_seconds: Mapped[float] = mapped_column(Float, nullable=False)


class Recommendation(Base):
    """Precomputed top-N list of one user, stamped with the model version."""

    __tablename__ = "recommendations"
    __table_args__ = _hash_partitioned("user_id")

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    generated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class RelatedVideo(Base):
    """Precomputed "more like this" list of one video, stamped with the model version."""

    __tablename__ = "related_videos"
    __table_args__ = _hash_partitioned("video_id")

    video_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    related_video_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    generated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class TrendingVideo(Base):
    """Regional trending list (region ``global`` spans every region)."""

    __tablename__ = "trending_videos"

    region: Mapped[str] = mapped_column(String(16), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    video_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    model_version: Mapped[str] = mapped_column(String(64), nullable=False)
    generated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SessionActivity(Base):
    """What a viewer touched in the last minutes: one row per (viewer, video), upserted on
    every accepted event and shared by every viewer-API process."""

    __tablename__ = "session_activity"
    __table_args__ = _hash_partitioned("user_id")

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    video_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    first_event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_event_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, index=True
    )
    events: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    watched_seconds: Mapped[float] = mapped_column(Float, nullable=False, server_default="0")


class AuthAttempt(Base):
    """Failed sign-in counter of one key (``account:<name>`` or ``client:<address>``)."""

    __tablename__ = "auth_attempts"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxMessage(Base):
    """A message to publish reliably: written in the same transaction as the change it
    announces, published and marked sent by a relay (transactional outbox)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = _created_at()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    #: Until when a relay holds this row (migration 0005); it publishes with no row lock.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
