"""The demo's catalog and traffic: clips through the real upload path, days of history,
a demo viewer and a few minutes of live viewers.

Nothing here goes around the platform: clips are uploaded with tus through the upload
API and processed by the scheduler's ``video_processing`` runs; history is the traffic
model's ``history`` mode (events into the events bucket, CloudFront logs into the
cdn-logs bucket, its viewers and synthetic videos registered in the catalog); the demo
viewer and the live viewers sign in through the upload API, fetch playlists and segments
from their region's edge and post events to the viewer API.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx
from sqlalchemy import select

from vidflow.catalog.db import session_scope
from vidflow.catalog.models import Video
from vidflow.config import Settings
from vidflow.processing.objects import media_base_url, source_size
from vidflow.stack import demo as creator
from vidflow.storage import s3_client
from vidflow.traffic.model import build_population
from vidflow.traffic.seed import PATTERNS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Say = Callable[[str], None]

#: The clips' titles and tags come from the model's catalog built at this fixed start,
#: so they are the same on every day the demo runs (and a re-run finds its clips).
TITLE_EPOCH: Final = datetime(2026, 1, 1, tzinfo=UTC)
DEMO_VIEWER: Final = "demo-viewer"
DEMO_VIEWER_REGION: Final = "eu-west"
DEMO_VIEWER_DEVICE: Final = "desktop"
#: Clips the demo viewer watches before the analytics run (so they have a history).
VIEWER_WATCHES: Final = 2
LIVE_SPEED: Final = 20.0


class DemoStepError(RuntimeError):
    """A demo step could not do its work; the message says what and where to look."""


# --- the catalog --------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipSpec:
    title: str
    tags: tuple[str, ...]
    pattern: str
    tone_hz: int


@dataclass(frozen=True)
class SeededCatalog:
    video_ids: tuple[str, ...]
    uploaded: int
    reused: int
    creator_id: str


def clip_specs(seed: int, count: int) -> list[ClipSpec]:
    """Title, tags (the model's topics) and look of each demo clip."""
    catalog = build_population(seed, viewers=1, videos=count, start=TITLE_EPOCH, days=0).catalog
    return [
        ClipSpec(
            title=catalog.titles[i],
            tags=tuple(catalog.tags[i]),
            pattern=PATTERNS[(seed + i) % len(PATTERNS)],
            tone_hz=220 + 55 * ((seed + i) % 12),
        )
        for i in range(count)
    ]


def _user_id(api: str, token: str) -> str:
    me = httpx.get(
        f"{api}/v1/accounts/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    me.raise_for_status()
    return str(me.json()["user_id"])


def _existing(settings: Settings, creator_id: str, titles: list[str]) -> dict[str, Video]:
    """The creator's usable video of each title: processed (with its stream still in the
    media bucket) first, then one in flight; failed ones are uploaded again."""
    rank = {"processed": 0, "processing": 1, "uploading": 2}
    with session_scope(settings) as session:
        rows = session.scalars(
            select(Video).where(
                Video.user_id == uuid.UUID(creator_id),
                Video.title.in_(titles),
                Video.status.in_(list(rank)),
            )
        ).all()
    s3 = s3_client(settings)
    best: dict[str, Video] = {}
    for video in rows:
        if video.status == "processed" and not stream_stored(settings, s3, video.manifest_url):
            continue
        held = best.get(video.title)
        if held is None or rank[video.status] < rank[held.status]:
            best[video.title] = video
    return best


def stream_stored(settings: Settings, s3: S3Client, manifest_url: str | None) -> bool:
    """Is the master playlist at ``manifest_url`` in the media bucket of this stack? A
    catalog that outlived its objects (an in-memory object store restarted, or a change of
    object store) lists processed videos whose streams are gone."""
    base = media_base_url(settings) + "/"
    if not manifest_url or not manifest_url.startswith(base):
        return False
    return source_size(s3, settings.bucket_media, manifest_url[len(base) :]) is not None


def _statuses(settings: Settings, video_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    with session_scope(settings) as session:
        rows = session.execute(
            select(Video.video_id, Video.status, Video.failure_reason).where(
                Video.video_id.in_([uuid.UUID(v) for v in video_ids])
            )
        ).all()
    return {str(r.video_id): (r.status, r.failure_reason) for r in rows}


def wait_processed(settings: Settings, video_ids: list[str], say: Say, *, timeout: float) -> None:
    """Follow every video until all are processed; DemoStepError on a failed one."""
    deadline = time.monotonic() + timeout
    last = -1
    while True:
        states = _statuses(settings, video_ids)
        failed = {v: r for v, (s, r) in states.items() if s == "failed"}
        if failed:
            video, reason = next(iter(failed.items()))
            raise DemoStepError(f"video {video} failed in video_processing: {reason}")
        done = sum(1 for s, _ in states.values() if s == "processed")
        if done != last:
            say(f"{done}/{len(video_ids)} clips processed")
            last = done
        if done == len(video_ids):
            return
        if time.monotonic() > deadline:
            raise DemoStepError(
                f"{len(video_ids) - done} clips still not processed after {timeout:.0f} s; "
                "see the video_processing runs in the Airflow UI"
            )
        time.sleep(2)


def seed_catalog(
    settings: Settings, *, seed: int, count: int, seconds: int, say: Say, timeout: float = 1800
) -> SeededCatalog:
    """Upload the clips the catalog does not hold yet, then wait until all are processed.
    Clips are encoded two at a time (two cores) and uploaded as each is ready, so the
    scheduler starts processing the first while the others are still being made."""
    api = f"http://{settings.bind_host}:{settings.upload_port}"
    token = creator.login(settings, api)
    creator_id = _user_id(api, token)
    specs = clip_specs(seed, count)
    existing = _existing(settings, creator_id, [s.title for s in specs])
    missing = [s for s in specs if s.title not in existing]
    say(
        f"{len(existing)} of {count} clips already in the catalog; uploading {len(missing)} "
        f"({seconds} s, 720p) as {creator.DEMO_USER!r} with tus"
    )
    ids = {title: str(video.video_id) for title, video in existing.items()}
    with tempfile.TemporaryDirectory(prefix="vidflow-demo-") as scratch:

        def make(i_spec: tuple[int, ClipSpec]) -> tuple[ClipSpec, Path]:
            i, spec = i_spec
            path = Path(scratch) / f"clip-{i}.mp4"
            creator.make_clip(path, seconds, pattern=spec.pattern, tone_hz=spec.tone_hz)
            return spec, path

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="clip") as pool:
            for spec, path in pool.map(make, enumerate(missing)):
                url = creator.upload(api, token, path, title=spec.title, tags=spec.tags)
                ids[spec.title] = creator.video_of_upload(settings, url)
                say(f"uploaded {spec.title!r} (tags {', '.join(spec.tags)}): {ids[spec.title]}")
    video_ids = [ids[s.title] for s in specs]
    wait_processed(settings, video_ids, say, timeout=timeout)
    return SeededCatalog(tuple(video_ids), len(missing), len(existing), creator_id)


# --- history --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryWritten:
    start: date
    days: int
    events: int
    late_events: int
    objects: int
    cdn_requests: int
    #: The synthetic videos the history watches (registered in the catalog).
    video_ids: tuple[str, ...]
    reused: bool


def history_start(today: date, days: int) -> date:
    return today - timedelta(days=days)


def write_history(
    settings: Settings, *, seed: int, today: date, days: int, viewers: int, videos: int, say: Say
) -> HistoryWritten:
    """``python -m vidflow.traffic history --register --cdn-logs`` for the ``days`` days
    before ``today``, in process. Skipped when a marker of the same run exists and its
    first object is still in the events bucket (moto keeps objects in memory only)."""
    from vidflow.storage import s3_client
    from vidflow.traffic.cdnlogs import write_cdn_logs
    from vidflow.traffic.cli import truth_path
    from vidflow.traffic.history import run_tag, s3_put
    from vidflow.traffic.history import write_history as write_events
    from vidflow.traffic.model import write_truth
    from vidflow.traffic.register import register

    first = history_start(today, days)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    population = build_population(seed, viewers=viewers, videos=videos, start=start, days=days)
    tag = run_tag(population)
    marker = settings.state_dir / "demo" / f"history-{tag}.json"
    client = s3_client(settings)
    video_ids = tuple(population.catalog.video_ids)
    if marker.exists():
        done = json.loads(marker.read_text())
        try:
            client.head_object(Bucket=settings.bucket_events, Key=done["first_key"])
        except client.exceptions.ClientError:
            say("the history's objects are gone from the events bucket: writing them again")
        else:
            say(f"history {tag} already written ({done['events']} events): reusing it")
            names = {f.name for f in fields(HistoryWritten)} - {"start", "reused"}
            stored = {k: v for k, v in done["result"].items() if k in names}
            stored["video_ids"] = tuple(stored["video_ids"])
            return HistoryWritten(**stored, start=first, reused=True)
    say(
        f"seed {seed}: {viewers} viewers, {videos} videos, {days} days from {first} "
        f"({len(population.viral)} viral bursts)"
    )
    write_truth(population, truth_path(settings, seed, None))
    register(population, settings)
    say(f"catalog: the history's viewers and {videos} videos registered (kept if present)")
    events = write_events(population, s3_put(settings), say)

    def put_log(key: str, body: bytes) -> None:
        client.put_object(Bucket=settings.bucket_cdn_logs, Key=key, Body=body)

    logs = write_cdn_logs(population, settings, put_log, say, tag=tag)
    say(
        f"{events.events} events in {events.objects} objects, {logs.requests} CDN requests "
        f"in {logs.objects} log objects"
    )
    result = HistoryWritten(
        start=first,
        days=days,
        events=events.events,
        late_events=events.late_events,
        objects=events.objects,
        cdn_requests=logs.requests,
        video_ids=video_ids,
        reused=False,
    )
    stored = {k: v for k, v in asdict(result).items() if k not in ("start", "reused")}
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        json.dumps({"first_key": events.keys[0], "events": events.events, "result": stored})
    )
    return result


# --- the demo viewer and live viewers ----------------------------------------------------------


@dataclass(frozen=True)
class ViewerSession:
    username: str
    user_id: str
    watched: tuple[str, ...]
    events: int


def viewer_login(settings: Settings) -> tuple[str, str]:
    """Register (once) and sign in the demo viewer; (token, user_id)."""
    password = settings.demo_password.get_secret_value()
    if not password:
        raise DemoStepError("VIDFLOW_DEMO_PASSWORD is not set (make up generates it)")
    api = f"http://{settings.bind_host}:{settings.upload_port}"
    account = {"username": DEMO_VIEWER, "email": f"{DEMO_VIEWER}@example.com", "password": password}
    created = httpx.post(f"{api}/v1/accounts", json=account, timeout=30)
    if created.status_code not in (201, 409):
        raise DemoStepError(f"registering {DEMO_VIEWER!r}: {created.status_code} {created.text}")
    token = httpx.post(
        f"{api}/v1/auth/token", json={"username": DEMO_VIEWER, "password": password}, timeout=30
    )
    if token.status_code != 200:
        raise DemoStepError(
            f"signing in {DEMO_VIEWER!r}: {token.status_code} {token.text[:200]} (does the "
            "account exist with another password than VIDFLOW_DEMO_PASSWORD?)"
        )
    access = str(token.json()["access_token"])
    return access, _user_id(api, access)


def _event(kind: str, video_id: str, session_id: str, position: float) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": kind,
        "video_id": video_id,
        "session_id": session_id,
        "client_ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "position_seconds": position,
        "region": DEMO_VIEWER_REGION,
        "device": DEMO_VIEWER_DEVICE,
    }


