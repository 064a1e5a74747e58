"""Trending: time-decayed popularity as of the viewer's reference time, per region.

An event of signal w at time t counts w * 0.5 ** ((T - t) / half_life) at time T, and
only events at or before T count, so the score never sees the future. When the data has
a ``region`` column a viewer gets their region's trend (the global one if the region has
no events); otherwise everyone gets the global trend. It is also the cold-start answer:
a viewer with no history still has a region and a time.

Reference times are rounded to ``resolution_seconds`` so that a batch of viewers shares
a few popularity vectors (on the platform everyone's time is "now": one vector).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.training_data import FloatArray, TrainingData, UserBatch

DAY = 86_400.0


def decayed_popularity(
    item_idx: npt.NDArray[np.int64],
    timestamps: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float64],
    n_items: int,
    at: npt.NDArray[np.float64],
    half_life_seconds: float,
) -> FloatArray:
    """``len(at) x n_items``: the decayed popularity of every item at each time in ``at``
    (one sweep over the events in time order, carrying the state between query times)."""
    order = np.argsort(timestamps, kind="stable")
    ts, items, w = timestamps[order], item_idx[order], weights[order]
    query_order = np.argsort(at, kind="stable")
    out = np.zeros((len(at), n_items), dtype=np.float32)
    state = np.zeros(n_items, dtype=np.float64)
    state_time = -np.inf
    start = 0
    rate = np.log(2.0) / half_life_seconds
    for q in query_order:
        t = at[q]
        stop = int(np.searchsorted(ts, t, side="right"))
        if np.isfinite(state_time):
            state *= np.exp(-rate * (t - state_time))
        if stop > start:
            contrib = w[start:stop] * np.exp(-rate * (t - ts[start:stop]))
            state += np.bincount(items[start:stop], weights=contrib, minlength=n_items)
            start = stop
        state_time = t
        out[q] = state
    return out


@dataclass(frozen=True)
class TrendingParams:
    half_life_days: float = 7.0
    resolution_seconds: float = 3600.0


class Trending:
    """Fitted trending source (``name = "trending"``)."""

    name = "trending"

    def __init__(self, data: TrainingData, params: TrendingParams | None = None) -> None:
        self.params = params or TrendingParams()
        df = data.interactions[data.interactions["signal"] > 0]
        self.n_items = data.n_items
        self._items = df["item_idx"].to_numpy(np.int64)
        self._times = df["timestamp"].to_numpy(np.float64)
        self._weights = df["signal"].to_numpy(np.float64)
        self._regions = df["region"].to_numpy(object) if "region" in df else None

    def at_times(
        self,
        times: npt.NDArray[np.float64],
        half_life_days: float | None = None,
        region: str | None = None,
    ) -> FloatArray:
        """Popularity at each (rounded) time, in the region when given; rows sum to one
        (a share of the attention), so figures compare across data sizes."""
        half_life = (half_life_days or self.params.half_life_days) * DAY
        res = self.params.resolution_seconds
        rounded = np.floor(times / res) * res  # down: never a second past the time
        unique, inverse = np.unique(rounded, return_inverse=True)
        mask = np.ones(len(self._items), dtype=bool)
        if region is not None and self._regions is not None:
            mask = self._regions == region
        pop = decayed_popularity(
            self._items[mask],
            self._times[mask],
            self._weights[mask],
            self.n_items,
            unique,
            half_life,
        )
        total = pop.sum(axis=1, keepdims=True)
        pop = np.divide(pop, total, out=np.zeros_like(pop), where=total > 0)
        result: FloatArray = pop[inverse]
        return result

    def scores(self, batch: UserBatch, half_life_days: float | None = None) -> FloatArray:
        out = self.at_times(batch.reference_time, half_life_days)
        if batch.regions is None or self._regions is None:
            return out
        for region in np.unique(batch.regions):
            rows = batch.regions == region
            if region == "unknown" or not (self._regions == region).any():
                continue
            out[rows] = self.at_times(batch.reference_time[rows], half_life_days, str(region))
        return out


def trending_lists(
    trending: Trending,
    at: float,
    regions: tuple[str, ...],
    n: int,
    allowed: npt.NDArray[np.bool_] | None = None,
    global_name: str = "global",
) -> dict[str, list[tuple[int, float]]]:
    """The top ``n`` (item index, share of attention) per region and for ``global_name``
    (every region) as of time ``at``; only ``allowed`` items, only items with a positive
    score. A region with no events of its own gets the global list (a new region still
    has something to show)."""
    at_arr = np.asarray([at], dtype=np.float64)

    def top(scores: FloatArray) -> list[tuple[int, float]]:
        row = scores[0].astype(np.float64)
        if allowed is not None:
            row = np.where(allowed, row, 0.0)
        order = np.lexsort((np.arange(len(row)), -row))[:n]
        return [(int(i), float(row[i])) for i in order if row[i] > 0]

    out = {global_name: top(trending.at_times(at_arr))}
    for region in regions:
        has_events = trending._regions is not None and bool((trending._regions == region).any())
        out[region] = top(trending.at_times(at_arr, region=region)) if has_events else []
        if not out[region]:
            out[region] = out[global_name]
    return out
