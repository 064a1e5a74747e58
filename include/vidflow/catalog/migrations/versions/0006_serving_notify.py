"""serving notifications: triggers announce on channel ``vidflow_serving`` every write that
changes a recommendations answer, so the viewer API's per-process answer caches are
invalidated at once (see vidflow.viewer.invalidation). PostgreSQL sends one notification
per distinct payload per transaction.

* One viewer's rows (``session_activity``, ``recommendations``, ``watch_history``): a row
  trigger (cloned to every partition, so writes to a partition count too) notifies
  ``v:<user_id>``: only that viewer's answers go stale.
* Lists many viewers share (``related_videos``, ``trending_videos``): statement triggers
  notify ``*:<table>`` (every answer goes stale). They sit on each table *and* on each of
  its partitions, as the publishers write to partitions directly and a statement trigger
  fires only for the table a statement names; a re-partitioning migration must add them
  to new partitions.
* ``videos``: a row trigger notifies ``*:videos`` only when a *processed* video's card
  really changes (it becomes, stops being or is edited as a playable card); uploads and
  processing steps of other videos, rewrites of the same values and the view/like counts
  leave answers alone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TRIGGER = "vidflow_serving_notify"
VIEWER_TABLES = {
    "session_activity": "INSERT OR UPDATE",  # pruned rows had left the window already
    "recommendations": "INSERT OR UPDATE OR DELETE",
    "watch_history": "INSERT OR UPDATE OR DELETE",
}
SHARED_TABLES = {
    "related_videos": "INSERT OR UPDATE OR DELETE",
    "trending_videos": "INSERT OR UPDATE OR DELETE OR TRUNCATE",
}
#: trigger name suffix -> (events, condition) of the videos row triggers
CARD_COLUMNS = "status, title, duration_seconds, thumbnail_urls"


def _old_new(row: str) -> str:
    return ", ".join(f"{row}.{column.strip()}" for column in CARD_COLUMNS.split(","))


VIDEO_TRIGGERS = {
    "insert": ("INSERT", "NEW.status = 'processed'"),
    # Only a real change: writers often set a column to the value it has.
    "update": (
        f"UPDATE OF {CARD_COLUMNS}",
        "(OLD.status = 'processed' OR NEW.status = 'processed') AND "
        f"({_old_new('OLD')}) IS DISTINCT FROM ({_old_new('NEW')})",
    ),
    "delete": ("DELETE", "OLD.status = 'processed'"),
}


def _relations(table: str) -> list[str]:
    """The table and its partitions."""
    rows = op.get_bind().execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :table ORDER BY 1"
        ),
        {"table": table},
    )
    return [table, *(row[0] for row in rows)]


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION vidflow_serving_notify_viewer() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                PERFORM pg_notify('vidflow_serving', 'v:' || OLD.user_id::text);
            ELSE
                PERFORM pg_notify('vidflow_serving', 'v:' || NEW.user_id::text);
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION vidflow_serving_notify_all() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('vidflow_serving', '*:' || TG_TABLE_NAME);
            RETURN NULL;
        END $$
        """
    )
    for table, events in VIEWER_TABLES.items():
        op.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER {events} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION vidflow_serving_notify_viewer()"
        )
    for table, events in SHARED_TABLES.items():
        for relation in _relations(table):
            op.execute(
                f"CREATE TRIGGER {TRIGGER} AFTER {events} ON {relation} "
                "FOR EACH STATEMENT EXECUTE FUNCTION vidflow_serving_notify_all()"
            )
    for suffix, (events, condition) in VIDEO_TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {TRIGGER}_{suffix} AFTER {events} ON videos "
            f"FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION vidflow_serving_notify_all()"
        )


def downgrade() -> None:
    for table in VIEWER_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {table}")
    for table in SHARED_TABLES:
        for relation in _relations(table):
            op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {relation}")
    for suffix in VIDEO_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER}_{suffix} ON videos")
    # The first version of this revision had statement triggers on these, too.
    for table in ("recommendations", "watch_history", "videos"):
        for relation in _relations(table):
            op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {relation}")
    op.execute("DROP FUNCTION IF EXISTS vidflow_serving_notify_all()")
    op.execute("DROP FUNCTION IF EXISTS vidflow_serving_notify_viewer()")
