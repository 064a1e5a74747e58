"""Fit the recommender on a temporal holdout, log everything to MLflow, register a
version of ``vidflow-recommender`` and gate the ``champion`` alias.

The holdout is the global temporal split at ``cut_date`` (UTC midnight; default: the
time that leaves 20% of interactions after it): the new version is trained on what
happened before it, and the new version and the current champion are both scored on the
positives after it of the same viewers. The registered model is the one trained on the
train part, so the holdout it is compared on is data it never saw.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from vidflow.config import Settings
from vidflow.recs import ensure_models_importable
from vidflow.recs.dataset import DatasetSummary, load_dataset
from vidflow.recs.registry import (
    MODEL_NAME,
    apply_decision,
    current_champion,
    decide_alias,
)

log = logging.getLogger(__name__)
EXPERIMENT = "vidflow-recommender"
KS = (5, 10, 20, 50)


@dataclass(frozen=True)
class TrainParams:
    """The training DAG's Params."""

    cut_date: str | None = None
    positive_threshold: float = 30.0  # credited watch seconds that make a positive
    margin: float = 0.0
    lightfm_components: int = 32
    lightfm_epochs: int = 20
    candidates_per_source: int = 100
    validation_protocol: str = "per-user"
    tune: bool = True
    # the traffic model's ground truth: only to SCORE the holdout lists against the
    # viewers' true tastes (vidflow.recs.truth), never to train
    truth_file: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> TrainParams:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown training parameter(s): {', '.join(unknown)}")
        return cls(**value)


@dataclass(frozen=True)
class TrainingResult:
    run_id: str
    version: str
    alias: str
    reason: str
    ndcg: float
    champion_ndcg: float | None
    previous_champion: str | None
    champion_changed: bool

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> TrainingResult:
        return cls(**value)


def _pyfunc_class() -> type:
    import mlflow.pyfunc

    class RecommenderModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
        """Input: a frame with ``user_id``; output: rows ``user_id, item_id, rank``.
        Param ``k`` (default 50)."""

        def load_context(self, context):  # type: ignore[no-untyped-def]
            from models.pipeline import Recommender

            self.recommender = Recommender.load(Path(context.artifacts["recommender"]))

        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            k = int((params or {}).get("k", 50))
            users = pd.Index(model_input["user_id"].astype(str).unique())
            return self.recommender.recommend(users, k)

    return RecommenderModel


def _cut_epoch(cut_date: str | None) -> float | None:
    if not cut_date:
        return None
    day = datetime.fromisoformat(cut_date).replace(tzinfo=UTC)
    return day.timestamp()


def holdout_metrics(recommender: Any, split: Any) -> tuple[dict[str, float], dict[str, float]]:
    """Metrics at every K of the ranked lists, and recall@50 of each candidate source,
    on ``split``'s test viewers."""
    from models.metrics import evaluate_lists
    from models.pipeline import truth_of

    users = pd.Index(split.test["user_id"].unique())
    truth = truth_of(split.test)
    n_items = recommender.sources.data.n_items
    frame, source_lists = recommender.candidates(users, split.reference_time)
    lists = recommender.rank(frame, max(KS))
    metrics: dict[str, float] = {}
    for k in KS:
        m = evaluate_lists(lists, truth, n_items, k=k, recall_ks=(k,))
        metrics.update({key: v for key, v in m.items() if key != "users"})
        metrics["users"] = m["users"]
    per_source = {
        name: evaluate_lists(src, truth, n_items, k=50, recall_ks=(50,))["recall@50"]
        for name, src in source_lists.items()
    }
    return metrics, per_source


def _tastes(truth_file: str | None) -> tuple[Any, str]:
    """The truth file's tastes, or None and why not (a missing or unreadable truth file
    is a recorded reason, never a failed training run)."""
    from vidflow.recs.truth import TrueTastes

    if not truth_file:
        return None, "not measured: no truth_file given"
    try:
        return TrueTastes.from_file(Path(truth_file)), "measured"
    except ValueError as exc:
        log.warning("truth agreement skipped: %s", exc)
        return None, f"not measured: {exc}"[:500]


def _log_truth_agreement(recommender: Any, split: Any, tastes: Any, directory: Path) -> str:
    """Metrics ``truth_{fit,ndcg}_at_10_{pipeline,popularity,trending,lightfm,random}``
    and the artifact ``truth/truth_agreement.json``; returns the run's note."""
    import json

    import mlflow

    from vidflow.recs.truth import flat_metrics, holdout_agreement

    try:
        report = holdout_agreement(recommender, split, tastes, k=10)
    except ValueError as exc:
        log.warning("truth agreement skipped: %s", exc)
        return f"not measured: {exc}"[:500]
    mlflow.log_metrics(flat_metrics(report))
    path = directory / "truth_agreement.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    mlflow.log_artifact(str(path), "truth")
    return f"measured on {report['viewers']} holdout viewers"


