"""Serving and hardening: related videos, regional trending, recent session activity and
sign-in attempts.

* ``related_videos``: "more like this", the precomputed top-N per video written by
  ``recs_scoring`` (sharded by ``video_id``, swapped per partition like
  ``recommendations``).
* ``trending_videos``: the regional trending list per region (region ``global`` for all
  regions), written by ``recs_scoring``; the fallback for new and anonymous viewers.
* ``session_activity``: what a viewer touched in the last minutes, upserted by the viewer
  API on every accepted event so that every API process sees the same session (sharded by
  ``user_id``; rows older than the session window are pruned).
* ``auth_attempts``: failed sign-in counters per account and per client address, shared by
  every upload-API process (the login rate limit).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from vidflow.catalog.partitions import create_hash_partitions, partition_count

revision = "0004"
down_revision = "0003"
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
        "related_videos",
        sa.Column("video_id", UUID, nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("related_video_id", UUID, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("generated_at", TSTZ, nullable=False),
        sa.PrimaryKeyConstraint("video_id", "rank", name="pk_related_videos"),
        **_partitioned("video_id"),
    )
    op.create_table(
        "trending_videos",
        sa.Column("region", sa.String(16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("video_id", UUID, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("generated_at", TSTZ, nullable=False),
        sa.PrimaryKeyConstraint("region", "rank", name="pk_trending_videos"),
    )
    op.create_table(
        "session_activity",
        sa.Column("user_id", UUID, nullable=False),
        sa.Column("video_id", UUID, nullable=False),
        sa.Column("first_event_at", TSTZ, nullable=False),
        sa.Column("last_event_at", TSTZ, nullable=False),
        sa.Column("events", sa.Integer(), server_default="1", nullable=False),
        sa.Column("watched_seconds", sa.Float(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("user_id", "video_id", name="pk_session_activity"),
        **_partitioned("user_id"),
    )
    op.create_index("ix_session_activity_last_event_at", "session_activity", ["last_event_at"])
    op.create_table(
        "auth_attempts",
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("window_start", TSTZ, nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("blocked_until", TSTZ, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_auth_attempts"),
    )
    for table in ("related_videos", "session_activity"):
        create_hash_partitions(table, n)


def downgrade() -> None:
    op.drop_table("auth_attempts")
    op.drop_index("ix_session_activity_last_event_at", table_name="session_activity")
    op.drop_table("session_activity")
    op.drop_table("trending_videos")
    op.drop_table("related_videos")
