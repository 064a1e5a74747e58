"""Truth agreement: the metric against hand-computed values, the true fit against the
simulator's own, and the recommender against its baselines on a generated history."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from benchmarks._recs_history import simulate_interactions
from models import datasets as ds
from models.candidates.lightfm_cf import LightFMParams
from models.pipeline import PipelineConfig, Recommender
from vidflow.recs.truth import TrueTastes, agreement, flat_metrics, holdout_agreement
from vidflow.traffic.model import truth

TRUTH = {
    "topics": {"music": [], "news": []},
    "viewers": [
        {"user_id": "u1", "preferences": {"music": 0.8, "news": 0.2}},
        {"user_id": "u2", "preferences": {"news": 1.0}},
    ],
    "videos": [
        {"video_id": "m", "topics": {"music": 1.0}},
        {"video_id": "n", "topics": {"news": 1.0}},
        {"video_id": "mn", "topics": {"music": 0.5, "news": 0.5}},
    ],
}


def test_true_fit_is_preference_dot_topics_over_the_top_preference() -> None:
    tastes = TrueTastes.from_truth(TRUTH)
    fit = tastes.fit(["u1", "u2", "stranger"], ["m", "n", "mn", "unknown"])
    # u1: m = 0.8/0.8 = 1, n = 0.2/0.8 = 0.25, mn = (0.4 + 0.1)/0.8 = 0.625
    assert fit[0, :3] == pytest.approx([1.0, 0.25, 0.625])
    assert fit[1, :3] == pytest.approx([0.0, 1.0, 0.5])
    assert np.isnan(fit[2]).all() and np.isnan(fit[:, 3]).all()
    with pytest.raises(ValueError, match="truth"):
        TrueTastes.from_truth({"viewers": []})


def test_agreement_by_hand() -> None:
    fit = np.array([[1.0, 0.25, 0.625], [0.0, 1.0, 0.5]])
    eligible = np.array([[True, True, True], [True, True, False]])  # u2 saw "mn"
    lists = {"good": {"u1": ["m", "mn"], "u2": ["n", "mn", "m"]}, "bad": {"u1": ["n"]}}
    out = agreement(lists, fit, eligible, ["u1", "u2"], ["m", "n", "mn"], k=2)
    d1 = 1 / np.log2(3)
    # good: u1 (1 + 0.625)/2, u2 "mn" is not eligible: n, m -> (1 + 0)/2
    assert out["fit@2"]["good"] == pytest.approx(((1.625 / 2) + 0.5) / 2)
    # ideal u1: 1, 0.625; u2: 1, 0 -> good is ideal for both
    assert out["ndcg@2"]["good"] == pytest.approx(1.0)
    # bad: u1 gets n (0.25) -> 0.25 / (1 + 0.625 d1); u2 gets nothing -> 0
    assert out["ndcg@2"]["bad"] == pytest.approx((0.25 / (1 + 0.625 * d1)) / 2)
    assert out["fit@2"]["bad"] == pytest.approx((0.25 + 0.0) / 2)
    # random: expected fit = mean eligible fit; ndcg = mean * (1 + d1) / ideal
    assert out["fit@2"]["random"] == pytest.approx((1.875 / 3 + 0.5) / 2)
    expected = ((1.875 / 3) * (1 + d1) / (1 + 0.625 * d1) + 0.5 * (1 + d1) / 1.0) / 2
    assert out["ndcg@2"]["random"] == pytest.approx(expected)
    assert out["oracle_fit@2"] == pytest.approx((1.625 / 2 + 0.5) / 2)
    assert flat_metrics(out)["truth_ndcg_at_2_good"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def history() -> object:
    return simulate_interactions(seed=7, viewers=400, videos=200, days=21)


def test_true_fit_matches_the_simulators_own(history: object) -> None:
    h = history
    tastes = TrueTastes.from_truth(truth(h.population))  # type: ignore[attr-defined]
    signed_in = h.playbacks.dropna(subset=["user_id"])  # type: ignore[attr-defined]
    sample = signed_in.sample(300, random_state=1)
    fit = tastes.fit(list(sample["user_id"]), list(sample["item_id"]))
    ours = fit[np.arange(len(sample)), np.arange(len(sample))]
    # the truth file rounds preferences to 4 decimals and drops those under 0.005
    assert ours == pytest.approx(sample["fit"].to_numpy(), abs=0.03)


def test_recommender_agrees_with_the_truth_better_than_its_baselines(history: object) -> None:
    h = history
    inter = ds.validate_interactions(h.interactions)  # type: ignore[attr-defined]
    items = ds.validate_items(h.items)  # type: ignore[attr-defined]
    split = ds.split(inter, "per-user", 30.0)
    config = PipelineConfig(
        positive_threshold=30.0,
        tune=False,
        lightfm=LightFMParams(no_components=16, epochs=10),
        ranker_folds=3,
    )
    started = time.perf_counter()
    recommender = Recommender(config).fit(split.train, items)
    tastes = TrueTastes.from_truth(truth(h.population))  # type: ignore[attr-defined]
    out = holdout_agreement(recommender, split, tastes, k=10)
    assert out["viewers"] >= 200
    fit, ndcg = out["fit@10"], out["ndcg@10"]
    # the viewers' tastes drive what they watch: the model's lists must fit them better
    # than one list for everyone, and far better than chance; below the oracle
    assert fit["pipeline"] > fit["popularity"] and ndcg["pipeline"] > ndcg["popularity"]
    assert fit["pipeline"] > fit["random"] + 0.05
    assert out["oracle_fit@10"] >= fit["pipeline"]
    assert time.perf_counter() - started < 600
    print(pd.DataFrame({"fit@10": fit, "ndcg@10": ndcg}))
