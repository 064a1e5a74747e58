"""Content: tag and title similarity to what the viewer watched.

Items are TF-IDF vectors over their tags (``tag:`` tokens) and title words (``word:``
tokens, weighted ``title_weight``), L2-normalised. A viewer's profile is the
recency-weighted sum of the vectors of their history; an item's score is the cosine
between the profile and the item. It needs no co-watching, so a new video with tags is
scored from its first minute. ``topic_affinity`` (tags only, no IDF) is a ranker feature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from models.training_data import FloatArray, IntArray, TrainingData, UserBatch, sparse_rows

WORD = re.compile(r"[a-z0-9]{3,}")
STOP = frozenset({"the", "and", "for", "with", "from", "der", "die", "das", "les", "une"})


@dataclass(frozen=True)
class ContentParams:
    title_weight: float = 0.3
    recent_half_life: float = 20.0


def title_words(title: str) -> list[str]:
    # a trailing "(1995)" is a year, not a topic
    return [w for w in WORD.findall(re.sub(r"\(\d{4}\)\s*$", "", title.lower())) if w not in STOP]


def item_term_matrix(items: pd.DataFrame, title_weight: float) -> tuple[sp.csr_matrix, list[str]]:
    """Items x terms TF-IDF (rows L2-normalised) and the term names."""
    docs: list[list[tuple[str, float]]] = []
    titles = items["title"] if "title" in items else pd.Series([""] * len(items))
    for tags, title in zip(items["tags"], titles, strict=True):
        terms = [(f"tag:{t}", 1.0) for t in tags]
        if title_weight > 0 and isinstance(title, str):
            terms += [(f"word:{w}", title_weight) for w in title_words(title)]
        docs.append(terms)
    vocab: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for row, terms in enumerate(docs):
        for term, weight in terms:
            rows.append(row)
            cols.append(vocab.setdefault(term, len(vocab)))
            vals.append(weight)
    shape = (len(items), max(len(vocab), 1))
    tf = sp.csr_matrix((vals, (rows, cols)), shape=shape, dtype=np.float32)
    tf.sum_duplicates()
    df = np.bincount(tf.indices, minlength=shape[1])
    idf = np.log((1 + len(items)) / (1 + df)) + 1.0
    tfidf = sp.csr_matrix(tf @ sp.diags(idf.astype(np.float32)))
    names = sorted(vocab, key=vocab.__getitem__)
    return sp.csr_matrix(normalize(tfidf)), names


class Content:
    """Fitted content source (``name = "content"``)."""

    name = "content"

    def __init__(self, data: TrainingData, params: ContentParams | None = None) -> None:
        self.params = params or ContentParams()
        self.item_vectors, self.terms = item_term_matrix(data.items, self.params.title_weight)
        profile = data.recency_profile(self.params.recent_half_life)
        self._user_vectors = sp.csr_matrix(normalize(profile @ self.item_vectors))
        tags = self._tag_matrix(data.items)
        self._item_tags = sp.csr_matrix(normalize(tags, norm="l1"))
        self._user_tags = sp.csr_matrix(normalize(profile @ tags, norm="l1"))

    @staticmethod
    def _tag_matrix(items: pd.DataFrame) -> sp.csr_matrix:
        vocab: dict[str, int] = {}
        rows, cols = [], []
        for row, tags in enumerate(items["tags"]):
            for t in tags:
                rows.append(row)
                cols.append(vocab.setdefault(t, len(vocab)))
        shape = (len(items), max(len(vocab), 1))
        return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)

    def scores(self, batch: UserBatch) -> FloatArray:
        users = sparse_rows(self._user_vectors, batch.users)
        return np.asarray((users @ self.item_vectors.T).todense(), dtype=np.float32)

    def topic_affinity(self, users: IntArray, items: IntArray) -> FloatArray:
        """Per (user, item) pair: the share of the viewer's (recency-weighted) tag mass on
        the item's tags, averaged over the item's tags."""
        u = sparse_rows(self._user_tags, users)
        it = self._item_tags[items]
        return np.asarray(u.multiply(it).sum(axis=1), dtype=np.float32).ravel()

    def more_like_this(self, item: int, n: int = 10) -> IntArray:
        sims = np.asarray((self.item_vectors @ self.item_vectors[item].T).todense()).ravel()
        sims[item] = -np.inf
        return np.argsort(-sims, kind="stable")[:n].astype(np.int64)
