"""Ranking metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from models.metrics import (
    average_precision_at_k,
    catalogue_coverage,
    evaluate_lists,
    ndcg_at_k,
    recall_at_k,
)

RECS = ["a", "b", "c", "d"]
RELEVANT = {"b", "d"}


def test_ndcg_hits_at_ranks_two_and_four() -> None:
    # @3: one hit at rank 2 -> 1/log2(3); ideal puts two hits first -> 1 + 1/log2(3)
    assert ndcg_at_k(RECS, RELEVANT, 3) == pytest.approx(0.630930 / 1.630930, abs=1e-6)
    # @4: hits at 2 and 4 -> (1/log2(3) + 1/log2(5)) / (1 + 1/log2(3))
    assert ndcg_at_k(RECS, RELEVANT, 4) == pytest.approx((0.630930 + 0.430677) / 1.630930, abs=1e-6)


def test_ndcg_perfect_and_empty() -> None:
    assert ndcg_at_k(["b", "d", "a"], RELEVANT, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["a", "c"], RELEVANT, 2) == 0.0
    assert ndcg_at_k(RECS, set(), 3) == 0.0


def test_recall_is_not_capped_at_k() -> None:
    assert recall_at_k(RECS, RELEVANT, 3) == 0.5
    assert recall_at_k(RECS, RELEVANT, 4) == 1.0
    assert recall_at_k(["b"], {"b", "x", "y", "z"}, 1) == 0.25


def test_average_precision() -> None:
    # @3: hit at rank 2 (precision 1/2), divided by min(3, 2) = 2
    assert average_precision_at_k(RECS, RELEVANT, 3) == 0.25
    # @4: hits at 2 (1/2) and 4 (2/4) -> (0.5 + 0.5) / 2
    assert average_precision_at_k(RECS, RELEVANT, 4) == 0.5
    assert average_precision_at_k(["b", "d"], RELEVANT, 10) == 1.0


def test_catalogue_coverage_counts_distinct_items_in_top_k() -> None:
    lists = {"u1": ["a", "b", "z"], "u2": ["b", "c"]}
    assert catalogue_coverage(lists, 10, 2) == pytest.approx(0.3)


def test_evaluate_lists_averages_over_viewers_and_scores_missing_lists_as_zero() -> None:
    lists = {"u1": ["b", "d", "a"]}
    truth = {"u1": {"b", "d"}, "u2": {"x"}}
    out = evaluate_lists(lists, truth, catalogue_size=4, k=2, recall_ks=(2,))
    assert out["ndcg@2"] == pytest.approx(0.5)
    assert out["recall@2"] == pytest.approx(0.5)
    assert out["map@2"] == pytest.approx(0.5)
    assert out["coverage@2"] == pytest.approx(0.5)
    assert out["users"] == 2
    assert math.isclose(ndcg_at_k(lists["u1"], truth["u1"], 2), 1.0)


def test_evaluate_lists_needs_a_viewer() -> None:
    with pytest.raises(ValueError, match="no viewer"):
        evaluate_lists({}, {"u": set()}, 3)
