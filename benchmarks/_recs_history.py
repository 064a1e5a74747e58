"""Recommender training data straight from the traffic model, in process.

The traffic model's sessions and playbacks are drawn day by day exactly as ``history``
draws them (the same functions, so the same viewers' tastes drive the choices), but the
per-event stream, S3 and the analytics jobs are skipped: the playbacks are summed per
(viewer, video) into the canonical interactions of ``models.datasets``. For the benchmark
(millions of interactions in seconds) and for tests that need a history whose truth is
known (``vidflow.traffic.model.truth(population)``).

It lives beside the benchmarks, not in ``vidflow.recs``: the services layer must not
import the traffic model (an operator tool above it; ``.importlinter``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from vidflow.regions import DEVICES, REGION_NAMES
from vidflow.traffic import simulate as sim
from vidflow.traffic.model import Population, build_population, stream


@dataclass(frozen=True)
class SyntheticHistory:
    population: Population
    interactions: pd.DataFrame  # user_id, item_id, timestamp, weight, region, device
    items: pd.DataFrame  # item_id, tags, title
    playbacks: pd.DataFrame  # one row per playback, with the simulator's own ``fit``


def simulate_interactions(
    seed: int,
    viewers: int,
    videos: int,
    days: int,
    max_pairs: int | None = None,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
) -> SyntheticHistory:
    """``days`` of the traffic model (stopping early, at a 5-day boundary, once
    ``max_pairs`` (viewer, video) pairs exist). Ids are the model's user and video ids,
    the ones its truth uses; anonymous viewers' playbacks are left out of the
    interactions (no user id), not of ``playbacks``."""
    population = build_population(seed, viewers=viewers, videos=videos, start=start, days=days)
    plays = np.zeros((len(REGION_NAMES), len(population.catalog)))
    frames: list[pd.DataFrame] = []
    for day in range(population.days):
        rng = stream(population.seed, sim._SIMULATION, day)
        day_ts = population.start_ts + day * sim._DAY
        sessions = sim._sessions(population, rng, day_ts)
        choice = sim._Choice(population, day_ts, plays)
        pb = sim._playbacks(population, rng, sessions, choice, day_ts)
        np.add.at(plays, (sessions.region[pb.session], pb.video), 1.0)
        frames.append(
            pd.DataFrame(
                {
                    "viewer": sessions.viewer[pb.session],
                    "video": pb.video,
                    "timestamp": pb.start_ts,
                    "weight": pb.play_seconds,
                    "region": sessions.region[pb.session],
                    "device": sessions.device[pb.session],
                    "fit": pb.fit,
                }
            )
        )
        if max_pairs and day % 5 == 4:
            pairs = len(pd.concat(frames)[["viewer", "video"]].drop_duplicates())
            if pairs >= max_pairs:
                break
    raw = pd.concat(frames, ignore_index=True)
    users = np.asarray(population.viewers.user_ids, dtype=object)
    video_ids = np.asarray(population.catalog.video_ids, dtype=object)
    raw["user_id"] = users[raw["viewer"].to_numpy()]
    raw["item_id"] = video_ids[raw["video"].to_numpy()]
    raw["region"] = np.asarray(REGION_NAMES, dtype=object)[raw["region"].to_numpy()]
    raw["device"] = np.asarray(DEVICES, dtype=object)[raw["device"].to_numpy()]
    raw = raw.sort_values("timestamp", kind="stable")
    inter = (
        raw.dropna(subset=["user_id"])
        .groupby(["user_id", "item_id"], sort=True)
        .agg(
            timestamp=("timestamp", "max"),
            weight=("weight", "sum"),
            region=("region", "last"),
            device=("device", "last"),
        )
        .reset_index()
    )
    catalog = population.catalog
    items = pd.DataFrame(
        {
            "item_id": list(video_ids),
            "tags": [tuple(t) for t in catalog.tags],
            "title": list(catalog.titles),
        }
    )
    return SyntheticHistory(population, inter, items, raw)
