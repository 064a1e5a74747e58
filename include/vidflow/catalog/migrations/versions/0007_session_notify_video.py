"""session notifications name the video: a ``session_activity`` write notifies
``v:<user_id>:<video_id>`` instead of ``v:<user_id>``, so a viewer-API process can keep
the answers that the write cannot change (made while that video already led the viewer's
session: a player's heartbeats on the video being watched, most events). See
vidflow.viewer.answers.AnswerCache.invalidate_viewer.

The row trigger on the partitioned table is cloned to every partition; replacing it on
the table replaces the clones.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TRIGGER = "vidflow_serving_notify"


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION vidflow_serving_notify_session() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify(
                'vidflow_serving', 'v:' || NEW.user_id::text || ':' || NEW.video_id::text
            );
            RETURN NULL;
        END $$
        """
    )
    op.execute(f"DROP TRIGGER {TRIGGER} ON session_activity")
    op.execute(
        f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE ON session_activity "
        "FOR EACH ROW EXECUTE FUNCTION vidflow_serving_notify_session()"
    )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER {TRIGGER} ON session_activity")
    op.execute(
        f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE ON session_activity "
        "FOR EACH ROW EXECUTE FUNCTION vidflow_serving_notify_viewer()"
    )
    op.execute("DROP FUNCTION vidflow_serving_notify_session()")
