"""Agreement of recommendation lists with the traffic model's hidden truth.

The traffic model draws what a viewer watches from their true topic preferences, and
its ground-truth file (``python -m vidflow.traffic history`` writes
``.local/traffic/truth-<seed>.json``) holds them, with each video's topic weights. The
**true fit** of a video for a viewer is the simulator's own (``vidflow.traffic.simulate``,
where it drives completion, abandonment and likes): ``preferences . topic_weights /
max(preferences)``, in [0, 1]. Nothing here is used for training: the truth only scores
lists, on the holdout viewers, against two baselines computed the same way:

* ``fit@k``: the mean true fit of the first k recommended items;
* ``ndcg@k``: NDCG with the true fit as graded gain, the ideal being the viewer's k
  best-fitting videos among those they could be recommended (unseen in training);
* ``random``: the exact expectation of both for a uniformly random unseen list (no
  sampling noise); ``oracle_fit@k``: the ceiling.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrueTastes:
    """Viewers' true topic preferences and videos' topic weights (same topic order)."""

    topics: tuple[str, ...]
    user_ids: pd.Index
    preferences: FloatArray  # (users, topics)
    video_ids: pd.Index
    topic_weights: FloatArray  # (videos, topics)

    @classmethod
    def from_truth(cls, truth: Mapping[str, Any]) -> TrueTastes:
        """From the traffic model's truth (the JSON file's content, or
        ``vidflow.traffic.model.truth(population)``)."""
        try:
            topics = tuple(truth["topics"])
            viewers, videos = truth["viewers"], truth["videos"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a traffic-model truth: missing {exc}") from None
        column = {t: i for i, t in enumerate(topics)}
        # anonymous viewers (no user id) never get personal lists
        viewers = [v for v in viewers if v.get("user_id") is not None]

        def matrix(rows: Sequence[Mapping[str, float]]) -> FloatArray:
            out = np.zeros((len(rows), len(topics)))
            for i, row in enumerate(rows):
                for topic, weight in row.items():
                    out[i, column[topic]] = float(weight)
            return out

        return cls(
            topics=topics,
            user_ids=pd.Index([str(v["user_id"]) for v in viewers]),
            preferences=matrix([v["preferences"] for v in viewers]),
            video_ids=pd.Index([str(v["video_id"]) for v in videos]),
            topic_weights=matrix([v["topics"] for v in videos]),
        )

    @classmethod
    def from_file(cls, path: Path) -> TrueTastes:
        try:
            content = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the truth file {path}: {exc}") from None
        return cls.from_truth(content)

    def fit(self, user_ids: Sequence[str], item_ids: Sequence[str]) -> FloatArray:
        """(users x items) true fit; NaN where the viewer or the video is unknown."""
        u = self.user_ids.get_indexer(pd.Index(user_ids))
        v = self.video_ids.get_indexer(pd.Index(item_ids))
        prefs = self.preferences[np.maximum(u, 0)]
        peak = prefs.max(axis=1, keepdims=True)
        prefs = np.divide(prefs, peak, out=np.zeros_like(prefs), where=peak > 0)
        out = prefs @ self.topic_weights[np.maximum(v, 0)].T
        out[u < 0] = np.nan
        out[:, v < 0] = np.nan
        return np.asarray(out, dtype=np.float64)


def agreement(
    lists: Mapping[str, Mapping[Any, Sequence[str]]],
    fit: FloatArray,
    eligible: npt.NDArray[np.bool_],
    user_ids: Sequence[Any],
    item_ids: Sequence[str],
    k: int = 10,
) -> dict[str, Any]:
    """Truth agreement of each named model's ``lists`` (viewer -> ranked items) for the
    viewers ``user_ids`` (rows of ``fit``/``eligible``) over ``item_ids`` (columns).
    ``eligible[u, i]``: the viewer could be recommended the item (unseen, true fit
    known). Items outside the eligible set are skipped in a list (not counted as 0)."""
    col = {item: j for j, item in enumerate(item_ids)}
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    rows = [u for u in range(len(user_ids)) if eligible[u].any()]
    ideal_dcg, random_fit, random_ndcg, oracle_fit = [], [], [], []
    for u in rows:
        gains = np.sort(fit[u, eligible[u]])[::-1][:k]
        ideal = float((gains * discounts[: len(gains)]).sum())
        ideal_dcg.append(ideal)
        mean = float(fit[u, eligible[u]].mean())
        random_fit.append(mean)
        random_ndcg.append(mean * float(discounts[: len(gains)].sum()) / ideal if ideal else 0.0)
        oracle_fit.append(float(gains.mean()))
    out: dict[str, Any] = {
        "k": k,
        "viewers": len(rows),
        f"fit@{k}": {"random": float(np.mean(random_fit)) if rows else float("nan")},
        f"ndcg@{k}": {"random": float(np.mean(random_ndcg)) if rows else float("nan")},
        f"oracle_fit@{k}": float(np.mean(oracle_fit)) if rows else float("nan"),
    }
    for name, model_lists in lists.items():
        fits, ndcgs = [], []
        for u, ideal in zip(rows, ideal_dcg, strict=True):
            cols = [col[i] for i in model_lists.get(user_ids[u], ()) if i in col]
            cols = [j for j in cols if eligible[u, j]][:k]
            gains = fit[u, cols] if cols else np.zeros(0)
            fits.append(float(gains.mean()) if len(gains) else 0.0)
            dcg = float((gains * discounts[: len(gains)]).sum())
            ndcgs.append(dcg / ideal if ideal else 0.0)
        out[f"fit@{k}"][name] = float(np.mean(fits)) if rows else float("nan")
        out[f"ndcg@{k}"][name] = float(np.mean(ndcgs)) if rows else float("nan")
    return out


def flat_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """MLflow-friendly names: ``truth_fit_at_10_pipeline``, ``truth_ndcg_at_10_random``..."""
    k = report["k"]
    out = {f"truth_oracle_fit_at_{k}": float(report[f"oracle_fit@{k}"])}
    for metric in ("fit", "ndcg"):
        for model, value in report[f"{metric}@{k}"].items():
            out[f"truth_{metric}_at_{k}_{model}"] = float(value)
    return out


def holdout_agreement(
    recommender: Any,
    split: Any,
    tastes: TrueTastes,
    k: int = 10,
    pipeline_lists: Mapping[Any, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Truth agreement on ``split``'s holdout viewers known to the truth, of the fitted
    ``recommender``'s lists ("pipeline") and of the popularity, trending and LightFM
    baselines built from the same training data, plus random and the oracle."""
    from vidflow.recs import ensure_models_importable

    ensure_models_importable()
    from models.baselines import Popularity
    from models.candidates import finite_lists, mask_seen
    from models.training_data import batch_for, sparse_rows

    data = recommender.sources.data
    users = pd.Index(split.test["user_id"].astype(str).unique())
    users = users[users.isin(tastes.user_ids)]
    if users.empty:
        raise ValueError("no holdout viewer is known to the truth file (another seed?)")
    ids = np.asarray(data.item_ids)
    batch = batch_for(data, users, split.reference_time)
    if pipeline_lists is None:
        frame, _ = recommender.candidates(users, split.reference_time)
        pipeline_lists = recommender.rank(frame, k)

    def lists_of(scores: npt.NDArray[np.float32]) -> dict[Any, list[str]]:
        masked = mask_seen(np.asarray(scores, dtype=np.float32), data, batch.users)
        masked[masked <= -1e8] = -np.inf
        return {u: list(ids[row]) for u, row in zip(users, finite_lists(masked, k), strict=True)}

    models = {
        "pipeline": pipeline_lists,
        "popularity": lists_of(Popularity(data).scores(batch)),
        "trending": lists_of(recommender.sources.trending.scores(batch)),
        "lightfm": lists_of(recommender.sources.lightfm.scores(batch)),
    }
    fit = tastes.fit(list(users), list(ids))
    seen = np.asarray(sparse_rows(data.seen, batch.users).todense()) > 0
    eligible = ~seen & ~np.isnan(fit)
    return agreement(models, fit, eligible, list(users), list(ids), k)
