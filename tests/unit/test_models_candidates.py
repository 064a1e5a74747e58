"""Each candidate generator and EASE on tiny frames with an obvious answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import datasets as ds
from models.baselines import Ease, EaseParams, Popularity, ease_weights
from models.candidates import finite_lists, mask_seen, top_k
from models.candidates.content import Content, ContentParams
from models.candidates.cowatch import CoWatch, CoWatchParams
from models.candidates.lightfm_cf import LightFMParams, LightFMSource
from models.candidates.trending import Trending, TrendingParams, decayed_popularity
from models.training_data import TrainingData, UserBatch, batch_for

DAY = 86_400.0


def build(
    rows: list[tuple[str, str, float, float]], tags: dict[str, str], **extra: list[str]
) -> TrainingData:
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "weight"])
    for column, values in extra.items():
        inter[column] = values
    items = pd.DataFrame({"item_id": list(tags), "tags": list(tags.values())})
    items["title"] = [f"Film about {t.split('|')[0]}" for t in tags.values()]
    return TrainingData.build(
        ds.validate_interactions(inter), ds.validate_items(items), positive_threshold=1.0
    )


def test_decayed_popularity_halves_per_half_life_and_ignores_the_future() -> None:
    pop = decayed_popularity(
        item_idx=np.array([0, 1, 1]),
        timestamps=np.array([0.0, DAY, 5 * DAY]),
        weights=np.array([1.0, 1.0, 1.0]),
        n_items=2,
        at=np.array([DAY, 0.0]),
        half_life_seconds=DAY,
    )
    # at t=1d: item0 counted once, one half-life ago (0.5); item1 now (1); t=5d is future
    assert pop[0] == pytest.approx([0.5, 1.0])
    assert pop[1] == pytest.approx([1.0, 0.0])


def test_trending_is_per_region_with_a_global_fallback() -> None:
    rows = [("a", "x", 0.0, 1), ("b", "x", 0.0, 1), ("c", "y", 0.0, 1), ("d", "z", 0.0, 1)]
    data = build(rows, {"x": "t", "y": "t", "z": "t"}, region=["eu", "eu", "us", "apac"])
    trend = Trending(data, TrendingParams(half_life_days=1.0, resolution_seconds=1.0))
    batch = UserBatch(
        np.array([0, 2, -1]), np.zeros(3), np.array(["eu", "us", "unknown"], dtype=object)
    )
    scores = trend.scores(batch)
    ids = list(data.item_ids)
    assert ids[int(np.argmax(scores[0]))] == "x"
    assert ids[int(np.argmax(scores[1]))] == "y"
    assert scores[2] == pytest.approx([0.5, 0.25, 0.25])  # unknown region: global shares


def test_cowatch_learns_watched_x_then_y() -> None:
    # five viewers watch A then B; one watches A then C; viewer "new" just watched A
    rows = [(f"u{i}", "A", 1.0, 1) for i in range(5)] + [(f"u{i}", "B", 2.0, 1) for i in range(5)]
    rows += [("v", "A", 1.0, 1), ("v", "C", 2.0, 1), ("new", "D", 0.0, 1), ("new", "A", 1.0, 1)]
    data = build(rows, {i: "t" for i in "ABCD"})
    cowatch = CoWatch(data, CoWatchParams(alpha=0.5))
    ids = list(data.item_ids)
    assert [ids[i] for i in cowatch.more_like_this(ids.index("A"), 2)] == ["B", "C"]
    batch = batch_for(data, pd.Index(["new"]))
    scores = mask_seen(cowatch.scores(batch), data, batch.users)
    assert ids[int(np.argmax(scores[0]))] == "B"


def test_cowatch_weights_the_most_recent_item_most() -> None:
    # P is followed by Q, R by S; the viewer watched P long ago and R last
    rows = [(f"p{i}", "P", 1.0, 1) for i in range(3)] + [(f"p{i}", "Q", 2.0, 1) for i in range(3)]
    rows += [(f"r{i}", "R", 1.0, 1) for i in range(3)] + [(f"r{i}", "S", 2.0, 1) for i in range(3)]
    rows += [("me", "P", 1.0, 1)] + [("me", f"f{i}", 2.0 + i, 1) for i in range(4)]
    rows += [("me", "R", 9.0, 1)]
    data = build(rows, {i: "t" for i in ["P", "Q", "R", "S", "f0", "f1", "f2", "f3"]})
    cowatch = CoWatch(data, CoWatchParams(recent_half_life=1.0))
    batch = batch_for(data, pd.Index(["me"]))
    scores = cowatch.scores(batch)[0]
    ids = list(data.item_ids)
    assert scores[ids.index("S")] > scores[ids.index("Q")] > 0


def test_content_prefers_the_viewers_topic() -> None:
    tags = {"c1": "comedy", "c2": "comedy", "c3": "comedy|family", "d1": "drama", "d2": "drama"}
    rows = [("fan", "c1", 1.0, 1), ("fan", "c2", 2.0, 1), ("other", "d1", 1.0, 1)]
    data = build(rows, tags)
    content = Content(data, ContentParams(title_weight=0.0))
    batch = batch_for(data, pd.Index(["fan"]))
    scores = mask_seen(content.scores(batch), data, batch.users)
    ids = list(data.item_ids)
    assert ids[int(np.argmax(scores[0]))] == "c3"
    affinity = content.topic_affinity(
        batch.users.repeat(2), np.array([ids.index("c3"), ids.index("d2")])
    )
    assert affinity[0] == pytest.approx(0.5)  # all of fan's mass is comedy, c3 is half comedy
    assert affinity[1] == 0.0


def test_lightfm_recommends_within_the_viewers_cluster() -> None:
    # two clusters of 10 viewers x 4 items; "probe" watched 3 of cluster A's items
    rows = [(f"a{u}", f"A{i}", float(i), 1) for u in range(10) for i in range(4)]
    rows += [(f"b{u}", f"B{i}", float(i), 1) for u in range(10) for i in range(4)]
    rows += [("probe", f"A{i}", float(i), 1) for i in range(3)]
    tags = {f"A{i}": "alpha" for i in range(4)} | {f"B{i}": "beta" for i in range(4)}
    data = build(rows, tags)
    model = LightFMSource(data, LightFMParams(no_components=8, epochs=30, num_threads=1))
    batch = batch_for(data, pd.Index(["probe"]))
    scores = mask_seen(model.scores(batch), data, batch.users)
    assert list(data.item_ids)[int(np.argmax(scores[0]))] == "A3"
    cold = model.scores(UserBatch(np.array([-1]), np.zeros(1)))
    assert cold.shape == (1, 8)


def test_ease_matches_the_closed_form_by_hand() -> None:
    # X = [[1, 1], [1, 0]], lambda = 1: G = [[3, 1], [1, 2]], P = [[2, -1], [-1, 3]] / 5
    # B_01 = -P_01 / P_11 = 1/3, B_10 = -P_10 / P_00 = 1/2
    b = ease_weights(np.array([[2.0, 1.0], [1.0, 1.0]]), lam=1.0)
    assert b == pytest.approx(np.array([[0.0, 1 / 3], [1 / 2, 0.0]]))


def test_ease_model_matches_numpy_on_a_random_matrix() -> None:
    rng = np.random.default_rng(3)
    x = (rng.random((30, 6)) < 0.4).astype(float)
    rows = [(f"u{u}", f"i{i}", 1.0, 1) for u, i in zip(*np.nonzero(x), strict=True)]
    data = build(rows, {f"i{i}": "t" for i in range(6)})
    ease = Ease(data, EaseParams(lam=5.0, min_support=1))
    order = [list(data.item_ids).index(f"i{i}") for i in range(6)]
    p = np.linalg.inv(x.T @ x + 5.0 * np.eye(6))
    expected = np.eye(6) - p @ np.diag(1.0 / np.diag(p))
    got = ease.weights[np.ix_(ease.columns, ease.columns)]
    assert got[np.ix_(order, order)] == pytest.approx(expected, abs=1e-5)
    assert ease.with_lambda(1e6).weights == pytest.approx(np.zeros((6, 6)), abs=1e-4)


def test_popularity_counts_positives_only() -> None:
    rows = [("a", "x", 1.0, 5), ("b", "x", 1.0, 5), ("c", "y", 1.0, 0.5), ("d", "y", 1.0, 0.5)]
    data = build(rows, {"x": "t", "y": "t"})
    scores = Popularity(data).scores(batch_for(data, pd.Index(["a"])))
    assert list(scores[0]) == [2.0, 0.0]


def test_top_k_and_finite_lists_drop_masked_items() -> None:
    scores = np.array([[0.1, 0.9, -np.inf, 0.5]], dtype=np.float32)
    assert list(top_k(scores, 2)[0]) == [1, 3]
    assert list(finite_lists(scores, 4)[0]) == [1, 3, 0]
