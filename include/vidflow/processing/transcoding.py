"""The transcode step: one :class:`~vidflow.processing.contracts.Encode` per mapped task.

One ffmpeg decodes the source once (through a presigned URL, with the allow-lists of
:mod:`vidflow.media.untrusted` and a timeout proportional to the source's duration) and
encodes the encode's renditions; each rendition is then cut into CMAF segments, gets its
playlists and is uploaded to the version prefix (a staging area nobody reads yet). The
smallest video rendition also makes the storyboard from its keyframes; the encode of the
largest one keeps a few frames of its decode as poster candidates and uploads the best
as the posters.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidflow.config import Settings
from vidflow.media import encode, package, thumbnails
from vidflow.processing import catalog, objects
from vidflow.processing.contracts import (
    AUDIO,
    FAILED,
    READY,
    SKIPPED,
    Encode,
    RenditionPlan,
    RenditionResult,
)
from vidflow.processing.runs import Report, scratch, still_ours
from vidflow.storage import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

DECODE_FAILED = (
    "The video could not be decoded to its end: the file is corrupt or uses a feature we "
    "do not support."
)


POSTERS_DIR = "posters"


def encode_command(item: Encode, source: str, work: Path, *, settings: Settings) -> list[str]:
    """The ffmpeg command of an encode: every video rendition to ``work/{name}.mp4``, the
    audio rendition to segments in ``work/audio/``, poster candidates (when the encode
    makes the posters) to ``work/posters/``."""
    videos = [
        encode.VideoOutput(r.rung, work / f"{r.name}.mp4")
        for r in item.renditions
        if r.kind != AUDIO and r.rung is not None
    ]
    poster_rung = next((r.rung for r in item.renditions if r.posters and r.rung), None)
    posters = None
    if poster_rung is not None:
        posters = encode.PosterOutput(
            tuple(thumbnails.candidate_times(item.duration)),
            work / POSTERS_DIR,
            poster_rung.tone_map_from,
        )
        posters.directory.mkdir(exist_ok=True)
    sound = next((r for r in item.renditions if r.kind == AUDIO and r.audio), None)
    audio = None
    if sound is not None and sound.audio is not None:
        audio = encode.AudioOutput(sound.audio, work / AUDIO)
        audio.directory.mkdir(exist_ok=True)
    return encode.encode_args(
        source,
        videos=videos,
        audio=audio,
        video_index=item.video_index,
        audio_index=item.audio_index,
        segment_seconds=settings.segment_seconds,
        preset=settings.x264_preset,
        crf=settings.x264_crf,
        posters=posters,
    )


def encode_timeout(settings: Settings, duration: float) -> float:
    """Seconds an encode's ffmpeg may run before it is stopped."""
    return max(
        float(settings.encode_timeout_min_seconds), settings.encode_timeout_factor * duration
    )


def transcode_encode(
    item: Encode,
    *,
    settings: Settings,
    run_id: str,
    report: Report | None = None,
) -> list[RenditionResult]:
    """Encode the renditions of one work item with one ffmpeg (one decode of the source),
    cut their CMAF segments and upload each rendition to its folder under the version
    prefix (a staging area nobody reads yet). One result per rendition."""
    say = report or log.info
    video_id, label = item.video_id, item.label
    names = [r.name for r in item.renditions]
    if not still_ours(settings, video_id, run_id):
        say(f"{label}: video {video_id} is no longer claimed by this run; skipping")
        return [RenditionResult(video_id, name, SKIPPED, "claim lost") for name in names]
    # Every rendition is staged at once, each uploading UPLOAD_THREADS objects at a time.
    s3 = s3_client(settings, connections=len(item.renditions) * objects.UPLOAD_THREADS)
    url = objects.presigned_get(
        s3, settings.bucket_originals, item.source_key, settings.presigned_url_seconds
    )
    with scratch(settings) as directory:
        work = Path(directory)
        args = encode_command(item, url, work, settings=settings)
        try:
            stats = encode.run_ffmpeg(
                args,
                label=label,
                duration=item.duration,
                report=say,
                timeout=encode_timeout(settings, item.duration),
            )
        except encode.EncodeError as error:
            if not error.source_at_fault:
                raise
            say(f"{label}: the source failed to decode: {_last_line(error.stderr_tail)}")
            catalog.mark_failed(
                settings=settings, video_id=video_id, run_id=run_id, reason=DECODE_FAILED
            )
            return [RenditionResult(video_id, name, FAILED, DECODE_FAILED) for name in names]
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
        with ThreadPoolExecutor(len(item.renditions), thread_name_prefix="stage") as pool:
            return list(pool.map(partial(stage, report=say), item.renditions))


