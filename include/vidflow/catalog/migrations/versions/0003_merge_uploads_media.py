"""Merge the upload-service and media branches of the schema into one history.

Revision ID: 0003
Revises: 0002_uploads, 0002_media
Create Date: 2026-11-24
"""

from __future__ import annotations

revision = "0003"
down_revision = ("0002_uploads", "0002_media")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
