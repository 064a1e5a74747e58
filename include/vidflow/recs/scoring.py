"""Batch scoring with the champion: top-N per active viewer into the catalog.

``score`` loads ``models:/vidflow-recommender@champion``, asks its batch API (candidate
sources are blocked matrix products with a partial sort, then the ranker) for every viewer
active in the dataset, removes every video the viewer has watched (also those after the
model's training cut, which the model itself cannot know), keeps the top N and writes:

* the catalog's ``recommendations`` table, swapped per hash partition: the rows go to a
  temporary staging table first, then ONE transaction per partition deletes the rows of
  the re-scored viewers that live in it and inserts their new rows, so a reader sees a
  viewer's old list or new list, never a mix or nothing;
* a Delta snapshot ``recs/recommendations`` partitioned by ``model_version``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from vidflow.config import Settings
from vidflow.recs import ensure_models_importable
from vidflow.recs.dataset import DatasetSummary, load_dataset
from vidflow.recs.registry import CHAMPION, MODEL_NAME

TOP_N = 50


@dataclass(frozen=True)
class ScoringSummary:
    model_version: str
    viewers: int
    rows: int
    partitions: int
    skipped_viewers: int  # ids that are not UUIDs cannot go to the catalog

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> ScoringSummary:
        return cls(**value)


def active_viewers(interactions: pd.DataFrame, active_days: float) -> pd.Index:
    """Viewers with an interaction in the last ``active_days`` days of the data."""
    last = float(interactions["timestamp"].max())
    recent = interactions[interactions["timestamp"] >= last - active_days * 86400.0]
    return pd.Index(sorted(recent["user_id"].unique()), name="user_id")


def top_unwatched(lists: pd.DataFrame, watched: pd.DataFrame, n: int, source: str) -> pd.DataFrame:
    """Drop every (viewer, video) in ``watched`` from ranked ``lists`` (user_id,
    item_id, rank), re-rank from 1 and keep the first ``n``; score = 1 / rank."""
    seen = watched[["user_id", "item_id"]].drop_duplicates().assign(_seen=True)
    out = lists.merge(seen, how="left", on=["user_id", "item_id"])
    out = out[out["_seen"].isna()].drop(columns="_seen")
    out = out.sort_values(["user_id", "rank"])
    out["rank"] = out.groupby("user_id").cumcount() + 1
    out = out[out["rank"] <= n].reset_index(drop=True)
    out["score"] = 1.0 / out["rank"]
    out["source"] = source
    return out


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def write_catalog(settings: Settings, rows: pd.DataFrame, model_version: str) -> int:
    """Per-partition atomic swap of the viewers in ``rows``; returns the partitions."""
    from sqlalchemy import text

    from vidflow.catalog.db import get_engine
    from vidflow.catalog.partitions import list_partitions

    generated = datetime.now(UTC)
    records = [
        {
            "user_id": r.user_id,
            "rank": int(r.rank),
            "video_id": r.item_id,
            "score": float(r.score),
            "source": r.source,
            "model_version": model_version,
            "generated_at": generated,
        }
        for r in rows.itertuples(index=False)
    ]
    engine = get_engine(settings)
    with engine.connect() as conn:
        parts = list_partitions(conn, "recommendations")
        conn.execute(
            text(
                "CREATE TEMP TABLE IF NOT EXISTS recs_staging "
                "(LIKE recommendations INCLUDING DEFAULTS)"
            )
        )
        conn.execute(text("TRUNCATE recs_staging"))
        if records:
            conn.execute(
                text(
                    "INSERT INTO recs_staging (user_id, rank, video_id, score, source, "
                    "model_version, generated_at) VALUES (CAST(:user_id AS uuid), :rank, "
                    "CAST(:video_id AS uuid), :score, :source, :model_version, :generated_at)"
                ),
                records,
            )
        conn.commit()
        for part in parts:  # one transaction per partition
            conn.execute(
                text(
                    f"DELETE FROM {part} WHERE user_id IN "  # noqa: S608 - names from pg_class
                    "(SELECT DISTINCT user_id FROM recs_staging)"
                )
            )
            remainder = int(part.rsplit("_p", 1)[1])
            conn.execute(
                text(
                    f"INSERT INTO {part} SELECT * FROM recs_staging "  # noqa: S608
                    "WHERE satisfies_hash_partition('recommendations'::regclass, "
                    ":modulus, :remainder, user_id)"
                ),
                {"modulus": len(parts), "remainder": remainder},
            )
            conn.commit()
        conn.execute(text("DROP TABLE recs_staging"))
        conn.commit()
    return len(parts)


def write_snapshot(settings: Settings, rows: pd.DataFrame, model_version: str, spark: Any) -> None:
    from vidflow.spark import lake_path

    frame = rows.rename(columns={"item_id": "video_id"}).assign(
        model_version=model_version, generated_at=datetime.now(UTC)
    )
    (
        spark.createDataFrame(frame)
        .write.format("delta")
        .mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("model_version")
        .save(lake_path(settings, "recs", "recommendations"))
    )


def score(
    settings: Settings,
    summary: DatasetSummary,
    n: int = TOP_N,
    active_days: float = 30.0,
    model_name: str = MODEL_NAME,
    spark: Any = None,
) -> ScoringSummary:
    ensure_models_importable()
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri)
    # resolve the alias once, so the rows are stamped with the version actually loaded
    version = str(client.get_model_version_by_alias(model_name, CHAMPION).version)
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")
    recommender = loaded.unwrap_python_model().recommender
    interactions, _ = load_dataset(summary)
    users = active_viewers(interactions, active_days)
    known = users[[_is_uuid(u) for u in users]]
    most_watched = int(interactions.groupby("user_id").size().max())
    lists = recommender.recommend(known, n + most_watched)
    source = recommender.fallback or "ranker"
    rows = top_unwatched(lists, interactions, n, source)
    partitions = write_catalog(settings, rows, version)
    if spark is None:
        from vidflow.spark import get_spark

        spark = get_spark("vidflow-recs-scoring", settings)
    write_snapshot(settings, rows, version, spark)
    return ScoringSummary(
        model_version=version,
        viewers=int(rows["user_id"].nunique()),
        rows=len(rows),
        partitions=partitions,
        skipped_viewers=len(users) - len(known),
    )
