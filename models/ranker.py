"""The second stage: a LightGBM lambdarank model over the merged candidates.

Why lambdarank: what is shown is a top-10 list per viewer, and lambdarank optimises
NDCG of each viewer's list directly (pairwise gradients weighted by the NDCG change of
swapping two items), with graded labels. A pointwise classifier (binary logloss) spends
its capacity on calibrating probabilities across viewers, which the list never uses; a
plain pairwise loss (rank_xendcg/RankNet) ignores position. LightGBM ships it as a
wheel, trains in seconds on hundreds of thousands of rows, and handles missing values
natively: a feature whose column the data lacks is NaN (then constant) and does nothing.

Features come in groups so each group's contribution can be measured and a group that
does not help dropped (``models.pipeline`` does this on the validation split):

* ``sources``: each candidate source's score, its rank among all items and the score
  relative to the viewer's best candidate from that source (trees split across viewers,
  so a per-viewer scale helps), plus plain (order-free) EASE next to the recency-weighted
  EASE source;
* ``popularity``: share of attention in the viewer's region at the reference time, and
  its trend (short vs long half-life);
* ``freshness``: the item's age at the reference time (``published_at`` or first seen);
* ``completion``: the item's completion rate (watch_seconds / duration_seconds when both
  exist, else the share of its viewers whose interaction reached the positive threshold);
* ``viewer``: the viewer's activity (log of interactions) and tenure;
* ``affinity``: the viewer's topic (tag) affinity for the item;
* ``recent``: similarity to the viewer's last three items (co-watch and EASE);
* ``context``: the item's lift on the viewer's usual device and time of day.

Labels come from engagement, not clicks: 0 = not watched (or below the threshold),
1 = a positive, 2 = a positive in the top quarter of engagement (watch time when the
data has it, else the weight).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd

FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "sources": (),  # filled per source: <name>_score, <name>_rank
    "popularity": ("pop_region", "pop_trend"),
    "freshness": ("item_age_days",),
    "completion": ("completion_rate",),
    "viewer": ("user_activity", "user_tenure_days"),
    "affinity": ("topic_affinity",),
    "recent": ("cowatch_last3", "ease_last3"),
    "context": ("device_lift", "hour_lift"),
}


def source_features(source_names: Sequence[str]) -> tuple[str, ...]:
    per_source = tuple(f"{s}_{kind}" for s in source_names for kind in ("score", "rank", "rel"))
    return (*per_source, "ease_plain_score")


def feature_columns(groups: Sequence[str], source_names: Sequence[str]) -> list[str]:
    cols: list[str] = []
    for group in groups:
        cols += source_features(source_names) if group == "sources" else FEATURE_GROUPS[group]
    return cols


def engagement_labels(
    candidates: pd.DataFrame, truth: pd.DataFrame, top_quantile: float = 0.75
) -> npt.NDArray[np.int32]:
    """Graded labels for candidate rows (``user_id``, ``item_id``) from the held-out
    positives in ``truth`` (``user_id``, ``item_id``, ``engagement``)."""
    cut = float(np.quantile(truth["engagement"], top_quantile)) if len(truth) else np.inf
    grade = truth.assign(label=np.where(truth["engagement"] >= cut, 2, 1))
    grade = grade.groupby(["user_id", "item_id"], as_index=False)["label"].max()
    merged = candidates[["user_id", "item_id"]].merge(grade, how="left", on=["user_id", "item_id"])
    labels: npt.NDArray[np.int32] = merged["label"].fillna(0).to_numpy(np.int32)
    return labels


@dataclass(frozen=True)
class RankerParams:
    n_estimators: int = 400
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 100
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    early_stopping_rounds: int = 30
    truncation_level: int = 10
    max_bin: int = 63
    num_threads: int = 1
    random_state: int = 7


@dataclass(frozen=True)
class FittedRanker:
    """A trained booster and the columns it expects, in order."""

    booster: lgb.Booster
    columns: tuple[str, ...]
    best_iteration: int
    importance: dict[str, float] = field(default_factory=dict)

    def predict(self, features: pd.DataFrame) -> npt.NDArray[np.float64]:
        frame = features.reindex(columns=list(self.columns))
        out = self.booster.predict(frame.to_numpy(np.float32), num_iteration=self.best_iteration)
        return np.asarray(out, dtype=np.float64)


def _group_sizes(frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    # rows must be contiguous per user: sizes in order of first appearance
    sizes: npt.NDArray[np.int64] = frame.groupby("user_id", sort=False).size().to_numpy(np.int64)
    return sizes


def useful_queries(frame: pd.DataFrame, labels: npt.NDArray[np.int32]) -> npt.NDArray[np.bool_]:
    """Rows of users with at least one positive candidate (others give no gradient)."""
    has_pos = pd.Series(labels > 0).groupby(frame["user_id"].to_numpy()).transform("any")
    rows: npt.NDArray[np.bool_] = has_pos.to_numpy(bool)
    return rows


def train_ranker(
    train: pd.DataFrame,
    train_labels: npt.NDArray[np.int32],
    columns: Sequence[str],
    params: RankerParams,
    valid: pd.DataFrame | None = None,
    valid_labels: npt.NDArray[np.int32] | None = None,
    n_estimators: int | None = None,
) -> FittedRanker:
    """Fit lambdarank on candidate rows grouped by ``user_id`` (contiguous). With a
    validation part, early stopping on its NDCG@10 picks the number of trees."""
    keep = useful_queries(train, train_labels)
    tr, y = train[keep], train_labels[keep]
    if len(tr) == 0:
        raise ValueError("no viewer has a positive among their candidates: nothing to learn")
    lgb_params = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [10],
        "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves,
        "min_data_in_leaf": params.min_child_samples,
        "bagging_fraction": params.subsample,
        "bagging_freq": 1,
        "feature_fraction": params.colsample_bytree,
        "lambdarank_truncation_level": params.truncation_level,
        "seed": params.random_state,
        "num_threads": params.num_threads,
        "max_bin": params.max_bin,
        "verbose": -1,
    }
    cols = list(columns)
    dtrain = lgb.Dataset(
        tr[cols].to_numpy(np.float32), y, group=_group_sizes(tr), feature_name=cols
    )
    sets: list[lgb.Dataset] = []
    callbacks: list[Callable[..., Any]] = []
    if valid is not None and valid_labels is not None:
        vkeep = useful_queries(valid, valid_labels)
        va = valid[vkeep]
        sets.append(
            lgb.Dataset(
                va[cols].to_numpy(np.float32),
                valid_labels[vkeep],
                group=_group_sizes(va),
                reference=dtrain,
            )
        )
        callbacks.append(lgb.early_stopping(params.early_stopping_rounds, verbose=False))
    booster = lgb.train(
        lgb_params,
        dtrain,
        num_boost_round=n_estimators or params.n_estimators,
        valid_sets=sets,
        callbacks=callbacks,
    )
    best = booster.best_iteration if sets and booster.best_iteration > 0 else booster.num_trees()
    gains = booster.feature_importance(importance_type="gain", iteration=best)
    total = float(gains.sum()) or 1.0
    importance = {c: float(g) / total for c, g in zip(cols, gains, strict=True)}
    return FittedRanker(booster, tuple(cols), int(best), importance)


@dataclass(frozen=True)
class RankerEnsemble:
    """The cross-validation fold models; the score is their mean."""

    members: tuple[FittedRanker, ...]

    def predict(self, features: pd.DataFrame) -> npt.NDArray[np.float64]:
        mean: npt.NDArray[np.float64] = np.mean([m.predict(features) for m in self.members], axis=0)
        return mean

    def importance(self) -> dict[str, float]:
        names = self.members[0].columns
        return {c: float(np.mean([m.importance[c] for m in self.members])) for c in names}
