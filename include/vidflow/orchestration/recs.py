"""Airflow-aware steps of the ``recs_training`` and ``recs_scoring`` DAGs: the asset the
training DAG emits when the champion changes, the run's folders and windows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset

from vidflow.config import Settings

if TYPE_CHECKING:
    # Heavy (pandas, boto3 through the training code): never at DAG parse time.
    from vidflow.recs.training import TrainingResult

# Named only: a URI with a scheme makes Airflow load every provider's URI handlers
# (boto3 among them) when a DAG file that schedules on it is parsed.
CHAMPION_ASSET = Asset(name="recs_champion")


def run_dir(settings: Settings, dag_id: str, run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return settings.state_dir / "recs" / dag_id / safe


def dataset_or_skip(context: Any) -> dict[str, Any]:
    """The dataset task: build the training data for the run's window; skip the task (and
    with it the training and the announcement) while there is no watch history to learn
    from, saying why. A fresh platform has none until ``platform_analytics`` has run on
    some events."""
    from airflow.sdk.exceptions import AirflowSkipException

    from vidflow.config import get_settings
    from vidflow.recs.dataset import NoHistoryYet, build_dataset

    settings, params = get_settings(), context["params"]
    folder = run_dir(settings, "recs_training", context["run_id"])
    try:
        summary = build_dataset(settings, folder, params["since"], params["until"])
    except NoHistoryYet as empty:
        raise AirflowSkipException(f"nothing to train on yet: {empty}") from empty
    return summary.to_xcom()


def announce(result: TrainingResult, params: dict[str, Any], outlet_events: Any) -> None:
    """Emit the champion asset (with the window and the model name as extra) only when
    the alias moved; otherwise skip, and a skipped task emits no asset event."""
    from airflow.sdk.exceptions import AirflowSkipException

    if not result.champion_changed:
        raise AirflowSkipException(f"champion unchanged: {result.reason}")
    outlet_events[CHAMPION_ASSET].extra = {
        "version": result.version,
        "since": params.get("since"),
        "until": params.get("until"),
        "model_name": params.get("model_name"),
    }


def scoring_params(context: Any) -> dict[str, Any]:
    """The scoring run's Params, filled from the triggering champion event when the run
    came from the training DAG (its window and model name)."""
    params = dict(context["params"])
    events = context.get("triggering_asset_events") or {}
    for asset_events in events.values():
        for event in asset_events:
            extra = event.extra or {}
            for key in ("since", "until", "model_name"):
                if params.get(key) is None and extra.get(key) is not None:
                    params[key] = extra[key]
    return params
