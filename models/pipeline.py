"""The full recommender: candidate sources + LightGBM ranker, fitted in one call.

``Recommender(config).fit(train, items)`` does, on the data it is given only:

1. carve a validation split from ``train`` with the same protocol (``config.protocol``);
2. fit the sources on the validation's train part and tune the few source parameters
   (trending half-life, EASE lambda and history half-life, co-watch alpha/half-life)
   by each source's NDCG@10 on the validation holdout;
3. build candidates + features for the validation viewers, label them from engagement,
   train lambdarank with early stopping on a held-out group of those viewers, measure
   each feature group by dropping it, and drop the groups that do not help;
4. refit the sources on all of ``train`` with the chosen parameters.

``recommend`` then scores any viewers; ``save``/``load`` pickle the fitted object. The
test part of an evaluation is never seen here: that is ``models.evaluate``'s job.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from models import datasets
from models.baselines import Ease, EaseParams
from models.candidates import finite_lists, mask_seen
from models.candidates.content import Content, ContentParams
from models.candidates.cowatch import CoWatch, CoWatchParams
from models.candidates.lightfm_cf import LightFMParams, LightFMSource
from models.candidates.trending import Trending, TrendingParams, trending_lists
from models.features import SOURCE_LABELS, SOURCE_NAMES, Sources, candidate_frame, item_stats
from models.metrics import evaluate_lists
from models.ranker import (
    FEATURE_GROUPS,
    FittedRanker,
    RankerEnsemble,
    RankerParams,
    engagement_labels,
    feature_columns,
    train_ranker,
)
from models.related import RelatedParams, related_videos
from models.topk import map_row_blocks
from models.training_data import IntArray, TrainingData, UserBatch, batch_for, engagement_of

BATCH = 512


@dataclass(frozen=True)
class PipelineConfig:
    positive_threshold: float
    protocol: str = "per-user"
    candidates_per_source: int = 100
    negative_weight: float = 0.0
    lightfm: LightFMParams = field(default_factory=LightFMParams)
    cowatch: CoWatchParams = field(default_factory=CoWatchParams)
    content: ContentParams = field(default_factory=ContentParams)
    trending: TrendingParams = field(default_factory=TrendingParams)
    ease: EaseParams = field(default_factory=EaseParams)
    ranker: RankerParams = field(default_factory=RankerParams)
    tune: bool = True
    trending_grid: tuple[float, ...] = (7.0, 30.0, 180.0)
    ease_lambda_grid: tuple[float, ...] = (50.0, 100.0, 200.0, 500.0, 1000.0)
    ease_half_life_grid: tuple[float, ...] = (5.0, 20.0, 1e9)
    cowatch_grid: tuple[tuple[float, float], ...] = ((0.5, 3.0), (0.8, 3.0), (0.8, 10.0))
    ranker_folds: int = 5
    min_ranker_users: int = 50
    min_group_gain: float = 0.0  # a group must add more than this NDCG@10 to stay
    seed: int = 42


@dataclass
class FitReport:
    """What fitting decided and measured (on the validation split only)."""

    tuned: dict[str, Any] = field(default_factory=dict)
    validation_sources: dict[str, float] = field(default_factory=dict)
    validation_users: int = 0
    ablation: dict[str, float] = field(default_factory=dict)
    groups_kept: list[str] = field(default_factory=list)
    groups_dropped: list[str] = field(default_factory=list)
    importance: dict[str, float] = field(default_factory=dict)
    validation_ranker_ndcg: float = 0.0
    validation_best_source_ndcg: float = 0.0
    fallback: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def fit_sources(data: TrainingData, config: PipelineConfig, ease_half_life: float) -> Sources:
    return Sources(
        data=data,
        lightfm=LightFMSource(data, config.lightfm),
        cowatch=CoWatch(data, config.cowatch),
        ease=Ease(data, config.ease),
        ease_half_life=ease_half_life,
        content=Content(data, config.content),
        trending=Trending(data, config.trending),
        stats=item_stats(data),
        ease_profile=data.recency_profile(ease_half_life),
        last3_profile=data.recency_profile(1e9, last_n=3),
    )


def ndcg_of_scores(
    scores: npt.NDArray[np.float32],
    data: TrainingData,
    batch: UserBatch,
    user_ids: pd.Index,
    truth: dict[Any, set[str]],
    k: int = 10,
) -> float:
    scores = mask_seen(scores.copy(), data, batch.users)
    lists = finite_lists(scores, k)
    named = {u: [data.item_ids[i] for i in row] for u, row in zip(user_ids, lists, strict=True)}
    return evaluate_lists(named, truth, data.n_items, k=k, recall_ks=(k,))[f"ndcg@{k}"]


def truth_of(test: pd.DataFrame) -> dict[Any, set[str]]:
    return {u: set(g) for u, g in test.groupby("user_id", sort=False)["item_id"]}


def tune_sources(
    data: TrainingData, val: datasets.Split, config: PipelineConfig, report: FitReport
) -> tuple[PipelineConfig, float]:
    """Pick source parameters by their own NDCG@10 on the validation holdout."""
    users = pd.Index(val.test["user_id"].unique())
    batch = batch_for(data, users, val.reference_time)
    truth = truth_of(val.test)

    def score(name: str, scores: npt.NDArray[np.float32]) -> float:
        value = ndcg_of_scores(scores, data, batch, users, truth)
        report.validation_sources[name] = value
        return value

    trending = Trending(data, config.trending)
    best_hl = max(
        config.trending_grid, key=lambda h: score(f"trending@{h}d", trending.scores(batch, h))
    )
    ease = Ease(data, config.ease)
    fits = {lam: ease.with_lambda(lam) for lam in config.ease_lambda_grid}
    best_lam = max(fits, key=lambda lam: score(f"ease@lambda={lam}", fits[lam].scores(batch)))
    best_ease = fits[best_lam]

    def ease_recent(h: float) -> float:
        profile = data.recency_profile(h)[np.maximum(batch.users, 0)]
        return score(f"ease_recent@{h}", best_ease.profile_scores(profile))

    best_ease_hl = max(config.ease_half_life_grid, key=ease_recent)

    def cowatch(pair: tuple[float, float]) -> float:
        params = replace(config.cowatch, alpha=pair[0], recent_half_life=pair[1])
        return score(f"cowatch@alpha={pair[0]},hl={pair[1]}", CoWatch(data, params).scores(batch))

    best_cw = max(config.cowatch_grid, key=cowatch)
    report.tuned = {
        "trending_half_life_days": best_hl,
        "ease_lambda": best_lam,
        "ease_history_half_life": best_ease_hl,
        "cowatch_alpha": best_cw[0],
        "cowatch_recent_half_life": best_cw[1],
    }
    tuned = replace(
        config,
        trending=replace(config.trending, half_life_days=best_hl),
        ease=replace(config.ease, lam=best_lam),
        cowatch=replace(config.cowatch, alpha=best_cw[0], recent_half_life=best_cw[1]),
    )
    return tuned, best_ease_hl


def candidates_for(
    sources: Sources,
    user_ids: pd.Index,
    reference_time: pd.Series | float | None,
    per_source: int,
) -> tuple[pd.DataFrame, dict[str, dict[Any, list[str]]]]:
    """Candidates with features for many viewers (in batches), and each source's lists."""
    batch = batch_for(sources.data, user_ids, reference_time)
    frames = []
    lists: dict[str, dict[Any, list[str]]] = {name: {} for name in SOURCE_NAMES}
    ids = np.asarray(sources.data.item_ids)

    def one(start: int, end: int) -> tuple[pd.DataFrame, dict[str, list[IntArray]]]:
        part = slice(start, end)
        return candidate_frame(sources, batch.take(part), user_ids[part], per_source)

    # batches on one worker per CPU, each with its own products and selections
    for start, (frame, source_lists) in zip(
        range(0, len(batch), BATCH), map_row_blocks(len(batch), BATCH, one), strict=True
    ):
        part = slice(start, start + BATCH)
        frames.append(frame)
        for name, rows in source_lists.items():
            for user, row in zip(user_ids[part], rows, strict=True):
                lists[name][user] = list(ids[row])
    return pd.concat(frames, ignore_index=True), lists


