"""The publish step: write each video's manifests, then make its version live.

:func:`package_video` writes the HLS master playlist and the DASH MPD over the renditions
the transcode tasks staged; :func:`publish_video` flips the catalog in one transaction.
The version it replaces stays readable for ``superseded_grace_hours`` (players
mid-stream, caches) and the orphan sweep removes it later; a run that lost its claim to
another discards its own staging instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from vidflow.config import Settings
from vidflow.media import package
from vidflow.media.ladder import AUDIO_CODECS_TAG
from vidflow.processing import catalog, objects
from vidflow.processing.contracts import (
    AUDIO,
    ERROR,
    FAILED,
    PUBLISHED,
    READY,
    SKIPPED,
    Outcome,
    RenditionResult,
    VideoJob,
)
from vidflow.processing.runs import per_video
from vidflow.storage import s3_client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Packaged:
    """A video whose manifests are written into its staging prefix, ready to publish."""

    video_id: str
    version: str
    duration: float
    videos: tuple[package.RenditionSummary, ...]
    audio: package.RenditionSummary | None
    storyboard_url: str | None
    #: The posters by size name (``small``, ``large``); empty when none were made.
    poster_urls: Mapping[str, str] = field(default_factory=dict)


def _results_of(video_id: str, results: Iterable[RenditionResult]) -> list[RenditionResult]:
    return [r for r in results if r.video_id == video_id]


def package_video(
    job: VideoJob | None,
    transcoded: Iterable[RenditionResult],
    *,
    settings: Settings,
    run_id: str,
) -> Packaged | Outcome:
    """Write the HLS master playlist and the DASH MPD of one video to its staging prefix;
    the video's Outcome instead when it is not ready or a rendition is missing."""
    if job is None:
        return Outcome("", SKIPPED)
    if not job.ready:
        return Outcome(job.video_id, job.status, job.reason)
    video_id = job.video_id
    results = _results_of(video_id, transcoded)
    failed = [r for r in results if r.status == FAILED]
    if failed:
        return Outcome(video_id, FAILED, failed[0].reason)
    if any(r.status == SKIPPED for r in results):
        return Outcome(video_id, SKIPPED, "claim lost")
    done = {r.name: r for r in results if r.status == READY and r.summary is not None}
    expected = job.renditions()
    missing = [name for name in expected if name not in done]
    if missing:
        reason = f"Internal error: encoding {', '.join(missing)} failed; see the Airflow logs."
        catalog.mark_failed(settings=settings, video_id=video_id, run_id=run_id, reason=reason)
        return Outcome(video_id, ERROR, reason)

    summaries = {name: result.summary for name, result in done.items() if result.summary}
    videos = tuple(summaries[n] for n in expected if n != AUDIO)
    audio = summaries.get(AUDIO)
    duration = max(v.duration for v in videos)
    prefix = objects.version_prefix(video_id, job.version)
    s3 = s3_client(settings)
    bucket = settings.bucket_media
    objects.put_text(
        s3, bucket, prefix + package.MASTER_PLAYLIST, package.master_playlist(videos, audio)
    )
    objects.put_text(
        s3,
        bucket,
        prefix + package.DASH_MANIFEST,
        package.dash_manifest(videos, audio, duration=duration),
    )
    log.info("video %s packaged under %s (source %.3fs)", video_id, prefix, job.source.duration)
    storyboard = next((r.storyboard_url for r in done.values() if r.storyboard_url), None)
    posters = next((r.poster_urls for r in done.values() if r.poster_urls), {})
    return Packaged(video_id, job.version, duration, videos, audio, storyboard, posters)


def rendition_rows(
    settings: Settings,
    prefix: str,
    videos: Sequence[package.RenditionSummary],
    audio: package.RenditionSummary | None,
) -> list[catalog.RenditionRow]:
    """Catalog rows of the video renditions, with the figures of the master playlist."""
    return [
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
        for video in videos
    ]


def publish_video(
    packaged: Packaged | Outcome,
    *,
    settings: Settings,
    run_id: str,
) -> Outcome:
    """One catalog transaction makes the staged version live; the one it replaces is
    marked superseded (the sweep removes it after the grace period)."""
    if isinstance(packaged, Outcome):
        return packaged
    video_id, version = packaged.video_id, packaged.version
    s3 = s3_client(settings)
    prefix = objects.version_prefix(video_id, version)
    if not packaged.poster_urls:
        reason = "Internal error: making the posters failed; see the Airflow logs."
        catalog.mark_failed(settings=settings, video_id=video_id, run_id=run_id, reason=reason)
        objects.delete_prefix(s3, settings.bucket_media, prefix)
        return Outcome(video_id, ERROR, reason)

    urls = dict(packaged.poster_urls)
    if packaged.storyboard_url:
        urls["storyboard"] = packaged.storyboard_url
    objects.ensure_public_read(settings, s3)
    result = catalog.publish(
        settings=settings,
        video_id=video_id,
        run_id=run_id,
        version=version,
        manifest_url=objects.public_url(settings, prefix + package.MASTER_PLAYLIST),
        dash_url=objects.public_url(settings, prefix + package.DASH_MANIFEST),
        thumbnail_urls=urls,
        duration_seconds=float(packaged.duration),
        renditions=rendition_rows(settings, prefix, packaged.videos, packaged.audio),
    )
    if result.superseded_by:
        log.info(
            "video %s was taken over by run %s; discarding %s",
            video_id,
            result.superseded_by,
            version,
        )
        objects.delete_prefix(s3, settings.bucket_media, prefix)
        return Outcome(video_id, SKIPPED, f"superseded by run {result.superseded_by}")
    if not result.published:
        return Outcome(video_id, SKIPPED, "the video left the catalog")
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
    return Outcome(video_id, PUBLISHED, version=version)


def package_and_publish(
    job: VideoJob | None,
    transcoded: Iterable[RenditionResult],
    *,
    settings: Settings,
    run_id: str,
) -> Outcome:
    """The last step of a video: write its manifests, then publish it."""
    packaged = package_video(job, transcoded, settings=settings, run_id=run_id)
    return publish_video(packaged, settings=settings, run_id=run_id)


def publish_videos(
    jobs: Iterable[VideoJob | None],
    transcoded: Iterable[RenditionResult],
    *,
    settings: Settings,
    run_id: str,
    last_attempt: bool,
) -> list[Outcome]:
    """Package and publish every video of the run; one outcome per video."""
    listed = [job for job in jobs if job is not None]
    results = list(transcoded)
    outcomes = per_video(
        {
            job.video_id: partial(
                package_and_publish, job, results, settings=settings, run_id=run_id
            )
            for job in listed
        },
        what="publishing",
        settings=settings,
        run_id=run_id,
        last_attempt=last_attempt,
        on_error=lambda vid, reason: Outcome(vid, ERROR, reason),
    )
    return list(outcomes.values())


def summarize(outcomes: Iterable[Outcome | None]) -> dict[str, list[str]]:
    """Videos of the run by outcome; ``error`` ones mean a task failed unexpectedly."""
    table: dict[str, list[str]] = {}
    for outcome in outcomes:
        if outcome is not None:
            table.setdefault(outcome.status, []).append(outcome.video_id)
    return table
