"""The viewer web app in a real browser: Playwright driving Debian's Chromium
(``/usr/bin/chromium``; never ``playwright install``).

One viewer's journey, in order, against real services: a viewer API of the test's own
(the same code as the stack's ``viewer-api``, with a test events bucket so the journey's
events stay out of the analytics runs), the stack's upload API (tus), PostgreSQL, the S3
endpoint, the region edges and the real ``video_processing`` DAG run by the scheduler.

1. Anonymous home: regional trending, and the region switch changes it.
2. Register and sign in through the page.
3. Creator: a generated clip uploaded with tus-js-client under a throttled network,
   paused mid-upload and resumed (the server's offset carries on, one upload, identical
   bytes), until the real DAG has processed it; then its title and tags edited.
4. Watch: hls.js plays it from the region's edge to the end, the storyboard shows while
   scrubbing, play/heartbeat/complete events are accepted and stored (read back from the
   bucket), and the recommendations beside the player follow the session.
5. Home again, signed in: the recommendation grid with each item's reason.

Screenshots of each step are kept under ``.local/artifacts/screenshots/``; the home and
watch pages are also written, 1000 px wide, to ``docs/img/`` for the README when
VIDFLOW_UPDATE_DOCS_IMAGES=1 (so that a test run leaves the work tree clean). The browser
console must stay free of errors throughout.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.integration.tus_harness import cleanup_creators
from tests.integration.viewer_harness import ViewerProcess, events_bucket, stored_lines
from vidflow.catalog.db import get_engine
from vidflow.config import REPO_ROOT, Settings
from vidflow.processing.objects import media_base_url
from vidflow.storage import object_sha256, original_key, s3_client
from vidflow.viewer.web import upload_url

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / ".local" / "artifacts" / "screenshots"
DOCS_IMG = REPO_ROOT / "docs" / "img"


def _docs_image(page: Any, name: str) -> None:
    if os.environ.get("VIDFLOW_UPDATE_DOCS_IMAGES") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / name))


PASSWORD = "Web-app-pw-2026"
CLIP_SECONDS = 12
#: Upload throughput while pausing: slow enough that the pause lands mid-upload.
THROTTLE_BYTES_PER_S = 256 * 1024
#: A quiet 2-core machine processes the clip in about a minute; a busy one (other DAG runs
#: holding the transcode pool) has taken seven.
PROCESSING_TIMEOUT_S = 600
VIEWPORT = {"width": 1000, "height": 760}


@dataclass
class Journey:
    """What one step hands the next, and what the browser reported along the way."""

    settings: Settings
    base_url: str
    bucket: str
    page: Any
    username: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    every_request: list[str] = field(default_factory=list)
    user_id: uuid.UUID | None = None
    video_id: uuid.UUID | None = None
    related_inserted: list[uuid.UUID] = field(default_factory=list)

    def app(self, route: str = "") -> str:
        return f"{self.base_url}/app/{route}"

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def make_clip(path: Path) -> Path:
    """A 12 s 320x180 clip with sound, about 1.8 MiB (bitrate high enough that the throttled
    upload takes several seconds)."""
    subprocess.run(
        [
            "ffmpeg", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate=25:duration={CLIP_SECONDS}",
            "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=44100:duration={CLIP_SECONDS}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-b:v", "1200k", "-maxrate", "1200k", "-bufsize", "600k",
            "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def scalar(settings: Settings, sql: str, **params: Any) -> Any:
    with get_engine(settings).connect() as conn:
        return conn.execute(text(sql), params).scalar()


@pytest.fixture(scope="module")
def journey(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    token = uuid.uuid4().hex[:10]
    logs = tmp_path_factory.mktemp("web-app")
    with events_bucket(stack, token) as bucket:
        viewer = ViewerProcess(bucket=bucket, log_path=logs / "viewer.log", workers=1)
        viewer.start()
        pw = playwright_sync.sync_playwright().start()
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            # A test has no user gesture to start sound; muted autoplay works without.
            args=["--autoplay-policy=no-user-gesture-required"],
        )
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        state = Journey(stack, viewer.base_url, bucket, page, username=f"webapp{token}")
        page.on(
            "console",
            lambda m: (
                state.console_errors.append(f"{m.text} @ {m.location.get('url')}")
                if m.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: state.console_errors.append(f"page error: {exc}"))
        page.on("request", lambda r: state.requests.append(r.url))
        page.on("request", lambda r: state.every_request.append(r.url))
        try:
            yield state
        finally:
            context.close()
            browser.close()
            pw.stop()
            viewer.stop()
            with get_engine(stack).begin() as conn:
                if state.related_inserted:
                    conn.execute(
                        text("DELETE FROM related_videos WHERE video_id = ANY(:ids)"),
                        {"ids": state.related_inserted},
                    )
                if state.user_id:
                    conn.execute(
                        text("DELETE FROM session_activity WHERE user_id = :u"),
                        {"u": state.user_id},
                    )
            if state.user_id:
                cleanup_creators(stack, [state.user_id])


def no_console_errors(journey: Journey) -> None:
    assert journey.console_errors == [], journey.console_errors


def expected_http_error(journey: Journey, status: int) -> None:
    """Chromium logs every 4xx/5xx answer to fetch() as a console error; a test that
    provokes one on purpose takes exactly that entry off the list."""
    needle = f"status of {status}"
    matching = [e for e in journey.console_errors if needle in e]
    assert len(matching) == 1, journey.console_errors
    journey.console_errors.remove(matching[0])


def test_anonymous_home_shows_regional_trending_and_the_region_switch(journey: Journey) -> None:
    page = journey.page
    page.goto(journey.base_url + "/")  # redirects to the app
    assert page.url == journey.app()
    feed = page.get_by_test_id("feed")
    feed.get_by_role("heading", name="Trending in us-east").wait_for()
    assert feed.get_attribute("data-region") == "us-east"
    page.get_by_test_id("region").select_option("eu-west")
    feed.get_by_role("heading", name="Trending in eu-west").wait_for()
    assert page.get_by_test_id("feed").get_attribute("data-region") == "eu-west"
    assert any("/v1/trending?region=eu-west" in u for u in journey.requests)
    # The choice is remembered; back to the first region for the rest of the journey.
    page.reload()
    page.get_by_test_id("feed").get_by_role("heading", name="Trending in eu-west").wait_for()
    page.get_by_test_id("region").select_option("us-east")
    page.get_by_test_id("feed").get_by_role("heading", name="Trending in us-east").wait_for()
    journey.shot("01-anonymous-home")
    no_console_errors(journey)


def test_register_and_sign_in(journey: Journey) -> None:
    page = journey.page
    form = page.get_by_test_id("register-form")
    # A weak password gets the server's reason, in the page.
    form.get_by_label("Username").fill(journey.username)
    form.get_by_label("E-mail").fill(f"{journey.username}@example.com")
    form.get_by_label("Password").fill("aaaaaaaaaa")
    form.get_by_role("button", name="Register").click()
    error = page.get_by_test_id("error")
    error.wait_for()
    assert "password" in error.inner_text().lower()
    expected_http_error(journey, 422)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Register").click()
    page.get_by_test_id("signed-in-as").wait_for()
    assert page.get_by_test_id("signed-in-as").inner_text() == journey.username
    journey.user_id = scalar(
        journey.settings,
        "SELECT user_id FROM usernames WHERE username = :u",
        u=journey.username,
    )
    assert journey.user_id is not None
    no_console_errors(journey)


def test_upload_pauses_resumes_and_becomes_processed(journey: Journey, tmp_path: Path) -> None:
    page, settings = journey.page, journey.settings
    clip = make_clip(tmp_path / "holiday clip.mp4")
    size = clip.stat().st_size
    title = f"Web app clip {journey.username}"
    page.goto(journey.app("#/creator"))
    page.get_by_test_id("upload-file").set_input_files(str(clip))
    page.get_by_test_id("upload-title").fill(title)
    page.get_by_test_id("upload-tags").fill("Browser, Test")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": THROTTLE_BYTES_PER_S,
        },
    )
    page.get_by_test_id("upload-start").click()
    page.wait_for_function(
        "() => { const p = document.querySelector('[data-testid=upload-progress]');"
        " return p.value >= 15 && p.value < 80; }",
        timeout=60_000,
    )
    page.get_by_test_id("upload-pause").click()
    page.get_by_test_id("upload-status").get_by_text("Paused at").wait_for()
    journey.shot("02-upload-paused")

    # The server kept what arrived before the pause; nothing moves while paused.
    upload = {}

    def server_offset() -> int:
        row = (
            get_engine(settings)
            .connect()
            .execute(
                text('SELECT upload_id, "offset", length, state FROM uploads WHERE user_id = :u'),
                {"u": journey.user_id},
            )
            .mappings()
            .all()
        )  # fmt: skip
        assert len(row) == 1, row
        upload.update(row[0])
        return int(row[0]["offset"])

    # The server commits the bytes of the interrupted PATCH once it sees the disconnect.
    deadline = time.monotonic() + 30
    while server_offset() == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    paused_at = server_offset()
    assert upload["state"] == "active" and 0 < paused_at < size, upload
    time.sleep(1.5)
    assert server_offset() == paused_at
    assert page.get_by_test_id("upload-progress").evaluate("p => p.value") < 100

    page.get_by_test_id("upload-resume").click()
    page.get_by_test_id("upload-done").wait_for(timeout=90_000)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    # One upload, carried on from the offset: the stored original is the file, byte for byte.
    assert server_offset() == size and upload["length"] == size
    assert upload["state"] == "completed"
    journey.video_id = scalar(
        settings, "SELECT video_id FROM uploads WHERE upload_id = :i", i=upload["upload_id"]
    )
    assert (
        object_sha256(
            s3_client(settings), settings.bucket_originals, original_key(journey.video_id)
        )
        == hashlib.sha256(clip.read_bytes()).hexdigest()
    )

    # A file that is no video (the browser calls it video/mp4 by its name) goes through
    # too, and fails in processing with a reason the creator sees.
    page.get_by_test_id("upload-file").set_input_files(
        {"name": "broken.mp4", "mimeType": "video/mp4", "buffer": b"not a video at all\n" * 64}
    )
    page.get_by_test_id("upload-start").click()
    page.get_by_test_id("upload-status").get_by_text("Uploaded broken.mp4").wait_for()
    broken = page.locator("[data-testid=video-row]").filter(has_text="broken")

    # The list follows the videos through processing (the page polls; no reload).
    row = page.locator(f"[data-testid=video-row][data-video-id='{journey.video_id}']")
    row.wait_for()
    assert row.get_by_test_id("title").inner_text() == title
    # Both end where they should: the clip processed, the other file failed.
    try:
        page.wait_for_function(
            "id => { const rows = [...document.querySelectorAll('[data-testid=video-row]')];"
            " const clip = rows.find(r => r.dataset.videoId === id);"
            " const bad = rows.find(r => r.innerText.includes('broken'));"
            " return clip?.dataset.status === 'processed' && bad?.dataset.status === 'failed'; }",
            arg=str(journey.video_id),
            timeout=PROCESSING_TIMEOUT_S * 1000,
            polling=1000,
        )
    except playwright_sync.TimeoutError:
        journey.shot("03-creator-timeout")
        with get_engine(settings).connect() as conn:
            statuses = conn.execute(
                text("SELECT title, status, failure_reason FROM videos WHERE user_id = :u"),
                {"u": journey.user_id},
            ).all()
        pytest.fail(
            f"not done after {PROCESSING_TIMEOUT_S} s: catalog {statuses}, page "
            f"{page.get_by_test_id('my-videos').inner_text()!r}; see the video_processing "
            "runs in the Airflow UI"
        )
    assert row.get_by_test_id("status").inner_text() == "Ready"
    assert row.get_by_test_id("failure-reason").count() == 0
    assert broken.get_by_test_id("status").inner_text() == "Failed"
    assert "not a video" in broken.get_by_test_id("failure-reason").inner_text()

    # Edit the title and tags in place; the API then serves the new ones.
    row.get_by_test_id("edit").click()
    row.get_by_test_id("edit-title").fill(title + " (edited)")
    row.get_by_test_id("edit-tags").fill("Browser, Web App , browser")
    row.get_by_test_id("save").click()
    row.get_by_test_id("title").get_by_text("(edited)").wait_for()
    public = httpx.get(f"{journey.base_url}/v1/videos/{journey.video_id}", timeout=10).json()
    assert public["title"] == title + " (edited)"
    assert public["tags"] == ["browser", "web app"]
    journey.shot("03-creator")
    no_console_errors(journey)


def _related_candidates(settings: Settings, exclude: set[uuid.UUID], n: int) -> list[uuid.UUID]:
    """Processed videos other tests leave alone: the oldest ones (the traffic model's
    registered catalog), never the journey's own nor one the viewer is already shown."""
    with get_engine(settings).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT video_id FROM videos WHERE status = 'processed' "
                "AND NOT (video_id = ANY(:ex)) ORDER BY upload_timestamp, video_id LIMIT :n"
            ),
            {"ex": list(exclude), "n": n},
        ).scalars()
        return list(rows)


