"""Silver's file layout: ``clustered`` orders each (event_date, region) by session, video
and time, and the silver job's MERGE writes every file it inserts as one sorted run (what
the daily gold job's sort relies on to be cheap). Real Spark and Delta on a local table."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pyspark.sql import functions as F

from jobs.watch_events_silver import merge_silver
from vidflow.analytics.silver import (
    CLUSTER_COLUMNS,
    PARTITION_COLUMNS,
    SILVER_SCHEMA,
    clustered,
)
from vidflow.spark import ensure_delta_table

REGIONS = ("eu-west", "us-east")
DAYS = (date(2026, 3, 9), date(2026, 3, 10))


def silver_rows(seed: int, sessions: int = 24, per_session: int = 8) -> list[tuple[Any, ...]]:
    """Silver rows of a few sessions on two videos, two days and two regions, shuffled:
    the order a batch arrives in."""
    rng = random.Random(seed)
    videos = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(2)]
    rows = []
    for _ in range(sessions):
        session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        video, region, day = rng.choice(videos), rng.choice(REGIONS), rng.choice(DAYS)
        start = datetime(day.year, day.month, day.day, 20, tzinfo=UTC)
        for n in range(per_session):
            ts = start + timedelta(seconds=30 * n + rng.randrange(3))
            rows.append(
                (
                    str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "heartbeat",
                    video,
                    session,
                    None,
                    ts,
                    ts + timedelta(seconds=1),
                    30.0 * n,
                    "phone",
                    ts.replace(minute=0, second=0, microsecond=0),
                    day,
                    region,
                )
            )
    rng.shuffle(rows)
    return rows


def cluster_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in CLUSTER_COLUMNS)


def test_clustered_keeps_every_row_and_puts_each_partition_in_session_order(spark: Any) -> None:
    rows = silver_rows(seed=1)
    events = spark.createDataFrame(rows, SILVER_SCHEMA).repartition(3)
    laid_out = clustered(events).withColumn("spark_partition", F.spark_partition_id())
    got = [r.asDict() for r in laid_out.collect()]  # partition by partition, in order

    assert sorted(r["event_id"] for r in got) == sorted(row[0] for row in rows)  # each once
    homes: dict[tuple[Any, ...], set[int]] = {}
    for r in got:
        homes.setdefault(tuple(r[c] for c in PARTITION_COLUMNS), set()).add(r["spark_partition"])
    assert len(homes) == len(REGIONS) * len(DAYS)
    assert all(len(parts) == 1 for parts in homes.values()), homes  # one Spark partition each
    for part in {r["spark_partition"] for r in got}:
        keys = [cluster_key(r) for r in got if r["spark_partition"] == part]
        assert keys == sorted(keys)


def test_merge_silver_writes_each_inserted_file_as_one_sorted_run(
    spark: Any, tmp_path: Path
) -> None:
    path = str(tmp_path / "watch_events")
    first, second = silver_rows(seed=2), silver_rows(seed=3)  # the second: new events
    for rows in (first, second):
        table = ensure_delta_table(spark, path, SILVER_SCHEMA, PARTITION_COLUMNS)
        batch = spark.createDataFrame(rows, SILVER_SCHEMA).repartition(4)
        merge_silver(table, batch, sorted({r[10] for r in rows}))

    stored = spark.read.format("delta").load(path)
    assert stored.count() == len(first) + len(second)
    files = stored.inputFiles()
    assert len(files) >= len(REGIONS) * len(DAYS)
    for file in files:
        data = pq.read_table(file.removeprefix("file:"), columns=list(CLUSTER_COLUMNS))
        keys = [cluster_key(r) for r in data.to_pylist()]
        assert keys == sorted(keys), f"{file} is not in session order"
