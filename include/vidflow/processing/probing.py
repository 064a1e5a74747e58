"""The probe step: claim every video of a run, probe and validate its original, plan it.

Each original is probed through a presigned URL (ffprobe reads only what it needs, with
the demuxer and protocol allow-lists of :mod:`vidflow.media.untrusted`) while its SHA-256
is checked against the message's; an invalid source ends here as ``failed`` with a
reason for the uploader. A ready video gets its ladder, its audio plan and the media
version this run writes (:class:`~vidflow.processing.contracts.VideoJob`); the encodes of
the mapped transcode task are planned from them (:mod:`vidflow.processing.planning`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from vidflow.config import Settings
from vidflow.media.ladder import plan_audio, plan_ladder
from vidflow.media.probe import InvalidSource, ProbeResult, probe_source
from vidflow.processing import catalog, objects
from vidflow.processing.contracts import ERROR, FAILED, READY, SKIPPED, Encode, VideoJob
from vidflow.processing.planning import plan_encodes
from vidflow.processing.requests import VideoRequest, requests_for_run
from vidflow.processing.runs import per_video
from vidflow.storage import object_sha256, s3_client

log = logging.getLogger(__name__)

#: Videos probed at once in one run (ffprobe waits on storage more than on the CPU).
PROBE_WORKERS = 4


@dataclass(frozen=True)
class ProbedRun:
    """What the probe step hands on: every video of the run, and the encodes to run."""

    jobs: list[VideoJob]
    encodes: list[Encode]


def media_version(run_id: str, video_id: str, attempt: int) -> str:
    """A version name unique to this run, video and probe attempt.

    A cleared and re-run task instance gets a new attempt number, so it can never write
    into the prefix of a version that is already published.
    """
    digest = hashlib.sha256(f"{run_id}|{video_id}|{attempt}".encode()).hexdigest()
    return f"v{digest[:12]}"


def claim_video(
    req: VideoRequest,
    *,
    settings: Settings,
    run_id: str,
    is_run_active: Callable[[str], bool],
) -> VideoJob | None:
    """Claim a video for this run: None when claimed, else the ``skipped`` job."""
    claimed = catalog.claim(
        settings=settings,
        video_id=req.video_id,
        run_id=run_id,
        force=req.force,
        is_run_active=is_run_active,
    )
    if claimed.claimed:
        return None
    log.info("skipping video %s: %s", req.video_id, claimed.skipped_because)
    return VideoJob(req.video_id, SKIPPED, claimed.skipped_because)


def _check_size(req: VideoRequest, size: int) -> None:
    """The stored original has the size the upload finished with (checked before probing:
    a file of the wrong size is the wrong file, whatever ffprobe would make of it)."""
    expected = req.message.size
    if expected is not None and expected != size:
        raise InvalidSource(
            f"The stored original is {size} bytes but the upload finished with {expected}; "
            "please upload the video again."
        )


def _check_digest(req: VideoRequest, digest: Future[str] | None) -> None:
    """The stored original has the SHA-256 of the message (hashed while ffprobe reads)."""
    expected = req.message.sha256
    if digest is not None and expected and digest.result().lower() != expected.lower():
        raise InvalidSource(
            "The stored original does not match the uploaded file (SHA-256 differs); "
            "please upload the video again."
        )


def probe_claimed(req: VideoRequest, *, settings: Settings, run_id: str, attempt: int) -> VideoJob:
    """Probe and validate a claimed video and plan its ladder; an invalid source is
    marked ``failed`` with a reason. The original's SHA-256 is checked against the
    message's (when it has one) while ffprobe reads it."""
    s3 = s3_client(settings)
    key = req.message.source_key
    size = objects.source_size(s3, settings.bucket_originals, key)
    try:
        if size is None:
            raise InvalidSource("The original upload is missing from storage.")
        _check_size(req, size)
        url = objects.presigned_get(
            s3, settings.bucket_originals, key, settings.presigned_url_seconds
        )
        with ThreadPoolExecutor(1, thread_name_prefix="sha256") as hasher:
            digest = (
                hasher.submit(object_sha256, s3, settings.bucket_originals, key)
                if req.message.sha256 and settings.verify_source_sha256
                else None
            )
            probe = probe_source(
                url,
                size=size,
                max_duration=settings.max_source_duration_seconds,
                timeout=settings.tool_timeout_seconds,
            )
            _check_digest(req, digest)
    except InvalidSource as invalid:
        log.warning(
            "video %s is invalid: %s%s",
            req.video_id,
            invalid.reason,
            f" (tool said: {invalid.detail})" if invalid.detail else "",
        )
        catalog.mark_failed(
            settings=settings, video_id=req.video_id, run_id=run_id, reason=invalid.reason
        )
        return VideoJob(req.video_id, FAILED, invalid.reason)

    return planned_job(
        req.video_id,
        version=media_version(run_id, req.video_id, attempt),
        source_key=key,
        probe=probe,
    )


def planned_job(video_id: str, *, version: str, source_key: str, probe: ProbeResult) -> VideoJob:
    """A ready video: its probe, its ladder and its audio plan."""
    rungs = plan_ladder(probe)
    audio = plan_audio(probe)
    log.info(
        "video %s: %sx%s %s %.2fs -> %s%s",
        video_id,
        probe.video.width,
        probe.video.height,
        probe.video.codec,
        probe.duration,
        ", ".join(r.name for r in rungs),
        f" + audio ({'copy' if audio.copy else 'aac'})" if audio else " (no audio)",
    )
    return VideoJob(
        video_id,
        READY,
        version=version,
        source_key=source_key,
        probe=probe,
        rungs=tuple(rungs),
        audio=audio,
    )


def probe_videos(
    event_extras: Iterable[Mapping[str, Any]],
    *,
    video_id: str | None,
    force: bool,
    settings: Settings,
    run_id: str,
    attempt: int,
    last_attempt: bool,
    is_run_active: Callable[[str], bool],
    workers: int = PROBE_WORKERS,
) -> ProbedRun:
    """The first step of a run: every video it was given, claimed, probed and planned.

    Claims go one at a time, because they ask Airflow about other runs through the
    task's own channel; probes run concurrently (they wait on storage and ffprobe). An
    unexpected error probing one video fails the task, so Airflow retries the whole
    step (claims of this run are idempotent, nothing is written yet); on the last
    attempt the video is recorded as failed instead and the others go on.
    """
    requests = requests_for_run(event_extras, video_id=video_id, force=force)
    jobs: dict[str, VideoJob] = {}
    claimed: list[VideoRequest] = []
    for req in requests:
        log.info("video %s (force=%s)", req.video_id, req.force)
        skipped = claim_video(req, settings=settings, run_id=run_id, is_run_active=is_run_active)
        if skipped is None:
            claimed.append(req)
        else:
            jobs[req.video_id] = skipped
    jobs.update(
        per_video(
            {
                req.video_id: partial(
                    probe_claimed, req, settings=settings, run_id=run_id, attempt=attempt
                )
                for req in claimed
            },
            what="probing the original",
            settings=settings,
            run_id=run_id,
            last_attempt=last_attempt,
            on_error=lambda vid, reason: VideoJob(vid, ERROR, reason),
            workers=workers,
        )
    )
    ordered = [jobs[req.video_id] for req in requests if req.video_id in jobs]
    return ProbedRun(ordered, plan_encodes(ordered, encodes_per_video=settings.encode_groups))
