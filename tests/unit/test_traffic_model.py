"""The traffic model has the structure it claims: Zipf-like popularity, regional skew,
a diurnal rhythm, chained sessions, fit-driven watching, viral bursts and late events.

One population (2000 viewers, 400 videos, 4 days, ~900k events) is simulated once per
module; each test measures one property on it against a bound derived in its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest

from vidflow.regions import DEVICES, REGION_NAMES, REGIONS
from vidflow.traffic.model import DIURNAL, Population, build_population
from vidflow.traffic.simulate import COMPLETE, HEARTBEAT, PLAY, Day, simulate

START = datetime(2026, 3, 2, tzinfo=UTC)


@dataclass(frozen=True)
class Run:
    population: Population
    days: list[Day]

    def cat(self, name: str, source: str = "playbacks") -> np.ndarray:
        return np.concatenate([getattr(getattr(d, source), name) for d in self.days])

    @property
    def play_region(self) -> np.ndarray:
        return np.concatenate([d.sessions.region[d.playbacks.session] for d in self.days])


@pytest.fixture(scope="module")
def run() -> Run:
    population = build_population(42, viewers=2000, videos=400, start=START, days=4)
    return Run(population, list(simulate(population)))


def test_popularity_is_zipf_like(run: Run) -> None:
    """Rank-frequency of plays on log-log is a line with slope about -1 over the head.
    Measured video popularity (Cha et al., IMC 2007; Gill et al., IMC 2007) follows
    Zipf-like heads with exponents of roughly 0.6-1.2; a uniform choice gives ~0 and
    one video taking everything gives a cliff. We accept -1.5 .. -0.6 over the top 100."""
    counts = np.sort(np.bincount(run.cat("video"), minlength=400))[::-1][:100]
    assert counts[-1] > 0
    slope = np.polyfit(np.log(np.arange(1, 101)), np.log(counts), 1)[0]
    assert -1.5 < slope < -0.6, slope
    assert counts[0] > 10 * counts[99]  # the head is far above rank 100


def test_regions_watch_different_videos(run: Run) -> None:
    plays, region = run.cat("video"), run.play_region
    tops = [
        set(np.argsort(np.bincount(plays[region == r], minlength=400))[::-1][:10].tolist())
        for r in range(len(REGION_NAMES))
    ]
    for a in range(len(tops)):
        for b in range(a + 1, len(tops)):
            assert len(tops[a] & tops[b]) <= 5, (REGION_NAMES[a], REGION_NAMES[b])


def test_home_region_is_over_represented(run: Run) -> None:
    """Without a home effect a play's region matches its video's home region with
    probability sum_r P(play in r) x P(video from r); the 4x home boost must lift the
    observed rate well above that."""
    home = run.population.catalog.home_region
    plays, region = run.cat("video"), run.play_region
    observed = float((home[plays] == region).mean())
    play_share = np.bincount(region, minlength=4) / len(region)
    video_share = np.bincount(home, minlength=4) / len(home)
    chance = float((play_share * video_share).sum())
    assert observed > 1.6 * chance, (observed, chance)


def test_evening_peak_and_night_trough(run: Run) -> None:
    """Events by the viewer's local hour: 19-22 h against 2-5 h. Session starts follow
    DIURNAL (3.65 against 0.37, ~10x); sessions spill into later hours, so we ask for 4x."""
    hours = np.zeros(24)
    for day in run.days:
        ev = day.events
        region = day.sessions.region[day.playbacks.session[ev.playback]]
        for r, reg in enumerate(REGIONS):
            offset = reg.zone.utcoffset(datetime.fromtimestamp(day.start_ts, UTC)) or None
            shift = offset.total_seconds() / 3600 if offset else 0.0
            local = np.floor((ev.client_ts[region == r] / 3600 + shift) % 24).astype(int)
            hours += np.bincount(local, minlength=24)
    evening, night = hours[19:23].sum(), hours[2:6].sum()
    assert evening > 4 * night, (evening, night)
    assert sum(DIURNAL[19:23]) / sum(DIURNAL[2:6]) > 9  # the curve itself


def test_sessions_chain_related_videos(run: Run) -> None:
    """80 % of next videos come from a topic of the previous one: consecutive pairs share
    a topic far more often than random pairs of plays."""
    weights = run.population.catalog.topic_weights
    consecutive = []
    for day in run.days:
        p = day.playbacks
        order = np.lexsort((p.step, p.session))
        session, video = p.session[order], p.video[order]
        same_session = session[1:] == session[:-1]
        shared = (weights[video[1:]] * weights[video[:-1]]).sum(axis=1) > 0
        consecutive.append(shared[same_session])
    rng = np.random.default_rng(0)
    plays = run.cat("video")
    a, b = rng.choice(plays, 20000), rng.choice(plays, 20000)
    random_pairs = float(((weights[a] * weights[b]).sum(axis=1) > 0).mean())
    chained = float(np.concatenate(consecutive).mean())
    assert chained > 0.8
    assert chained > 2 * random_pairs, (chained, random_pairs)


def test_watch_fraction_rises_with_fit(run: Run) -> None:
    """Expected fraction watched: ~0.32 at fit 0 (30 % abandon, 7 % complete, the rest
    Beta(1, 1.5) -> 0.4) and ~0.81 at fit 1; the bins must rise and differ by > 0.25."""
    fit = run.cat("fit")
    duration = run.population.catalog.duration[run.cat("video")]
    fraction = run.cat("end_position") / duration
    means = [
        fraction[(fit >= lo) & (fit < hi)].mean() for lo, hi in ((0, 0.2), (0.4, 0.6), (0.8, 1.01))
    ]
    assert means[0] < means[1] < means[2], means
    assert means[2] - means[0] > 0.25, means
    completed = run.cat("completed")
    assert completed[fit >= 0.8].mean() > 2 * completed[fit < 0.2].mean()


def test_early_abandonment_share(run: Run) -> None:
    """A playback abandoned in the first seconds emits its play event and nothing else (no
    heartbeat before 10 s). Its probability is 0.2 x (1.5 - fit): counted from the event
    stream, the share must match the mean of that over the playbacks."""
    only_play = []
    for day in run.days:
        per_playback = np.bincount(day.events.playback, minlength=len(day.playbacks))
        only_play.append(per_playback == 1)
    share = float(np.concatenate(only_play).mean())
    expected = float((0.2 * (1.5 - run.cat("fit"))).mean())
    assert abs(share - expected) < 0.015, (share, expected)
    assert 0.1 < share < 0.3


def test_viral_video_spikes_in_its_region(run: Run) -> None:
    plays, region, start = run.cat("video"), run.play_region, run.cat("start_ts")
    assert run.population.viral, "at least one burst is scheduled"
    for burst in run.population.viral:
        here = region == burst.region
        window = (start >= burst.start_ts) & (start < burst.end_ts)
        inside = float((plays[here & window] == burst.video_index).mean())
        outside = float((plays[here & ~window] == burst.video_index).mean())
        assert inside > 0.005
        assert inside > 10 * outside, (inside, outside)


def test_heartbeats_positions_and_completion(run: Run) -> None:
    """Per playback: play first at position 0, heartbeats >= 10 s apart on the client
    clock, positions within the duration, complete only last and at the end."""
    duration = run.population.catalog.duration
    for day in run.days:
        ev, p = day.events, day.playbacks
        dur = duration[p.video[ev.playback]]
        assert (ev.position >= 0).all() and (ev.position <= dur + 1e-3).all()
        first = np.r_[True, ev.playback[1:] != ev.playback[:-1]]
        last = np.r_[ev.playback[1:] != ev.playback[:-1], True]
        assert (ev.event_type[first] == PLAY).all() and (ev.position[first] == 0).all()
        complete = ev.event_type == COMPLETE
        assert last[complete].all()
        assert np.allclose(ev.position[complete], dur[complete], atol=1e-3)
        assert complete.sum() == p.completed.sum()
        same = ev.playback[1:] == ev.playback[:-1]
        assert (np.diff(ev.client_ts)[same] >= -1e-6).all()  # time never runs backwards
        beats = np.flatnonzero(ev.event_type == HEARTBEAT)
        consecutive = ev.playback[beats[1:]] == ev.playback[beats[:-1]]
        gaps = np.diff(ev.client_ts[beats])[consecutive]
        assert gaps.min() >= 10 - 2e-3


def test_late_events_come_from_offline_phones(run: Run) -> None:
    """5 % of phone sessions are sent hours later; other sessions within seconds."""
    late_sessions = phone_sessions = 0
    for day in run.days:
        ev, s = day.events, day.sessions
        session = day.playbacks.session[ev.playback]
        delay = ev.received_ts - ev.client_ts
        assert (delay > 0).all()
        late = delay > 3600
        assert not late[s.device[session] != DEVICES.index("phone")].any()
        assert (delay[~s.late[session]] < 30).all()
        with_events = np.unique(session)
        phones = with_events[s.device[with_events] == DEVICES.index("phone")]
        phone_sessions += len(phones)
        late_sessions += len(np.unique(session[late]))
        # A late event lands in a later receive hour than its own hour.
        assert (ev.received_ts[late] // 3600 > ev.client_ts[late] // 3600).all()
    share = late_sessions / phone_sessions
    assert 0.03 < share < 0.07, share


def test_anonymous_viewers_and_device_bandwidths(run: Run) -> None:
    viewers = run.population.viewers
    anonymous = np.mean([u is None for u in viewers.user_ids])
    assert 0.15 < anonymous < 0.25
    bandwidth, device = run.cat("bandwidth_mbps", "sessions"), run.cat("device", "sessions")
    medians = [float(np.median(bandwidth[device == d])) for d in range(len(DEVICES))]
    assert medians[0] < medians[1] < medians[2]  # phone < desktop < tv
    assert 2.0 < medians[0] < 3.0 and 12 < medians[2] < 18
    counts = np.bincount(viewers.region, minlength=4) / len(viewers)
    assert counts.max() > 2 * counts.min()  # non-uniform population shares
