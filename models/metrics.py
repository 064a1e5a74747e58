"""Top-K ranking metrics with binary relevance.

Each per-user function takes the recommended list (best first) and the set of relevant
items; ``evaluate_lists`` averages over viewers. Conventions (the usual ones, stated
because libraries differ):

* NDCG@K: DCG = sum of 1/log2(rank+1) over hits in the top K; the ideal DCG puts
  min(K, |relevant|) hits first.
* recall@K: hits in the top K / |relevant| (not capped at K: with many relevant items
  recall@10 stays low, which is what the number should say).
* AP@K: sum over hits of precision at that rank, divided by min(K, |relevant|); MAP is
  its mean over viewers.
* catalogue coverage: distinct items recommended in anyone's top K / catalogue size.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any


def ndcg_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(r + 2) for r, item in enumerate(recommended[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(relevant))))
    return dcg / ideal


def recall_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    if not relevant:
        return 0.0
    return sum(1 for item in recommended[:k] if item in relevant) / len(relevant)


def average_precision_at_k(recommended: Sequence[Any], relevant: Collection[Any], k: int) -> float:
    if not relevant:
        return 0.0
    hits = 0
    total = 0.0
    for rank, item in enumerate(recommended[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / rank
    return total / min(k, len(relevant))


def catalogue_coverage(lists: Mapping[Any, Sequence[Any]], catalogue_size: int, k: int) -> float:
    if catalogue_size <= 0:
        return 0.0
    shown = {item for items in lists.values() for item in items[:k]}
    return len(shown) / catalogue_size


def evaluate_lists(
    lists: Mapping[Any, Sequence[Any]],
    truth: Mapping[Any, Collection[Any]],
    catalogue_size: int,
    k: int = 10,
    recall_ks: Sequence[int] = (10, 50),
) -> dict[str, float]:
    """Mean metrics over the viewers in ``truth``; a viewer with no list scores zero."""
    users = [u for u, rel in truth.items() if rel]
    if not users:
        raise ValueError("no viewer with relevant items to evaluate")
    n = len(users)
    out = {
        f"ndcg@{k}": sum(ndcg_at_k(lists.get(u, ()), truth[u], k) for u in users) / n,
        f"map@{k}": sum(average_precision_at_k(lists.get(u, ()), truth[u], k) for u in users) / n,
    }
    for rk in recall_ks:
        out[f"recall@{rk}"] = sum(recall_at_k(lists.get(u, ()), truth[u], rk) for u in users) / n
    out[f"coverage@{k}"] = catalogue_coverage(
        {u: lists.get(u, ()) for u in users}, catalogue_size, k
    )
    out["users"] = float(n)
    return out
