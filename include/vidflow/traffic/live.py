"""``live`` mode: a few simulated viewers really play streams and post their events.

The viewers and what they watch come from the model (:mod:`vidflow.traffic.simulate`, one
simulated day over the catalog's playable videos, with every viewer active). Each viewer
then plays its playbacks one after the other, in compressed time (``speed``), against the
running services on loopback:

1. ``GET /v1/videos/{id}?region=...`` on the viewer API gives the stream URLs of the
   viewer's region edge;
2. the HLS master playlist is fetched and a rendition chosen by the session's bandwidth
   (the highest one below 80 % of it, else the lowest);
3. the rendition's init segment and its media segments are fetched as the playhead
   reaches them, up to where the viewer stops (skipping what a seek jumps over);
4. the playback's events (play, heartbeats, pause, seek, like, complete) are stamped with
   the real clock and posted in batches to ``POST /v1/events``, with the viewer's bearer
   token (accounts registered through the upload API) or anonymously.
"""

from __future__ import annotations

import ipaddress
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import m3u8
import numpy as np

from vidflow.config import Settings
from vidflow.events import EVENT_TYPES
from vidflow.regions import DEVICES, REGION_NAMES
from vidflow.traffic.model import ModelParams, Population, build_population, write_truth
from vidflow.traffic.register import processed_videos
from vidflow.traffic.simulate import Day, simulate

#: Events per POST (a player flushes its queue about this often).
POST_EVERY: Final = 20
#: Share of the session bandwidth a rendition may use.
BANDWIDTH_HEADROOM: Final = 0.8
#: Live viewers are all active: every one of them has sessions in the simulated day.
LIVE_PARAMS: Final = replace(
    ModelParams(), activity_median_sessions=30.0, activity_sigma=0.2, late_session_share=0.0
)

Say = Callable[[str], None]


class LiveError(RuntimeError):
    """Live mode cannot run; the message says why."""


@dataclass
class LiveReport:
    playbacks: int = 0
    segments: int = 0
    bytes: int = 0
    events_acknowledged: int = 0
    events_refused: int = 0
    errors: list[str] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)  # model user_id -> real user_id
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)


def _loopback(url: str) -> str:
    """``url`` if it points at this machine; LiveError otherwise (live mode stays local)."""
    host = urlsplit(url).hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local:
        raise LiveError(f"refusing to fetch {url}: live mode only talks to loopback")
    return url


def choose_variant(master: m3u8.M3U8, bandwidth_bps: float) -> m3u8.Playlist:
    """The highest rendition within the bandwidth headroom, else the lowest one."""
    variants = sorted(master.playlists, key=lambda p: p.stream_info.bandwidth)
    if not variants:
        raise LiveError("the master playlist lists no renditions")
    fitting = [p for p in variants if p.stream_info.bandwidth <= bandwidth_bps * BANDWIDTH_HEADROOM]
    return fitting[-1] if fitting else variants[0]


@dataclass
class _Viewer:
    index: int
    region: str
    token: str | None
    playbacks: list[int]


class _Player:
    """One viewer's playbacks, in its own thread."""

    def __init__(
        self,
        settings: Settings,
        day: Day,
        population: Population,
        viewer: _Viewer,
        report: LiveReport,
        *,
        speed: float,
        deadline: float,
    ) -> None:
        self.settings, self.day, self.population = settings, day, population
        self.viewer, self.report = viewer, report
        self.speed, self.deadline = speed, deadline
        self.api = f"http://{settings.bind_host}:{settings.viewer_port}"
        self.http = httpx.Client(timeout=30)
        starts = day.events.playback
        self.event_ranges = np.searchsorted(starts, np.arange(len(day.playbacks) + 1))

    def run(self) -> None:
        try:
            for playback in self.viewer.playbacks:
                if time.monotonic() >= self.deadline:
                    break
                try:
                    self.play(playback)
                except (httpx.HTTPError, LiveError, ValueError) as exc:
                    self.report.error(f"viewer {self.viewer.index}: {exc}")
        finally:
            self.http.close()

    def _get(self, url: str) -> httpx.Response:
        response = self.http.get(_loopback(url))
        response.raise_for_status()
        self.report.add(bytes=len(response.content))
        return response

    def play(self, playback: int) -> None:
        plays, sessions, cat = self.day.playbacks, self.day.sessions, self.population.catalog
        session = int(plays.session[playback])
        video_id = cat.video_ids[int(plays.video[playback])]
        meta = self.http.get(
            f"{self.api}/v1/videos/{video_id}", params={"region": self.viewer.region}
        )
        if meta.status_code != 200:
            raise LiveError(f"GET video {video_id}: {meta.status_code} {meta.text[:200]}")
        hls_url = meta.json()["hls_url"]
        master = m3u8.loads(self._get(hls_url).text, uri=hls_url)
        variant = choose_variant(master, float(sessions.bandwidth_mbps[session]) * 1e6)
        media = m3u8.loads(self._get(variant.absolute_uri).text, uri=variant.absolute_uri)
        if media.segment_map:
            self._get(media.segment_map[0].absolute_uri)
            self.report.add(segments=1)
        bounds = np.cumsum([0.0, *(float(s.duration) for s in media.segments)])
        fetched: set[int] = set()

        def fetch_until(position: float) -> None:
            # Segments from the current one to the one a segment ahead of the playhead.
            first = int(np.searchsorted(bounds, position, side="right")) - 1
            last = int(np.searchsorted(bounds, position + 6.0, side="right")) - 1
            for seg in range(max(first, 0), min(last, len(media.segments) - 1) + 1):
                if seg not in fetched:
                    fetched.add(seg)
                    self._get(media.segments[seg].absolute_uri)
                    self.report.add(segments=1)

        events = self.day.events
        lo, hi = int(self.event_ranges[playback]), int(self.event_ranges[playback + 1])
        session_id = str(uuid.uuid4())  # live viewing is new viewing: fresh ids
        started = time.monotonic()
        begin = float(plays.start_ts[playback])
        pending: list[dict[str, Any]] = []
        sent = 0
        for e in range(lo, hi):
            due = started + (float(events.client_ts[e]) - begin) / self.speed
            if due > self.deadline:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            position = float(events.position[e])
            fetch_until(position)
            pending.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "event_type": EVENT_TYPES[int(events.event_type[e])],
                    "video_id": video_id,
                    "session_id": session_id,
                    "client_ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "position_seconds": position,
                    "region": self.viewer.region,
                    "device": DEVICES[int(sessions.device[session])],
                }
            )
            sent += 1
            if len(pending) >= POST_EVERY:
                self.post(pending)
                pending = []
        if pending:
            self.post(pending)
        if sent:  # a playback the deadline cut before its play event does not count
            self.report.add(playbacks=1)

    def post(self, events: list[dict[str, Any]]) -> None:
        headers = {"Authorization": f"Bearer {self.viewer.token}"} if self.viewer.token else {}
        response = self.http.post(f"{self.api}/v1/events", json={"events": events}, headers=headers)
        if response.status_code != 200:
            self.report.add(events_refused=len(events))
            raise LiveError(f"POST /v1/events: {response.status_code} {response.text[:200]}")
        body = response.json()
        self.report.add(
            events_acknowledged=len(body["accepted"]), events_refused=len(body["rejected"])
        )
        for rejected in body["rejected"]:
            self.report.error(f"event refused: {rejected['reason']}")


