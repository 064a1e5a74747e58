"""
### Recommender batch scoring

Runs when `recs_training` moves the `champion` alias (the `recs_champion` asset), or by
hand. Loads `models:/vidflow-recommender@champion` and publishes, stamped with the model
version: the top 50 unwatched videos for every viewer active in the last `active_days`
days of the data (`recommendations`, each item with the `source` that brought it), the
top 20 "more like this" per processed video (`related_videos`), both swapped one hash
partition per transaction, and the top 50 trending per region and `global`
(`trending_videos`, one transaction); also the Delta snapshot `recs/recommendations`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task

from vidflow.orchestration.recs import CHAMPION_ASSET


@dag(
    schedule=[CHAMPION_ASSET],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vidflow", "recs"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2)},
    params={
        "since": Param(None, type=["null", "string"], format="date"),
        "until": Param(None, type=["null", "string"], format="date"),
        "top_n": Param(50, type="integer", minimum=1, maximum=500),
        "active_days": Param(30.0, type="number", minimum=0),
        "model_name": Param(None, type=["null", "string"],
                            description="Default: the one the training run used, else "
                            "vidflow-recommender."),
    },
    doc_md=__doc__,
)  # fmt: skip
def recs_scoring() -> None:
    @task
    def score(**context: Any) -> dict[str, Any]:
        """Dataset (watch history + active viewers), champion top-N, catalog + Delta."""
        from vidflow.config import get_settings
        from vidflow.orchestration.recs import run_dir, scoring_params
        from vidflow.recs.dataset import build_dataset
        from vidflow.recs.registry import MODEL_NAME
        from vidflow.recs.scoring import score as run_scoring

        settings, params = get_settings(), scoring_params(context)
        folder = run_dir(settings, "recs_scoring", context["run_id"])
        summary = build_dataset(settings, folder, params["since"], params["until"])
        return run_scoring(
            settings,
            summary,
            n=int(params["top_n"]),
            active_days=float(params["active_days"]),
            model_name=params["model_name"] or MODEL_NAME,
        ).to_xcom()

    score()


recs_scoring()
