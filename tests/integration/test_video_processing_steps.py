"""The processing steps in-process against the real catalog and object store: the claim
protocol that makes duplicate messages harmless, idempotent retries, the one-transaction
publish, the failure callback, reconciliation and the orphan sweep."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import httpx
import m3u8
import pytest
from sqlalchemy import text, update

from tests.integration.test_video_processing import (
    H264,
    Shape,
    create_video,
    lavfi,
    make_source,
    media_keys,
    upload_source,
)
from vidflow.catalog.db import session_scope
from vidflow.catalog.models import Video
from vidflow.config import Settings
from vidflow.orchestration.video_processing import on_task_failure
from vidflow.processing import (
    catalog,
    maintenance,
    objects,
    planning,
    probing,
    publishing,
    runs,
    transcoding,
)
from vidflow.processing.catalog import video_state
from vidflow.processing.contracts import (
    ERROR,
    FAILED,
    PUBLISHED,
    READY,
    SKIPPED,
    Encode,
    Outcome,
    ProcessingMessage,
    RenditionResult,
    VideoJob,
)
from vidflow.processing.requests import VideoRequest
from vidflow.storage import file_sha256, s3_client

TINY = Shape(
    lavfi("testsrc2=size=160x120:rate=15:duration=1") + lavfi("sine=sample_rate=48000:duration=1"),
    [*H264, "-c:a", "aac", "-shortest"],
    rungs=["120p"],
    frame_rate=15.0,
    audio=True,
)


def never_active(run_id: str) -> bool:
    return False


def always_active(run_id: str) -> bool:
    return True


def claim(settings: Settings, video_id: str, run_id: str) -> catalog.Claim:
    """Claim a video for ``run_id`` as a run's first step does (no other run active)."""
    return catalog.claim(
        settings=settings,
        video_id=video_id,
        run_id=run_id,
        force=False,
        is_run_active=never_active,
    )


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_source(tmp_path_factory.mktemp("tiny"), "tiny", TINY)


@pytest.fixture
def video(stack: Settings, tiny_source: Path) -> str:
    video_id = uuid.uuid4()
    create_video(stack, video_id)
    upload_source(stack, video_id, tiny_source)
    return str(video_id)


def probe_video(
    req: VideoRequest,
    *,
    settings: Settings,
    run_id: str,
    attempt: int,
    is_run_active: Callable[[str], bool],
) -> VideoJob:
    """The probe step for one video: claim it, then probe and plan it."""
    skipped = probing.claim_video(
        req, settings=settings, run_id=run_id, is_run_active=is_run_active
    )
    if skipped is not None:
        return skipped
    return probing.probe_claimed(req, settings=settings, run_id=run_id, attempt=attempt)


def request(
    video_id: str, force: bool = False, *, size: int | None = None, sha256: str | None = None
) -> VideoRequest:
    message = ProcessingMessage.for_video(video_id, size=size, sha256=sha256)
    return VideoRequest(message, force)


def transcode_all(job: VideoJob, *, settings: Settings, run_id: str) -> list[RenditionResult]:
    """The mapped transcode task of one video, every encode in turn."""
    return [
        result
        for item in planning.plan_encodes([job], encodes_per_video=settings.encode_groups)
        for result in transcoding.transcode_encode(item, settings=settings, run_id=run_id)
    ]


def run_pipeline(
    settings: Settings, video_id: str, run_id: str, force: bool = False
) -> VideoJob | Outcome:
    """Every step of one run, in order, in this process."""
    job = probe_video(
        request(video_id, force),
        settings=settings,
        run_id=run_id,
        attempt=1,
        is_run_active=never_active,
    )
    if job.status != READY:
        return job
    results = transcode_all(job, settings=settings, run_id=run_id)
    packaged = publishing.package_video(job, results, settings=settings, run_id=run_id)
    return publishing.publish_video(packaged, settings=settings, run_id=run_id)


