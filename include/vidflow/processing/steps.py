"""The steps of the video_processing DAG, as plain functions of JSON-safe dicts.

Each step takes and returns small dicts (Airflow XComs) and is safe to retry:

1. :func:`probe_videos` claims every video of the run, probes each original through a
   presigned URL (checking its SHA-256 against the message's) and plans its ladder; an
   invalid source ends here as ``failed`` with a reason. :func:`plan_encodes` splits
   every video's renditions (its ladder plus its audio) into a few encodes of about
   equal cost, one per slot of the ``transcode`` pool by default, so the mapped transcode
   task fans out without decoding the source once per rendition.
2. :func:`transcode_encode` encodes the renditions of one encode with one ffmpeg, cuts
   their CMAF segments, writes their playlists and uploads them to the version prefix (a
   staging area nobody reads yet).
3. :func:`make_thumbnails` writes posters next to them (the storyboard comes from the
   smallest rendition's transcode).
4. :func:`package_and_publish`: :func:`package_video` writes the HLS master playlist
   and the DASH MPD, then :func:`publish_video` flips the catalog in one transaction and
   deletes the previous version's objects (or this run's, when another run took the
   video over).

The first and last steps are one task each: every task boundary costs about a second of
scheduling on the critical path (see the transcode benchmark).

Failures that are the source's fault become ``failed`` rows with a reason and the run
goes on; anything else raises, is retried by Airflow, and if it keeps failing the DAG's
``on_failure_callback`` records it (:func:`record_unexpected_failure`).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidflow.config import Settings
from vidflow.media import encode, package, thumbnails
from vidflow.media.ladder import AUDIO_CODECS_TAG, AudioPlan, LadderRung, plan_audio, plan_ladder
from vidflow.media.probe import InvalidSource, ProbeResult, probe_source
from vidflow.media.untrusted import redact
from vidflow.processing import catalog, objects
from vidflow.processing.requests import VideoRequest, requests_for_run
from vidflow.storage import object_sha256, original_key, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

Report = Callable[[str], None]

READY, SKIPPED, FAILED, ERROR, PUBLISHED = "ready", "skipped", "failed", "error", "published"
DECODE_FAILED = (
    "The video could not be decoded to its end: the file is corrupt or uses a feature we "
    "do not support."
)
AUDIO = "audio"
#: Videos probed at once in one run (ffprobe waits on storage more than on the CPU).
PROBE_WORKERS = 4


def collect_requests(
    event_extras: Iterable[Mapping[str, Any]], *, video_id: str | None, force: bool
) -> list[dict[str, Any]]:
    """The videos of a run: queue messages of its asset events plus the UI Params."""
    requests = requests_for_run(event_extras, video_id=video_id, force=force)
    for request in requests:
        log.info("video %s (force=%s)", request.video_id, request.force)
    return [r.to_dict() for r in requests]


def media_version(run_id: str, video_id: str, attempt: int) -> str:
    """A version name unique to this run, video and probe attempt.

    A cleared and re-run task instance gets a new attempt number, so it can never write
    into the prefix of a version that is already published.
    """
    digest = hashlib.sha256(f"{run_id}|{video_id}|{attempt}".encode()).hexdigest()
    return f"v{digest[:12]}"


def _outcome(video_id: str, status: str, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"video_id": video_id, "status": status, "reason": reason, **extra}


def claim_video(
    req: VideoRequest,
    *,
    settings: Settings,
    run_id: str,
    is_run_active: Callable[[str], bool],
) -> dict[str, Any] | None:
    """Claim a video for this run: None when claimed, else the ``skipped`` outcome."""
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
    return _outcome(req.video_id, SKIPPED, claimed.skipped_because)


def _check_size(req: VideoRequest, size: int) -> None:
    """The stored original has the size the upload finished with (checked before probing:
    a file of the wrong size is the wrong file, whatever ffprobe would make of it)."""
    if req.size is not None and req.size != size:
        raise InvalidSource(
            f"The stored original is {size} bytes but the upload finished with {req.size}; "
            "please upload the video again."
        )


def _check_digest(req: VideoRequest, digest: Future[str] | None) -> None:
    """The stored original has the SHA-256 of the message (hashed while ffprobe reads)."""
    if digest is not None and req.sha256 and digest.result().lower() != req.sha256.lower():
        raise InvalidSource(
            "The stored original does not match the uploaded file (SHA-256 differs); "
            "please upload the video again."
        )


def probe_claimed(
    req: VideoRequest, *, settings: Settings, run_id: str, attempt: int
) -> dict[str, Any]:
    """Probe and validate a claimed video and plan its ladder; an invalid source is
    marked ``failed`` with a reason. The original's SHA-256 is checked against the
    message's (when it has one) while ffprobe reads it."""
    s3 = s3_client(settings)
    size = objects.source_size(s3, settings.bucket_originals, req.source_key)
    try:
        if size is None:
            raise InvalidSource("The original upload is missing from storage.")
        _check_size(req, size)
        url = objects.presigned_get(
            s3, settings.bucket_originals, req.source_key, settings.presigned_url_seconds
        )
        with ThreadPoolExecutor(1, thread_name_prefix="sha256") as hasher:
            digest = (
                hasher.submit(object_sha256, s3, settings.bucket_originals, req.source_key)
                if req.sha256 and settings.verify_source_sha256
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
        return _outcome(req.video_id, FAILED, invalid.reason)

    return planned_job(
        req.video_id,
        version=media_version(run_id, req.video_id, attempt),
        source_key=req.source_key,
        probe=probe,
    )


def planned_job(
    video_id: str, *, version: str, source_key: str, probe: ProbeResult
) -> dict[str, Any]:
    """A ready video: its probe, its ladder and its audio plan (the ``jobs`` XCom)."""
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
    return _outcome(
        video_id,
        READY,
        version=version,
        source_key=source_key,
        probe=probe.to_dict(),
        rungs=[r.to_dict() for r in rungs],
        audio=audio.to_dict() if audio else None,
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
) -> dict[str, list[dict[str, Any]]]:
    """The first step of a run: every video it was given, claimed, probed and planned.

    Returns ``jobs`` (one outcome per video: ready, skipped or failed) and
    ``encodes`` (the work items of the mapped transcode task, biggest first).

    Claims go one at a time, because they ask Airflow about other runs through the
    task's own channel; probes run concurrently (they wait on storage and ffprobe). An
    unexpected error probing one video fails the task, so Airflow retries the whole
    step (claims of this run are idempotent, nothing is written yet); on the last
    attempt the video is recorded as failed instead and the others go on.
    """
    requests = [
        VideoRequest.from_dict(r)
        for r in collect_requests(event_extras, video_id=video_id, force=force)
    ]
    jobs: dict[str, dict[str, Any]] = {}
    claimed: list[VideoRequest] = []
    for req in requests:
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
            workers=workers,
        )
    )
    ordered = [jobs[req.video_id] for req in requests if req.video_id in jobs]
    return {
        "jobs": ordered,
        "encodes": plan_encodes(ordered, encodes_per_video=settings.encode_groups),
    }


