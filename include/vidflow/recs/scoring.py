"""Batch scoring with the champion: the catalog's three precomputed lists.

``score`` loads ``models:/vidflow-recommender@champion`` and writes, stamped with its
version:

* ``recommendations``: for every viewer active in the dataset, the top N (50) of its batch
  API (candidate sources are blocked matrix products with the chunked top-k of
  ``models.topk``, then the ranker), minus every video the viewer has watched (also
  those after the model's training cut, which the model itself cannot know) and videos
  no longer processed; ``source`` says which candidate generator brought each item
  (collaborative, co-watch, content, trending);
* ``related_videos``: "more like this", the top 20 per processed video
  (``models.related``: co-watch, LightFM item embeddings, content, fused by rank);
* ``trending_videos``: the top 50 per region of ``vidflow.regions`` and ``global``, the
  trending source (time-decayed popularity, the champion's half-life) over the dataset,
  i.e. fresher than the model's training data; the answer for new and anonymous viewers.

The two sharded tables are swapped per hash partition (``vidflow.recs.publish``): staging
first, then one transaction per partition, so a reader sees a key's old list or its new
list, never a mix or nothing; trending in one transaction. Plus a Delta snapshot
``recs/recommendations`` partitioned by ``model_version``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from vidflow.config import Settings
from vidflow.recs import ensure_models_importable
from vidflow.recs.dataset import DatasetSummary, load_dataset, read_catalog_videos
from vidflow.recs.publish import swap_partitioned, swap_trending
from vidflow.recs.registry import CHAMPION, MODEL_NAME
from vidflow.regions import REGION_NAMES

TOP_N = 50
RELATED_N = 20
TRENDING_N = 50


@dataclass(frozen=True)
class ScoringSummary:
    model_version: str
    viewers: int
    rows: int
    partitions: int
    skipped_viewers: int  # ids that are not UUIDs cannot go to the catalog
    related_videos: int = 0  # videos with a "more like this" list
    related_rows: int = 0
    trending_regions: int = 0  # the regions plus "global"
    trending_rows: int = 0
    sources: dict[str, int] = field(default_factory=dict)  # recommendation rows per source

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


def top_unwatched(lists: pd.DataFrame, watched: pd.DataFrame, n: int) -> pd.DataFrame:
    """Drop every (viewer, video) in ``watched`` from ranked ``lists`` (user_id,
    item_id, rank, source), re-rank from 1 and keep the first ``n``; score = 1 / rank."""
    seen = watched[["user_id", "item_id"]].drop_duplicates().assign(_seen=True)
    out = lists.merge(seen, how="left", on=["user_id", "item_id"])
    out = out[out["_seen"].isna()].drop(columns="_seen")
    out = out.sort_values(["user_id", "rank"])
    out["rank"] = out.groupby("user_id").cumcount() + 1
    out = out[out["rank"] <= n].reset_index(drop=True)
    out["score"] = 1.0 / out["rank"]
    return out


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def catalog_records(
    rows: pd.DataFrame, renames: dict[str, str], model_version: str, generated: datetime
) -> list[dict[str, Any]]:
    """``rows`` as the catalog's column names, stamped with the version and time."""
    frame = rows.rename(columns=renames)
    return [
        {**rec, "rank": int(rec["rank"]), "score": float(rec["score"]),
         "model_version": model_version, "generated_at": generated}
        for rec in frame.to_dict("records")
    ]  # fmt: skip


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
    related_n: int = RELATED_N,
    trending_n: int = TRENDING_N,
) -> ScoringSummary:
    ensure_models_importable()
    import mlflow
    from mlflow import MlflowClient

    from models.related import RelatedParams

    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri)
    # resolve the alias once, so the rows are stamped with the version actually loaded
    version = str(client.get_model_version_by_alias(model_name, CHAMPION).version)
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")
    recommender = loaded.unwrap_python_model().recommender
    interactions, items = load_dataset(summary)
    catalog = items[items["item_id"].map(_is_uuid)]
    processed = set(read_catalog_videos(settings)["video_id"])
    catalog = catalog[catalog["item_id"].isin(processed)]
    generated = datetime.now(UTC)

    users = active_viewers(interactions, active_days)
    known = users[[_is_uuid(u) for u in users]]
    most_watched = int(interactions.groupby("user_id").size().max())
    # room for what gets dropped: watched videos and videos no longer processed
    gone = len(set(recommender.sources.data.item_ids) - processed)
    lists = recommender.recommend(known, n + most_watched + gone)
    rows = top_unwatched(lists, interactions, n)
    rows = rows[rows["item_id"].isin(processed)]
    rows = rows.assign(rank=rows.groupby("user_id").cumcount() + 1)
    rows = rows.assign(score=1.0 / rows["rank"])
    partitions = swap_partitioned(
        settings,
        "recommendations",
        catalog_records(rows, {"item_id": "video_id"}, version, generated),
    )

    related = recommender.related(
        catalog, RelatedParams(n=related_n, title_weight=recommender.config.content.title_weight)
    )
    swap_partitioned(
        settings,
        "related_videos",
        catalog_records(
            related, {"item_id": "video_id", "related_item_id": "related_video_id"}, version,
            generated,
        ),
    )  # fmt: skip
    trending = recommender.trending(interactions, catalog, REGION_NAMES, trending_n)
    swap_trending(settings, catalog_records(trending, {"item_id": "video_id"}, version, generated))

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
        related_videos=int(related["item_id"].nunique()),
        related_rows=len(related),
        trending_regions=int(trending["region"].nunique()),
        trending_rows=len(trending),
        sources={str(k): int(v) for k, v in rows["source"].value_counts().items()},
    )
