"""outbox.claimed_until: a relay's lease on the rows it is publishing.

The relay claims a batch in a short transaction (``claimed_until = now() + lease``),
commits, publishes with no row lock held, then marks the rows sent. A relay that died
mid-batch leaves its claims to run out; another relay then sends those rows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("claimed_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("outbox", "claimed_until")
