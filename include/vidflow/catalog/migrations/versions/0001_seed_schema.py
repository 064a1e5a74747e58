"""Seed schema: users, videos, watch_history, plus renditions, uploads,
recommendations and the outbox. Sharded tables are hash-partitioned by their key.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from vidflow.catalog.partitions import create_hash_partitions, partition_count

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UUID = pg.UUID(as_uuid=True)
TSTZ = sa.DateTime(timezone=True)
NOW = sa.func.now()


def _partitioned(key: str) -> dict[str, Any]:
    return {"postgresql_partition_by": f"HASH ({key})"}


def upgrade() -> None:
    n = partition_count(op.get_context().config)

    op.create_table(
        "users",
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", TSTZ, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_users"),
        **_partitioned("user_id"),
    )
    op.create_table(
        "usernames",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_usernames"),
        **_partitioned("username"),
    )
    op.create_table(
        "user_emails",
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.PrimaryKeyConstraint("email", name="pk_user_emails"),
        **_partitioned("email"),
    )
    op.create_table(
        "videos",
        sa.Column("video_id", UUID, nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.String(16), server_default="uploading", nullable=False),
        sa.Column(
            "tags", pg.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False
        ),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("upload_timestamp", TSTZ, server_default=NOW, nullable=False),
        sa.Column("view_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("like_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("manifest_url", sa.Text(), nullable=True),
        sa.Column("thumbnail_urls", pg.JSONB(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", TSTZ, server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "status IN ('uploading', 'processing', 'processed', 'failed')",
            name="ck_videos_status",
        ),
        sa.PrimaryKeyConstraint("video_id", name="pk_videos"),
        **_partitioned("video_id"),
    )
    op.create_index("ix_videos_user_id", "videos", ["user_id"])
    op.create_table(
        "renditions",
        sa.Column("video_id", UUID, nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bandwidth", sa.Integer(), nullable=False),
        sa.Column("average_bandwidth", sa.Integer(), nullable=True),
        sa.Column("codecs", sa.String(128), nullable=False),
        sa.Column("frame_rate", sa.Float(), nullable=True),
        sa.Column("playlist_url", sa.Text(), nullable=False),
        sa.Column("created_at", TSTZ, server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.video_id"],
            name="fk_renditions_video_id_videos",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("video_id", "name", name="pk_renditions"),
        **_partitioned("video_id"),
    )
    op.create_table(
        "uploads",
        sa.Column("upload_id", UUID, nullable=False),
        sa.Column("video_id", UUID, nullable=False),
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("state", sa.String(16), server_default="active", nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("s3_key", sa.Text(), nullable=False),
        sa.Column("s3_multipart_id", sa.Text(), nullable=True),
        sa.Column(
            "upload_metadata", pg.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("expires_at", TSTZ, nullable=False),
        sa.Column("created_at", TSTZ, server_default=NOW, nullable=False),
        sa.Column("completed_at", TSTZ, nullable=True),
        sa.CheckConstraint(
            "state IN ('active', 'completed', 'expired', 'terminated')", name="ck_uploads_state"
        ),
        sa.PrimaryKeyConstraint("upload_id", name="pk_uploads"),
        sa.UniqueConstraint("video_id", name="uq_uploads_video_id"),
    )
    op.create_index("ix_uploads_user_id", "uploads", ["user_id"])
    op.create_table(
        "watch_history",
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("video_id", UUID, nullable=False),
        sa.Column("watched_at", TSTZ, nullable=False),
        sa.Column("watch_duration_seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name="fk_watch_history_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "video_id", name="pk_watch_history"),
        **_partitioned("user_id"),
    )
    op.create_table(
        "recommendations",
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("video_id", UUID, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("generated_at", TSTZ, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "rank", name="pk_recommendations"),
        **_partitioned("user_id"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("payload", pg.JSONB(), nullable=False),
        sa.Column("created_at", TSTZ, server_default=NOW, nullable=False),
        sa.Column("sent_at", TSTZ, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at"])

    for table in (
        "users",
        "usernames",
        "user_emails",
        "videos",
        "renditions",
        "watch_history",
        "recommendations",
    ):
        create_hash_partitions(table, n)


def downgrade() -> None:
    # Dropping a partitioned table drops its partitions too.
    for table in (
        "outbox",
        "recommendations",
        "watch_history",
        "uploads",
        "renditions",
        "videos",
        "user_emails",
        "usernames",
        "users",
    ):
        op.drop_table(table)
