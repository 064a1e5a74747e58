"""The alias gate's decision, the dataset built from hand-made gold frames, and the
scoring filter (watched items out, ranks re-numbered)."""

from __future__ import annotations

import pandas as pd
import pytest

from models.datasets import DatasetError
from vidflow.recs.dataset import interactions_from_frames
from vidflow.recs.registry import CHALLENGER, CHAMPION, decide_alias
from vidflow.recs.scoring import active_viewers, top_unwatched


def test_no_champion_promotes() -> None:
    decision = decide_alias(0.10, None, margin=0.05)
    assert decision.alias == CHAMPION and "no champion" in decision.reason


def test_gain_above_margin_promotes() -> None:
    # 0.30 - 0.25 = 0.05 > 0.01
    assert decide_alias(0.30, 0.25, margin=0.01).alias == CHAMPION


def test_gain_equal_to_margin_stays_challenger() -> None:
    decision = decide_alias(0.30, 0.25, margin=0.05 + 1e-9)
    assert decision.alias == CHALLENGER
    assert "0.3000" in decision.reason and "0.2500" in decision.reason


def test_worse_model_is_challenger_even_with_zero_margin() -> None:
    assert decide_alias(0.20, 0.25, margin=0.0).alias == CHALLENGER
    assert decide_alias(0.25, 0.25, margin=0.0).alias == CHALLENGER  # a tie does not move


def test_a_champion_that_cannot_be_loaded_is_replaced_and_the_reason_says_why() -> None:
    why = "the champion, version 3, cannot be loaded (no MLmodel)"
    decision = decide_alias(0.10, None, margin=0.5, champion_unusable=why)
    assert decision.alias == CHAMPION
    assert decision.reason.startswith(why) and "0.1000" in decision.reason


def test_bad_gate_input_is_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        decide_alias(0.3, 0.2, margin=-0.1)
    with pytest.raises(ValueError, match=r"not in \[0, 1\]"):
        decide_alias(1.5, 0.2, margin=0.0)


def _uvd() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_date": ["2026-01-01", "2026-01-02", "2026-01-01"],
            "region": ["eu-west", "us-east", "eu-west"],
            "user_id": ["u1", "u1", "u2"],
            "video_id": ["v1", "v1", "v2"],
            "watch_seconds": [30.0, 12.5, 7.0],
            "last_watched_at": [
                "2026-01-01T10:00:00Z",
                "2026-01-02T08:00:00Z",
                "2026-01-01T00:00:10Z",
            ],
        }
    )


def test_dataset_sums_days_and_keeps_last_watch() -> None:
    videos = pd.DataFrame({"video_id": ["v1"], "title": ["Cats"], "tags": [("pets", "cats")]})
    devices = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u2"],
            "video_id": ["v1", "v1", "v1", "v2"],
            "device": ["tv", "mobile", "mobile", "web"],
        }
    )
    interactions, items = interactions_from_frames(_uvd(), videos, devices)
    rows = interactions.set_index("user_id")
    assert rows.loc["u1", "weight"] == pytest.approx(42.5)  # 30 + 12.5
    assert rows.loc["u1", "watch_seconds"] == pytest.approx(42.5)
    # 2026-01-01T00:00Z = 1767225600; + 1 day + 8 h
    assert rows.loc["u1", "timestamp"] == pytest.approx(1767225600 + 86400 + 8 * 3600)
    assert rows.loc["u1", "region"] == "us-east"  # the day watched last
    assert rows.loc["u1", "device"] == "mobile"  # 2 of 3 events
    assert rows.loc["u2", "timestamp"] == pytest.approx(1767225600 + 10)
    assert len(interactions) == 2
    by_id = items.set_index("item_id")
    assert by_id.loc["v1", "tags"] == ("pets", "cats") and by_id.loc["v1", "title"] == "Cats"
    # v2 is watched but not in the catalog: kept, without tags
    assert by_id.loc["v2", "tags"] == () and by_id.loc["v2", "title"] == ""


def test_dataset_without_history_or_columns_is_an_error() -> None:
    videos = pd.DataFrame({"video_id": ["v1"], "title": ["x"], "tags": [()]})
    with pytest.raises(DatasetError, match="empty"):
        interactions_from_frames(_uvd().iloc[0:0], videos)
    with pytest.raises(DatasetError, match="watch_seconds"):
        interactions_from_frames(_uvd().drop(columns="watch_seconds"), videos)


def test_top_unwatched_drops_watched_and_reranks() -> None:
    lists = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "b"],
            "item_id": ["x", "y", "z", "w", "x"],
            "rank": [1, 2, 3, 4, 1],
            "source": ["co-watch", "content", "trending", "collaborative", "trending"],
        }
    )
    watched = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["y", "z"]})
    out = top_unwatched(lists, watched, n=2)
    assert out[out.user_id == "a"][["item_id", "rank"]].values.tolist() == [["x", 1], ["z", 2]]
    assert out[out.user_id == "b"]["item_id"].tolist() == ["x"]
    assert out["score"].tolist() == [1.0, 0.5, 1.0]
    assert out["source"].tolist() == ["co-watch", "trending", "trending"]  # kept per item


def test_active_viewers_window() -> None:
    day = 86400.0
    frame = pd.DataFrame({"user_id": ["a", "b", "c"], "timestamp": [0.0, 9 * day, 10 * day]})
    assert list(active_viewers(frame, 2.0)) == ["b", "c"]


def test_chunked_top_k_matches_a_full_sort() -> None:
    import numpy as np

    from vidflow.recs.topk import chunked_top_k

    rng = np.random.default_rng(3)
    scores = rng.standard_normal((64, 1000)).astype(np.float32)
    scores[5, :] = 0.0  # all tied: lowest indexes first
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    assert (chunked_top_k(scores, 10) == expected).all()
    assert chunked_top_k(scores, 10)[5].tolist() == list(range(10))
    small = np.array([[0.1, 0.9, 0.5]], dtype=np.float32)
    assert chunked_top_k(small, 2).tolist() == [[1, 2]]  # 2 chunks of 1 + a tail column
    with pytest.raises(ValueError, match="k must be"):
        chunked_top_k(small, 4)


def test_chunked_top_k_with_columns_outside_whole_chunks() -> None:
    import numpy as np

    from vidflow.recs.topk import chunked_top_k

    rng = np.random.default_rng(4)
    scores = rng.standard_normal((16, 1003)).astype(np.float32)
    scores[:, 1002] = 100.0  # the best score of every row sits in the ragged tail
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :7]
    got = chunked_top_k(scores, 7, n_chunks=100)  # 3 columns past the chunks
    assert (got == expected).all() and (got[:, 0] == 1002).all()