def _recs_endpoint_exists(base_url: str) -> bool:
    paths = httpx.get(f"{base_url}/openapi.json", timeout=10).json()["paths"]
    return "/v1/me/recommendations" in paths


def test_watch_plays_from_the_edge_posts_events_and_recs_follow(journey: Journey) -> None:
    page, settings = journey.page, journey.settings
    assert journey.video_id is not None, "the upload step did not finish"
    video_id = journey.video_id
    recs_live = _recs_endpoint_exists(journey.base_url)
    related: list[uuid.UUID] = []
    if recs_live:
        # Before the session: what the viewer is recommended. The related videos are chosen
        # outside it, so that only the session can bring them up.
        page.goto(journey.app("#/"))
        page.get_by_test_id("feed").get_by_role("heading", name="Recommended for you").wait_for()
        before = page.get_by_test_id("feed").get_by_test_id("video-card")
        ids_before = [before.nth(i).get_attribute("data-video-id") for i in range(before.count())]
        on_feed = {uuid.UUID(v) for v in ids_before if v}
        # "More like this" of the clip, as recs_scoring would write it: watching the clip
        # must bring these up as session items.
        related = _related_candidates(settings, on_feed | {video_id}, 2)
        assert len(related) == 2
        now = datetime.now(UTC)
        with get_engine(settings).begin() as conn:
            for rank, other in enumerate(related, start=1):
                conn.execute(
                    text(
                        "INSERT INTO related_videos (video_id, rank, related_video_id, score, "
                        "source, model_version, generated_at) VALUES (:v, :r, :o, :s, "
                        "'co-watch', 'web-app-test', :t)"
                    ),
                    {"v": video_id, "r": rank, "o": other, "s": 1.0 / rank, "t": now},
                )
        journey.related_inserted.append(video_id)
        # The related rows alone (no session yet) do not bring them into the feed.
        page.reload()
        page.get_by_test_id("feed").get_by_role("heading", name="Recommended for you").wait_for()
        before = page.get_by_test_id("feed").get_by_test_id("video-card")
        ids_before = [before.nth(i).get_attribute("data-video-id") for i in range(before.count())]
        assert not set(ids_before) & {str(v) for v in related}, ids_before

    journey.requests.clear()
    page.goto(journey.app(f"#/watch/{video_id}"))
    page.get_by_test_id("video-title").wait_for()
    edge = settings.edge_urls()["us-east"]
    # Played to the end through hls.js.
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=player]'); return v && v.ended; }",
        timeout=(CLIP_SECONDS + 40) * 1000,
    )
    fetched = [u for u in journey.requests if u.startswith(edge + "/")]
    assert any(u.endswith(".m3u8") for u in fetched), journey.requests
    assert any(u.endswith(".m4s") for u in fetched), journey.requests

    status = page.get_by_test_id("event-status")
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=event-status]').dataset.accepted) >= 3",
        timeout=15_000,
    )
    assert "refused" not in status.inner_text()
    page.get_by_test_id("like").click()
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=event-status]').dataset.accepted) >= 4",
        timeout=15_000,
    )

    # The events are stored, as this viewer's, with the page's region and device.
    stored = [
        json.loads(line)
        for lines in stored_lines(settings, journey.bucket).values()
        for line in lines
    ]
    mine = [e for e in stored if e["video_id"] == str(video_id)]
    assert {e["event_type"] for e in mine} >= {"play", "heartbeat", "complete", "like"}, mine
    assert {e["user_id"] for e in mine} == {str(journey.user_id)}
    assert {(e["region"], e["device"]) for e in mine} == {("us-east", "desktop")}
    assert len({e["session_id"] for e in mine}) == 1
    complete = next(e for e in mine if e["event_type"] == "complete")
    assert abs(complete["position_seconds"] - CLIP_SECONDS) < 1.0

    # Storyboard while scrubbing: the tile under the pointer, from the edge.
    scrubber = page.locator(".scrubber")
    page.wait_for_function(
        "() => Number(document.querySelector('.scrubber').dataset.storyboard || 0) > 0",
        timeout=10_000,
    )
    box = page.get_by_test_id("scrub").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    preview = page.get_by_test_id("storyboard-preview")
    preview.wait_for(state="visible")
    tile_image = preview.locator(".tile").evaluate("t => t.style.backgroundImage")
    assert edge in tile_image and ".jpg" in tile_image, tile_image
    cue_start = float(preview.get_attribute("data-cue-start") or "nan")
    assert 0.5 * CLIP_SECONDS <= cue_start <= 0.8 * CLIP_SECONDS, cue_start
    assert scrubber.is_visible()

    if recs_live:
        # The recommendations beside the player follow the session: the clip just watched
        # is gone and its related videos came up as session items.
        recs = page.get_by_test_id("watch-recs")
        cards = recs.get_by_test_id("video-card")

        def shown() -> list[tuple[str | None, str | None]]:
            return [
                (
                    cards.nth(i).get_attribute("data-video-id"),
                    cards.nth(i).get_attribute("data-source"),
                )
                for i in range(cards.count())
            ]

        try:
            page.wait_for_function(
                "ids => { const cards = [...document.querySelectorAll("
                "'[data-testid=watch-recs] [data-testid=video-card]')];"
                " return ids.every(id => cards.some(c => c.dataset.videoId === id"
                " && c.dataset.source === 'session')); }",
                arg=[str(v) for v in related],
                timeout=15_000,
            )
        except playwright_sync.TimeoutError:
            pytest.fail(f"session items {related} not shown; the list is {shown()}")
        assert str(video_id) not in [v for v, _ in shown()]
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2)
    preview.wait_for(state="visible")
    journey.shot("04-watch")
    _docs_image(page, "watch.png")
    no_console_errors(journey)
    if not recs_live:
        pytest.fail(
            "GET /v1/me/recommendations is not served yet: the session effect was not checked"
        )