class StepError(RuntimeError):
    """A step failed for some videos for reasons other than their sources (storage,
    database, a crashed tool); Airflow retries the step."""


def per_video(
    work: Mapping[str, Callable[[], dict[str, Any]]],
    *,
    what: str,
    settings: Settings,
    run_id: str,
    last_attempt: bool,
    workers: int = 1,
) -> dict[str, dict[str, Any]]:
    """Run one piece of work per video (``workers`` at a time) and return the outcomes.

    An unexpected error for any video fails the step, so Airflow retries it whole (every
    step is idempotent); on the last attempt the video is recorded as failed instead,
    with the error as its reason, and the other videos go on.
    """
    outcomes: dict[str, dict[str, Any]] = {}
    errors: dict[str, Exception] = {}
    with ThreadPoolExecutor(max(1, min(workers, len(work)))) as pool:
        futures = {video_id: pool.submit(job) for video_id, job in work.items()}
        for video_id, future in futures.items():
            try:
                outcomes[video_id] = future.result()
            except Exception as exc:
                log.error("%s failed for video %s: %s", what, video_id, describe_error(exc))
                errors[video_id] = exc
    if errors and not last_attempt:
        raise StepError(
            f"{what} failed unexpectedly for {len(errors)} of {len(work)} videos "
            f"({', '.join(errors)}); the step will be retried"
        )
    for video_id, error in errors.items():
        record_unexpected_failure(
            settings=settings, video_ids=[video_id], run_id=run_id, what=what, error=error
        )
        outcomes[video_id] = _outcome(video_id, ERROR, internal_error_reason(what))
    return outcomes