def ranked_rows(frame: pd.DataFrame, scores: npt.NDArray[np.float64], k: int) -> pd.DataFrame:
    """The k best candidates per viewer by ``scores`` (ties: lower item index first) as
    rows ``user_id, item_id, rank`` (1-based) plus the frame's other columns."""
    ordered = frame.assign(_s=scores).sort_values(
        ["user_id", "_s", "item_idx"], ascending=[True, False, True], kind="stable"
    )
    top = ordered.groupby("user_id", sort=False).head(k).drop(columns="_s")
    return top.assign(rank=top.groupby("user_id", sort=False).cumcount() + 1)


def ranked_lists(
    frame: pd.DataFrame, scores: npt.NDArray[np.float64], k: int
) -> dict[Any, list[str]]:
    top = ranked_rows(frame[["user_id", "item_id", "item_idx"]], scores, k)
    return {u: list(g) for u, g in top.groupby("user_id", sort=False)["item_id"]}


def fallback_scores(frame: pd.DataFrame, source: str) -> npt.NDArray[np.float64]:
    """A single source's order: its list rank, then (past its list) its score."""
    score = frame[f"{source}_score"].fillna(-np.inf).to_numpy(np.float64)
    squashed = np.arctan(score) / np.pi + 0.5  # in [0, 1], monotone: breaks rank ties
    return np.asarray(-frame[f"{source}_rank"].to_numpy(np.float64) + squashed, np.float64)


