"""Co-watch, "watched X, then Y": item-to-item similarity from viewing order.

Within each viewer's history (time order), an item X followed by Y at distance d
(1 <= d <= ``window``, and within ``max_gap_seconds`` when set, i.e. the same session)
adds ``0.5 ** (d - 1)`` to X->Y and ``backward`` times that to Y->X. Counts are divided by
``pop(X) ** alpha * pop(Y) ** (1 - alpha)`` (alpha = 0.5 is cosine-like; a lower alpha
penalises popular targets more) and each item keeps its ``neighbours`` best.

A viewer's scores are the similarities summed over their history with recency weights
(``0.5 ** (position from the end / recent_half_life)``): what they watched last counts
most, which is what an order-free model such as EASE cannot express. ``more_like_this``
is the same similarity read for one item (a watch page).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.training_data import FloatArray, IntArray, TrainingData, UserBatch, sparse_rows


@dataclass(frozen=True)
class CoWatchParams:
    window: int = 5
    backward: float = 0.5
    alpha: float = 0.5
    neighbours: int = 200
    recent_half_life: float = 5.0
    max_gap_seconds: float | None = None


def keep_top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row of a CSR matrix."""
    matrix = matrix.tocsr()
    indptr, data = matrix.indptr, matrix.data
    keep = np.zeros(len(data), dtype=bool)
    for row in range(matrix.shape[0]):
        lo, hi = indptr[row], indptr[row + 1]
        if hi - lo <= k:
            keep[lo:hi] = True
        else:
            best = np.argpartition(-data[lo:hi], k - 1)[:k]
            keep[lo + best] = True
    out = matrix.copy()
    out.data = np.where(keep, out.data, 0.0).astype(out.data.dtype)
    out.eliminate_zeros()
    return out


def cowatch_matrix(data: TrainingData, params: CoWatchParams) -> sp.csr_matrix:
    """The normalised, pruned item x item co-watch similarity."""
    hist = data.history()
    users = hist["user_idx"].to_numpy()
    items = hist["item_idx"].to_numpy()
    times = hist["timestamp"].to_numpy()
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    vals: list[npt.NDArray[np.float64]] = []
    for d in range(1, params.window + 1):
        same = users[:-d] == users[d:]
        if params.max_gap_seconds is not None:
            same &= (times[d:] - times[:-d]) <= params.max_gap_seconds
        a, b = items[:-d][same], items[d:][same]
        w = np.full(len(a), 0.5 ** (d - 1))
        rows += [a, b]
        cols += [b, a]
        vals += [w, w * params.backward]
    n = data.n_items
    counts = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    counts.sum_duplicates()
    counts.setdiag(0.0)
    counts.eliminate_zeros()
    pop = np.bincount(items, minlength=n).astype(np.float64) + 1.0
    left = sp.diags(pop**-params.alpha)
    right = sp.diags(pop ** -(1.0 - params.alpha))
    similarity = sp.csr_matrix(left @ counts @ right, dtype=np.float32)
    return keep_top_per_row(similarity, params.neighbours)


class CoWatch:
    """Fitted co-watch source (``name = "cowatch"``)."""

    name = "cowatch"

    def __init__(self, data: TrainingData, params: CoWatchParams | None = None) -> None:
        self.params = params or CoWatchParams()
        self.similarity = cowatch_matrix(data, self.params)
        self._profile = data.recency_profile(self.params.recent_half_life)
        self._last = data.recency_profile(1e9, last_n=3)

    def scores(self, batch: UserBatch) -> FloatArray:
        profile = sparse_rows(self._profile, batch.users)
        return np.asarray((profile @ self.similarity).todense(), dtype=np.float32)

    def last_items_scores(self, batch: UserBatch) -> FloatArray:
        """Similarity to the viewer's last three items only (a ranker feature)."""
        profile = sparse_rows(self._last, batch.users)
        return np.asarray((profile @ self.similarity).todense(), dtype=np.float32)

    def more_like_this(self, item: int, n: int = 10) -> IntArray:
        row = self.similarity.getrow(item)
        order = np.argsort(-row.data, kind="stable")[:n]
        found: IntArray = row.indices[order].astype(np.int64)
        return found
