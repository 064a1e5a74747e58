"""Interactions and items for the recommender: loading, validation and temporal splits.

Every model in ``models/`` takes the two frames this module produces:

* interactions: ``user_id, item_id, timestamp, weight`` (ids as strings, timestamp as
  float epoch seconds, weight as float) plus the optional ``region``, ``device`` and
  ``watch_seconds``. A column that is absent is a feature that is absent, not an error.
* items: ``item_id, tags`` (a tuple of strings per item) plus the optional ``title``,
  ``duration_seconds`` and ``published_at``.

A *positive* is an interaction whose weight reaches the positive threshold (ratings >= 4
on MovieLens, a watch that counts on the platform). Splits hold out positives only; every
held-out interaction of a viewer is strictly later than all of that viewer's training
interactions, so no split leaks a viewer's future into their own past.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "weight")
OPTIONAL_INTERACTION_COLUMNS = ("region", "device", "watch_seconds")
REQUIRED_ITEM_COLUMNS = ("item_id", "tags")
OPTIONAL_ITEM_COLUMNS = ("title", "duration_seconds", "published_at")
HOLDOUT_FRACTION = 0.2


class DatasetError(ValueError):
    """The input frames cannot be used: the message says which column or value and why."""


@dataclass(frozen=True)
class Split:
    """A temporal split: ``train`` holds every interaction the models may see, ``test``
    the held-out positives, ``reference_time`` the moment each test viewer is
    recommended for (indexed by user_id)."""

    train: pd.DataFrame
    test: pd.DataFrame
    reference_time: pd.Series
    protocol: str

    @property
    def test_users(self) -> int:
        return int(self.test["user_id"].nunique())


def _to_epoch_seconds(values: pd.Series, column: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    parsed = pd.to_datetime(values, utc=True, errors="coerce")
    if parsed.isna().any():
        bad = values[parsed.isna()].iloc[0]
        raise DatasetError(f"{column}: {bad!r} is neither epoch seconds nor a date-time")
    return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def validate_interactions(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the interactions in canonical form, or raise ``DatasetError`` naming the
    problem. Optional columns are kept when present; unknown ones are dropped."""
    missing = [c for c in REQUIRED_INTERACTION_COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(f"interactions lack required column(s): {', '.join(missing)}")
    if frame.empty:
        raise DatasetError("interactions are empty")
    keep = [*REQUIRED_INTERACTION_COLUMNS]
    keep += [c for c in OPTIONAL_INTERACTION_COLUMNS if c in frame.columns]
    out = frame[keep].copy()
    for column in ("user_id", "item_id"):
        if out[column].isna().any():
            raise DatasetError(f"interactions: {column} has {int(out[column].isna().sum())} nulls")
        out[column] = out[column].astype(str)
    out["timestamp"] = _to_epoch_seconds(out["timestamp"], "timestamp")
    out["weight"] = pd.to_numeric(out["weight"], errors="coerce")
    if out["weight"].isna().any() or out["timestamp"].isna().any():
        raise DatasetError("interactions: weight and timestamp must be numbers (nulls found)")
    if "watch_seconds" in out:
        out["watch_seconds"] = pd.to_numeric(out["watch_seconds"], errors="coerce")
    for column in ("region", "device"):
        if column in out:
            out[column] = out[column].astype("string").fillna("unknown").astype(str)
    return out.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)


def parse_tags(value: object) -> tuple[str, ...]:
    """Tags as a tuple: a list/array of strings or one ``|``-separated string. MovieLens
    writes ``(no genres listed)`` for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ()
    raw: Iterable[object]
    if isinstance(value, str):
        raw = value.split("|")
    elif isinstance(value, Iterable):
        raw = value
    else:
        raise DatasetError(f"tags: {value!r} is neither a list nor a '|'-separated string")
    tags = (str(t).strip().lower() for t in raw)
    return tuple(t for t in tags if t and t != "(no genres listed)")


def validate_items(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the items in canonical form (one row per item_id, tags as tuples)."""
    missing = [c for c in REQUIRED_ITEM_COLUMNS if c not in frame.columns]
    if missing:
        raise DatasetError(f"items lack required column(s): {', '.join(missing)}")
    keep = [*REQUIRED_ITEM_COLUMNS] + [c for c in OPTIONAL_ITEM_COLUMNS if c in frame.columns]
    out = frame[keep].copy()
    if out["item_id"].isna().any():
        raise DatasetError("items: item_id has nulls")
    out["item_id"] = out["item_id"].astype(str)
    out["tags"] = [parse_tags(v) for v in out["tags"]]
    if "title" in out:
        out["title"] = out["title"].fillna("").astype(str)
    if "duration_seconds" in out:
        out["duration_seconds"] = pd.to_numeric(out["duration_seconds"], errors="coerce")
    if "published_at" in out:
        out["published_at"] = _to_epoch_seconds(out["published_at"], "published_at")
    return out.drop_duplicates("item_id", keep="last").reset_index(drop=True)