def _rendition_cost(rendition: Mapping[str, Any]) -> float:
    """Relative encoding cost of a rendition: pixels per second (audio is nearly free)."""
    if rendition["kind"] == AUDIO:
        return 0.0
    rung = rendition["rung"]
    return float(rung["width"] * rung["height"] * Fraction(rung["frame_rate"]))


def group_renditions(
    renditions: Sequence[Mapping[str, Any]], groups: int
) -> list[list[Mapping[str, Any]]]:
    """Split one video's renditions into at most ``groups`` encodes of about equal cost
    (longest processing time first: each rendition, most expensive first, joins the
    cheapest group so far). Each group is one ffmpeg process that decodes the source
    once, so fewer groups mean fewer decodes and more groups more parallelism."""
    ordered = sorted(renditions, key=_rendition_cost, reverse=True)
    bins: list[tuple[float, list[Mapping[str, Any]]]] = [
        (0.0, []) for _ in range(max(1, min(groups, len(ordered))))
    ]
    for rendition in ordered:
        index = min(range(len(bins)), key=lambda i: (bins[i][0], len(bins[i][1])))
        cost, members = bins[index]
        bins[index] = (cost + _rendition_cost(rendition), [*members, rendition])
    return [members for _, members in bins if members]


def plan_encodes(
    jobs: Sequence[Mapping[str, Any] | None], *, encodes_per_video: int
) -> list[dict[str, Any]]:
    """The work items of the mapped transcode task: every ready video's renditions (its
    ladder plus its audio) split into at most ``encodes_per_video`` encodes, the most
    expensive encodes of the run first. An encode's ``label`` (its map index in the
    Airflow UI) names its renditions, e.g. ``720p+540p+432p+360p+234p``."""
    ready = [job for job in jobs if job and job.get("status") == READY]
    items: list[tuple[float, dict[str, Any]]] = []
    for job in ready:
        probe = ProbeResult.from_dict(job["probe"])
        smallest = min(job["rungs"], key=lambda r: r["width"] * r["height"])["name"]
        renditions: list[dict[str, Any]] = [
            {
                "kind": "video",
                "name": rung["name"],
                "rung": rung,
                # The storyboard comes from the smallest rendition's keyframes.
                "storyboard": rung["name"] == smallest,
            }
            for rung in job["rungs"]
        ]
        if job.get("audio") and probe.audio is not None:
            renditions.append({"kind": AUDIO, "name": AUDIO, "audio": job["audio"]})
        suffix = "" if len(ready) == 1 else f" {job['video_id'][:8]}"
        for group in group_renditions(renditions, encodes_per_video):
            cost = sum(_rendition_cost(r) for r in group) * probe.duration
            items.append(
                (
                    cost,
                    {
                        "video_id": job["video_id"],
                        "version": job["version"],
                        "source_key": job["source_key"],
                        "duration": probe.duration,
                        "label": "+".join(r["name"] for r in group) + suffix,
                        "video_index": probe.video.index,
                        "audio_index": probe.audio.index if probe.audio else None,
                        "renditions": [dict(r) for r in group],
                    },
                )
            )
    items.sort(key=lambda item: item[0], reverse=True)
    return [item for _, item in items]


def _scratch(settings: Settings) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="vidflow-", dir=settings.scratch_dir or None)


def _still_ours(settings: Settings, video_id: str, run_id: str) -> bool:
    state = catalog.video_state(settings=settings, video_id=video_id)
    return bool(state and state["processing_run_id"] == run_id)


def encode_command(
    item: Mapping[str, Any], source: str, work: Path, *, settings: Settings
) -> list[str]:
    """The ffmpeg command of an encode: every video rendition to ``work/{name}.mp4``, the
    audio rendition to segments in ``work/audio/``."""
    videos = [
        encode.VideoOutput(LadderRung.from_dict(r["rung"]), work / f"{r['name']}.mp4")
        for r in item["renditions"]
        if r["kind"] != AUDIO
    ]
    sound = next((r for r in item["renditions"] if r["kind"] == AUDIO), None)
    audio = None
    if sound is not None:
        audio = encode.AudioOutput(AudioPlan.from_dict(sound["audio"]), work / AUDIO)
        audio.directory.mkdir(exist_ok=True)
    return encode.encode_args(
        source,
        videos=videos,
        audio=audio,
        video_index=item["video_index"],
        audio_index=item.get("audio_index"),
        segment_seconds=settings.segment_seconds,
        preset=settings.x264_preset,
        crf=settings.x264_crf,
    )


