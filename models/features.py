"""Candidates and their ranker features, one batch of viewers at a time.

``Sources`` holds the fitted candidate generators; ``candidate_frame`` merges their
top-N lists for a batch and computes every feature of ``models.ranker`` for each
(viewer, candidate) pair. Everything is a dense batch x items matrix gathered at the
candidate positions, so the cost is a few matrix products per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from models.baselines import Ease
from models.candidates import mask_seen, top_k
from models.candidates.content import Content
from models.candidates.cowatch import CoWatch
from models.candidates.lightfm_cf import LightFMSource
from models.candidates.trending import DAY, Trending
from models.training_data import FloatArray, IntArray, TrainingData, UserBatch, sparse_rows

SOURCE_NAMES = ("lightfm", "cowatch", "ease", "content", "trending")


@dataclass(frozen=True)
class ItemStats:
    """Per-item figures the features read: completion rate, first-seen time and the lift
    on each device and each 4-hour slot of the day (NaN-free arrays over item_idx)."""

    completion_rate: npt.NDArray[np.float32]
    first_seen: npt.NDArray[np.float64]
    device_lift: dict[str, npt.NDArray[np.float32]]
    hour_lift: npt.NDArray[np.float32]  # 6 x n_items
    user_device: npt.NDArray[np.object_] | None
    user_slot: npt.NDArray[np.int64]
    user_activity: npt.NDArray[np.float32]
    user_first: npt.NDArray[np.float64]


def _lift(
    item_idx: IntArray, key: npt.NDArray[np.int64], n_keys: int, n_items: int
) -> npt.NDArray[np.float32]:
    """keys x items: P(key | item) / P(key), smoothed towards 1 for rarely seen items."""
    counts = np.zeros((n_keys, n_items), dtype=np.float64)
    np.add.at(counts, (key, item_idx), 1.0)
    prior = counts.sum(axis=1, keepdims=True) / max(counts.sum(), 1.0)
    per_item = counts.sum(axis=0, keepdims=True)
    smoothed = (counts + 5.0 * prior) / (per_item + 5.0)
    lift: npt.NDArray[np.float32] = (smoothed / np.maximum(prior, 1e-12)).astype(np.float32)
    return lift


def item_stats(data: TrainingData) -> ItemStats:
    df = data.interactions
    n = data.n_items
    items = df["item_idx"].to_numpy()
    views = np.bincount(items, minlength=n).astype(np.float64)
    if (
        "watch_seconds" in df
        and "duration_seconds" in data.items
        and data.items["duration_seconds"].notna().any()
    ):
        duration = data.items["duration_seconds"].to_numpy(np.float64)[items]
        frac = np.clip(df["watch_seconds"].to_numpy(np.float64) / duration, 0.0, 1.0)
        frac = np.nan_to_num(frac, nan=0.0)
    else:
        frac = (df["weight"].to_numpy() >= data.positive_threshold).astype(np.float64)
    done = np.bincount(items, weights=frac, minlength=n)
    global_rate = float(frac.mean()) if len(frac) else 0.0
    completion = ((done + 5.0 * global_rate) / (views + 5.0)).astype(np.float32)
    first = np.full(n, np.nan)
    seen_first = df.groupby("item_idx")["timestamp"].min()
    first[seen_first.index.to_numpy()] = seen_first.to_numpy()
    if "published_at" in data.items:
        published = data.items["published_at"].to_numpy(np.float64)
        first = np.where(np.isfinite(published), published, first)
    slot = ((df["timestamp"].to_numpy() % DAY) // (4 * 3600)).astype(np.int64)
    hour_lift = _lift(items, slot, 6, n)
    users = df["user_idx"].to_numpy()
    user_slot = pd.Series(slot).groupby(users).agg(lambda s: s.value_counts().index[0])
    device_lift: dict[str, npt.NDArray[np.float32]] = {}
    user_device = None
    if "device" in df:
        codes, names = pd.factorize(df["device"])
        lift = _lift(items, codes.astype(np.int64), len(names), n)
        device_lift = {str(name): lift[i] for i, name in enumerate(names)}
        top = df.groupby("user_idx")["device"].agg(lambda s: s.value_counts().index[0])
        user_device = np.full(data.n_users, "unknown", dtype=object)
        user_device[top.index.to_numpy()] = top.to_numpy()
    activity = np.log1p(np.bincount(users, minlength=data.n_users)).astype(np.float32)
    user_first = df.groupby("user_idx")["timestamp"].min().reindex(range(data.n_users))
    return ItemStats(
        completion_rate=completion,
        first_seen=first,
        device_lift=device_lift,
        hour_lift=hour_lift,
        user_device=user_device,
        user_slot=user_slot.reindex(range(data.n_users)).fillna(0).to_numpy(np.int64),
        user_activity=activity,
        user_first=user_first.to_numpy(np.float64),
    )


@dataclass
class Sources:
    """The fitted candidate generators of one training set, plus what features need."""

    data: TrainingData
    lightfm: LightFMSource
    cowatch: CoWatch
    ease: Ease
    ease_half_life: float
    content: Content
    trending: Trending
    stats: ItemStats
    ease_profile: sp.csr_matrix  # users x items, recency-weighted history
    last3_profile: sp.csr_matrix  # users x items, the last three items only

    def source_scores(self, batch: UserBatch) -> dict[str, FloatArray]:
        ease_profile = sparse_rows(self.ease_profile, batch.users)
        return {
            "lightfm": self.lightfm.scores(batch),
            "cowatch": self.cowatch.scores(batch),
            "ease": self.ease.profile_scores(ease_profile),
            "content": self.content.scores(batch),
            "trending": self.trending.scores(batch),
        }


#: The candidate generator each source stands for in the catalog's ``source`` column.
#: EASE is collaborative filtering (item-item weights learnt from all histories).
SOURCE_LABELS = {
    "lightfm": "collaborative",
    "cowatch": "co-watch",
    "ease": "collaborative",
    "content": "content",
    "trending": "trending",
}


def candidate_frame(
    sources: Sources, batch: UserBatch, user_ids: pd.Index, per_source: int
) -> tuple[pd.DataFrame, dict[str, list[IntArray]]]:
    """Merged candidates with all features for one batch, and each source's own top
    ``per_source`` list per viewer (item indexes), for per-source recall."""
    data, stats = sources.data, sources.stats
    scores = sources.source_scores(batch)
    lists: dict[str, list[IntArray]] = {}
    # per (viewer, item): its rank in each source's list (per_source when not in it), and
    # the source that brought it: the best rank among the sources that PROPOSE it, i.e.
    # score it above their worst (a source with nothing on the viewer, such as co-watch
    # on an empty history, fills its list with ties that propose nothing), and know the
    # viewer (for a viewer unknown to the model only trending does); ties: source order
    ranks = {name: np.full((len(batch), data.n_items), per_source, np.int32) for name in scores}
    never = 2 * per_source + 2
    best_key = np.full((len(batch), data.n_items), never, dtype=np.int32)
    origin = np.full((len(batch), data.n_items), -1, dtype=np.int8)
    for number, (name, s) in enumerate(scores.items()):
        mask_seen(s, data, batch.users)
        s[s <= -1e8] = -np.inf  # items a source cannot score (EASE below its support)
        top = top_k(s, per_source)
        ok = np.isfinite(np.take_along_axis(s, top, axis=1))
        lists[name] = [row[m] for row, m in zip(top, ok, strict=True)]
        rows = np.repeat(np.arange(len(batch)), ok.sum(axis=1))
        cols = top[ok]
        positions = np.broadcast_to(np.arange(top.shape[1], dtype=np.int32), top.shape)[ok]
        ranks[name][rows, cols] = positions
        worst = np.min(np.where(np.isfinite(s), s, np.inf), axis=1)
        proposes = s[rows, cols] > worst[rows]
        if name != "trending":
            proposes &= batch.users[rows] >= 0
        key = positions + np.where(proposes, 0, per_source + 1).astype(np.int32)
        better = key < best_key[rows, cols]
        best_key[rows[better], cols[better]] = key[better]
        origin[rows[better], cols[better]] = number
    r, c = np.nonzero(origin >= 0)
    frame = pd.DataFrame({"user_id": np.asarray(user_ids)[r], "item_idx": c})
    names = list(scores)
    frame["origin"] = np.asarray([SOURCE_LABELS[n] for n in names], dtype=object)[origin[r, c]]
    for name, s in scores.items():
        vals = s[r, c]
        frame[f"{name}_score"] = np.where(np.isfinite(vals), vals, np.nan)
        # the rank in the source's own top list; one past its end when not in it (a full
        # sort of every row for the exact rank cost more than the rest of scoring)
        frame[f"{name}_rank"] = ranks[name][r, c].astype(np.float32)
        best = np.nanmax(np.where(np.isfinite(s), s, np.nan), axis=1)
        frame[f"{name}_rel"] = frame[f"{name}_score"] - best[r]
    plain = sources.ease.scores(batch)[r, c]
    frame["ease_plain_score"] = np.where(plain > -1e8, plain, np.nan)
    times = batch.reference_time
    long = sources.trending.scores(batch, sources.trending.params.half_life_days * 4)
    short = sources.trending.scores(batch, max(sources.trending.params.half_life_days / 4, 1.0))
    frame["pop_region"] = scores["trending"][r, c]
    frame["pop_trend"] = np.log((short[r, c] + 1e-7) / (long[r, c] + 1e-7))
    frame["item_age_days"] = (times[r] - stats.first_seen[c]) / DAY
    frame["completion_rate"] = stats.completion_rate[c]
    users = batch.users[r]
    known = users >= 0
    safe = np.maximum(users, 0)
    frame["user_activity"] = np.where(known, stats.user_activity[safe], 0.0)
    frame["user_tenure_days"] = np.where(known, (times[r] - stats.user_first[safe]) / DAY, 0.0)
    frame["topic_affinity"] = sources.content.topic_affinity(users, c.astype(np.int64))
    frame["cowatch_last3"] = sources.cowatch.last_items_scores(batch)[r, c]
    last3 = sparse_rows(sources.last3_profile, batch.users)
    ease_last = sources.ease.profile_scores(last3)[r, c]
    frame["ease_last3"] = np.where(ease_last > -1e8, ease_last, np.nan)
    frame["hour_lift"] = stats.hour_lift[stats.user_slot[safe], c]
    if stats.user_device is not None:
        lift = np.full(len(frame), np.nan, dtype=np.float32)
        devices = stats.user_device[safe]
        for device, values in stats.device_lift.items():
            rows = devices == device
            lift[rows] = values[c[rows]]
        frame["device_lift"] = lift
    else:
        frame["device_lift"] = np.nan
    frame["item_id"] = np.asarray(data.item_ids)[c]
    return frame, lists