def read_frame(path: Path) -> pd.DataFrame:
    """A CSV or parquet file (by suffix) as a frame."""
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    if path.suffix in {".parquet", ".pq"}:
        return pd.read_parquet(path)
    if path.suffix in {".csv", ".txt"} or path.name.endswith(".csv.gz"):
        return pd.read_csv(path, dtype={"user_id": str, "item_id": str})
    raise DatasetError(f"{path}: expected a .csv or .parquet file")


def positives(interactions: pd.DataFrame, threshold: float) -> pd.DataFrame:
    return interactions[interactions["weight"] >= threshold]


def per_user_split(
    interactions: pd.DataFrame,
    positive_threshold: float,
    holdout_fraction: float = HOLDOUT_FRACTION,
) -> Split:
    """Each viewer's last ``holdout_fraction`` of positives (at least one) is the test
    part; the viewer's train part is everything strictly before the first held-out
    timestamp. Interactions tied with that timestamp go to the test side (positives) or
    are dropped (others), so ties never leak. Viewers with fewer than two positives, or
    whose positives all share one timestamp, stay whole in train and are not tested."""
    df = interactions
    is_pos = (df["weight"] >= positive_threshold).to_numpy()
    pos = df[is_pos]
    counts = pos.groupby("user_id", sort=False).size()
    n_test = np.maximum(1, np.floor(counts * holdout_fraction + 0.5)).astype(int)
    eligible = counts[counts >= 2].index
    # rank positives from the end: the cut is the timestamp of the n_test-th last one
    pos_sorted = pos[pos["user_id"].isin(eligible)].sort_values(
        ["user_id", "timestamp"], kind="stable"
    )
    from_end = pos_sorted.groupby("user_id", sort=False).cumcount(ascending=False)
    need = pos_sorted["user_id"].map(n_test)
    cut = pos_sorted[from_end == need - 1].set_index("user_id")["timestamp"]
    first_ts = df.groupby("user_id", sort=False)["timestamp"].min()
    cut = cut[cut > first_ts.reindex(cut.index)]  # someone must remain in train
    user_cut = df["user_id"].map(cut)
    has_cut = user_cut.notna().to_numpy()
    before = (df["timestamp"] < user_cut).to_numpy()
    train = df[~has_cut | before].reset_index(drop=True)
    test = df[has_cut & ~before & is_pos].reset_index(drop=True)
    reference = train[train["user_id"].isin(test["user_id"])].groupby("user_id")["timestamp"].max()
    return Split(train=train, test=test, reference_time=reference, protocol="per-user")


def global_cut_time(
    interactions: pd.DataFrame, holdout_fraction: float = HOLDOUT_FRACTION
) -> float:
    """The timestamp that leaves ``holdout_fraction`` of the interactions after it."""
    return float(np.quantile(interactions["timestamp"].to_numpy(), 1.0 - holdout_fraction))


def global_split(
    interactions: pd.DataFrame,
    positive_threshold: float,
    cut: float | None = None,
    holdout_fraction: float = HOLDOUT_FRACTION,
) -> Split:
    """Train on everything before ``cut`` (by default the time that leaves
    ``holdout_fraction`` of interactions after it), test on the positives at or after it
    of viewers that have a train history (the others are cold: only trending can answer
    them, and they are not counted). Every viewer is recommended for at ``cut``."""
    df = interactions
    when = global_cut_time(df, holdout_fraction) if cut is None else cut
    before = (df["timestamp"] < when).to_numpy()
    train = df[before].reset_index(drop=True)
    after = df[~before & (df["weight"] >= positive_threshold).to_numpy()]
    test = after[after["user_id"].isin(set(train["user_id"]))].reset_index(drop=True)
    users = test["user_id"].unique()
    reference = pd.Series(when, index=pd.Index(users, name="user_id"), name="timestamp")
    return Split(train=train, test=test, reference_time=reference, protocol="global")


def split(
    interactions: pd.DataFrame,
    protocol: str,
    positive_threshold: float,
    holdout_fraction: float = HOLDOUT_FRACTION,
) -> Split:
    """The named protocol (``per-user`` or ``global``)."""
    if protocol == "per-user":
        return per_user_split(interactions, positive_threshold, holdout_fraction)
    if protocol == "global":
        return global_split(interactions, positive_threshold, None, holdout_fraction)
    raise DatasetError(f"unknown split {protocol!r}: expected 'per-user' or 'global'")


def validation_split(train: pd.DataFrame, protocol: str, positive_threshold: float) -> Split:
    """The validation split, carved from a train part with the same protocol; tuning
    only ever looks at this one."""
    return split(train, protocol, positive_threshold)
