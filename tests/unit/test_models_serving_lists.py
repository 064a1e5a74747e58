"""The lists the scoring DAG publishes besides each viewer's: the exact top-k kernel,
"more like this" per video, regional trending, and the source of each recommended item."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from models import datasets as ds
from models.candidates.trending import Trending, TrendingParams, trending_lists
from models.features import SOURCE_LABELS
from models.pipeline import Recommender
from models.related import RelatedParams, related_videos
from models.topk import blocked_top_k, chunked_top_k, in_block_worker, map_row_blocks
from models.training_data import TrainingData


def reference_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    # numpy's stable sort on -score: best first, ties by lower index
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize(("cols", "k", "n_chunks"), [(1000, 10, None), (997, 50, None),
                                                     (64, 8, 8), (300, 1, None)])  # fmt: skip
def test_chunked_top_k_equals_a_full_sort(cols: int, k: int, n_chunks: int | None) -> None:
    rng = np.random.default_rng(cols)
    scores = rng.standard_normal((40, cols)).astype(np.float32)
    scores[3] = 1.0  # every score tied: the lowest indexes
    scores[4, ::3] = 2.0  # ties among the best
    assert (chunked_top_k(scores, k, n_chunks) == reference_top_k(scores, k)).all()


def test_chunked_top_k_equals_a_full_sort_on_random_shapes_ties_and_masks() -> None:
    rng = np.random.default_rng(11)
    for _ in range(60):
        rows, cols = int(rng.integers(1, 30)), int(rng.integers(1, 400))
        k = int(rng.integers(1, cols + 1))
        # few distinct values, so ties are everywhere, and some masked items
        scores = rng.integers(-3, 4, (rows, cols)).astype(np.float32)
        scores[rng.random((rows, cols)) < 0.3] = -np.inf
        n_chunks = int(rng.integers(k, cols + 1)) if rng.random() < 0.5 else None
        got = chunked_top_k(scores, k, n_chunks)
        assert (got == reference_top_k(scores, k)).all(), (rows, cols, k, n_chunks)


def test_chunked_top_k_refuses_nan_anywhere_in_a_row() -> None:
    scores = np.zeros((3, 1000), dtype=np.float32)
    scores[1, 999] = np.nan  # in the ragged tail of the default chunks
    scores[2, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN \(rows \[1, 2\]\)"):
        chunked_top_k(scores, 10, n_chunks=40 + 7)


def test_chunked_top_k_puts_masked_items_last() -> None:
    scores = np.full((2, 200), -np.inf, dtype=np.float32)
    scores[0, [7, 150, 3]] = [0.5, 0.9, 0.1]  # three allowed items, top 5 asked
    scores[1] = np.linspace(0, 1, 200, dtype=np.float32)
    got = chunked_top_k(scores, 5)
    assert got[0, :3].tolist() == [150, 7, 3]
    assert np.isneginf(scores[0, got[0, 3:]]).all()
    assert got[1].tolist() == [199, 198, 197, 196, 195]
    with pytest.raises(ValueError, match="NaN"):
        chunked_top_k(np.full((1, 100), np.nan, dtype=np.float32), 3)
    with pytest.raises(ValueError, match="n_chunks"):
        chunked_top_k(scores, 5, n_chunks=4)


def test_blocked_top_k_equals_the_product_sorted() -> None:
    rng = np.random.default_rng(9)
    users = rng.standard_normal((300, 8)).astype(np.float32)
    items = rng.standard_normal((500, 8)).astype(np.float32)
    bias = rng.standard_normal(500).astype(np.float32)
    got = blocked_top_k(users, np.ascontiguousarray(items.T), 20, block=64, bias=bias)
    assert (got == reference_top_k(users @ items.T + bias, 20)).all()


def test_map_row_blocks_covers_every_row_once_in_order_on_worker_threads() -> None:
    seen: list[tuple[int, int, bool, str]] = []
    lock = threading.Lock()

    def one(start: int, end: int) -> tuple[int, int]:
        with lock:
            seen.append((start, end, in_block_worker(), threading.current_thread().name))
        # a nested map runs inline on the same worker (no pool inside a pool)
        inner = map_row_blocks(end - start, 3, lambda a, b: b - a)
        assert sum(inner) == end - start
        return start, end

    got = map_row_blocks(23, 5, one, threads=2)
    assert got == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    assert sorted((s, e) for s, e, _, _ in seen) == got
    assert all(worker for _, _, worker, _ in seen)
    assert threading.current_thread().name not in {name for *_, name in seen}
    assert not in_block_worker()  # the flag does not leak to the caller
    assert map_row_blocks(0, 5, one) == []


def test_chunked_top_k_on_a_block_worker_equals_the_parallel_kernel() -> None:
    rng = np.random.default_rng(4)
    scores = rng.standard_normal((200, 700)).astype(np.float32)
    scores[::7, ::3] = -np.inf
    on_workers = map_row_blocks(200, 64, lambda a, b: chunked_top_k(scores[a:b], 30))
    assert (np.vstack(on_workers) == reference_top_k(scores, 30)).all()
    assert (chunked_top_k(scores, 30) == reference_top_k(scores, 30)).all()


def _catalog() -> pd.DataFrame:
    return ds.validate_items(
        pd.DataFrame(
            {
                "item_id": ["a", "b", "c", "d", "e", "new"],
                "tags": ["cats", "cats", "dogs", "dogs", "", "dogs"],
                "title": ["", "", "", "", "", ""],
            }
        )
    )


def test_related_fuses_cowatch_embeddings_and_content() -> None:
    model_ids = pd.Index(["a", "b", "c", "d", "e", "gone"])  # "new" is unknown to the model
    cowatch = sp.csr_matrix(np.zeros((6, 6), dtype=np.float32))
    cowatch[0, 4] = 3.0  # a -> e co-watched (e has no tags: content cannot find it)
    cowatch[0, 5] = 9.0  # a -> gone: not in the catalog any more, never listed
    embeddings = np.zeros((6, 2), dtype=np.float32)
    embeddings[[0, 1, 2, 3, 4, 5]] = [[1, 0], [1, 0.1], [0, 1], [0.1, 1], [0, 0], [1, 0]]
    out = related_videos(_catalog(), model_ids, sp.csr_matrix(cowatch), embeddings,
                         RelatedParams(n=3))  # fmt: skip
    lists = {v: g.sort_values("rank") for v, g in out.groupby("item_id")}
    a = lists["a"]
    # hand-computed RRF (k=60): b is 1st by embedding and 1st by content: 2/61; e is 1st
    # by co-watch only: 1/61; so b, then e
    assert a["related_item_id"].tolist()[:2] == ["b", "e"]
    assert a["score"].iloc[0] == pytest.approx(2 / 61)
    assert a["score"].iloc[1] == pytest.approx(1 / 61)
    assert a["source"].tolist()[:2] == ["collaborative", "co-watch"]  # ties: signal order
    assert "gone" not in set(out["related_item_id"]) and "a" not in set(a["related_item_id"])
    # the video the model never saw still gets content neighbours (its tag: dogs)
    assert set(lists["new"]["related_item_id"].iloc[:2]) == {"c", "d"}
    assert set(lists["new"]["source"].iloc[:2]) == {"content"}
    assert (out.groupby("item_id")["rank"].apply(list).map(
        lambda r: r == list(range(1, len(r) + 1)))).all()  # fmt: skip


def test_trending_per_region_and_global() -> None:
    day = 86_400.0
    inter = ds.validate_interactions(
        pd.DataFrame(
            {
                "user_id": ["u1", "u2", "u3", "u4", "u5"],
                "item_id": ["x", "x", "y", "z", "old"],
                "timestamp": [10 * day, 10 * day, 10 * day, 10 * day, 0.0],
                "weight": [1.0, 1.0, 1.0, 1.0, 1.0],
                "region": ["eu-west", "eu-west", "us-east", "us-east", "us-east"],
            }
        )
    )
    items = ds.validate_items(pd.DataFrame({"item_id": ["x", "y", "z", "old"], "tags": [""] * 4}))
    data = TrainingData.build(inter, items, positive_threshold=0.5)
    trending = Trending(data, TrendingParams(half_life_days=1.0))
    allowed = np.array([True, True, False, True])  # z is no longer processed
    lists = trending_lists(trending, 10 * day + 3600, ("eu-west", "us-east", "ap-south"), 10,
                           allowed)  # fmt: skip
    name = data.item_ids
    assert [name[i] for i, _ in lists["eu-west"]] == ["x"]
    # us-east: y (one view today), then old (one view 10 half-lives ago: 2**-10 of it)
    assert [name[i] for i, _ in lists["us-east"]] == ["y", "old"]
    assert lists["us-east"][1][1] / lists["us-east"][0][1] == pytest.approx(2**-10, rel=0.01)
    assert [name[i] for i, _ in lists["global"]][:2] == ["x", "y"]  # 2 views, 1 view
    assert lists["ap-south"] == lists["global"]  # no events of its own


def test_recommended_items_say_which_source_brought_them() -> None:
    from tests.unit.test_models_pipeline import fast_config, synthetic

    inter, items = synthetic(optional=True)
    rec = Recommender(fast_config()).fit(ds.validate_interactions(inter), ds.validate_items(items))
    out = rec.recommend(pd.Index(["user0", "user3", "nobody"]), k=10)
    assert set(out["source"]) <= {"collaborative", "co-watch", "content", "trending"}
    assert set(SOURCE_LABELS.values()) == {"collaborative", "co-watch", "content", "trending"}
    # a viewer unknown to the model: only trending proposes
    assert set(out[out.user_id == "nobody"]["source"]) == {"trending"}
    frame, _ = rec.candidates(pd.Index(["user0"]))
    # every candidate has an origin, one of the sources that listed it
    label_of = {"lightfm": "collaborative", "ease": "collaborative", "cowatch": "co-watch",
                "content": "content", "trending": "trending"}  # fmt: skip
    assert frame["origin"].notna().all()
    for row in frame.itertuples():
        ranks = {s: getattr(row, f"{s}_rank") for s in label_of}
        # the source named has the candidate in its own list
        assert any(ranks[s] < rec.config.candidates_per_source
                   for s in label_of if label_of[s] == row.origin)  # fmt: skip
