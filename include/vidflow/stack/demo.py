"""The second half of ``make demo``: a creator uploads a clip and watches it become a stream.

Nothing here goes around the platform. The clip goes through the upload API
(registration, login, a tuspy upload), the outbox, the processing queue, the
AssetWatcher and the ``video_processing`` DAG run by the scheduler. The demo only reads
the catalog to follow the video, then plays the published HLS master with ffmpeg over
HTTP, as a player would.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import ffmpeg
import httpx
from sqlalchemy import text
from tusclient.client import TusClient

from vidflow.catalog.db import session_scope
from vidflow.config import Settings
from vidflow.processing.catalog import video_state

DEMO_USER: Final = "demo"
DEMO_EMAIL: Final = "demo@example.com"
CLIP_SECONDS: Final = 12
CHUNK_BYTES: Final = 8 * 1024 * 1024
PROCESSING_TIMEOUT_SECONDS: Final = 600

Say = Callable[[str], None]


class DemoError(RuntimeError):
    """The demo could not finish; the message says where to look."""


def make_clip(
    path: Path, seconds: int = CLIP_SECONDS, *, pattern: str = "testsrc2", tone_hz: int = 440
) -> None:
    """A 720p30 H.264/AAC clip: a lavfi video ``pattern`` (default a test pattern with a
    moving clock; e.g. ``mandelbrot``, ``life``, ``smptehdbars``) and a sine tone."""
    # The length is the input's -t: mandelbrot, life and cellauto have no duration option.
    options = "size=1280x720:rate=30"
    source = f"{pattern}:{options}" if "=" in pattern else f"{pattern}={options}"
    video = ffmpeg.input(source, f="lavfi", t=seconds)
    audio = ffmpeg.input(
        f"sine=frequency={tone_hz}:sample_rate=48000:duration={seconds}", f="lavfi"
    )
    codecs = {"vcodec": "libx264", "preset": "veryfast", "pix_fmt": "yuv420p", "acodec": "aac"}
    out = ffmpeg.output(video, audio, str(path), **codecs)
    subprocess.run(out.global_args("-v", "error", "-y").compile(), check=True, timeout=120)


def login(settings: Settings, base_url: str) -> str:
    """A bearer token of the ``demo`` creator (registered on first use)."""
    password = settings.demo_password.get_secret_value()
    if not password:
        raise DemoError("VIDFLOW_DEMO_PASSWORD is not set (make up generates it)")
    account = {"username": DEMO_USER, "email": DEMO_EMAIL, "password": password}
    created = httpx.post(f"{base_url}/v1/accounts", json=account, timeout=30)
    if created.status_code not in (201, 409):
        raise DemoError(f"registering {DEMO_USER!r} failed: {created.status_code} {created.text}")
    token = httpx.post(
        f"{base_url}/v1/auth/token",
        json={"username": DEMO_USER, "password": password},
        timeout=30,
    )
    if token.status_code == 401:
        raise DemoError(
            f"the account {DEMO_USER!r} exists with another password than "
            "VIDFLOW_DEMO_PASSWORD (was .local/secrets.env replaced?)"
        )
    token.raise_for_status()
    access: str = token.json()["access_token"]
    return access


def upload(
    base_url: str,
    token: str,
    clip: Path,
    *,
    title: str = "vidflow demo",
    tags: Sequence[str] = (),
) -> str:
    """Upload ``clip`` with tuspy (``tags`` as the comma-separated tus metadata); returns
    the upload's URL."""
    client = TusClient(f"{base_url}/files/", headers={"Authorization": f"Bearer {token}"})
    metadata = {"filename": clip.name, "title": title, "filetype": "video/mp4"}
    if tags:
        metadata["tags"] = ",".join(tags)
    uploader = client.uploader(file_path=str(clip), chunk_size=CHUNK_BYTES, metadata=metadata)
    uploader.upload()
    if not uploader.url:
        raise DemoError("the upload service returned no upload URL")
    return str(uploader.url)


def video_of_upload(settings: Settings, upload_url: str) -> str:
    upload_id = uuid.UUID(upload_url.rstrip("/").rsplit("/", 1)[1])
    with session_scope(settings) as session:
        video_id = session.execute(
            text("SELECT video_id FROM uploads WHERE upload_id = :u"), {"u": upload_id}
        ).scalar_one()
    return str(video_id)


def wait_until_processed(
    settings: Settings, video_id: str, say: Say, timeout: float = PROCESSING_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """Follow the video's catalog row until it is processed; DemoError if it fails."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        state = video_state(settings=settings, video_id=video_id) or {}
        status = state.get("status")
        if status != last:
            say(f"video {video_id}: {status}")
            last = status
        if status == "processed":
            return state
        if status == "failed":
            raise DemoError(f"video {video_id} failed: {state.get('failure_reason')}")
        if time.monotonic() > deadline:
            raise DemoError(
                f"video {video_id} is still {status} after {timeout:.0f} s; see the "
                "video_processing runs in the Airflow UI"
            )
        time.sleep(1)


def play(manifest_url: str) -> None:
    """Read every stream of the HLS master over HTTP to the end, as a player would."""
    played = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", manifest_url, "-map", "0", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if played.returncode != 0:
        raise DemoError(f"ffmpeg could not play {manifest_url}: {played.stderr[-500:]}")


def upload_and_watch(settings: Settings, say: Say) -> dict[str, Any]:
    """Upload a generated clip as the demo creator and follow it to a playable stream;
    returns the video's catalog row (and its ``video_id``)."""
    base_url = f"http://{settings.bind_host}:{settings.upload_port}"
    with tempfile.TemporaryDirectory(prefix="vidflow-demo-") as scratch:
        clip = Path(scratch) / "demo.mp4"
        make_clip(clip)
        token = login(settings, base_url)
        say(f"uploading a {CLIP_SECONDS} s 720p clip as {DEMO_USER!r} with tus ({base_url})")
        upload_url = upload(base_url, token, clip)
    video_id = video_of_upload(settings, upload_url)
    say(f"upload finished ({upload_url}); following video {video_id} through video_processing")
    started = time.monotonic()
    state = wait_until_processed(settings, video_id, say)
    say(f"processed in {time.monotonic() - started:.0f} s; playing the HLS master with ffmpeg")
    play(state["manifest_url"])
    return {"video_id": video_id, **state}
