"""Interactions encoded once for every model: id indexes, sparse matrices, histories.

``TrainingData.build`` turns the canonical frames of ``models.datasets`` into integer
indexes and the matrices the candidate sources share. ``UserBatch`` is who is being
recommended for, and when: the reference time matters because popularity is computed
as of that moment (a viewer in 1998 is not shown 2015's hits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class TrainingData:
    """Train interactions with ``user_idx``/``item_idx`` columns and the matrices built
    from them. ``signal`` is the implicit feedback the models learn from: the engagement
    of positives (normalised so the median positive is 1) and ``negative_weight`` for
    interactions below the positive threshold (0 drops them)."""

    user_ids: pd.Index
    item_ids: pd.Index
    interactions: pd.DataFrame
    items: pd.DataFrame
    positive_threshold: float
    seen: sp.csr_matrix
    signal: sp.csr_matrix
    now: float

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @staticmethod
    def build(
        interactions: pd.DataFrame,
        items: pd.DataFrame,
        positive_threshold: float,
        negative_weight: float = 0.0,
    ) -> TrainingData:
        known = pd.Index(items["item_id"].astype(str))
        extra = pd.Index(interactions["item_id"].unique()).difference(known)
        item_ids = known.append(extra)
        items_aligned = (
            items.set_index("item_id").reindex(item_ids).rename_axis("item_id").reset_index()
        )
        items_aligned["tags"] = [t if isinstance(t, tuple) else () for t in items_aligned["tags"]]
        user_ids = pd.Index(interactions["user_id"].unique())
        df = interactions.copy()
        df["user_idx"] = user_ids.get_indexer(df["user_id"]).astype(np.int64)
        df["item_idx"] = item_ids.get_indexer(df["item_id"]).astype(np.int64)
        df = df.sort_values(["user_idx", "timestamp"], kind="stable").reset_index(drop=True)
        engagement = engagement_of(df)
        is_pos = df["weight"].to_numpy() >= positive_threshold
        scale = float(np.median(engagement[is_pos])) if is_pos.any() else 1.0
        scale = scale if scale > 0 else 1.0
        conf = np.where(is_pos, np.clip(engagement / scale, 0.25, 4.0), negative_weight)
        df["signal"] = conf.astype(np.float32)
        shape = (len(user_ids), len(item_ids))
        rows, cols = df["user_idx"].to_numpy(), df["item_idx"].to_numpy()
        seen = sp.csr_matrix((np.ones(len(df), np.float32), (rows, cols)), shape=shape)
        seen.data[:] = 1.0  # repeated views count once
        keep = conf > 0
        signal = sp.csr_matrix(
            (conf[keep].astype(np.float32), (rows[keep], cols[keep])), shape=shape
        )
        signal.sum_duplicates()
        return TrainingData(
            user_ids=user_ids,
            item_ids=item_ids,
            interactions=df,
            items=items_aligned,
            positive_threshold=positive_threshold,
            seen=seen,
            signal=signal,
            now=float(df["timestamp"].max()),
        )

    def history(self) -> pd.DataFrame:
        """The signal interactions in time order per user (user_idx, item_idx, timestamp,
        signal, position from the end of the user's history: 0 = most recent)."""
        df = self.interactions[self.interactions["signal"] > 0]
        df = df[["user_idx", "item_idx", "timestamp", "signal"]].copy()
        df["from_end"] = df.groupby("user_idx", sort=False).cumcount(ascending=False)
        return df

    def recency_profile(self, half_life_items: float, last_n: int | None = None) -> sp.csr_matrix:
        """Users x items: each history item weighted 0.5 ** (position from the end /
        half-life), times its signal; ``last_n`` keeps only the most recent items.
        A large half-life gives the order-free history of classic models."""
        hist = self.history()
        if last_n is not None:
            hist = hist[hist["from_end"] < last_n]
        decay = np.power(0.5, hist["from_end"].to_numpy() / max(half_life_items, 1e-6))
        values = (decay * hist["signal"].to_numpy()).astype(np.float32)
        matrix = sp.csr_matrix(
            (values, (hist["user_idx"].to_numpy(), hist["item_idx"].to_numpy())),
            shape=(self.n_users, self.n_items),
        )
        matrix.sum_duplicates()
        return matrix

    def user_regions(self) -> npt.NDArray[np.object_] | None:
        """Each user's most frequent region, or None when there is no region column."""
        if "region" not in self.interactions:
            return None
        counts = self.interactions.groupby(["user_idx", "region"]).size().reset_index(name="n")
        top = counts.sort_values("n", ascending=False).drop_duplicates("user_idx")
        out = np.full(self.n_users, "unknown", dtype=object)
        out[top["user_idx"].to_numpy()] = top["region"].to_numpy()
        return out


def engagement_of(df: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Watch time when the data has it, else the weight."""
    if "watch_seconds" in df and df["watch_seconds"].notna().any():
        watch = df["watch_seconds"].fillna(df["watch_seconds"].median()).to_numpy(np.float64)
        clipped: npt.NDArray[np.float64] = np.maximum(watch, 0.0)
        return clipped
    weight: npt.NDArray[np.float64] = df["weight"].to_numpy(np.float64)
    return weight


@dataclass(frozen=True)
class UserBatch:
    """Who to recommend for: user indexes into ``TrainingData.user_ids`` (-1 = unknown,
    a cold viewer), the reference time of each, and each one's region (or None)."""

    users: IntArray
    reference_time: npt.NDArray[np.float64]
    regions: npt.NDArray[np.object_] | None = None

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: slice) -> UserBatch:
        regions = None if self.regions is None else self.regions[rows]
        return UserBatch(self.users[rows], self.reference_time[rows], regions)


def batch_for(
    data: TrainingData, user_ids: pd.Index, reference_time: pd.Series | float | None = None
) -> UserBatch:
    """A batch for the given external user ids; reference times default to the end of
    the training data, regions to each user's most frequent one."""
    users = data.user_ids.get_indexer(user_ids).astype(np.int64)
    if reference_time is None:
        times = np.full(len(users), data.now, dtype=np.float64)
    elif isinstance(reference_time, float | int):
        times = np.full(len(users), float(reference_time), dtype=np.float64)
    else:
        times = reference_time.reindex(user_ids).fillna(data.now).to_numpy(np.float64)
    all_regions = data.user_regions()
    regions = None
    if all_regions is not None:
        regions = np.where(users >= 0, all_regions[np.maximum(users, 0)], "unknown")
    return UserBatch(users, times, regions)


def sparse_rows(matrix: sp.csr_matrix, users: IntArray) -> sp.csr_matrix:
    """Rows of a users x items matrix; unknown users (-1) get empty rows."""
    safe = np.maximum(users, 0)
    rows: sp.csr_matrix = matrix[safe]
    if (users < 0).any():
        mask = sp.diags((users >= 0).astype(np.float32))
        rows = sp.csr_matrix(mask @ rows)
    return rows
