"""recs_training and recs_scoring end to end through the real scheduler, MLflow server
and catalog, on a small traffic-model history turned into gold by platform_analytics.

The first training run (no champion yet) gets ``champion``, emits the champion asset and
so runs recs_scoring, which writes up to 50 unwatched videos per active viewer, stamped
with version 1. A second run whose margin cannot be met (1.0 NDCG point, with one LightFM
epoch) gets ``challenger``, a reason, and leaves the champion and the audit trail alone.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pyspark.sql import functions as F
from sqlalchemy import text

from vidflow.airflow_api import AirflowClient
from vidflow.catalog.db import session_scope
from vidflow.config import Settings
from vidflow.recs.registry import CHALLENGER, CHAMPION, champion_history
from vidflow.regions import REGION_NAMES
from vidflow.spark import lake_path
from vidflow.traffic.cli import main as traffic
from vidflow.traffic.cli import truth_path

DAYS, VIEWERS, VIDEOS = 2, 120, 60


@pytest.fixture
def window(stack: Settings, airflow: AirflowClient, unique: str) -> tuple[str, str, Path]:
    """Days of 2022 nobody else uses: a traffic history, then platform_analytics on them;
    and the history's truth file."""
    start = date(2022, 1, 1) + timedelta(days=int(unique[:6], 16) % 330)
    until = start + timedelta(days=DAYS - 1)
    seed = int(unique[:6], 16)
    truth_file = truth_path(stack, seed, None)
    rc = traffic(
        ["history", "--register", "--seed", str(seed), "--start",
         start.isoformat(), "--days", str(DAYS), "--viewers", str(VIEWERS), "--videos",
         str(VIDEOS), "--truth", str(truth_file)]
    )  # fmt: skip
    assert rc == 0
    airflow.wait_for_dag("platform_analytics")
    conf = {"start_date": start.isoformat(), "end_date": until.isoformat()}
    run_id = airflow.trigger("platform_analytics", conf)
    assert airflow.wait_for_run("platform_analytics", run_id, timeout=900)["state"] == "success"
    return start.isoformat(), until.isoformat(), truth_file


@pytest.fixture
def model_name(stack: Settings, unique: str) -> Iterator[str]:
    name = f"tests-recs-{unique}"
    yield name
    client = MlflowClient(stack.tracking_uri)
    with contextlib.suppress(MlflowException):
        client.delete_registered_model(name)


def _train(airflow: AirflowClient, conf: dict[str, Any]) -> tuple[str, dict[str, str]]:
    airflow.wait_for_dag("recs_training")
    run_id = airflow.trigger("recs_training", conf)
    run = airflow.wait_for_run("recs_training", run_id, timeout=900)
    states = {t["task_id"]: t["state"] for t in airflow.task_instances("recs_training", run_id)}
    assert run["state"] == "success", states
    return run_id, states


