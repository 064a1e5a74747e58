"""Sessions, playbacks and their events, one UTC day at a time, vectorised with numpy.

:func:`simulate` walks the population's days in order (rich-get-richer needs yesterday's
plays) and yields a :class:`Day` per UTC day: the sessions started that day, their
playbacks and the events those playbacks emit, as parallel arrays. :func:`stored_lines`
turns a day's events into exactly the NDJSON lines :meth:`vidflow.events.StoredEvent.
to_json_line` writes, without building one Python object per event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from vidflow.events import EVENT_TYPES, SCHEMA_VERSION
from vidflow.regions import DEVICES, REGION_NAMES, REGIONS
from vidflow.traffic.model import (
    DEVICE_MEDIAN_MBPS,
    DIURNAL,
    TOPIC_NAMES,
    FloatArray,
    IntArray,
    Population,
    stream,
)

BoolArray = npt.NDArray[np.bool_]

PLAY, HEARTBEAT, PAUSE, SEEK, COMPLETE, LIKE = (EVENT_TYPES.index(t) for t in EVENT_TYPES)
assert EVENT_TYPES[COMPLETE] == "complete" and EVENT_TYPES[LIKE] == "like"
#: Order of events at the same playback instant: play first, complete last.
_SAME_INSTANT_ORDER = np.array([0, 1, 2, 3, 5, 4])
_DAY = 86400.0
_SIMULATION = 10  # stream purpose of the daily draws


@dataclass(frozen=True)
class Sessions:
    """The viewing sessions started in one day (a viewer watching several videos)."""

    session_ids: list[str]
    viewer: IntArray
    region: IntArray
    device: IntArray
    bandwidth_mbps: FloatArray
    start_ts: FloatArray
    late: BoolArray  # sent hours later (a phone that was offline)
    late_seconds: FloatArray

    def __len__(self) -> int:
        return len(self.session_ids)


@dataclass(frozen=True)
class Playbacks:
    """One row per video played: which, when, how well it fits and how far it got."""

    session: IntArray
    step: IntArray  # 0 for the session's first video
    video: IntArray
    start_ts: FloatArray
    fit: FloatArray  # viewer preference for the video's topics, 0..1
    end_position: FloatArray  # where the viewer stopped (the duration if completed)
    play_seconds: FloatArray  # seconds of playback (excluding the pause)
    abandoned: BoolArray  # stopped in the first seconds
    completed: BoolArray
    liked: BoolArray
    seek_at: FloatArray  # playback second of the seek (nan: none)
    seek_jump: FloatArray
    pause_at: FloatArray  # playback second of the pause (nan: none)
    pause_seconds: FloatArray

    def __len__(self) -> int:
        return len(self.video)


@dataclass(frozen=True)
class Events:
    """The events of one day, ordered by playback then time. ``playback`` indexes
    :class:`Playbacks`; the session, video, region and device follow from it."""

    event_type: IntArray  # index into vidflow.events.EVENT_TYPES
    playback: IntArray
    client_ts: FloatArray  # unix seconds, millisecond precision
    received_ts: FloatArray
    position: FloatArray
    event_ids: list[str]

    def __len__(self) -> int:
        return len(self.event_type)


@dataclass(frozen=True)
class Day:
    index: int
    start_ts: float
    sessions: Sessions
    playbacks: Playbacks
    events: Events


def random_uuids(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` version-4 UUID strings from ``rng`` (seeded, so reproducible), vectorised."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2] = digits[raw >> 4]
    hexed[:, 1::2] = digits[raw & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for lo, hi, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        out[:, at : at + hi - lo] = hexed[:, lo:hi]
    return [b.decode("ascii") for b in out.view("S36").ravel().tolist()]


def _pick(rng: np.random.Generator, weights: FloatArray) -> IntArray:
    """One column index per row of ``weights`` (rows need not be normalised)."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    picked = (cum <= u[:, None]).sum(axis=1)
    chosen: IntArray = np.minimum(picked, weights.shape[1] - 1).astype(np.int64)
    return chosen


def utc_offset_hours(region: int, moment: float) -> float:
    offset = datetime.fromtimestamp(moment, REGIONS[region].zone).utcoffset()
    return offset.total_seconds() / 3600 if offset else 0.0