def demo_viewer_watches(settings: Settings, video_ids: tuple[str, ...], say: Say) -> ViewerSession:
    """The demo viewer plays the first clips through their region's edge (master
    playlist) and posts play, heartbeat and complete events, as the web app would."""
    token, user_id = viewer_login(settings)
    api = f"http://{settings.bind_host}:{settings.viewer_port}"
    auth = {"Authorization": f"Bearer {token}"}
    posted = 0
    watched = video_ids[:VIEWER_WATCHES]
    with httpx.Client(timeout=30) as http:
        for video_id in watched:
            meta = http.get(f"{api}/v1/videos/{video_id}", params={"region": DEMO_VIEWER_REGION})
            if meta.status_code != 200:
                raise DemoStepError(f"GET /v1/videos/{video_id}: {meta.status_code} {meta.text}")
            video = meta.json()
            http.get(video["hls_url"]).raise_for_status()
            length = float(video.get("duration_seconds") or 1.0)
            session = str(uuid.uuid4())
            batch = [
                _event("play", video_id, session, 0.0),
                _event("heartbeat", video_id, session, length / 2),
                _event("complete", video_id, session, length),
            ]
            answer = http.post(f"{api}/v1/events", json={"events": batch}, headers=auth)
            if answer.status_code != 200 or answer.json()["rejected"]:
                raise DemoStepError(f"POST /v1/events: {answer.status_code} {answer.text[:300]}")
            posted += len(answer.json()["accepted"])
    say(f"{DEMO_VIEWER!r} watched {len(watched)} clips ({posted} events accepted)")
    return ViewerSession(DEMO_VIEWER, user_id, watched, posted)


@dataclass(frozen=True)
class LiveTraffic:
    viewers: int
    seconds: float
    playbacks: int
    segments: int
    bytes: int
    events: int
    refused: int


def live_traffic(
    settings: Settings, *, seed: int, viewers: int, seconds: float, say: Say
) -> LiveTraffic:
    """``python -m vidflow.traffic live`` in process: ``viewers`` viewers play the
    catalog's streams through their edges for ``seconds``, posting their events."""
    from vidflow.traffic.cli import truth_path
    from vidflow.traffic.live import LiveError, run_live

    try:
        report = run_live(
            settings,
            seed=seed,
            viewers=viewers,
            duration=seconds,
            speed=LIVE_SPEED,
            truth_file=truth_path(settings, seed, None, "live"),
            say=say,
        )
    except LiveError as exc:
        raise DemoStepError(str(exc)) from exc
    if not report.playbacks:
        raise DemoStepError(f"no live playback finished: {'; '.join(report.errors[:3])}")
    return LiveTraffic(
        viewers=viewers,
        seconds=seconds,
        playbacks=report.playbacks,
        segments=report.segments,
        bytes=report.bytes,
        events=report.events_acknowledged,
        refused=report.events_refused,
    )