def test_a_duplicate_while_another_run_is_active_is_skipped(stack: Settings, video: str) -> None:
    first = claim(stack, video, "run-a")
    assert first.claimed
    duplicate = catalog.claim(
        settings=stack, video_id=video, run_id="run-b", force=False, is_run_active=always_active
    )
    assert not duplicate.claimed and "run-a" in (duplicate.skipped_because or "")
    # Once run-a is gone (crashed), the same message takes the video over.
    takeover = claim(stack, video, "run-b")
    assert takeover.claimed
    assert video_state(settings=stack, video_id=video)["processing_run_id"] == "run-b"  # type: ignore[index]


def test_processed_and_failed_videos_are_skipped_unless_forced(stack: Settings, video: str) -> None:
    assert run_pipeline(stack, video, "run-1").status == PUBLISHED
    version = video_state(settings=stack, video_id=video)["media_version"]  # type: ignore[index]
    again = run_pipeline(stack, video, "run-2")
    assert (again.status, again.reason) == (SKIPPED, "already processed")
    assert video_state(settings=stack, video_id=video)["media_version"] == version  # type: ignore[index]

    other = str(uuid.uuid4())
    create_video(stack, uuid.UUID(other))
    failed = run_pipeline(stack, other, "run-3")  # no original uploaded
    assert failed.status == FAILED and "missing" in (failed.reason or "")
    assert run_pipeline(stack, other, "run-4").reason == "already failed"


def test_last_claim_wins_and_the_loser_discards_its_staging(stack: Settings, video: str) -> None:
    job_a = probe_video(
        request(video), settings=stack, run_id="run-a", attempt=1, is_run_active=never_active
    )
    results_a = transcode_all(job_a, settings=stack, run_id="run-a")
    packaged_a = publishing.package_video(job_a, results_a, settings=stack, run_id="run-a")
    staged = media_keys(stack, video)
    assert staged and all(f"/{job_a.version}/" in k for k in staged)

    # An operator forces a re-transcode while run-a is finishing.
    assert run_pipeline(stack, video, "run-b", force=True).status == PUBLISHED
    state = video_state(settings=stack, video_id=video)
    assert state is not None

    late = publishing.publish_video(packaged_a, settings=stack, run_id="run-a")
    assert late.status == SKIPPED and "superseded" in (late.reason or "")
    after = video_state(settings=stack, video_id=video)
    assert after == state  # run-a changed nothing
    assert all(f"/{state['media_version']}/" in k for k in media_keys(stack, video))


def test_publishing_twice_is_a_no_op(stack: Settings, video: str) -> None:
    job = probe_video(
        request(video), settings=stack, run_id="run-p", attempt=1, is_run_active=never_active
    )
    results = transcode_all(job, settings=stack, run_id="run-p")
    packaged = publishing.package_video(job, results, settings=stack, run_id="run-p")
    assert publishing.publish_video(packaged, settings=stack, run_id="run-p").status == PUBLISHED
    first = video_state(settings=stack, video_id=video)
    assert publishing.publish_video(packaged, settings=stack, run_id="run-p").status == PUBLISHED
    assert video_state(settings=stack, video_id=video) == first
    assert first is not None and len(first["renditions"]) == 1


def test_a_retried_transcode_leaves_no_leftovers(stack: Settings, video: str) -> None:
    job = probe_video(
        request(video), settings=stack, run_id="run-r", attempt=1, is_run_active=never_active
    )
    (rung, _audio) = planning.plan_encodes([job], encodes_per_video=2)
    assert rung.label == "120p"
    prefix = objects.version_prefix(video, job.version) + "120p/"
    # A previous attempt died after writing more segments than this one will.
    objects.put_text(s3_client(stack), stack.bucket_media, prefix + "seg_00099.m4s", "junk")
    (first,) = transcoding.transcode_encode(rung, settings=stack, run_id="run-r")
    keys = media_keys(stack, video)
    (second,) = transcoding.transcode_encode(rung, settings=stack, run_id="run-r")
    assert media_keys(stack, video) == keys
    assert not any(k.endswith("seg_00099.m4s") for k in keys)
    assert first.summary is not None and second.summary is not None
    assert first.summary.segment_count == second.summary.segment_count


