"""Training data for the recommender from the analytics lake and the catalog.

``interactions_from_frames`` is the pure part (pandas in, the canonical frames of
``models.datasets`` out) and is unit-tested on hand-made frames; ``build_dataset`` reads
the Delta tables with Spark and the ``videos`` table from PostgreSQL, and writes both
frames as parquet for the training task.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from models import datasets
from vidflow.config import Settings

INTERACTIONS_FILE = "interactions.parquet"
ITEMS_FILE = "items.parquet"


class NoHistoryYet(datasets.DatasetError):
    """There is no watch history to learn from yet: the analytics tables do not exist or
    hold nothing in the window (a fresh platform), as opposed to history that is wrong."""


@dataclass(frozen=True)
class DatasetSummary:
    """What the dataset task wrote (passed to the training task by XCom)."""

    directory: str
    interactions: int
    users: int
    items: int

    @property
    def interactions_path(self) -> Path:
        return Path(self.directory) / INTERACTIONS_FILE

    @property
    def items_path(self) -> Path:
        return Path(self.directory) / ITEMS_FILE

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> DatasetSummary:
        return cls(
            directory=str(value["directory"]),
            interactions=int(value["interactions"]),
            users=int(value["users"]),
            items=int(value["items"]),
        )


def interactions_from_frames(
    user_video_daily: pd.DataFrame,
    videos: pd.DataFrame,
    devices: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One interaction per (viewer, video) over all days: ``weight`` and
    ``watch_seconds`` are the summed credited seconds, ``timestamp`` the last watch,
    ``region`` that of the last day watched, ``device`` the viewer's most used device on
    that video (from silver, when given). Items are the catalog's videos (``tags``,
    ``title``) plus any watched video the catalog does not know (no tags, empty title),
    so no interaction is lost."""
    needed = {"user_id", "video_id", "watch_seconds", "last_watched_at", "region"}
    missing = sorted(needed - set(user_video_daily.columns))
    if missing:
        raise datasets.DatasetError(f"user_video_daily lacks column(s): {', '.join(missing)}")
    if user_video_daily.empty:
        raise NoHistoryYet("user_video_daily is empty: no watch history to learn from")
    uvd = user_video_daily.assign(
        user_id=user_video_daily["user_id"].astype(str),
        video_id=user_video_daily["video_id"].astype(str),
        last_watched_at=pd.to_datetime(user_video_daily["last_watched_at"], utc=True),
    ).sort_values("last_watched_at")
    grouped = uvd.groupby(["user_id", "video_id"], sort=True)
    out = grouped.agg(
        watch_seconds=("watch_seconds", "sum"),
        last_watched_at=("last_watched_at", "max"),
        region=("region", "last"),
    ).reset_index()
    if devices is not None and not devices.empty:
        dev = devices.assign(
            user_id=devices["user_id"].astype(str), video_id=devices["video_id"].astype(str)
        )
        if "n" not in dev:  # one row per event; Spark may hand over counts already
            dev["n"] = 1
        keys = ["user_id", "video_id", "device"]
        counts = dev.groupby(keys)["n"].sum().reset_index()
        top = counts.sort_values(["n", "device"], ascending=[False, True]).drop_duplicates(
            ["user_id", "video_id"]
        )
        out = out.merge(top[["user_id", "video_id", "device"]], how="left")
        out["device"] = out["device"].fillna("unknown")
    out = out.rename(columns={"video_id": "item_id"})
    out["weight"] = out["watch_seconds"].astype("float64")
    out["timestamp"] = out["last_watched_at"]
    interactions = datasets.validate_interactions(out)

    cat = videos.rename(columns={"video_id": "item_id"})
    cat = cat.assign(item_id=cat["item_id"].astype(str))
    if "title" not in cat:
        cat["title"] = ""
    if "tags" not in cat:
        cat["tags"] = [() for _ in range(len(cat))]
    unknown = sorted(set(interactions["item_id"]) - set(cat["item_id"]))
    extra = pd.DataFrame(
        {"item_id": unknown, "tags": [() for _ in unknown], "title": ["" for _ in unknown]}
    )
    items = datasets.validate_items(
        pd.concat([cat[["item_id", "tags", "title"]], extra], ignore_index=True)
    )
    return interactions, items


def read_catalog_videos(settings: Settings) -> pd.DataFrame:
    """The catalog's videos (id, title, tags) that viewers can watch (processed)."""
    from sqlalchemy import select

    from vidflow.catalog.db import session_scope
    from vidflow.catalog.models import Video

    with session_scope(settings) as session:
        rows = session.execute(
            select(Video.video_id, Video.title, Video.tags).where(Video.status == "processed")
        ).all()
    return pd.DataFrame(
        {
            "video_id": [str(r[0]) for r in rows],
            "title": [r[1] for r in rows],
            "tags": [tuple(r[2] or ()) for r in rows],
        }
    )


def build_dataset(
    settings: Settings,
    out_dir: Path,
    since: str | None = None,
    until: str | None = None,
    spark: Any = None,
) -> DatasetSummary:
    """Read ``user_video_daily`` (and the device per viewer/video from silver
    ``watch_events``) for the UTC days ``since`` .. ``until`` (inclusive; open when None)
    with Spark,
    the videos from the catalog, and write the canonical frames as parquet."""
    from pyspark.sql import functions as F

    from vidflow.spark import LakeTableMissing, get_spark, lake_path, read_delta

    session = spark or get_spark("vidflow-recs-dataset", settings)
    try:
        uvd = read_delta(
            session,
            lake_path(settings, "analytics", "user_video_daily"),
            written_by="the platform_analytics DAG (gold)",
        )
        events = read_delta(
            session,
            lake_path(settings, "analytics", "watch_events"),
            written_by="the platform_analytics DAG (silver)",
        )
    except LakeTableMissing as missing:
        raise NoHistoryYet(str(missing)) from missing
    if since:
        uvd = uvd.where(F.col("event_date") >= F.lit(since).cast("date"))
        events = events.where(F.col("event_date") >= F.lit(since).cast("date"))
    if until:
        uvd = uvd.where(F.col("event_date") <= F.lit(until).cast("date"))
        events = events.where(F.col("event_date") <= F.lit(until).cast("date"))
    devices = (
        events.where(F.col("user_id").isNotNull() & F.col("device").isNotNull())
        .groupBy("user_id", "video_id", "device")
        .agg(F.count(F.lit(1)).alias("n"))
    )
    uvd_pd = uvd.select(
        "event_date", "region", "user_id", "video_id", "watch_seconds", "last_watched_at"
    ).toPandas()
    dev_pd = devices.toPandas()
    interactions, items = interactions_from_frames(uvd_pd, read_catalog_videos(settings), dev_pd)
    out_dir.mkdir(parents=True, exist_ok=True)
    interactions.to_parquet(out_dir / INTERACTIONS_FILE, index=False)
    items.assign(tags=[list(t) for t in items["tags"]]).to_parquet(
        out_dir / ITEMS_FILE, index=False
    )
    return DatasetSummary(
        directory=str(out_dir),
        interactions=len(interactions),
        users=int(interactions["user_id"].nunique()),
        items=len(items),
    )


def load_dataset(summary: DatasetSummary) -> tuple[pd.DataFrame, pd.DataFrame]:
    interactions = datasets.validate_interactions(pd.read_parquet(summary.interactions_path))
    items = datasets.validate_items(pd.read_parquet(summary.items_path))
    return interactions, items