class _Choice:
    """Per UTC hour and region, the chance of each video given a topic: appeal x
    rich-get-richer x freshness x viral, restricted to videos already uploaded."""

    def __init__(self, population: Population, day_ts: float, plays: FloatArray) -> None:
        cat, params = population.catalog, population.params
        n_regions, n_videos, n_topics = len(REGION_NAMES), len(cat), len(TOPIC_NAMES)
        hours = day_ts + np.arange(24) * 3600.0
        age = (hours[:, None] + 1800.0) - cat.upload_ts[None, :]  # (24, videos)
        fresh = 1.0 + params.freshness_boost * np.exp(
            -np.maximum(age, 0) / (params.freshness_tau_hours * 3600)
        )
        fresh[cat.upload_ts[None, :] > hours[:, None]] = 0.0
        attach = (1.0 + plays) ** params.attachment_exponent  # (regions, videos)
        g = (cat.appeal * attach)[:, None, :] * fresh[None, :, :]  # (regions, 24, videos)
        for burst in population.viral:
            live = (hours + 3600 > burst.start_ts) & (hours < burst.end_ts)
            g[burst.region, live, burst.video_index] *= burst.boost
        table = g[:, :, None, :] * cat.topic_weights.T[None, None, :, :]  # (r, 24, k, v)
        self.totals: FloatArray = table.sum(axis=3)  # (regions, 24, topics)
        cdf = np.cumsum(table, axis=3).reshape(-1, n_videos)
        safe = np.where(cdf[:, -1:] > 0, cdf[:, -1:], 1.0)
        self.flat: FloatArray = (cdf / safe + np.arange(len(cdf))[:, None]).ravel()
        self.n_videos, self.n_topics = n_videos, n_topics
        assert self.totals.shape == (n_regions, 24, n_topics)

    def video(
        self, rng: np.random.Generator, region: IntArray, hour: IntArray, topic: IntArray
    ) -> IntArray:
        row = (region * 24 + hour) * self.n_topics + topic
        at = np.searchsorted(self.flat, row + rng.random(len(row)), side="right")
        return np.clip(at - row * self.n_videos, 0, self.n_videos - 1).astype(np.int64)


def _sessions(population: Population, rng: np.random.Generator, day_ts: float) -> Sessions:
    view, params = population.viewers, population.params
    counts = rng.poisson(view.sessions_per_day)
    viewer = np.repeat(np.arange(len(view)), counts)
    region = view.region[viewer]
    hour = np.zeros(len(viewer), dtype=np.int64)
    diurnal = np.asarray(DIURNAL)
    for r in range(len(REGION_NAMES)):
        offset = utc_offset_hours(r, day_ts + 43200)
        local = np.floor((np.arange(24) + offset) % 24).astype(np.int64)
        weights = diurnal[local]
        mine = np.flatnonzero(region == r)
        hour[mine] = rng.choice(24, size=len(mine), p=weights / weights.sum())
    start = day_ts + hour * 3600.0 + rng.uniform(0, 3600, len(viewer))
    device = _pick(rng, view.device_mix[viewer])
    bandwidth = np.asarray(DEVICE_MEDIAN_MBPS)[device] * rng.lognormal(
        0, params.bandwidth_sigma, len(viewer)
    )
    late = (device == DEVICES.index("phone")) & (
        rng.random(len(viewer)) < params.late_session_share
    )
    late_seconds = 3600 * np.minimum(
        rng.lognormal(np.log(params.late_median_hours), 0.8, len(viewer)), params.late_max_hours
    )
    return Sessions(
        session_ids=random_uuids(rng, len(viewer)),
        viewer=viewer,
        region=region,
        device=device,
        bandwidth_mbps=np.round(bandwidth, 3),
        start_ts=start,
        late=late,
        late_seconds=np.where(late, late_seconds, 0.0),
    )