def _stage_rendition(
    rendition: RenditionPlan,
    *,
    work: Path,
    s3: S3Client,
    settings: Settings,
    item: Encode,
    stats: dict[str, Any],
    report: Report,
) -> RenditionResult:
    """Cut one encoded rendition into its segments and playlists and upload them."""
    name = rendition.name
    out_dir = work / f"{name}.segments"
    storyboard: Path | None = None
    posters: dict[str, Path] = {}
    if rendition.audio is not None:
        source_dir = work / AUDIO
        (source_dir / "ffmpeg.m3u8").unlink(missing_ok=True)
        source_dir.rename(out_dir)
        media = package.collect_segments(
            out_dir,
            name=name,
            kind=AUDIO,
            sample_rate=rendition.audio.sample_rate,
            channels=rendition.audio.channels,
            segment_seconds=settings.segment_seconds,
        )
    elif rendition.rung is not None:
        rung = rendition.rung
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
        if rendition.storyboard:
            storyboard = _storyboard(settings, fmp4, item.duration, work / "thumbnails")
        if rendition.posters:
            posters = _posters(settings, fmp4, item.duration, work / POSTERS_DIR)
        fmp4.unlink()
    else:
        raise ValueError(f"rendition {name} has neither a rung nor an audio plan")

    version = objects.version_prefix(item.video_id, item.version)
    prefix = f"{version}{name}/"
    # A retry may find a previous attempt's objects: start from an empty prefix.
    objects.delete_prefix(s3, settings.bucket_media, prefix)
    uploaded = objects.upload_tree(s3, out_dir, settings.bucket_media, prefix)
    board = f"{version}thumbnails/"
    storyboard_url = None
    if storyboard is not None:
        objects.upload_tree(s3, storyboard.parent, settings.bucket_media, board)
        storyboard_url = objects.public_url(settings, board + storyboard.name)
    poster_urls = {}
    if posters:
        objects.upload_tree(s3, work / POSTERS_DIR, settings.bucket_media, board)
        poster_urls = {
            size: objects.public_url(settings, board + p.name) for size, p in posters.items()
        }
    summary = media.summary()
    report(
        f"{name}: {summary.segment_count} segments, {len(uploaded)} objects, "
        f"peak {summary.peak_bitrate / 1000:.0f} kb/s, average {summary.average_bitrate / 1000:.0f}"
        f" kb/s"
    )
    return RenditionResult(
        item.video_id,
        name,
        READY,
        summary=summary,
        storyboard_url=storyboard_url,
        poster_urls=poster_urls,
        stats=stats,
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


def _posters(
    settings: Settings, rendition: Path, duration: float, directory: Path
) -> dict[str, Path]:
    """The posters from the candidates the encode kept; from the encoded rendition's
    keyframes when it kept none (a source that ends before its first candidate)."""
    chosen = thumbnails.choose_poster(directory)
    if chosen is not None:
        return chosen
    log.info("no poster candidate in the decode; taking the posters from %s", rendition.name)
    return thumbnails.make_posters(
        str(rendition), duration, directory, timeout=settings.tool_timeout_seconds
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "unknown error"
