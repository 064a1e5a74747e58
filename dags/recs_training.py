"""
### Recommender training

Daily, after the analytics day is complete: builds the dataset from the Delta tables
(`user_video_daily`, devices from `watch_events`) and the catalog's videos, fits the
recommender (candidate sources + LightGBM ranker) on everything before the **cut**, scores
it on the viewers' positives after the cut, logs params, metrics, plots and the model to
MLflow as a version of `vidflow-recommender`, then gates the alias: `champion` moves only
if the new version beats the current champion's NDCG@10 on the same holdout by more than
`margin`; otherwise it becomes `challenger` and the run and version are tagged with why.
A champion change emits the `recs_champion` asset, which runs `recs_scoring`.

**Trigger w/ config** to retrain with other hyper-parameters (`lightfm_components`,
`lightfm_epochs`, `candidates_per_source`, `positive_threshold`, `tune`), another cut
(`cut_date`), margin, or data window (`since`/`until`). With `truth_file` (the traffic
model's ground truth) the run also logs how well the lists agree with the viewers' true
tastes (`truth_*` metrics, `truth/truth_agreement.json`), against popularity, trending,
LightFM alone and random.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task

from vidflow.orchestration.recs import CHAMPION_ASSET
from vidflow.orchestration.schedules import timed


@dag(
    schedule=timed("30 1 * * *"),  # the last hour's analytics run of the day has had 1.5 h
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vidflow", "recs"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=2)},
    params={
        "cut_date": Param(None, type=["null", "string"], format="date",
                          description="Holdout starts at this UTC midnight (default: 80% "
                          "of interactions before it)."),
        "since": Param(None, type=["null", "string"], format="date",
                       description="First UTC day of history to learn from."),
        "until": Param(None, type=["null", "string"], format="date",
                       description="Last UTC day of history to learn from."),
        "margin": Param(0.0, type="number", minimum=0,
                        description="NDCG@10 points the new version must beat the champion by."),
        "positive_threshold": Param(30.0, type="number", minimum=0,
                                    description="Credited watch seconds that make a positive."),
        "lightfm_components": Param(32, type="integer", minimum=1),
        "lightfm_epochs": Param(20, type="integer", minimum=1),
        "candidates_per_source": Param(100, type="integer", minimum=1),
        "tune": Param(True, type="boolean", description="Tune the sources on validation."),
        "model_name": Param("vidflow-recommender", type="string",
                            description="Registered model (tests use their own)."),
        "truth_file": Param(None, type=["null", "string"],
                            description="Traffic-model truth JSON: scores the holdout lists "
                            "against the viewers' true tastes (never used to train)."),
    },
    doc_md=__doc__,
)  # fmt: skip
def recs_training() -> None:
    @task
    def dataset(**context: Any) -> dict[str, Any]:
        """Delta + catalog -> interactions/items parquet; skipped (with the training)
        while there is no watch history yet."""
        from vidflow.orchestration.recs import dataset_or_skip

        return dataset_or_skip(context)

    @task
    def train(summary: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Fit, evaluate, log to MLflow, register, gate the champion alias."""
        from vidflow.config import get_settings
        from vidflow.recs.dataset import DatasetSummary
        from vidflow.recs.training import TrainParams, train_and_log

        p = context["params"]
        params = TrainParams(
            cut_date=p["cut_date"],
            positive_threshold=float(p["positive_threshold"]),
            margin=float(p["margin"]),
            lightfm_components=int(p["lightfm_components"]),
            lightfm_epochs=int(p["lightfm_epochs"]),
            candidates_per_source=int(p["candidates_per_source"]),
            tune=bool(p["tune"]),
            truth_file=p.get("truth_file"),
        )
        return train_and_log(
            get_settings(),
            DatasetSummary.from_xcom(summary),
            params,
            model_name=p["model_name"],
        ).to_xcom()

    @task(outlets=[CHAMPION_ASSET])
    def announce(result: dict[str, Any], **context: Any) -> None:
        """Emits the champion asset when the alias moved; skipped otherwise."""
        from vidflow.orchestration.recs import announce as emit
        from vidflow.recs.training import TrainingResult

        emit(TrainingResult.from_xcom(result), context["params"], context["outlet_events"])

    announce(train(dataset()))


recs_training()
