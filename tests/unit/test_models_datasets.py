"""Validation and temporal splits on tiny hand-made frames."""

from __future__ import annotations

import pandas as pd
import pytest

from models import datasets as ds


def frame(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return ds.validate_interactions(
        pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "weight"])
    )


# u1: ten positives at t=1..10 and a low rating at t=5; u2: five positives at t=1..5
U1 = [("u1", f"i{t}", float(t), 5.0) for t in range(1, 11)] + [("u1", "low", 5.5, 1.0)]
U2 = [("u2", f"j{t}", float(t), 4.0) for t in range(1, 6)]


def test_per_user_split_holds_out_each_viewers_last_fifth_of_positives() -> None:
    split = ds.per_user_split(frame(U1 + U2), positive_threshold=4.0)
    test = split.test.groupby("user_id")["item_id"].apply(set).to_dict()
    assert test == {"u1": {"i9", "i10"}, "u2": {"j5"}}  # 20% of 10 = 2, of 5 = 1
    train_u1 = set(split.train.loc[split.train.user_id == "u1", "item_id"])
    assert train_u1 == {f"i{t}" for t in range(1, 9)} | {"low"}
    assert split.reference_time.to_dict() == {"u1": 8.0, "u2": 4.0}


def test_per_user_split_never_leaks_a_viewers_future_even_with_ties() -> None:
    # u3's last two positives share a timestamp with a low rating and with a third one
    rows = [("u3", f"k{t}", float(t), 5.0) for t in range(1, 9)]
    rows += [("u3", "k9", 8.0, 5.0), ("u3", "tie_low", 8.0, 1.0), ("u3", "k10", 9.0, 5.0)]
    split = ds.per_user_split(frame(rows + U1), positive_threshold=4.0)
    for user, test in split.test.groupby("user_id"):
        train = split.train[split.train.user_id == user]
        assert test["timestamp"].min() > train["timestamp"].max()
    u3 = set(split.test.loc[split.test.user_id == "u3", "item_id"])
    assert u3 == {"k8", "k9", "k10"}  # the cut at t=8 takes both positives tied there
    assert "tie_low" not in set(split.train["item_id"]) | set(split.test["item_id"])


def test_per_user_split_keeps_thin_viewers_in_train_only() -> None:
    rows = [("u4", "a", 1.0, 5.0), ("u5", "b", 1.0, 5.0), ("u5", "c", 1.0, 5.0)]
    split = ds.per_user_split(frame(rows + U2), positive_threshold=4.0)
    assert set(split.test["user_id"]) == {"u2"}
    assert {"u4", "u5"} <= set(split.train["user_id"])


def test_global_split_cuts_at_a_time_and_tests_warm_viewers_only() -> None:
    rows = [*U2, ("u6", "x", 4.5, 5.0), ("u6", "y", 6.0, 5.0), ("new", "z", 7.0, 5.0)]
    split = ds.global_split(frame(rows), positive_threshold=4.0, cut=4.5)
    assert split.train["timestamp"].max() < 4.5
    assert set(zip(split.test.user_id, split.test.item_id, strict=True)) == {("u2", "j5")}
    # u6's only train interaction would be at 4.5, which is not before the cut: cold
    assert "u6" not in set(split.train.user_id)
    assert set(split.reference_time.index) == {"u2"}
    assert (split.reference_time == 4.5).all()


def test_global_split_default_cut_leaves_a_fifth_after_it() -> None:
    rows = [("u", f"i{t}", float(t), 5.0) for t in range(10)]
    split = ds.global_split(frame(rows), positive_threshold=4.0)
    assert len(split.train) == 8
    assert list(split.test["item_id"]) == ["i8", "i9"]


def test_validation_split_is_carved_from_train_with_the_same_protocol() -> None:
    outer = ds.per_user_split(frame(U1 + U2), positive_threshold=4.0)
    val = ds.validation_split(outer.train, "per-user", positive_threshold=4.0)
    assert set(val.test["item_id"]) <= set(outer.train["item_id"])
    assert set(val.test["item_id"]) == {"i7", "i8", "j4"}  # 20% of 8 -> 2, of 4 -> 1


def test_missing_required_column_is_a_clear_error() -> None:
    with pytest.raises(ds.DatasetError, match="weight"):
        ds.validate_interactions(pd.DataFrame({"user_id": [1], "item_id": [2], "timestamp": [3]}))
    with pytest.raises(ds.DatasetError, match="tags"):
        ds.validate_items(pd.DataFrame({"item_id": [1]}))


def test_bad_timestamp_is_named() -> None:
    bad = pd.DataFrame({"user_id": [1], "item_id": [2], "timestamp": ["soon"], "weight": [1]})
    with pytest.raises(ds.DatasetError, match="soon"):
        ds.validate_interactions(bad)


def test_optional_columns_kept_ids_as_strings_dates_as_epoch_seconds() -> None:
    raw = pd.DataFrame(
        {
            "user_id": [1],
            "item_id": [2],
            "timestamp": ["1970-01-02T00:00:00Z"],
            "weight": [1],
            "device": [None],
            "other": ["dropped"],
        }
    )
    out = ds.validate_interactions(raw)
    assert list(out.columns) == ["user_id", "item_id", "timestamp", "weight", "device"]
    assert out.loc[0, "user_id"] == "1"
    assert out.loc[0, "timestamp"] == 86400.0
    assert out.loc[0, "device"] == "unknown"


def test_tags_from_lists_or_pipe_strings() -> None:
    items = ds.validate_items(
        pd.DataFrame(
            {"item_id": [1, 2, 3], "tags": ["Comedy|Drama", ["Sci-Fi"], "(no genres listed)"]}
        )
    )
    assert list(items["tags"]) == [("comedy", "drama"), ("sci-fi",), ()]


def test_unknown_protocol() -> None:
    with pytest.raises(ds.DatasetError, match="per-user"):
        ds.split(frame(U2), "random", 4.0)
