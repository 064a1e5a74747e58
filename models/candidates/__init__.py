"""Candidate generators: cheap models that each propose items for a viewer.

Every source is fitted on a ``TrainingData`` and answers ``scores(batch)``: a dense
``len(batch) x n_items`` float32 matrix, higher is better. ``top_k`` turns scores into
candidate lists with a partial sort. The ranker (``models.ranker``) merges the lists.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from models.topk import chunked_top_k
from models.training_data import FloatArray, IntArray, TrainingData, UserBatch, sparse_rows


class CandidateSource(Protocol):
    name: str

    def scores(self, batch: UserBatch) -> FloatArray: ...


def top_k(scores: FloatArray, k: int) -> IntArray:
    """Column indexes of the k best scores per row, best first, ties by lower index
    (``models.topk``: a chunk-maximum bound, then a sort of the few candidates).
    ``-inf`` marks items that must not be shown; rows with fewer allowed items keep them
    at the end, to be dropped by ``finite_lists``."""
    k = min(k, scores.shape[1])
    if k == 0:
        return np.empty((scores.shape[0], 0), dtype=np.int64)
    return chunked_top_k(scores, k)


def mask_seen(scores: FloatArray, data: TrainingData, users: IntArray) -> FloatArray:
    """Set the items each viewer already watched to -inf (in place)."""
    seen = sparse_rows(data.seen, users).tocoo()
    scores[seen.row, seen.col] = -np.inf
    return scores


def finite_lists(scores: FloatArray, k: int) -> list[npt.NDArray[np.int64]]:
    """Per row, the top-k item indexes whose scores are finite."""
    idx = top_k(scores, k)
    vals = np.take_along_axis(scores, idx, axis=1)
    return [row[np.isfinite(v)] for row, v in zip(idx, vals, strict=True)]
