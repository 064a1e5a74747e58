"""A fresh lake: the hourly and daily jobs that read it say what is missing and who writes
it, or run on an empty table; none fails with Spark's raw PATH_NOT_FOUND. Real Spark and
Delta on a lake in a temporary directory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobs import cdn_plan, cdn_replay
from vidflow.cdn.bronze import PARTITION_COLUMNS, REQUESTS_SCHEMA, REQUESTS_TABLE
from vidflow.cdn.payloads import CdnWindow
from vidflow.config import Settings
from vidflow.recs.dataset import NoHistoryYet, build_dataset
from vidflow.regions import REGION_NAMES
from vidflow.spark import LakeTableMissing, ensure_delta_table, lake_path, read_delta

WINDOW = CdnWindow(datetime(2026, 11, 20, 11, tzinfo=UTC), datetime(2026, 11, 20, 12, tzinfo=UTC))


@pytest.fixture
def lake(settings: Settings, tmp_path: Path) -> Settings:
    """The settings with a lake of their own, empty."""
    return settings.model_copy(update={"lake_uri": str(tmp_path / "lake")})


def test_read_delta_names_the_writer_of_a_missing_table(spark: Any, lake: Settings) -> None:
    path = lake_path(lake, "cdn", REQUESTS_TABLE)
    with pytest.raises(LakeTableMissing, match="cdn_requests is not a Delta table yet: bronze"):
        read_delta(spark, path, written_by="bronze")


def test_cdn_jobs_say_which_table_is_missing(spark: Any, lake: Settings) -> None:
    with pytest.raises(LakeTableMissing, match=r"jobs/cdn_bronze\.py"):
        cdn_plan.run(spark, lake, WINDOW)
    with pytest.raises(LakeTableMissing, match=r"jobs/cdn_bronze\.py"):
        cdn_replay.run(spark, lake, WINDOW, cache_bytes=1 << 20)


def test_cdn_plan_and_replay_on_an_empty_requests_table(spark: Any, lake: Settings) -> None:
    """What bronze leaves after an hour without a log object: an empty table. The plan is
    empty for every edge and the replay has no hour to judge; both tables they write
    exist afterwards."""
    ensure_delta_table(
        spark, lake_path(lake, "cdn", REQUESTS_TABLE), REQUESTS_SCHEMA, PARTITION_COLUMNS
    )
    plans = cdn_plan.run(spark, lake, WINDOW)
    assert [p.edge for p in plans] == list(REGION_NAMES)
    assert all(p.objects == () for p in plans)
    stored = read_delta(spark, lake_path(lake, "cdn", "cdn_warm_plan"), written_by="warm_plan")
    assert stored.count() == 0
    assert cdn_replay.run(spark, lake, WINDOW, cache_bytes=1 << 20) == []


def test_the_plan_cli_exits_2_with_the_reason(
    spark: Any,
    lake: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI (what spark-submit runs) prints the reason and exits 2; no plans file."""
    window = tmp_path / "window.json"
    WINDOW.write(window)
    monkeypatch.setattr(cdn_plan, "get_settings", lambda: lake)
    code = cdn_plan.main(["--window", str(window), "--plans", str(tmp_path / "plans.json")])
    assert code == 2
    assert "is not a Delta table yet" in capsys.readouterr().err
    assert not (tmp_path / "plans.json").exists()


def test_training_data_on_a_fresh_lake_is_no_history_yet(
    spark: Any, lake: Settings, tmp_path: Path
) -> None:
    with pytest.raises(NoHistoryYet, match="user_video_daily is not a Delta table yet"):
        build_dataset(lake, tmp_path / "dataset", spark=spark)
    assert not (tmp_path / "dataset").exists()


def test_the_training_dags_dataset_task_skips_on_a_fresh_lake(
    spark: Any, lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the DAG the dataset task is skipped, saying why (and the training with it),
    rather than failing every night until analytics has run."""
    from airflow.sdk.exceptions import AirflowSkipException

    import vidflow.config
    from vidflow.orchestration.recs import dataset_or_skip

    monkeypatch.setattr(vidflow.config, "get_settings", lambda: lake)
    context = {"params": {"since": None, "until": None}, "run_id": "scheduled__2026-11-20"}
    with pytest.raises(AirflowSkipException, match=r"nothing to train on yet: .*user_video_daily"):
        dataset_or_skip(context)