def _scoring_run_after(airflow: AirflowClient, since: float, timeout: float = 600) -> str:
    """The recs_scoring run the champion asset created (queued after ``since``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = airflow.request(
            "GET", "/dags/recs_scoring/dagRuns", params={"order_by": "-run_after", "limit": 5}
        )["dag_runs"]
        for run in runs:
            if run["run_type"] == "asset_triggered" and run["state"] in ("success", "failed"):
                queued = run.get("queued_at") or run.get("run_after")
                from datetime import datetime

                if datetime.fromisoformat(queued.replace("Z", "+00:00")).timestamp() >= since:
                    return str(run["dag_run_id"])
        time.sleep(3)
    raise TimeoutError("no asset-triggered recs_scoring run finished")


def test_training_gates_the_alias_and_scoring_fills_the_catalog(
    stack: Settings,
    airflow: AirflowClient,
    spark: Any,
    window: tuple[str, str, Path],
    model_name: str,
) -> None:
    since, until, truth_file = window
    airflow.wait_for_dag("recs_scoring")
    base = {"since": since, "until": until, "cut_date": until, "model_name": model_name,
            "tune": False, "lightfm_epochs": 10, "positive_threshold": 30.0}  # fmt: skip
    started = time.time() - 5
    _, states = _train(airflow, {**base, "margin": 0.0, "truth_file": str(truth_file)})
    assert states["announce"] == "success"
    client = MlflowClient(stack.tracking_uri)
    champion = client.get_model_version_by_alias(model_name, CHAMPION)
    assert champion.version == "1"
    assert client.get_run(champion.run_id).data.tags["gate_decision"] == CHAMPION
    run_data = client.get_run(champion.run_id).data
    assert 0.0 <= run_data.metrics["ndcg_at_10"] <= 1.0 and "recall_at_50" in run_data.metrics
    artifacts = {a.path for a in client.list_artifacts(champion.run_id, "plots")}
    assert "plots/metrics_by_k.png" in artifacts and "plots/source_recall.png" in artifacts
    # agreement with the viewers' true tastes: logged, in range, below the oracle
    assert run_data.tags["truth_agreement"].startswith("measured on"), run_data.tags
    fit = {m: run_data.metrics[f"truth_fit_at_10_{m}"] for m in ("pipeline", "popularity",
                                                                 "random")}  # fmt: skip
    assert all(0.0 <= v <= 1.0 for v in fit.values()), fit
    assert run_data.metrics["truth_oracle_fit_at_10"] >= fit["pipeline"]
    assert [a.path for a in client.list_artifacts(champion.run_id, "truth")] == [
        "truth/truth_agreement.json"
    ]

    scoring = _scoring_run_after(airflow, started)
    assert airflow.request("GET", f"/dags/recs_scoring/dagRuns/{scoring}")["state"] == "success"

    # what each viewer watched in the window, straight from gold
    gold = spark.read.format("delta").load(lake_path(stack, "analytics", "user_video_daily"))
    watched_rows = (
        gold.where((F.col("event_date") >= since) & (F.col("event_date") <= until))
        .select("user_id", "video_id")
        .distinct()
        .collect()
    )
    watched: dict[str, set[str]] = {}
    for row in watched_rows:
        watched.setdefault(str(row.user_id), set()).add(str(row.video_id))
    assert len(watched) >= VIEWERS // 3
    with session_scope(stack) as session:
        rows = session.execute(
            text(
                "SELECT user_id, rank, video_id, model_version, source FROM recommendations "
                "WHERE user_id = ANY(:ids) ORDER BY user_id, rank"
            ),
            {"ids": [uuid.UUID(u) for u in watched]},
        ).all()
    lists: dict[str, list[str]] = {}
    for user, rank, video, version, source in rows:
        assert version == "1"
        assert source in {"collaborative", "co-watch", "content", "trending"}, source
        lists.setdefault(str(user), []).append(str(video))
        assert rank == len(lists[str(user)])  # ranks 1..n without gaps
    assert set(lists) == set(watched)  # every active viewer has a list
    with session_scope(stack) as session:
        processed = {
            str(v)
            for (v,) in session.execute(
                text("SELECT video_id FROM videos WHERE status = 'processed'")
            ).all()
        }
    for user, videos in lists.items():
        assert not set(videos) & watched[user], user  # nothing already watched
        assert len(set(videos)) == len(videos)
        assert set(videos) <= processed, user
        # N = 50, or every processed video the viewer has not watched when the catalog
        # holds fewer (a fresh stack has the 60 model videos and a few test clips)
        assert len(videos) == min(50, len(processed - watched[user])), (user, len(videos))

    _check_related_and_trending(stack, gold, since, until, processed, truth_file)

    # a model that cannot beat the champion by the margin: challenger, champion stays
    _, states = _train(airflow, {**base, "margin": 1.0, "lightfm_epochs": 1})
    assert states["announce"] == "skipped"
    assert client.get_model_version_by_alias(model_name, CHAMPION).version == "1"
    challenger = client.get_model_version_by_alias(model_name, CHALLENGER)
    assert challenger.version == "2"
    reason = client.get_run(challenger.run_id).data.tags["gate_reason"]
    assert "margin 1.0000" in reason
    history = champion_history(client, model_name)
    assert [entry.split()[0] for _, entry in history] == ["version=1"]
    with session_scope(stack) as session:
        session.execute(
            text("DELETE FROM recommendations WHERE user_id = ANY(:ids)"),
            {"ids": [uuid.UUID(u) for u in watched]},
        )


def _check_related_and_trending(
    stack: Settings, gold: Any, since: str, until: str, processed: set[str], truth_file: Path
) -> None:
    """related_videos: 20 per model video (all tagged, so content alone finds 20), never
    itself, only processed videos; trending_videos: each region and global, ranks 1..n,
    and a region's videos were watched in that region in the window (popularity > 0)."""
    model_videos = [v["video_id"] for v in json.loads(truth_file.read_text())["videos"]]
    with session_scope(stack) as session:
        related = session.execute(
            text(
                "SELECT video_id, rank, related_video_id, source, model_version "
                "FROM related_videos WHERE video_id = ANY(:ids) ORDER BY video_id, rank"
            ),
            {"ids": [uuid.UUID(v) for v in model_videos]},
        ).all()
        trending = session.execute(
            text("SELECT region, rank, video_id, score, model_version FROM trending_videos "
                 "ORDER BY region, rank")
        ).all()  # fmt: skip
    by_video: dict[str, list[str]] = {}
    for video, rank, other, source, version in related:
        by_video.setdefault(str(video), []).append(str(other))
        assert rank == len(by_video[str(video)]) and version == "1"
        assert source in {"co-watch", "collaborative", "content"}
    assert set(by_video) == set(model_videos)
    for video, others in by_video.items():
        assert len(others) == min(20, len(processed) - 1) and video not in others
        assert len(set(others)) == len(others) and set(others) <= processed
    watched_in = {
        (r.region, str(r.video_id))
        for r in gold.where((F.col("event_date") >= since) & (F.col("event_date") <= until))
        .select("region", "video_id")
        .distinct()
        .collect()
    }
    lists: dict[str, list[str]] = {}
    for region, rank, video, score, version in trending:
        lists.setdefault(region, []).append(str(video))
        assert rank == len(lists[region]) and score > 0 and version == "1"
    assert set(lists) == {*REGION_NAMES, "global"}
    for region, videos in lists.items():
        assert 0 < len(videos) <= 50 and set(videos) <= processed
        if region != "global" and any(r == region for r, _ in watched_in):
            assert all((region, v) in watched_in for v in videos), region
