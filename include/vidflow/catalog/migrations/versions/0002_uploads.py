"""Uploads: committed multipart parts, the parked tail piece, and the expiry index.

``upload_parts`` records each S3 part once the PATCH that wrote it commits; together with
S3's ListParts and the parked piece it rebuilds an upload's offset after a restart or on
another replica (see ``vidflow.uploads.service``).

Revision ID: 0002_uploads
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0002_uploads"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("uploads", sa.Column("parked_key", sa.Text(), nullable=True))
    op.add_column(
        "uploads",
        sa.Column("parked_size", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_index("ix_uploads_state_expires_at", "uploads", ["state", "expires_at"])
    op.create_table(
        "upload_parts",
        sa.Column("upload_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("part_number", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["uploads.upload_id"],
            name="fk_upload_parts_upload_id_uploads",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_id", "part_number", name="pk_upload_parts"),
    )


def downgrade() -> None:
    op.drop_table("upload_parts")
    op.drop_index("ix_uploads_state_expires_at", table_name="uploads")
    op.drop_column("uploads", "parked_size")
    op.drop_column("uploads", "parked_key")