def encode_of(video_id: str) -> Encode:
    return Encode(video_id, "v1", f"originals/{video_id}/source", 1.0, "720p", 0, None, ())


def test_failure_callback_records_the_reason(stack: Settings, video: str) -> None:
    claim(stack, video, "run-f")
    context = {
        "task": SimpleNamespace(
            task_id="transcode", op_kwargs={"encode": encode_of(video).to_xcom()}
        ),
        "run_id": "run-f",
        "exception": RuntimeError("the encoder host vanished"),
    }
    on_task_failure(context)
    state = video_state(settings=stack, video_id=video)
    assert state is not None and state["status"] == "failed"
    # The uploader reads a fixed sentence; the exception stays in the task log.
    assert state["failure_reason"] == (
        "Internal error while running transcode; an operator can find the details in the task log."
    )
    # A callback of a run that no longer owns the video changes nothing.
    catalog.claim(
        settings=stack, video_id=video, run_id="run-g", force=True, is_run_active=never_active
    )
    on_task_failure({**context, "run_id": "run-f"})
    assert video_state(settings=stack, video_id=video)["status"] == "processing"  # type: ignore[index]


def test_a_failed_retranscode_keeps_the_published_version(stack: Settings, video: str) -> None:
    assert run_pipeline(stack, video, "run-ok").status == PUBLISHED
    catalog.claim(
        settings=stack, video_id=video, run_id="run-bad", force=True, is_run_active=never_active
    )
    catalog.mark_failed(settings=stack, video_id=video, run_id="run-bad", reason="Boom.")
    state = video_state(settings=stack, video_id=video)
    assert state is not None and state["status"] == "processed" and state["manifest_url"]
    assert state["failure_reason"] == "Re-transcode failed; the previous version still plays. Boom."


def _age(settings: Settings, video_id: str, minutes: int) -> None:
    with session_scope(settings) as session:
        session.execute(
            update(Video)
            .where(Video.video_id == uuid.UUID(video_id))
            .values(updated_at=text(f"now() - interval '{minutes} minutes'"))
        )


def test_reconcile_reenqueues_then_gives_up(stack: Settings, video: str) -> None:
    settings = stack.model_copy(update={"max_reenqueues": 1})
    claim(settings, video, "run-dead")
    _age(settings, video, settings.stuck_processing_minutes + 1)
    sent: list[dict[str, Any]] = []

    def capture(conn: Any, payload: dict[str, Any]) -> None:
        sent.append(payload)

    still_running = maintenance.reconcile(
        settings=settings, is_run_active=always_active, enqueue=capture, only=[video]
    )
    assert video in still_running["active"] and not sent

    result = maintenance.reconcile(
        settings=settings, is_run_active=never_active, enqueue=capture, only=[video]
    )
    assert video in result["reenqueued"]
    mine = [p for p in sent if p["video_id"] == video]
    assert mine == [
        {"video_id": video, "source_key": f"originals/{video}/source", "size": None, "sha256": None}
    ]
    json.dumps(mine[0])  # the queue message format
    state = video_state(settings=settings, video_id=video)
    assert (
        state is not None
        and state["processing_attempts"] == 1
        and state["processing_run_id"] is None
    )

    _age(settings, video, settings.stuck_processing_minutes + 1)
    result = maintenance.reconcile(
        settings=settings, is_run_active=never_active, enqueue=capture, only=[video]
    )
    assert video in result["failed"]
    state = video_state(settings=settings, video_id=video)
    assert state is not None and state["status"] == "failed"
    assert "did not finish after 2 attempts" in state["failure_reason"]


