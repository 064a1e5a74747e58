"""The figures ``make demo`` ends with, read back from where the platform keeps them: the
catalog (clips, recommendations), the analytics runs' outputs (accepted events, the
replay of the warm plans) and the MLflow registry (the champion)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Final

from vidflow.airflow_api import AirflowClient
from vidflow.config import Settings
from vidflow.platform.demo_runs import RunRef, run_output
from vidflow.platform.demo_traffic import DEMO_VIEWER


@dataclass(frozen=True)
class Warming:
    hours: int
    edges: int
    #: Bytes-weighted share of the LRU -> Belady byte-hit gap the warm plans closed.
    gap_share: float | None
    lru_byte_hit_ratio: float
    warmed_byte_hit_ratio: float
    belady_byte_hit_ratio: float


@dataclass(frozen=True)
class Champion:
    model_name: str
    version: str
    run_id: str
    ndcg_at_10: float
    #: The popularity baseline's NDCG@10 on the same holdout, when the run logged it.
    popularity_ndcg_at_10: float | None


@dataclass(frozen=True)
class DemoSummary:
    clips_processed: int
    catalog_processed: int
    history_events: int
    live_events: int
    viewer_events: int
    analytics_accepted: int
    analytics_quarantined: int
    warming: Warming
    champion: Champion | None
    recommendations_for_viewer: int


def warming_of(client: AirflowClient, runs: tuple[RunRef, ...]) -> Warming:
    """The cdn_analytics runs' replay summaries (in the folder each run's plan task
    published), summed over hours and edges: how much of the byte-hit gap between LRU and
    Belady the warm plans closed."""
    hits = {"lru": 0, "warmed": 0, "belady": 0}
    total = 0
    edges = set()
    for run in runs:
        path = Path(run_output(client, run, "run_dir")) / "replay.json"
        if not path.exists():
            raise FileNotFoundError(f"{run.dag_id} {run.run_id} wrote no replay summary {path}")
        for edge in json.loads(path.read_text()):
            edges.add(edge["edge"])
            total += int(edge["lru"]["bytes"])
            for policy in hits:
                hits[policy] += int(edge[policy]["hit_bytes"])
    ratio = {p: h / total if total else 0.0 for p, h in hits.items()}
    gap = hits["belady"] - hits["lru"]
    share = (hits["warmed"] - hits["lru"]) / gap if gap > 0 else None
    return Warming(len(runs), len(edges), share, ratio["lru"], ratio["warmed"], ratio["belady"])


POPULARITY_METRICS: Final = ("popularity_ndcg_at_10", "baseline_popularity_ndcg_at_10")


def champion_of(settings: Settings, model_name: str) -> Champion | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from vidflow.recs.registry import CHAMPION

    client = MlflowClient(settings.tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None
    if version.run_id is None:
        return None
    metrics = client.get_run(version.run_id).data.metrics
    popularity = next((metrics[m] for m in POPULARITY_METRICS if m in metrics), None)
    return Champion(
        model_name,
        str(version.version),
        str(version.run_id),
        float(metrics["ndcg_at_10"]),
        popularity,
    )


def catalog_figures(
    settings: Settings, clip_ids: tuple[str, ...], user_id: str
) -> tuple[int, int, int]:
    """(demo clips processed, processed videos in the catalog, the demo viewer's
    precomputed recommendations)."""

    from sqlalchemy import func, select

    from vidflow.catalog.db import session_scope
    from vidflow.catalog.models import Recommendation, Video

    with session_scope(settings) as session:
        clips = session.scalar(
            select(func.count()).where(
                Video.video_id.in_([uuid.UUID(v) for v in clip_ids]), Video.status == "processed"
            )
        )
        processed = session.scalar(select(func.count()).where(Video.status == "processed"))
        recs = session.scalar(
            select(func.count()).where(Recommendation.user_id == uuid.UUID(user_id))
        )
    return int(clips or 0), int(processed or 0), int(recs or 0)


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def format_summary(
    s: DemoSummary,
    settings: Settings,
    *,
    clips: int,
    first_day: date,
    today: date,
    timings: dict[str, float],
) -> str:
    """What a person reads at the end: where to go, how to sign in, what happened."""
    password = settings.demo_password.get_secret_value()
    admin = settings.airflow_admin_password.get_secret_value()
    champion = s.champion
    if champion is None:
        recs = "no champion in MLflow"
    else:
        popularity = (
            "popularity baseline not logged by recs_training"
            if champion.popularity_ndcg_at_10 is None
            else f"popularity {champion.popularity_ndcg_at_10:.4f}"
        )
        recs = (
            f"{champion.model_name} v{champion.version}: NDCG@10 {champion.ndcg_at_10:.4f}, "
            f"{popularity}"
        )
    w = s.warming
    last_day = today - timedelta(days=1)
    lines = [
        "",
        f"  Web app     http://{settings.bind_host}:{settings.viewer_port}/app/",
        f"              sign in as {DEMO_VIEWER} / {password}  (creator: demo, same password)",
        f"  Airflow UI  {settings.airflow_api_url}  login {settings.airflow_admin_user} / {admin}",
        f"  MLflow UI   {settings.tracking_uri}",
        "",
        f"  videos      {s.clips_processed}/{clips} demo clips processed; "
        f"{s.catalog_processed} processed videos in the catalog",
        f"  events      {s.history_events} history ({first_day}..{last_day}) + "
        f"{s.live_events} live + {s.viewer_events} from {DEMO_VIEWER}",
        f"              platform_analytics accepted {s.analytics_accepted}, "
        f"quarantined {s.analytics_quarantined}",
        f"  warming     closes {_ratio(w.gap_share)} of the LRU -> Belady byte-hit gap "
        f"({w.hours} hours x {w.edges} edges)",
        f"              byte hit ratio: LRU {_ratio(w.lru_byte_hit_ratio)}, warmed "
        f"{_ratio(w.warmed_byte_hit_ratio)}, Belady {_ratio(w.belady_byte_hit_ratio)}",
        f"  champion    {recs}",
        f"  {DEMO_VIEWER}  {s.recommendations_for_viewer} precomputed recommendations",
        f"  wall time   {sum(timings.values()):.0f} s: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()),
        "",
    ]
    return "\n".join(lines)