def _account(settings: Settings, username: str) -> tuple[str, str] | None:
    """Register (once) and log in a live viewer through the upload API: (token, user_id);
    None when no password is configured (the viewer then watches anonymously)."""
    password = settings.demo_password.get_secret_value()
    if not password:
        return None
    base = f"http://{settings.bind_host}:{settings.upload_port}"
    account = {"username": username, "email": f"{username}@example.com", "password": password}
    created = httpx.post(f"{base}/v1/accounts", json=account, timeout=30)
    if created.status_code not in (201, 409):
        raise LiveError(f"registering {username}: {created.status_code} {created.text[:200]}")
    login = httpx.post(
        f"{base}/v1/auth/token", json={"username": username, "password": password}, timeout=30
    )
    if login.status_code != 200:
        raise LiveError(f"logging in {username}: {login.status_code} {login.text[:200]}")
    token = str(login.json()["access_token"])
    me = httpx.get(
        f"{base}/v1/accounts/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    me.raise_for_status()
    return token, str(me.json()["user_id"])


def run_live(
    settings: Settings,
    *,
    seed: int,
    viewers: int,
    duration: float,
    speed: float,
    truth_file: Path | None,
    say: Say,
) -> LiveReport:
    """Play for ``duration`` wall-clock seconds with ``viewers`` viewers."""
    if speed <= 0 or duration <= 0:
        raise LiveError("--speed and --duration must be positive")
    videos = processed_videos(settings, playable_only=True)
    if not videos:
        raise LiveError("no processed video to watch: run `python -m vidflow.traffic seed`")
    # Simulate the coming hour onwards, so every published video is already available.
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    population = build_population(
        seed, viewers=viewers, videos=videos, start=start, days=1, params=LIVE_PARAMS
    )
    day = next(simulate(population))
    report = LiveReport()
    cast: list[_Viewer] = []
    for i in range(viewers):
        mine = np.flatnonzero(day.sessions.viewer[day.playbacks.session] == i)
        order = mine[np.argsort(day.playbacks.start_ts[mine], kind="stable")]
        token = None
        model_user = population.viewers.user_ids[i]
        if model_user is not None:
            logged_in = _account(settings, f"live-{population.namespace.hex[:8]}-{i}")
            if logged_in is not None:
                token, report.accounts[model_user] = logged_in
        region = REGION_NAMES[int(population.viewers.region[i])]
        cast.append(_Viewer(i, region, token, [int(p) for p in order]))
        say(
            f"viewer {i}: {region}, {'signed in' if token else 'anonymous'}, "
            f"{len(order)} playbacks planned"
        )
    if truth_file is not None:
        write_truth(population, truth_file, extra={"live_accounts": report.accounts})
        say(f"ground truth written to {truth_file}")
    deadline = time.monotonic() + duration
    players = [
        _Player(settings, day, population, v, report, speed=speed, deadline=deadline) for v in cast
    ]
    threads = [threading.Thread(target=p.run, name=f"viewer-{p.viewer.index}") for p in players]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))
        say(
            f"{report.playbacks} playbacks, {report.segments} segments, "
            f"{report.bytes / 1e6:.1f} MB, {report.events_acknowledged} events acknowledged"
        )
    for thread in threads:
        thread.join()
    for message in report.errors[:10]:
        say(f"error: {message}")
    return report
