"""Feature building, the fitted pipeline and the evaluate CLI on small synthetic data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import datasets as ds
from models.evaluate import main
from models.features import candidate_frame, item_stats
from models.pipeline import PipelineConfig, Recommender, fit_sources
from models.ranker import engagement_labels
from models.training_data import TrainingData, batch_for

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ("comedy", "drama", "scifi")


def synthetic(
    n_users: int = 60, per_topic: int = 12, seed: int = 0, optional: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Viewers who each like one topic and watch its items mostly in catalogue order."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        topic = TOPICS[u % 3]
        start = int(rng.integers(0, per_topic // 2))
        for step, i in enumerate(range(start, start + int(rng.integers(8, per_topic)))):
            item = (
                f"{topic}-{i % per_topic}"
                if rng.random() < 0.85
                else f"{TOPICS[(u + 1) % 3]}-{i % per_topic}"
            )
            rows.append(
                (f"user{u}", item, 1_000_000 + u * 600 + step * 3600, float(rng.integers(1, 6)))
            )
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "weight"])
    if optional:
        inter["region"] = np.where(np.arange(len(inter)) % 2 == 0, "eu", "us")
        inter["device"] = np.where(np.arange(len(inter)) % 3 == 0, "tv", "mobile")
        inter["watch_seconds"] = inter["weight"] * 60
    items = pd.DataFrame(
        {
            "item_id": [f"{t}-{i}" for t in TOPICS for i in range(per_topic)],
            "tags": [f"{t}|genre{i % 2}" for t in TOPICS for i in range(per_topic)],
            "title": [f"The {t} story part {i}" for t in TOPICS for i in range(per_topic)],
        }
    )
    return inter, items


def fast_config(**kw: object) -> PipelineConfig:
    from models.candidates.lightfm_cf import LightFMParams

    return PipelineConfig(
        positive_threshold=3.0,
        lightfm=LightFMParams(no_components=8, epochs=5, num_threads=1),
        trending_grid=(7.0,),
        ease_lambda_grid=(10.0, 100.0),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("optional", [False, True])
def test_feature_frame_has_every_column_missing_optional_ones_are_nan(optional: bool) -> None:
    inter, items = synthetic(optional=optional)
    data = TrainingData.build(ds.validate_interactions(inter), ds.validate_items(items), 3.0)
    sources = fit_sources(data, fast_config(), ease_half_life=5.0)
    users = pd.Index(["user0", "user1"])
    frame, lists = candidate_frame(sources, batch_for(data, users), users, per_source=5)
    assert set(lists) == {"lightfm", "cowatch", "ease", "content", "trending"}
    for column in ("pop_region", "pop_trend", "item_age_days", "completion_rate", "topic_affinity"):
        assert frame[column].notna().all(), column
    assert frame["device_lift"].notna().all() == optional
    assert frame["device_lift"].isna().all() == (not optional)
    # nothing the viewer already watched is a candidate
    seen = set(zip(inter.user_id, inter.item_id, strict=True))
    assert not any((u, i) in seen for u, i in zip(frame.user_id, frame.item_id, strict=True))
    assert frame.groupby("user_id").size().min() >= 5


def test_completion_rate_uses_watch_time_over_duration_when_both_exist() -> None:
    inter = pd.DataFrame(
        {
            "user_id": ["a", "b", "c"],
            "item_id": ["x", "x", "y"],
            "timestamp": [1, 2, 3],
            "weight": [1, 1, 1],
            "watch_seconds": [100.0, 50.0, 10.0],
        }
    )
    items = pd.DataFrame(
        {"item_id": ["x", "y"], "tags": ["t", "t"], "duration_seconds": [100, 100]}
    )
    data = TrainingData.build(ds.validate_interactions(inter), ds.validate_items(items), 0.5)
    rate = item_stats(data).completion_rate
    # shrunk towards the mean completion 0.533 with 5 pseudo-views: (1.5 + 5*0.5333) / 7
    assert rate[0] == pytest.approx((1.5 + 5 * 1.6 / 3) / 7, rel=1e-4)
    assert rate[1] == pytest.approx((0.1 + 5 * 1.6 / 3) / 6, rel=1e-4)


def test_engagement_labels_are_graded() -> None:
    candidates = pd.DataFrame({"user_id": ["u", "u", "u"], "item_id": ["a", "b", "c"]})
    truth = pd.DataFrame(
        {
            "user_id": ["u", "u", "u", "u"],
            "item_id": ["a", "b", "d", "e"],
            "engagement": [9, 4, 4, 4],
        }
    )
    assert list(engagement_labels(candidates, truth)) == [2, 1, 0]


def test_recommender_fit_recommend_save_load(tmp_path: Path) -> None:
    inter, items = synthetic(optional=True)
    train = ds.validate_interactions(inter)
    rec = Recommender(fast_config()).fit(train, ds.validate_items(items))
    out = rec.recommend(pd.Index(["user0", "user3"]), k=5)
    assert out.groupby("user_id").size().to_dict() == {"user0": 5, "user3": 5}
    seen = set(zip(train.user_id, train.item_id, strict=True))
    assert not any((u, i) in seen for u, i in zip(out.user_id, out.item_id, strict=True))
    # user0 likes comedy: most of the top 5 is comedy
    assert sum(i.startswith("comedy") for i in out[out.user_id == "user0"].item_id) >= 3
    assert "sources" in rec.report.groups_kept
    rec.save(tmp_path / "rec.pkl")
    again = Recommender.load(tmp_path / "rec.pkl")
    pd.testing.assert_frame_equal(again.recommend(pd.Index(["user0", "user3"]), k=5), out)
    assert len(rec.more_like_this("comedy-1", 3)) == 3
    cold = rec.recommend(pd.Index(["nobody"]), k=5)  # no history: trending answers
    assert len(cold) == 5


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "models.evaluate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_evaluate_cli_end_to_end_prints_one_json_with_every_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # in-process (the subprocess form is the error test below): the same argv, no import cost
    inter, items = synthetic(n_users=90, optional=True)
    inter.to_csv(tmp_path / "interactions.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    code = main(
        [
            "--interactions", str(tmp_path / "interactions.csv"),
            "--items", str(tmp_path / "items.csv"),
            "--split", "both", "--positive-threshold", "3",
        ]
    )  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["splits"]) == {"per-user", "global"}
    assert result["optional_columns"] == ["region", "device", "watch_seconds"]
    for split in result["splits"].values():
        assert set(split["models"]) == {"popularity", "trending", "lightfm", "ease", "pipeline"}
        for metrics in split["models"].values():
            assert set(metrics) == {
                "ndcg@10",
                "map@10",
                "recall@10",
                "recall@50",
                "coverage@10",
                "users",
            }
            assert 0.0 <= metrics["ndcg@10"] <= 1.0
        assert set(split["candidate_sources"]) == {
            "lightfm",
            "cowatch",
            "ease",
            "content",
            "trending",
        }
        assert 0.0 < split["candidate_union"]["recall"] <= 1.0
        assert split["users_evaluated"] > 0
    per_user = result["splits"]["per-user"]
    assert per_user["users_evaluated"] == 90
    # the synthetic viewers follow their topic: personalised models beat popularity
    assert per_user["models"]["pipeline"]["ndcg@10"] > per_user["models"]["popularity"]["ndcg@10"]


def test_evaluate_cli_reports_a_missing_column_as_json(tmp_path: Path) -> None:
    pd.DataFrame({"user_id": [1], "item_id": [2], "timestamp": [3]}).to_csv(
        tmp_path / "i.csv", index=False
    )
    pd.DataFrame({"item_id": [2], "tags": ["x"]}).to_csv(tmp_path / "items.csv", index=False)
    proc = run_cli(
        "--interactions", str(tmp_path / "i.csv"), "--items", str(tmp_path / "items.csv")
    )
    assert proc.returncode == 2
    assert "weight" in json.loads(proc.stdout)["error"]


def test_too_few_validation_viewers_fall_back_to_the_best_source() -> None:
    inter, items = synthetic()
    rec = Recommender(fast_config(min_ranker_users=10**6)).fit(
        ds.validate_interactions(inter), ds.validate_items(items)
    )
    assert rec.ranker is None
    assert rec.fallback in {"lightfm", "cowatch", "ease", "content", "trending"}
    assert rec.report.fallback is not None and "too few" in rec.report.fallback
    _frame, lists = rec.candidates(pd.Index(["user0"]))
    best = lists[rec.fallback]["user0"][:5]
    assert list(rec.recommend(pd.Index(["user0"]), k=5)["item_id"]) == best