def transcode_encode(
    item: Mapping[str, Any],
    *,
    settings: Settings,
    run_id: str,
    report: Report | None = None,
) -> list[dict[str, Any]]:
    """Encode the renditions of one work item with one ffmpeg (one decode of the source),
    cut their CMAF segments and upload each rendition to its folder under the version
    prefix (a staging area nobody reads yet). One outcome per rendition."""
    say = report or log.info
    video_id, label = item["video_id"], item["label"]
    renditions = list(item["renditions"])
    names = [r["name"] for r in renditions]
    if not _still_ours(settings, video_id, run_id):
        say(f"{label}: video {video_id} is no longer claimed by this run; skipping")
        return [_outcome(video_id, SKIPPED, "claim lost", name=name) for name in names]
    s3 = s3_client(settings)
    url = objects.presigned_get(
        s3, settings.bucket_originals, item["source_key"], settings.presigned_url_seconds
    )
    duration = float(item["duration"])
    with _scratch(settings) as scratch:
        work = Path(scratch)
        args = encode_command(item, url, work, settings=settings)
        timeout = max(
            float(settings.encode_timeout_min_seconds), settings.encode_timeout_factor * duration
        )
        try:
            stats = encode.run_ffmpeg(
                args, label=label, duration=duration, report=say, timeout=timeout
            )
        except encode.EncodeError as error:
            if not error.source_at_fault:
                raise
            say(f"{label}: the source failed to decode: {_last_line(error.stderr_tail)}")
            reason = DECODE_FAILED
            catalog.mark_failed(settings=settings, video_id=video_id, run_id=run_id, reason=reason)
            return [_outcome(video_id, FAILED, reason, name=name) for name in names]
        encoded = {
            "encode": label,
            "preset": settings.x264_preset,
            "wall_seconds": round(stats.wall_seconds, 3),
            "realtime_factor": round(stats.realtime_factor, 3),
            "fps": round(stats.fps, 2) if stats.fps else None,
        }
        # Cutting is file work and uploads wait on storage: all renditions at once.
        stage = partial(
            _stage_rendition, work=work, s3=s3, settings=settings, item=item, stats=encoded
        )
        with ThreadPoolExecutor(len(renditions), thread_name_prefix="stage") as pool:
            return list(pool.map(partial(stage, report=say), renditions))


def _stage_rendition(
    rendition: Mapping[str, Any],
    *,
    work: Path,
    s3: S3Client,
    settings: Settings,
    item: Mapping[str, Any],
    stats: Mapping[str, Any],
    report: Report,
) -> dict[str, Any]:
    """Cut one encoded rendition into its segments and playlists and upload them."""
    video_id, name = item["video_id"], rendition["name"]
    duration = float(item["duration"])
    out_dir = work / f"{name}.segments"
    storyboard: Path | None = None
    if rendition["kind"] == AUDIO:
        plan = AudioPlan.from_dict(rendition["audio"])
        source_dir = work / AUDIO
        (source_dir / "ffmpeg.m3u8").unlink(missing_ok=True)
        source_dir.rename(out_dir)
        media = package.collect_segments(
            out_dir,
            name=name,
            kind=AUDIO,
            sample_rate=plan.sample_rate,
            channels=plan.channels,
            segment_seconds=settings.segment_seconds,
        )
    else:
        rung = LadderRung.from_dict(rendition["rung"])
        fmp4 = work / f"{name}.mp4"
        out_dir.mkdir()
        media = package.cut_video(
            fmp4,
            out_dir,
            name=name,
            width=rung.width,
            height=rung.height,
            frame_rate=float(rung.frame_rate),
            segment_seconds=settings.segment_seconds,
        )
        if rendition.get("storyboard"):
            storyboard = _storyboard(settings, fmp4, duration, work / "thumbnails")
        fmp4.unlink()

    version = objects.version_prefix(video_id, item["version"])
    prefix = f"{version}{name}/"
    # A retry may find a previous attempt's objects: start from an empty prefix.
    objects.delete_prefix(s3, settings.bucket_media, prefix)
    uploaded = objects.upload_tree(s3, out_dir, settings.bucket_media, prefix)
    storyboard_url = None
    if storyboard is not None:
        board = f"{version}thumbnails/"
        objects.upload_tree(s3, storyboard.parent, settings.bucket_media, board)
        storyboard_url = objects.public_url(settings, board + storyboard.name)
    summary = media.summary()
    report(
        f"{name}: {summary.segment_count} segments, {len(uploaded)} objects, "
        f"peak {summary.peak_bitrate / 1000:.0f} kb/s, average {summary.average_bitrate / 1000:.0f}"
        f" kb/s"
    )
    return _outcome(
        video_id,
        READY,
        name=name,
        summary=summary.to_dict(),
        storyboard_url=storyboard_url,
        stats=dict(stats),
    )