def test_signed_in_home_shows_recommendations_with_reasons(journey: Journey) -> None:
    page = journey.page
    assert _recs_endpoint_exists(journey.base_url), "GET /v1/me/recommendations is missing"
    page.goto(journey.app("#/"))
    feed = page.get_by_test_id("feed")
    feed.get_by_role("heading", name="Recommended for you").wait_for()
    cards = feed.get_by_test_id("video-card")
    cards.first.wait_for()
    assert cards.count() >= 2
    for i in range(cards.count()):
        card = cards.nth(i)
        assert card.get_attribute("data-source") in {
            "collaborative", "co-watch", "content", "trending", "session"
        }  # fmt: skip
        assert card.get_by_test_id("reason").inner_text().strip()
        assert card.get_attribute("data-video-id") != str(journey.video_id)
    # Nothing came from anywhere but the app's own services: no CDN, no other site.
    settings = journey.settings
    own = (
        journey.base_url + "/",
        upload_url(settings) + "/",
        media_base_url(settings) + "/",
        *(edge + "/" for edge in settings.edge_urls().values()),
        "data:",
        "blob:",
    )
    assert journey.every_request
    assert [u for u in journey.every_request if not u.startswith(own)] == []
    journey.shot("05-home")
    _docs_image(page, "home.png")
    no_console_errors(journey)
