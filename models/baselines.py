"""Baselines the pipeline must beat: global popularity, regional trending, plain
LightFM and EASE.

EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019) is the
closed form of an item x item linear model with a zero diagonal:

    G = X^T X + lambda I,   P = G^-1,   B = I - P / diag(P)  (column-wise),

and a viewer's scores are x_u B. It is the strongest simple baseline on MovieLens-like
data. Only items with at least ``min_support`` training viewers enter the inverse (the
rest cannot be learned from co-occurrence anyway and would make G needlessly large);
lambda is chosen on the validation split by ``models.pipeline``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from models.candidates.lightfm_cf import LightFMParams, LightFMSource
from models.candidates.trending import Trending, TrendingParams
from models.training_data import FloatArray, TrainingData, UserBatch, sparse_rows


class Popularity:
    """Global popularity: the number of positive viewers of each item in train, the
    same list for everyone."""

    name = "popularity"

    def __init__(self, data: TrainingData) -> None:
        positive = data.interactions["weight"] >= data.positive_threshold
        counts = np.bincount(
            data.interactions.loc[positive, "item_idx"].to_numpy(), minlength=data.n_items
        )
        self.counts = counts.astype(np.float32)

    def scores(self, batch: UserBatch) -> FloatArray:
        return np.tile(self.counts, (len(batch), 1))


def ease_weights(gram: npt.NDArray[np.float64], lam: float) -> npt.NDArray[np.float64]:
    """The EASE item x item matrix B from the Gram matrix X^T X."""
    g = gram.copy()
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


@dataclass(frozen=True)
class EaseParams:
    lam: float = 200.0
    min_support: int = 2


class Ease:
    """Fitted EASE (``name = "ease"``). ``scores`` uses the binary history;
    ``profile_scores`` any users x items weighting of it (e.g. recency weights)."""

    name = "ease"

    def __init__(self, data: TrainingData, params: EaseParams | None = None) -> None:
        self.params = params or EaseParams()
        binary = data.signal.copy()
        binary.data[:] = 1.0
        support = np.asarray(binary.sum(axis=0)).ravel()
        self.columns = np.flatnonzero(support >= self.params.min_support)
        self.n_items = data.n_items
        self._binary = binary
        x = binary[:, self.columns]
        self.gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
        self.weights = ease_weights(self.gram, self.params.lam).astype(np.float32)

    def with_lambda(self, lam: float) -> Ease:
        """The same model with another lambda (reuses the Gram matrix)."""
        other = object.__new__(Ease)
        other.__dict__.update(self.__dict__)
        other.params = EaseParams(lam=lam, min_support=self.params.min_support)
        other.weights = ease_weights(self.gram, lam).astype(np.float32)
        return other

    def profile_scores(self, profile: sp.csr_matrix) -> FloatArray:
        x = profile[:, self.columns]
        out = np.full((profile.shape[0], self.n_items), -1e9, dtype=np.float32)
        out[:, self.columns] = np.asarray(x @ self.weights, dtype=np.float32)
        return out

    def scores(self, batch: UserBatch) -> FloatArray:
        return self.profile_scores(sparse_rows(self._binary, batch.users))


def regional_trending(data: TrainingData, params: TrendingParams | None = None) -> Trending:
    """The trending candidate source used alone."""
    return Trending(data, params)


def plain_lightfm(data: TrainingData, params: LightFMParams | None = None) -> LightFMSource:
    """LightFM WARP used alone (the candidate source, hybrid with tags)."""
    return LightFMSource(data, params)