def _storyboard(settings: Settings, rendition: Path, duration: float, directory: Path) -> Path:
    gop = encode.gop_seconds(settings.segment_seconds)
    interval = thumbnails.storyboard_interval(duration, settings.storyboard_interval_seconds, gop)
    return thumbnails.make_storyboard(
        str(rendition),
        duration,
        directory,
        interval,
        keyframes_only=True,
        timeout=settings.tool_timeout_seconds,
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "unknown error"


def make_thumbnails(job: Mapping[str, Any] | None, *, settings: Settings) -> dict[str, Any]:
    """Posters of a ready video, uploaded next to its renditions (the storyboard is made
    by the transcode task of the smallest rendition)."""
    if not job or job.get("status") != READY:
        return _outcome(job["video_id"] if job else "", SKIPPED)
    video_id, version = job["video_id"], job["version"]
    probe = ProbeResult.from_dict(job["probe"])
    s3 = s3_client(settings)
    url = objects.presigned_get(
        s3, settings.bucket_originals, job["source_key"], settings.presigned_url_seconds
    )
    with _scratch(settings) as scratch:
        directory = Path(scratch) / "thumbnails"
        posters = thumbnails.make_posters(
            url, probe.duration, directory, timeout=settings.tool_timeout_seconds
        )
        prefix = objects.version_prefix(video_id, version) + "thumbnails/"
        objects.upload_tree(s3, directory, settings.bucket_media, prefix)
    urls = {
        kind: objects.public_url(settings, prefix + path.name) for kind, path in posters.items()
    }
    return _outcome(video_id, READY, thumbnail_urls=urls)


def thumbnails_of_run(
    jobs: Iterable[Mapping[str, Any] | None],
    *,
    settings: Settings,
    run_id: str,
    last_attempt: bool,
) -> list[dict[str, Any]]:
    """Posters of every ready video of the run."""
    ready = [job for job in jobs if job and job.get("status") == READY]
    outcomes = per_video(
        {job["video_id"]: partial(make_thumbnails, job, settings=settings) for job in ready},
        what="making the thumbnails",
        settings=settings,
        run_id=run_id,
        last_attempt=last_attempt,
    )
    return list(outcomes.values())


def _results_of(
    video_id: str, results: Iterable[Mapping[str, Any] | None]
) -> list[Mapping[str, Any]]:
    return [r for r in results if r and r.get("video_id") == video_id]


def package_video(
    job: Mapping[str, Any] | None,
    transcoded: Iterable[Mapping[str, Any] | None],
    *,
    settings: Settings,
    run_id: str,
) -> dict[str, Any]:
    """Write the HLS master playlist and the DASH MPD of one video to its staging prefix."""
    if not job or job.get("status") != READY:
        return dict(job) if job else _outcome("", SKIPPED)
    video_id = job["video_id"]
    results = _results_of(video_id, transcoded)
    failed = [r for r in results if r.get("status") == FAILED]
    if failed:
        return _outcome(video_id, FAILED, failed[0].get("reason"))
    if any(r.get("status") == SKIPPED for r in results):
        return _outcome(video_id, SKIPPED, "claim lost")
    done = {r["name"]: r for r in results if r.get("status") == READY}
    expected = [rung["name"] for rung in job["rungs"]] + ([AUDIO] if job.get("audio") else [])
    missing = [name for name in expected if name not in done]
    if missing:
        reason = f"Internal error: encoding {', '.join(missing)} failed; see the Airflow logs."
        catalog.mark_failed(settings=settings, video_id=video_id, run_id=run_id, reason=reason)
        return _outcome(video_id, ERROR, reason)

    videos = [
        package.RenditionSummary.from_dict(done[n]["summary"]) for n in expected if n != AUDIO
    ]
    audio = package.RenditionSummary.from_dict(done[AUDIO]["summary"]) if AUDIO in done else None
    duration = ProbeResult.from_dict(job["probe"]).duration
    prefix = objects.version_prefix(video_id, job["version"])
    s3 = s3_client(settings)
    objects.put_text(
        s3,
        settings.bucket_media,
        prefix + package.MASTER_PLAYLIST,
        package.master_playlist(videos, audio),
    )
    objects.put_text(
        s3,
        settings.bucket_media,
        prefix + package.DASH_MANIFEST,
        package.dash_manifest(videos, audio, duration=max(v.duration for v in videos)),
    )
    log.info("video %s packaged under %s (source %.3fs)", video_id, prefix, duration)
    storyboard = next((r["storyboard_url"] for r in done.values() if r.get("storyboard_url")), None)
    return _outcome(
        video_id,
        READY,
        version=job["version"],
        storyboard_url=storyboard,
        duration=max(v.duration for v in videos),
        videos=[v.to_dict() for v in videos],
        audio=audio.to_dict() if audio else None,
    )


def package_and_publish(
    job: Mapping[str, Any] | None,
    transcoded: Iterable[Mapping[str, Any] | None],
    thumbnail_results: Iterable[Mapping[str, Any] | None],
    *,
    settings: Settings,
    run_id: str,
) -> dict[str, Any]:
    """The last step of a video: write its manifests, then publish it."""
    packaged = package_video(job, transcoded, settings=settings, run_id=run_id)
    return publish_video(packaged, thumbnail_results, settings=settings, run_id=run_id)


def publish_videos(
    jobs: Iterable[Mapping[str, Any] | None],
    transcoded: Iterable[Sequence[Mapping[str, Any] | None] | None],
    thumbnail_results: Iterable[Mapping[str, Any] | None],
    *,
    settings: Settings,
    run_id: str,
    last_attempt: bool,
) -> list[dict[str, Any]]:
    """Package and publish every video of the run; one outcome per video."""
    listed = [job for job in jobs if job]
    results, thumbs = flatten_results(transcoded), list(thumbnail_results)
    outcomes = per_video(
        {
            job["video_id"]: partial(
                package_and_publish, job, results, thumbs, settings=settings, run_id=run_id
            )
            for job in listed
        },
        what="publishing",
        settings=settings,
        run_id=run_id,
        last_attempt=last_attempt,
    )
    return list(outcomes.values())


def flatten_results(
    results: Iterable[Sequence[Mapping[str, Any] | None] | None],
) -> list[Mapping[str, Any]]:
    """The rendition outcomes of the mapped transcode task: each encode returns a list
    (one per rendition); a task that never ran gives None."""
    return [r for result in results if result for r in result if r]


def rendition_rows(
    settings: Settings,
    prefix: str,
    videos: Sequence[package.RenditionSummary],
    audio: package.RenditionSummary | None,
) -> list[catalog.RenditionRow]:
    """Catalog rows of the video renditions, with the figures of the master playlist."""
    rows = []
    for video in videos:
        rows.append(
            catalog.RenditionRow(
                name=video.name,
                width=video.width,
                height=video.height,
                bandwidth=video.peak_bitrate + (audio.peak_bitrate if audio else 0),
                average_bandwidth=video.average_bitrate + (audio.average_bitrate if audio else 0),
                codecs=video.codecs + (f",{AUDIO_CODECS_TAG}" if audio else ""),
                frame_rate=video.frame_rate,
                playlist_url=objects.public_url(
                    settings, f"{prefix}{video.name}/{package.MEDIA_PLAYLIST}"
                ),
            )
        )
    return rows


def publish_video(
    packaged: Mapping[str, Any] | None,
    thumbnail_results: Iterable[Mapping[str, Any] | None],
    *,
    settings: Settings,
    run_id: str,
) -> dict[str, Any]:
    """One catalog transaction makes the staged version live; then old objects go."""
    if not packaged or packaged.get("status") != READY:
        return dict(packaged) if packaged else _outcome("", SKIPPED)
    video_id, version = packaged["video_id"], packaged["version"]
    s3 = s3_client(settings)
    prefix = objects.version_prefix(video_id, version)
    thumbs = next(
        (t for t in _results_of(video_id, thumbnail_results) if t.get("status") == READY), None
    )
    if thumbs is None:
        reason = "Internal error: making the thumbnails failed; see the Airflow logs."
        catalog.mark_failed(settings=settings, video_id=video_id, run_id=run_id, reason=reason)
        objects.delete_prefix(s3, settings.bucket_media, prefix)
        return _outcome(video_id, ERROR, reason)

    videos = [package.RenditionSummary.from_dict(v) for v in packaged["videos"]]
    audio = package.RenditionSummary.from_dict(packaged["audio"]) if packaged["audio"] else None
    objects.ensure_public_read(settings, s3)
    result = catalog.publish(
        settings=settings,
        video_id=video_id,
        run_id=run_id,
        version=version,
        manifest_url=objects.public_url(settings, prefix + package.MASTER_PLAYLIST),
        dash_url=objects.public_url(settings, prefix + package.DASH_MANIFEST),
        thumbnail_urls=_thumbnail_urls(thumbs, packaged),
        duration_seconds=float(packaged["duration"]),
        renditions=rendition_rows(settings, prefix, videos, audio),
    )
    if result.superseded_by:
        log.info(
            "video %s was taken over by run %s; discarding %s",
            video_id,
            result.superseded_by,
            version,
        )
        objects.delete_prefix(s3, settings.bucket_media, prefix)
        return _outcome(video_id, SKIPPED, f"superseded by run {result.superseded_by}")
    if not result.published:
        return _outcome(video_id, SKIPPED, "the video left the catalog")
    if result.previous_version and result.previous_version != version:
        # Players mid-stream and caches still read it: the sweep removes it after the grace.
        old = objects.version_prefix(video_id, result.previous_version)
        objects.mark_superseded(s3, settings.bucket_media, old, by=version)
        log.info(
            "video %s: the previous version %s stays for %g h",
            video_id,
            old,
            settings.superseded_grace_hours,
        )
    log.info(
        "video %s published: %s",
        video_id,
        objects.public_url(settings, prefix + package.MASTER_PLAYLIST),
    )
    return _outcome(video_id, PUBLISHED, version=version)


def _thumbnail_urls(thumbs: Mapping[str, Any], packaged: Mapping[str, Any]) -> dict[str, str]:
    urls = dict(thumbs["thumbnail_urls"])
    if packaged.get("storyboard_url"):
        urls["storyboard"] = packaged["storyboard_url"]
    return urls


def record_unexpected_failure(
    *,
    settings: Settings,
    video_ids: Iterable[str],
    run_id: str,
    what: str,
    error: BaseException | None,
) -> None:
    """Record an unexpected task failure on every video it concerned: the uploader reads
    a fixed sentence; the (redacted) error goes to the task log only."""
    reason = internal_error_reason(what)[: catalog.MAX_REASON]
    detail = describe_error(error) if error else "the task failed"
    for video_id in dict.fromkeys(video_ids):
        if catalog.mark_failed(settings=settings, video_id=video_id, run_id=run_id, reason=reason):
            log.error("video %s marked failed: %s (%s)", video_id, reason, detail)


def internal_error_reason(what: str) -> str:
    """What an uploader reads when processing failed for a reason not their file's.
    ``what`` is one of the step names of this module ("publishing", "running transcode")."""
    return f"Internal error while {what}; an operator can find the details in the task log."


def describe_error(error: BaseException) -> str:
    """An exception and its traceback for the task log, credentials redacted (a
    presigned URL can sit in a subprocess command line)."""
    return redact("".join(traceback.format_exception(error)).strip())


def summarize(outcomes: Iterable[Mapping[str, Any] | None]) -> dict[str, list[str]]:
    """Videos of the run by outcome; ``error`` ones mean a task failed unexpectedly."""
    table: dict[str, list[str]] = {}
    for outcome in outcomes:
        if outcome:
            table.setdefault(str(outcome.get("status")), []).append(str(outcome.get("video_id")))
    return table


def reconcile(
    *,
    settings: Settings,
    is_run_active: Callable[[str], bool],
    enqueue: Callable[[Any, dict[str, Any]], None],
    only: Sequence[str] | None = None,
) -> dict[str, list[str]]:
    """Re-enqueue videos stuck in ``processing`` with no active run; give up (failed)
    after ``max_reenqueues`` attempts. ``enqueue(connection, payload)`` adds the message
    inside the catalog transaction that counts the attempt (the outbox). ``only`` limits
    it to some videos."""
    result: dict[str, list[str]] = {"reenqueued": [], "failed": [], "active": []}
    for stuck in catalog.stuck_videos(
        settings=settings, older_than=timedelta(minutes=settings.stuck_processing_minutes)
    ):
        if only is not None and stuck.video_id not in only:
            continue
        if stuck.run_id and is_run_active(stuck.run_id):
            result["active"].append(stuck.video_id)
            continue
        if stuck.attempts >= settings.max_reenqueues:
            reason = (
                f"Processing did not finish after {stuck.attempts + 1} attempts; "
                "an operator can re-run it from the Airflow UI (video_processing, force)."
            )
            catalog.mark_failed(
                settings=settings, video_id=stuck.video_id, run_id=None, reason=reason
            )
            result["failed"].append(stuck.video_id)
            continue
        # The same message the upload service sends (see vidflow.processing.requests).
        payload: dict[str, Any] = {
            "video_id": stuck.video_id,
            "source_key": original_key(uuid.UUID(stuck.video_id)),
            "size": stuck.size,
            "sha256": stuck.sha256,
        }

        def add_message(conn: Any, message: dict[str, Any] = payload) -> None:
            enqueue(conn, message)

        if catalog.note_reenqueued(
            settings=settings, video_id=stuck.video_id, conn_hook=add_message
        ):
            result["reenqueued"].append(stuck.video_id)
    return result


def sweep_orphaned_versions(
    *,
    settings: Settings,
    is_run_active: Callable[[str], bool],
    within: timedelta = timedelta(days=2),
    only: Sequence[str] | None = None,
) -> dict[str, list[str]]:
    """Delete version prefixes nothing points at, and no run writes any more.

    * A version a publish superseded (it holds the marker) goes once the marker is older
      than ``superseded_grace_hours``: players that loaded it keep playing until then.
    * Anything else that is not live is only considered when its newest object is older
      than ``stuck_processing_minutes`` and no active run holds the video, so in-flight
      staging is never touched. Staging that was never packaged (no master playlist) is
      deleted; a packaged version without a marker (a publish that crashed between the
      catalog flip and the marker) is marked now and gets the grace period.

    ``only`` limits the sweep to some videos. Returns the prefixes ``removed`` and
    ``marked``.
    """
    s3 = s3_client(settings)
    now = datetime.now(UTC)
    cutoff = now - timedelta(minutes=settings.stuck_processing_minutes)
    grace = timedelta(hours=settings.superseded_grace_hours)
    removed: list[str] = []
    marked: list[str] = []
    bucket = settings.bucket_media
    for video in catalog.recently_updated(settings=settings, within=max(within, grace * 2)):
        if only is not None and video.video_id not in only:
            continue
        if video.run_id and is_run_active(video.run_id):
            continue
        for version in objects.version_folders(s3, bucket, video.video_id):
            if version == video.media_version:
                continue
            prefix = objects.version_prefix(video.video_id, version)
            superseded = objects.superseded_at(s3, bucket, prefix)
            if superseded is None:
                newest = objects.newest_write(s3, bucket, prefix)
                if newest is None or newest >= cutoff:
                    continue
                if objects.object_time(s3, bucket, prefix + package.MASTER_PLAYLIST):
                    objects.mark_superseded(s3, bucket, prefix, by=video.media_version or "")
                    marked.append(prefix)
                    superseded = now
                else:
                    superseded = datetime.min.replace(tzinfo=UTC)
            if superseded <= now - grace:
                objects.delete_prefix(s3, bucket, prefix)
                removed.append(prefix)
    return {"removed": removed, "marked": marked}
