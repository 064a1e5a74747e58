"""The thumbnails step: posters of every ready video of a run, uploaded next to its
renditions (the storyboard is made by the transcode of the smallest rendition)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path

from vidflow.config import Settings
from vidflow.media import thumbnails
from vidflow.processing import objects
from vidflow.processing.contracts import ERROR, READY, SKIPPED, Thumbnails, VideoJob
from vidflow.processing.runs import per_video, scratch
from vidflow.storage import s3_client


def make_thumbnails(job: VideoJob | None, *, settings: Settings) -> Thumbnails:
    """Posters of a ready video, uploaded next to its renditions."""
    if job is None or not job.ready:
        return Thumbnails(job.video_id if job else "", SKIPPED)
    s3 = s3_client(settings)
    url = objects.presigned_get(
        s3, settings.bucket_originals, job.source_key, settings.presigned_url_seconds
    )
    with scratch(settings) as directory:
        folder = Path(directory) / "thumbnails"
        posters = thumbnails.make_posters(
            url, job.source.duration, folder, timeout=settings.tool_timeout_seconds
        )
        prefix = objects.version_prefix(job.video_id, job.version) + "thumbnails/"
        objects.upload_tree(s3, folder, settings.bucket_media, prefix)
    urls = {
        kind: objects.public_url(settings, prefix + path.name) for kind, path in posters.items()
    }
    return Thumbnails(job.video_id, READY, urls=urls)


def thumbnails_of_run(
    jobs: Iterable[VideoJob | None],
    *,
    settings: Settings,
    run_id: str,
    last_attempt: bool,
) -> list[Thumbnails]:
    """Posters of every ready video of the run."""
    ready = [job for job in jobs if job is not None and job.ready]
    outcomes = per_video(
        {job.video_id: partial(make_thumbnails, job, settings=settings) for job in ready},
        what="making the thumbnails",
        settings=settings,
        run_id=run_id,
        last_attempt=last_attempt,
        on_error=lambda vid, reason: Thumbnails(vid, ERROR, reason),
    )
    return list(outcomes.values())
