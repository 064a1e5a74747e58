"""serving notifications: triggers announce on channel ``vidflow_serving`` every write that
changes a recommendations answer, so the viewer API's per-process answer caches are
invalidated at once (see vidflow.viewer.invalidation).

* ``session_activity``: a row trigger (cloned to every partition) notifies
  ``v:<user_id>``; PostgreSQL sends one notification per distinct payload per transaction.
* ``recommendations``, ``related_videos``, ``watch_history``, ``trending_videos``,
  ``videos`` (inserts, deletes, and updates of what a card shows): statement triggers
  notify ``*``. They sit on each table *and* on each of its partitions, as the publishers
  write to partitions directly and a statement trigger fires only for the table a
  statement names. A re-partitioning migration must add them to new partitions.

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
#: table -> the statement events that change an answer
EVERYTHING_TABLES = {
    "recommendations": "INSERT OR UPDATE OR DELETE",
    "related_videos": "INSERT OR UPDATE OR DELETE",
    "watch_history": "INSERT OR UPDATE OR DELETE",
    "trending_videos": "INSERT OR UPDATE OR DELETE OR TRUNCATE",
    # view and like counts (the analytics sync) are not on a card
    "videos": "INSERT OR DELETE OR UPDATE OF status, title, duration_seconds, thumbnail_urls",
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
            PERFORM pg_notify('vidflow_serving', 'v:' || NEW.user_id::text);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION vidflow_serving_notify_all() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('vidflow_serving', '*');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        f"CREATE TRIGGER {TRIGGER} AFTER INSERT OR UPDATE ON session_activity "
        "FOR EACH ROW EXECUTE FUNCTION vidflow_serving_notify_viewer()"
    )
    for table, events in EVERYTHING_TABLES.items():
        for relation in _relations(table):
            op.execute(
                f"CREATE TRIGGER {TRIGGER} AFTER {events} ON {relation} "
                "FOR EACH STATEMENT EXECUTE FUNCTION vidflow_serving_notify_all()"
            )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON session_activity")
    for table in EVERYTHING_TABLES:
        for relation in _relations(table):
            op.execute(f"DROP TRIGGER IF EXISTS {TRIGGER} ON {relation}")
    op.execute("DROP FUNCTION IF EXISTS vidflow_serving_notify_all()")
    op.execute("DROP FUNCTION IF EXISTS vidflow_serving_notify_viewer()")
