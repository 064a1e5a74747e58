"""Hash partitions of the sharded catalog tables.

Partitions are named ``{table}_p{remainder}`` and created with
``FOR VALUES WITH (MODULUS n, REMAINDER r)``. The count comes from
``VIDFLOW_CATALOG_PARTITIONS`` when the first migration runs; changing it later means a
re-partitioning migration (or, at scale, letting Citus rebalance shards).
"""

from __future__ import annotations

from alembic import op
from alembic.config import Config
from sqlalchemy import Connection, text

from vidflow.config import Settings, get_settings


def partition_count(config: Config | None) -> int:
    settings = config.attributes.get("settings") if config is not None else None
    if not isinstance(settings, Settings):
        settings = get_settings()
    return settings.catalog_partitions


def partition_name(table: str, remainder: int) -> str:
    return f"{table}_p{remainder}"


def create_hash_partitions(table: str, count: int) -> None:
    """Create ``count`` hash partitions of ``table`` inside the running migration."""
    for remainder in range(count):
        op.execute(
            f"CREATE TABLE {partition_name(table, remainder)} PARTITION OF {table} "
            f"FOR VALUES WITH (MODULUS {count}, REMAINDER {remainder})"
        )


def list_partitions(conn: Connection, table: str) -> list[str]:
    """Names of the partitions attached to ``table``, sorted."""
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = :table ORDER BY c.relname"
        ),
        {"table": table},
    )
    return [row[0] for row in rows]