def _playbacks(
    population: Population,
    rng: np.random.Generator,
    sessions: Sessions,
    choice: _Choice,
    day_ts: float,
) -> Playbacks:
    cat, view, params = population.catalog, population.viewers, population.params
    n = len(sessions)
    length = np.minimum(rng.geometric(1 - params.session_continue, n), params.session_max_videos)
    now = sessions.start_ts.copy()
    previous = np.full(n, -1, dtype=np.int64)
    columns: dict[str, list[npt.NDArray[np.generic]]] = {}
    pref_max = view.preferences.max(axis=1)
    for step in range(int(length.max(initial=0))):
        active = np.flatnonzero(length > step)
        hour = np.clip(((now[active] - day_ts) // 3600).astype(np.int64), 0, 23)
        # A session ends early when nothing is uploaded yet (a catalog of recent videos).
        empty = choice.totals[sessions.region[active], hour].sum(axis=1) <= 0
        if empty.any():
            length[active[empty]] = step
            active, hour = active[~empty], hour[~empty]
        m = len(active)
        viewer = sessions.viewer[active]
        region = sessions.region[active]
        prefs = view.preferences[viewer]
        topic = _pick(rng, prefs * choice.totals[region, hour])
        if step > 0:
            chained = rng.random(m) < params.chain_share
            prev_topics = cat.topic_weights[previous[active]]
            topic = np.where(chained, _pick(rng, prev_topics), topic)
        video = choice.video(rng, region, hour, topic)
        again = video == previous[active]
        if again.any():  # one redraw avoids most immediate repeats
            video[again] = choice.video(rng, region[again], hour[again], topic[again])
        fit = (prefs * cat.topic_weights[video]).sum(axis=1) / pref_max[viewer]
        duration = cat.duration[video]
        abandoned = rng.random(m) < params.abandon_base * (1.5 - fit)
        completed = ~abandoned & (
            rng.random(m) < params.complete_base + params.complete_slope * fit
        )
        # A partial watch lasts at least one heartbeat; shorter stops are abandonment.
        partial = duration * rng.beta(1 + 2 * fit, 1.5)
        end = np.where(completed, duration, np.clip(partial, params.heartbeat_seconds, duration))
        early = np.minimum(rng.uniform(*params.abandon_seconds, m), duration)
        end = np.where(abandoned, early, end)
        completed = end >= duration  # reaching the end completes, even a tiny clip
        abandoned &= ~completed
        # A seek: play [0, s), jump by J (back or forward), play on to the end position.
        seeks = (end > 30) & (rng.random(m) < params.seek_share)
        seek_at = rng.uniform(5, np.maximum(end - 10, 6))
        jump = rng.uniform(-np.minimum(seek_at, 20), np.maximum((end - seek_at) / 2, 0))
        seek_at, jump = np.where(seeks, seek_at, np.nan), np.where(seeks, jump, 0.0)
        play_seconds = end - jump
        pauses = (play_seconds > 20) & (rng.random(m) < params.pause_share)
        pause_at = np.where(pauses, rng.uniform(5, np.maximum(play_seconds - 1, 6)), np.nan)
        pause_len = np.where(
            pauses, rng.lognormal(np.log(params.pause_median_seconds), 0.8, m), 0.0
        )
        liked = ~abandoned & (rng.random(m) < params.like_max * fit**2)
        for name, values in (
            ("session", active),
            ("step", np.full(m, step)),
            ("video", video),
            ("start_ts", now[active].copy()),
            ("fit", fit),
            ("end_position", end),
            ("play_seconds", play_seconds),
            ("abandoned", abandoned),
            ("completed", completed),
            ("liked", liked),
            ("seek_at", seek_at),
            ("seek_jump", jump),
            ("pause_at", pause_at),
            ("pause_seconds", pause_len),
        ):
            columns.setdefault(name, []).append(values)
        now[active] += play_seconds + pause_len + rng.uniform(*params.gap_seconds, m)
        previous[active] = video
    if not columns:
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
        empty_b = np.zeros(0, bool)
        return Playbacks(*(empty_i,) * 3, *(empty_f,) * 4, *(empty_b,) * 3, *(empty_f,) * 4)
    joined = {name: np.concatenate(parts) for name, parts in columns.items()}
    return Playbacks(**joined)


def _events(
    population: Population, rng: np.random.Generator, sessions: Sessions, plays: Playbacks
) -> Events:
    hb = population.params.heartbeat_seconds
    n = len(plays)
    index = np.arange(n)
    beats = np.floor(plays.play_seconds / hb).astype(np.int64)
    beat_of = np.repeat(index, beats)
    beat_k = np.arange(len(beat_of)) - np.repeat(np.cumsum(beats) - beats, beats) + 1
    seek, pause, like = (
        np.flatnonzero(~np.isnan(plays.seek_at)),
        np.flatnonzero(~np.isnan(plays.pause_at)),
        np.flatnonzero(plays.liked),
    )
    like_at = rng.uniform(0, plays.play_seconds[like])
    done = np.flatnonzero(plays.completed)
    parts = (
        (PLAY, index, np.zeros(n)),
        (HEARTBEAT, beat_of, beat_k * hb),
        (PAUSE, pause, plays.pause_at[pause]),
        (SEEK, seek, plays.seek_at[seek]),
        (LIKE, like, like_at),
        (COMPLETE, done, plays.play_seconds[done]),
    )
    kind = np.concatenate([np.full(len(of), code) for code, of, _ in parts])
    playback = np.concatenate([of for _, of, _ in parts])
    tau = np.concatenate([at for _, _, at in parts])
    order = np.lexsort((_SAME_INSTANT_ORDER[kind], tau, playback))
    kind, playback, tau = kind[order], playback[order], tau[order]
    seek_at = np.nan_to_num(plays.seek_at[playback], nan=np.inf)
    position = np.where(tau >= seek_at, tau + plays.seek_jump[playback], tau)
    position = np.clip(position, 0, plays.end_position[playback])
    position[kind == COMPLETE] = plays.end_position[playback[kind == COMPLETE]]
    paused_before = tau > np.nan_to_num(plays.pause_at[playback], nan=np.inf)
    client = (
        plays.start_ts[playback] + tau + np.where(paused_before, plays.pause_seconds[playback], 0)
    )
    client = np.round(client, 3)
    session = plays.session[playback]
    delay = rng.lognormal(np.log(population.params.receive_delay_median_seconds), 0.6, len(kind))
    received = client + delay
    late = sessions.late[session]
    if late.any():
        session_end = np.zeros(len(sessions))
        np.maximum.at(session_end, session, client)
        received = np.where(
            late, session_end[session] + sessions.late_seconds[session] + delay, received
        )
    return Events(
        event_type=kind.astype(np.int64),
        playback=playback.astype(np.int64),
        client_ts=client,
        received_ts=np.round(received, 3),
        position=np.round(position, 3).astype(np.float64),
        event_ids=random_uuids(rng, len(kind)),
    )


def simulate(population: Population) -> Iterator[Day]:
    """The population's days in order, each drawn from its own stream of the seed."""
    plays = np.zeros((len(REGION_NAMES), len(population.catalog)))
    for day in range(population.days):
        rng = stream(population.seed, _SIMULATION, day)
        day_ts = population.start_ts + day * _DAY
        sessions = _sessions(population, rng, day_ts)
        choice = _Choice(population, day_ts, plays)
        playbacks = _playbacks(population, rng, sessions, choice, day_ts)
        events = _events(population, rng, sessions, playbacks)
        np.add.at(plays, (sessions.region[playbacks.session], playbacks.video), 1.0)
        yield Day(day, day_ts, sessions, playbacks, events)


_LINE = (
    '{"schema":%d,"event_id":"%s","event_type":"%s","video_id":"%s","session_id":"%s",'
    '"user_id":%s,"client_ts":"%s","received_at":"%s","position_seconds":%r,'
    '"region":"%s","device":"%s"}'
)


def _iso_ms(ts: FloatArray) -> list[str]:
    stamps = np.round(ts * 1000).astype(np.int64).astype("datetime64[ms]")
    return [s + "Z" for s in np.datetime_as_string(stamps, unit="ms").tolist()]


def stored_lines(population: Population, day: Day) -> tuple[list[str], IntArray]:
    """The day's events as stored NDJSON lines (StoredEvent.to_json_line, byte for byte),
    ordered by receive time, with each line's receive hour (unix seconds, floored)."""
    ev, plays, sess = day.events, day.playbacks, day.sessions
    order = np.argsort(ev.received_ts, kind="stable")
    playback = ev.playback[order]
    session = plays.session[playback]
    viewer = sess.viewer[session]
    cat, view = population.catalog, population.viewers
    users = np.asarray(['"' + u + '"' if u else "null" for u in view.user_ids], dtype=object)
    videos = np.asarray(cat.video_ids, dtype=object)
    session_ids = np.asarray(sess.session_ids, dtype=object)
    types = np.asarray(EVENT_TYPES, dtype=object)
    regions = np.asarray(REGION_NAMES, dtype=object)
    devices = np.asarray(DEVICES, dtype=object)
    event_ids = np.asarray(ev.event_ids, dtype=object)[order]
    received = ev.received_ts[order]
    rows = zip(
        event_ids.tolist(),
        types[ev.event_type[order]].tolist(),
        videos[plays.video[playback]].tolist(),
        session_ids[session].tolist(),
        users[viewer].tolist(),
        _iso_ms(ev.client_ts[order]),
        _iso_ms(received),
        ev.position[order].tolist(),
        regions[sess.region[session]].tolist(),
        devices[sess.device[session]].tolist(),
        strict=True,
    )
    lines = [_LINE % (SCHEMA_VERSION, *row) for row in rows]
    hours = (np.floor(np.round(received * 1000) / 3_600_000) * 3600).astype(np.int64)
    return lines, hours