class Recommender:
    """Candidates + ranker. ``fit`` on canonical train interactions and items."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.report = FitReport()
        self.sources: Sources | None = None
        self.ranker: RankerEnsemble | None = None
        self.groups: list[str] = []
        self.fallback: str | None = None

    def fit(self, interactions: pd.DataFrame, items: pd.DataFrame) -> Recommender:
        cfg, report = self.config, self.report
        t0 = time.perf_counter()
        val = datasets.validation_split(interactions, cfg.protocol, cfg.positive_threshold)
        if val.test.empty:
            raise datasets.DatasetError("no viewer has enough positives for a validation split")
        val_data = TrainingData.build(val.train, items, cfg.positive_threshold, cfg.negative_weight)
        ease_hl = cfg.ease_half_life_grid[0]
        if cfg.tune:
            cfg, ease_hl = tune_sources(val_data, val, cfg, report)
            self.config = cfg
        report.timings["tune_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        val_sources = fit_sources(val_data, cfg, ease_hl)
        users = pd.Index(val.test["user_id"].unique())
        report.validation_users = len(users)
        frame, _ = candidates_for(val_sources, users, val.reference_time, cfg.candidates_per_source)
        truth = val.test.assign(engagement=engagement_of(val.test))
        labels = engagement_labels(frame, truth)
        report.timings["validation_candidates_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        self._fit_ranker(frame, labels, truth_of(val.test), val_data.n_items)
        report.timings["ranker_s"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        data = TrainingData.build(interactions, items, cfg.positive_threshold, cfg.negative_weight)
        self.sources = fit_sources(data, cfg, ease_hl)
        report.timings["final_sources_s"] = time.perf_counter() - t3
        report.timings["fit_total_s"] = time.perf_counter() - t0
        return self

    def _fit_ranker(
        self,
        frame: pd.DataFrame,
        labels: npt.NDArray[np.int32],
        truth: dict[Any, set[str]],
        n_items: int,
    ) -> None:
        """Cross-validate over validation viewers (``ranker_folds`` folds): each fold's
        model early-stops on, and is scored on, viewers it never saw. A feature group
        whose removal does not lower the mean NDCG@10 is dropped. The fold models of the
        kept groups form the final ranker (their mean score: less variance than one)."""
        cfg, report = self.config, self.report
        rng = np.random.default_rng(cfg.seed)
        users = frame["user_id"].unique()
        fold_of = dict(zip(users, rng.permutation(len(users)) % cfg.ranker_folds, strict=True))
        row_fold = frame["user_id"].map(fold_of).to_numpy()

        def cross_validate(groups: list[str]) -> tuple[float, list[FittedRanker]]:
            cols = feature_columns(groups, SOURCE_NAMES)
            scores, models = [], []
            for fold in range(cfg.ranker_folds):
                held = row_fold == fold
                model = train_ranker(
                    frame[~held], labels[~held], cols, cfg.ranker, frame[held], labels[held]
                )
                lists = ranked_lists(frame[held], model.predict(frame[held]), 10)
                held_truth = {u: truth[u] for u in lists if u in truth}
                scores.append(
                    evaluate_lists(lists, held_truth, n_items, recall_ks=(10,))["ndcg@10"]
                )
                models.append(model)
            return float(np.mean(scores)), models

        source_ndcg = {
            s: evaluate_lists(
                ranked_lists(frame, fallback_scores(frame, s), 10),
                truth,
                n_items,
                recall_ks=(10,),
            )["ndcg@10"]
            for s in SOURCE_NAMES
        }
        best_source = max(source_ndcg, key=source_ndcg.__getitem__)
        report.validation_best_source_ndcg = source_ndcg[best_source]
        learnable = frame.loc[labels > 0, "user_id"].nunique()
        if learnable < cfg.min_ranker_users:
            self.fallback = best_source
            report.fallback = (
                f"{learnable} validation viewers have a positive candidate (< "
                f"{cfg.min_ranker_users}): too few to train a ranker; lists are "
                f"{best_source}'s, the best source on validation"
            )
            return
        all_groups = list(FEATURE_GROUPS)
        base, models = cross_validate(all_groups)
        report.ablation["all"] = base
        dropped = []
        for group in [g for g in all_groups if g != "sources"]:
            without, _ = cross_validate([g for g in all_groups if g != group])
            report.ablation[f"without {group}"] = without
            if base - without <= cfg.min_group_gain:
                dropped.append(group)  # the group did not help
        groups = [g for g in all_groups if g not in dropped]
        final = base
        if dropped:
            reduced, reduced_models = cross_validate(groups)
            if reduced >= base:
                final, models = reduced, reduced_models
            else:
                # each group alone looked useless, together they help: keep them all
                report.ablation["without all of " + ", ".join(dropped)] = reduced
                groups, dropped = all_groups, []
        report.ablation["kept groups"] = final
        report.validation_ranker_ndcg = final
        report.groups_kept, report.groups_dropped = groups, dropped
        self.ranker = RankerEnsemble(tuple(models))
        self.groups = groups
        report.importance = dict(sorted(self.ranker.importance().items(), key=lambda kv: -kv[1]))
        if final <= report.validation_best_source_ndcg:
            self.fallback = best_source
            report.fallback = (
                f"the ranker ({final:.4f}) does not beat {best_source} "
                f"({report.validation_best_source_ndcg:.4f}) on validation: lists are "
                f"{best_source}'s"
            )

    def candidates(
        self, user_ids: pd.Index, reference_time: pd.Series | float | None = None
    ) -> tuple[pd.DataFrame, dict[str, dict[Any, list[str]]]]:
        if self.sources is None:
            raise RuntimeError("fit the recommender first")
        return candidates_for(
            self.sources, user_ids, reference_time, self.config.candidates_per_source
        )

    def order_scores(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        """The ranker's scores of the candidates, or the fallback source's order when
        validation said the ranker is not better."""
        if self.fallback is not None:
            return fallback_scores(frame, self.fallback)
        if self.ranker is None:
            raise RuntimeError("fit the recommender first")
        return self.ranker.predict(frame)

    def rank(self, frame: pd.DataFrame, k: int) -> dict[Any, list[str]]:
        return ranked_lists(frame, self.order_scores(frame), k)

    def recommend(
        self, user_ids: pd.Index, k: int = 50, reference_time: pd.Series | float | None = None
    ) -> pd.DataFrame:
        """Top-k per viewer as rows (user_id, item_id, rank, source); unseen items only.
        ``source`` is the candidate generator that brought the item (``SOURCE_LABELS``:
        the source that ranked it highest in its own list)."""
        frame, _ = self.candidates(user_ids, reference_time)
        if self.fallback is not None:  # the list is the fallback source's own
            mine = frame[f"{self.fallback}_rank"] < self.config.candidates_per_source
            frame["origin"] = frame["origin"].where(~mine, SOURCE_LABELS[self.fallback])
        top = ranked_rows(
            frame[["user_id", "item_id", "item_idx", "origin"]], self.order_scores(frame), k
        )
        out = top.rename(columns={"origin": "source"})[["user_id", "item_id", "rank", "source"]]
        return out.reset_index(drop=True)

    def more_like_this(self, item_id: str, n: int = 10) -> list[str]:
        """Co-watch neighbours of an item, topped up by content neighbours."""
        if self.sources is None:
            raise RuntimeError("fit the recommender first")
        ids = self.sources.data.item_ids
        idx = int(ids.get_loc(item_id))
        found: list[int] = list(self.sources.cowatch.more_like_this(idx, n))
        extra: IntArray = self.sources.content.more_like_this(idx, 2 * n)
        found += [int(i) for i in extra if int(i) not in found and int(i) != idx]
        return [str(ids[i]) for i in found[:n]]

    def related(self, catalog: pd.DataFrame, params: RelatedParams | None = None) -> pd.DataFrame:
        """ "More like this" for every item of ``catalog`` (``item_id, tags[, title]``):
        rows ``item_id, rank, related_item_id, score, source`` (``models.related``)."""
        if self.sources is None:
            raise RuntimeError("fit the recommender first")
        return related_videos(
            catalog,
            self.sources.data.item_ids,
            self.sources.cowatch.similarity,
            self.sources.lightfm.item_embeddings,
            params or RelatedParams(title_weight=self.config.content.title_weight),
        )

    def trending(
        self,
        interactions: pd.DataFrame,
        catalog: pd.DataFrame,
        regions: tuple[str, ...],
        n: int = 50,
        at: float | None = None,
    ) -> pd.DataFrame:
        """Regional trending over ``interactions`` (typically fresher than the training
        data) with this model's tuned half-life, restricted to ``catalog``'s items: rows
        ``region, rank, item_id, score`` for each region and ``global``. ``at`` defaults to
        the end of the hour of the last interaction."""
        data = TrainingData.build(
            interactions, catalog, self.config.positive_threshold, self.config.negative_weight
        )
        source = Trending(data, self.config.trending)
        if at is None:
            at = float(interactions["timestamp"].max()) + source.params.resolution_seconds
        allowed = data.item_ids.isin(pd.Index(catalog["item_id"].astype(str)))
        lists = trending_lists(source, at, regions, n, np.asarray(allowed))
        rows = [
            (region, rank + 1, str(data.item_ids[i]), score)
            for region, items in lists.items()
            for rank, (i, score) in enumerate(items)
        ]
        return pd.DataFrame(rows, columns=["region", "rank", "item_id", "score"])

    def save(self, path: Path) -> None:
        with path.open("wb") as out:
            pickle.dump(self, out, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(path: Path) -> Recommender:
        with path.open("rb") as src:
            obj = pickle.load(src)  # noqa: S301 - our own artefact, never user input
        if not isinstance(obj, Recommender):
            raise TypeError(f"{path} does not hold a Recommender")
        return obj
