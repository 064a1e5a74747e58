"""The popularity baseline the demo reads the champion against.

``recs_training`` logs the champion's NDCG@10 on its temporal holdout, but not that of
global popularity on the same holdout. When the champion is the demo's own training run
and its MLflow run has no ``popularity_ndcg_at_10``, this module evaluates popularity on
exactly that holdout (the run's dataset, cut and positive threshold; what a viewer
watched before the cut is masked, as for the model; the same metric function) and logs
it to the run, so the MLflow UI shows both figures side by side.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from vidflow.airflow_api import AirflowClient

METRIC: Final = "popularity_ndcg_at_10"
K: Final = 10


def _cut_epoch(value: Any) -> float | None:
    if value in (None, "", "None"):
        return None
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC).timestamp()


def popularity_ndcg(dataset: dict[str, Any], run_params: dict[str, str]) -> float:
    """NDCG@10 of global popularity on the holdout of the training run whose dataset
    task returned ``dataset`` and whose MLflow params are ``run_params``."""
    from vidflow.recs import ensure_models_importable

    ensure_models_importable()
    import numpy as np
    import pandas as pd

    from models import datasets
    from models.baselines import Popularity
    from models.candidates import finite_lists, mask_seen
    from models.metrics import evaluate_lists
    from models.pipeline import truth_of
    from models.training_data import TrainingData, batch_for
    from vidflow.recs.dataset import DatasetSummary, load_dataset

    threshold = float(run_params.get("param_positive_threshold", 30.0))
    interactions, items = load_dataset(DatasetSummary.from_xcom(dataset))
    split = datasets.global_split(
        interactions, threshold, _cut_epoch(run_params.get("param_cut_date"))
    )
    data = TrainingData.build(split.train, items, threshold)
    users = pd.Index(split.test["user_id"].unique())
    known = users[data.user_ids.get_indexer(users) >= 0]
    batch = batch_for(data, known, split.reference_time)
    popularity = Popularity(data)
    scores = mask_seen(np.asarray(popularity.scores(batch), dtype=np.float32), data, batch.users)
    ids = np.asarray(data.item_ids)
    lists = {u: list(ids[row]) for u, row in zip(known, finite_lists(scores, K), strict=True)}
    # A viewer new in the holdout has seen nothing: the plain global list.
    overall = list(ids[np.argsort(-popularity.counts, kind="stable")[:K]])
    lists.update({u: overall for u in users.difference(known)})
    return float(evaluate_lists(lists, truth_of(split.test), data.n_items, k=K)["ndcg@10"])


def ensure_popularity_metric(
    client: AirflowClient, tracking_uri: str, training_run_id: str, mlflow_run_id: str
) -> float | None:
    """The champion run's popularity NDCG@10: logged already, or evaluated now when the
    run is the demo's training run (whose dataset the Airflow run knows); else None."""
    from mlflow import MlflowClient

    mlflow = MlflowClient(tracking_uri)
    run = mlflow.get_run(mlflow_run_id)
    if METRIC in run.data.metrics:
        return float(run.data.metrics[METRIC])
    trained = client.xcom("recs_training", training_run_id, "train")
    if not isinstance(trained, dict) or trained.get("run_id") != mlflow_run_id:
        return None
    dataset = client.xcom("recs_training", training_run_id, "dataset")
    if not isinstance(dataset, dict):
        return None
    value = popularity_ndcg(dataset, dict(run.data.params))
    mlflow.log_metric(mlflow_run_id, METRIC, value)
    return value