def test_sweep_removes_orphaned_versions_only(stack: Settings, video: str) -> None:
    assert run_pipeline(stack, video, "run-s").status == PUBLISHED
    live = video_state(settings=stack, video_id=video)["media_version"]  # type: ignore[index]
    s3 = s3_client(stack)
    # Staging of a run that died before packaging (no master playlist) ...
    orphan = objects.version_prefix(video, "vdeadbeef0000")
    objects.put_text(s3, stack.bucket_media, orphan + "120p/seg_00001.m4s", "x")
    # ... and one that died after packaging, before its publish.
    packaged = objects.version_prefix(video, "vdeadbeef0001")
    objects.put_text(s3, stack.bucket_media, packaged + "master.m3u8", "#EXTM3U\n")
    # Not old enough yet: kept.
    maintenance.sweep_orphaned_versions(settings=stack, is_run_active=never_active, only=[video])
    assert any(k.startswith(orphan) for k in media_keys(stack, video))
    # Once no run can still be writing them: the staging goes; the packaged version
    # could have been read, so it gets the grace period first.
    immediate = stack.model_copy(update={"stuck_processing_minutes": 0})
    swept = maintenance.sweep_orphaned_versions(
        settings=immediate, is_run_active=never_active, only=[video]
    )
    assert swept == {"removed": [orphan], "marked": [packaged]}
    assert objects.superseded_at(s3, stack.bucket_media, packaged) is not None
    no_grace = immediate.model_copy(update={"superseded_grace_hours": 0})
    swept = maintenance.sweep_orphaned_versions(
        settings=no_grace, is_run_active=never_active, only=[video]
    )
    assert swept == {"removed": [packaged], "marked": []}
    keys = media_keys(stack, video)
    assert keys and all(f"/{live}/" in k for k in keys)


def test_a_superseded_version_stays_readable_for_the_grace_period(
    stack: Settings, video: str
) -> None:
    assert run_pipeline(stack, video, "run-old").status == PUBLISHED
    old = video_state(settings=stack, video_id=video)
    assert old is not None
    old_keys = media_keys(stack, video)
    assert run_pipeline(stack, video, "run-new", force=True).status == PUBLISHED
    new = video_state(settings=stack, video_id=video)
    assert new is not None and new["media_version"] != old["media_version"]

    # A player that loaded the old master playlist keeps reading its segments.
    assert set(old_keys) <= set(media_keys(stack, video))
    old_prefix = objects.version_prefix(video, old["media_version"])
    segment = next(k for k in old_keys if k.endswith(".m4s"))
    assert httpx.get(objects.public_url(stack, segment), timeout=10).status_code == 200
    assert objects.superseded_at(s3_client(stack), stack.bucket_media, old_prefix) is not None

    # The sweep keeps it during the grace period, even with no run active ...
    kept = maintenance.sweep_orphaned_versions(
        settings=stack.model_copy(update={"stuck_processing_minutes": 0}),
        is_run_active=never_active,
        only=[video],
    )
    assert kept == {"removed": [], "marked": []}
    assert set(old_keys) <= set(media_keys(stack, video))
    # ... and removes it once the grace period is over; the live version stays.
    over = stack.model_copy(update={"superseded_grace_hours": 0})
    swept = maintenance.sweep_orphaned_versions(
        settings=over, is_run_active=never_active, only=[video]
    )
    assert swept["removed"] == [old_prefix]
    keys = media_keys(stack, video)
    assert keys and all(f"/{new['media_version']}/" in k for k in keys)


