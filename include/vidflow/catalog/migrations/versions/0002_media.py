"""Media: the DASH manifest, the published media version and the processing claim.

``videos.media_version`` names the prefix ``media/videos/{video_id}/{version}/`` readers
see; the video_processing DAG stages a new version and flips this column (with
``manifest_url``, ``dash_url`` and the renditions) in one transaction.
``processing_run_id`` is the Airflow run that owns the current processing attempt, and
``processing_attempts`` counts re-enqueues by the reconciliation DAG. The index serves
that DAG's scan for videos stuck in ``processing``.

Revision ID: 0002_media
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_media"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("videos", sa.Column("dash_url", sa.Text(), nullable=True))
    op.add_column("videos", sa.Column("media_version", sa.String(64), nullable=True))
    op.add_column("videos", sa.Column("processing_run_id", sa.String(250), nullable=True))
    op.add_column(
        "videos",
        sa.Column("processing_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_index("ix_videos_status_updated_at", "videos", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_videos_status_updated_at", table_name="videos")
    op.drop_column("videos", "processing_attempts")
    op.drop_column("videos", "processing_run_id")
    op.drop_column("videos", "media_version")
    op.drop_column("videos", "dash_url")