def _plots(
    directory: Path,
    metrics: dict[str, float],
    per_source: dict[str, float],
    importance: dict[str, float],
) -> list[str]:
    """PNG plots; matplotlib is installed with the stack (say so when it is not)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plots logged")
        return []
    written = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("ndcg", "recall", "map"):
        ax.plot(KS, [metrics[f"{name}@{k}"] for k in KS], marker="o", label=name)
    ax.set_xlabel("K")
    ax.set_title("holdout metrics by K")
    ax.legend()
    fig.savefig(directory / "metrics_by_k.png", dpi=80)
    written.append("metrics_by_k.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(list(per_source), list(per_source.values()))
    ax.set_title("recall@50 per candidate source")
    fig.savefig(directory / "source_recall.png", dpi=80)
    written.append("source_recall.png")
    plt.close(fig)
    if importance:
        top = list(importance.items())[:20]
        fig, ax = plt.subplots(figsize=(7, 5))
        ax.barh([k for k, _ in top][::-1], [v for _, v in top][::-1])
        ax.set_title("ranker feature importance (gain)")
        fig.tight_layout()
        fig.savefig(directory / "feature_importance.png", dpi=80)
        written.append("feature_importance.png")
        plt.close(fig)
    return written


def champion_ndcg_on(champion: Any, split: Any) -> float:
    import mlflow.pyfunc

    loaded = mlflow.pyfunc.load_model(f"models:/{champion.name}/{champion.version}")
    recommender = loaded.unwrap_python_model().recommender
    metrics, _ = holdout_metrics(recommender, split)
    return float(metrics["ndcg@10"])


def train_and_log(
    settings: Settings,
    summary: DatasetSummary,
    params: TrainParams,
    experiment: str = EXPERIMENT,
    model_name: str = MODEL_NAME,
) -> TrainingResult:
    ensure_models_importable()
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature

    from models import datasets
    from models.candidates.lightfm_cf import LightFMParams
    from models.pipeline import PipelineConfig, Recommender

    interactions, items = load_dataset(summary)
    split = datasets.global_split(
        interactions, params.positive_threshold, _cut_epoch(params.cut_date)
    )
    tastes, truth_note = _tastes(params.truth_file)
    if split.test.empty or split.train.empty:
        raise datasets.DatasetError(
            f"the cut {params.cut_date or 'default'} leaves no train or no holdout viewer "
            f"({len(split.train)} train interactions, {len(split.test)} holdout positives)"
        )
    config = PipelineConfig(
        positive_threshold=params.positive_threshold,
        protocol=params.validation_protocol,
        candidates_per_source=params.candidates_per_source,
        lightfm=LightFMParams(
            no_components=params.lightfm_components, epochs=params.lightfm_epochs
        ),
        tune=params.tune,
    )
    recommender = Recommender(config).fit(split.train, items)
    metrics, per_source = holdout_metrics(recommender, split)

    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri)
    mlflow.set_experiment(experiment)
    champion = current_champion(client, model_name)
    with mlflow.start_run() as run, tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        mlflow.log_params(
            {
                **{f"param_{k}": v for k, v in asdict(params).items()},
                "train_interactions": len(split.train),
                "holdout_positives": len(split.test),
                "items": len(items),
                "tuned": str(recommender.report.tuned)[:500],
                "feature_groups_kept": ",".join(recommender.report.groups_kept),
                "ranker_fallback": str(recommender.report.fallback)[:500],
            }
        )
        mlflow.log_metrics({k.replace("@", "_at_"): float(v) for k, v in metrics.items()})
        mlflow.log_metrics({f"source_recall_at_50_{k}": float(v) for k, v in per_source.items()})
        mlflow.log_metrics({f"fit_{k}": float(v) for k, v in recommender.report.timings.items()})
        if tastes is not None:
            truth_note = _log_truth_agreement(recommender, split, tastes, directory)
        mlflow.set_tag("truth_agreement", truth_note)
        for png in _plots(directory, metrics, per_source, recommender.report.importance):
            mlflow.log_artifact(str(directory / png), "plots")
        path = directory / "recommender.pkl"
        recommender.save(path)
        example = pd.DataFrame({"user_id": [str(split.test["user_id"].iloc[0])]})
        output = recommender.recommend(pd.Index(example["user_id"]), 5)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=_pyfunc_class()(),
            artifacts={"recommender": str(path)},
            code_paths=[str(Path(__file__).resolve().parents[3] / "models")],
            input_example=example,
            signature=infer_signature(example, output, params={"k": 50}),
            registered_model_name=model_name,
        )
        run_id = run.info.run_id
    version = str(info.registered_model_version)
    ndcg = float(metrics["ndcg@10"])
    champion_ndcg, unusable = None, None
    if champion is not None:
        try:
            champion_ndcg = champion_ndcg_on(champion, split)
        except MlflowException as exc:  # e.g. its artifacts were lost with an object store
            unusable = (
                f"the champion, version {champion.version}, cannot be loaded "
                f"({str(exc.message)[:200]})"
            )
            log.warning("%s", unusable)
    if champion_ndcg is not None:
        client.log_metric(run_id, "champion_ndcg_at_10", champion_ndcg)
    decision = decide_alias(ndcg, champion_ndcg, params.margin, champion_unusable=unusable)
    previous = None if champion is None else str(champion.version)
    apply_decision(client, version, run_id, decision, previous, ndcg, model_name)
    log.info("version %s -> %s: %s", version, decision.alias, decision.reason)
    return TrainingResult(
        run_id=run_id,
        version=version,
        alias=decision.alias,
        reason=decision.reason,
        ndcg=ndcg,
        champion_ndcg=champion_ndcg,
        previous_champion=previous,
        champion_changed=decision.promoted,
    )