def test_an_original_that_differs_from_the_upload_ends_failed(
    stack: Settings, video: str, tiny_source: Path
) -> None:
    good = file_sha256(tiny_source)
    size = tiny_source.stat().st_size
    wrong_hash = request(video, size=size, sha256="0" * 64)
    job = probe_video(
        wrong_hash, settings=stack, run_id="run-h", attempt=1, is_run_active=never_active
    )
    assert job.status == FAILED and "SHA-256 differs" in (job.reason or "")
    state = video_state(settings=stack, video_id=video)
    assert state is not None and state["status"] == "failed"
    assert state["failure_reason"] == job.reason

    other = str(uuid.uuid4())
    create_video(stack, uuid.UUID(other))
    upload_source(stack, uuid.UUID(other), tiny_source)
    wrong_size = request(other, size=size + 1, sha256=good)
    job = probe_video(
        wrong_size, settings=stack, run_id="run-h", attempt=1, is_run_active=never_active
    )
    assert job.status == FAILED and f"is {size} bytes" in (job.reason or "")

    # Half an original: the size says why, before ffprobe would call it truncated.
    half = str(uuid.uuid4())
    create_video(stack, uuid.UUID(half))
    s3_client(stack).put_object(
        Bucket=stack.bucket_originals,
        Key=f"originals/{half}/source",
        Body=tiny_source.read_bytes()[: size // 2],
    )
    job = probe_video(
        request(half, size=size, sha256=good),
        settings=stack,
        run_id="run-h",
        attempt=1,
        is_run_active=never_active,
    )
    assert job.status == FAILED
    assert f"is {size // 2} bytes but the upload finished with {size}" in (job.reason or "")

    third = str(uuid.uuid4())
    create_video(stack, uuid.UUID(third))
    upload_source(stack, uuid.UUID(third), tiny_source)
    matching = request(third, size=size, sha256=good.upper())
    job = probe_video(
        matching, settings=stack, run_id="run-h", attempt=1, is_run_active=never_active
    )
    assert job.status == READY


def test_probe_videos_plans_every_video_of_a_run(
    stack: Settings, video: str, tiny_source: Path
) -> None:
    missing = str(uuid.uuid4())
    create_video(stack, uuid.UUID(missing))  # no original uploaded
    extras = [
        {
            "payload": {
                "message_batch": [{"Body": request(v).message.to_json()} for v in (video, missing)]
            }
        }
    ]
    planned = probing.probe_videos(
        extras,
        video_id=None,
        force=False,
        settings=stack,
        run_id="run-m",
        attempt=1,
        last_attempt=False,
        is_run_active=never_active,
    )
    outcomes = {job.video_id: job.status for job in planned.jobs}
    assert outcomes == {video: READY, missing: FAILED}
    # One encode per video by default: the whole ladder from one decode.
    assert stack.encode_groups == 1
    assert [(e.video_id, e.label) for e in planned.encodes] == [(video, "120p+audio")]


def test_an_unexpected_error_is_retried_then_recorded_per_video(
    stack: Settings, video: str
) -> None:
    other = str(uuid.uuid4())
    create_video(stack, uuid.UUID(other))
    for video_id in (video, other):
        claim(stack, video_id, "run-u")

    def broken() -> Outcome:
        raise ConnectionError("storage went away")

    def fine() -> Outcome:
        return Outcome(other, READY)

    def error(video_id: str, reason: str) -> Outcome:
        return Outcome(video_id, ERROR, reason)

    work = {video: broken, other: fine}
    with pytest.raises(runs.StepError, match="1 of 2 videos"):
        runs.per_video(
            work,
            what="publishing",
            settings=stack,
            run_id="run-u",
            last_attempt=False,
            on_error=error,
        )
    assert video_state(settings=stack, video_id=video)["status"] == "processing"  # type: ignore[index]

    outcomes = runs.per_video(
        work, what="publishing", settings=stack, run_id="run-u", last_attempt=True, on_error=error
    )
    assert outcomes[other].status == READY
    assert outcomes[video].status == ERROR
    state = video_state(settings=stack, video_id=video)
    assert state is not None and state["status"] == "failed"
    assert state["failure_reason"] == (
        "Internal error while publishing; an operator can find the details in the task log."
    )


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A loopback HTTP server that records every request it gets."""

    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        self.wfile.write(b"\x47" * 188)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("kind", "demuxer"),
    [("playlist", "hls"), ("ffconcat", "concat")],
)
def test_a_file_that_names_other_inputs_is_refused_without_fetching_them(
    stack: Settings,
    tmp_path: Path,
    loopback_server: tuple[str, list[str]],
    kind: str,
    demuxer: str,
) -> None:
    """An HLS playlist (or an ffconcat list) uploaded as ``clip.mp4`` pointing at a
    loopback server ends ``failed`` with a clear reason, and the server sees nothing."""
    base, seen = loopback_server
    if kind == "playlist":
        body = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        body += "".join(f"#EXTINF:2.0,\n{base}/internal/seg{i}.ts\n" for i in range(5))
        body += "#EXT-X-ENDLIST\n"
    else:
        body = "ffconcat version 1.0\n" + "".join(
            f"file {base}/internal/part{i}.mp4\n" for i in range(3)
        )
    clip = tmp_path / "clip.mp4"
    clip.write_text(body)
    # The sanity check of the server itself: it answers and records.
    assert httpx.get(f"{base}/probe-the-recorder", timeout=5).status_code == 200
    assert seen == ["/probe-the-recorder"]
    seen.clear()

    video_id = uuid.uuid4()
    create_video(stack, video_id)
    size = upload_source(stack, video_id, clip)
    outcome = run_pipeline(stack, str(video_id), "run-hostile")
    assert outcome.status == FAILED, outcome
    state = video_state(settings=stack, video_id=str(video_id))
    assert state is not None and state["status"] == "failed"
    reason = state["failure_reason"]
    assert reason == outcome.reason
    assert reason.startswith(f"The file's format ({demuxer}) is not accepted"), reason
    assert "http" not in reason and "Signature" not in reason and "127.0.0.1" not in reason
    assert seen == [], f"the worker fetched {seen}"
    assert size == len(body) and media_keys(stack, str(video_id)) == []


def test_a_tail_of_a_few_milliseconds_joins_the_last_segment(
    stack: Settings, tmp_path: Path
) -> None:
    """12.05 s with 6 s segments: without folding, the video would end on a 0.067 s
    segment (one frame at 15 fps) and the audio on a 0.064 s one."""
    shape = Shape(
        lavfi("testsrc2=size=160x120:rate=15:duration=12.05")
        + lavfi("sine=sample_rate=48000:duration=12.05"),
        [*H264, "-c:a", "aac", "-shortest"],
        rungs=["120p"],
        frame_rate=15.0,
        audio=True,
    )
    source = make_source(tmp_path, "tail", shape)
    video_id = uuid.uuid4()
    create_video(stack, video_id)
    upload_source(stack, video_id, source)
    assert run_pipeline(stack, str(video_id), "run-tail").status == PUBLISHED
    state = video_state(settings=stack, video_id=str(video_id))
    assert state is not None and stack.segment_seconds == 6
    base = state["manifest_url"].rsplit("/", 1)[0]
    for rendition, frame in (("120p", 1 / 15), ("audio", 1024 / 48000)):
        playlist = m3u8.loads(httpx.get(f"{base}/{rendition}/index.m3u8", timeout=10).text)
        durations = [s.duration for s in playlist.segments]
        assert len(durations) == 2, (rendition, durations)
        # The first segment is whole; the second holds the tail (a frame or a few more).
        assert durations[0] == pytest.approx(6.0, abs=2 * frame), rendition
        assert 6.0 < durations[1] < 6.0 + 0.1 + frame, (rendition, durations)
        assert playlist.target_duration == 6
        assert sum(durations) == pytest.approx(12.05, abs=0.1)
    # The joined segments decode to the end: the whole stream lasts what the source does.
    frames = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", state["manifest_url"]],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert int(frames.stdout.strip().splitlines()[0]) == 181  # ceil(12.05 x 15)
