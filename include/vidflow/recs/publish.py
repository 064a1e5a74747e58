"""Publishing precomputed lists to the catalog: staged, then swapped in one step.

* ``swap_partitioned`` (``recommendations`` by ``user_id``, ``related_videos`` by
  ``video_id``): the rows go to a temporary staging table first, then ONE transaction per
  hash partition deletes the rows of the keys being re-published that live in it and
  inserts their new rows, so a reader sees a key's old list or its new list, never a mix
  or nothing. Keys not in the batch keep their rows.
* ``swap_trending`` (``trending_videos``, small and unpartitioned): one transaction
  replaces the lists of the regions in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidflow.config import Settings

# table -> (sharding key, columns in table order, the uuid columns)
TABLES: dict[str, tuple[str, tuple[str, ...], frozenset[str]]] = {
    "recommendations": (
        "user_id",
        ("user_id", "rank", "video_id", "score", "source", "model_version", "generated_at"),
        frozenset({"user_id", "video_id"}),
    ),
    "related_videos": (
        "video_id",
        (
            "video_id",
            "rank",
            "related_video_id",
            "score",
            "source",
            "model_version",
            "generated_at",
        ),
        frozenset({"video_id", "related_video_id"}),
    ),
}


def swap_partitioned(settings: Settings, table: str, records: Sequence[dict[str, Any]]) -> int:
    """Per-partition atomic swap of the keys in ``records``; returns the partitions."""
    from sqlalchemy import text

    from vidflow.catalog.db import get_engine
    from vidflow.catalog.partitions import list_partitions

    key, columns, uuids = TABLES[table]
    staging = f"{table}_staging"
    values = ", ".join(f"CAST(:{c} AS uuid)" if c in uuids else f":{c}" for c in columns)
    engine = get_engine(settings)
    with engine.connect() as conn:
        parts = list_partitions(conn, table)
        if not parts:
            raise RuntimeError(f"{table} has no partitions: run the catalog migrations")
        conn.execute(
            text(f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS)")
        )
        conn.execute(text(f"TRUNCATE {staging}"))
        if records:
            conn.execute(
                text(
                    f"INSERT INTO {staging} ({', '.join(columns)}) "  # noqa: S608 - fixed names
                    f"VALUES ({values})"
                ),
                list(records),
            )
        conn.commit()
        for part in parts:  # one transaction per partition
            conn.execute(
                text(
                    f"DELETE FROM {part} WHERE {key} IN "  # noqa: S608 - names from pg_class
                    f"(SELECT DISTINCT {key} FROM {staging})"
                )
            )
            remainder = int(part.rsplit("_p", 1)[1])
            conn.execute(
                text(
                    f"INSERT INTO {part} SELECT * FROM {staging} "  # noqa: S608
                    f"WHERE satisfies_hash_partition('{table}'::regclass, "
                    f":modulus, :remainder, {key})"
                ),
                {"modulus": len(parts), "remainder": remainder},
            )
            conn.commit()
        conn.execute(text(f"DROP TABLE {staging}"))
        conn.commit()
    return len(parts)


def swap_trending(settings: Settings, records: Sequence[dict[str, Any]]) -> None:
    """Replace the trending lists of the regions in ``records`` in one transaction."""
    from sqlalchemy import text

    from vidflow.catalog.db import session_scope

    regions = sorted({str(r["region"]) for r in records})
    if not regions:
        return
    with session_scope(settings) as session:
        session.execute(
            text("DELETE FROM trending_videos WHERE region = ANY(:regions)"),
            {"regions": regions},
        )
        session.execute(
            text(
                "INSERT INTO trending_videos (region, rank, video_id, score, model_version, "
                "generated_at) VALUES (:region, :rank, CAST(:video_id AS uuid), :score, "
                ":model_version, :generated_at)"
            ),
            list(records),
        )
