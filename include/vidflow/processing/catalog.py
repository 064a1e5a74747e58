"""Catalog transactions of video processing.

The protocol that keeps at-least-once delivery harmless:

* **Claim.** A run claims a video before working on it by writing its run id into
  ``videos.processing_run_id``. A video that is already ``processed`` or ``failed`` is
  skipped unless the run was forced; one being processed by another *active* run is
  skipped. The last claim wins: a forced re-transcode takes over from a running one.
* **Publish.** Outputs are staged under a version prefix nobody reads. One transaction
  then checks the claim is still this run's, replaces the renditions rows and flips the
  video to ``processed`` with the new ``media_version``, URLs and duration. A run whose
  claim was taken over publishes nothing (its staging is deleted). Publishing the same
  version twice is a no-op.
* **Fail.** A failure is recorded only by the claim's owner. A video that already had a
  published version (a forced re-transcode) stays ``processed`` and playable; its
  ``failure_reason`` says what went wrong with the re-transcode.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.orm import Session

from vidflow.catalog.db import session_scope
from vidflow.catalog.models import Rendition, Upload, Video
from vidflow.config import Settings

log = logging.getLogger(__name__)

#: failure_reason is shown to uploaders; keep it a readable length.
MAX_REASON = 2000


def _locked(session: Session, key: uuid.UUID) -> Row[str, str | None, str | None] | None:
    """The video's processing columns, row-locked until the transaction ends."""
    query = (
        select(
            Video.status,
            Video.processing_run_id,
            Video.media_version,
        )
        .where(Video.video_id == key)
        .with_for_update()
    )
    return session.execute(query).one_or_none()


def _update(session: Session, key: uuid.UUID, **values: Any) -> None:
    session.execute(
        update(Video).where(Video.video_id == key).values(updated_at=func.now(), **values)
    )


@dataclass(frozen=True)
class Claim:
    video_id: str
    claimed: bool
    #: Why the video was skipped, when it was not claimed.
    skipped_because: str | None = None
    previous_status: str | None = None
    published_version: str | None = None


def claim(
    *,
    settings: Settings,
    video_id: str,
    run_id: str,
    force: bool,
    is_run_active: Callable[[str], bool],
) -> Claim:
    """Claim ``video_id`` for ``run_id`` (see the module docstring)."""
    key = uuid.UUID(video_id)
    with session_scope(settings) as session:
        video = _locked(session, key)
        if video is None:
            return Claim(video_id, False, "no such video in the catalog")
        owner = video.processing_run_id
        if owner == run_id:
            # A retry of this run's own claim.
            return Claim(video_id, True, None, video.status, video.media_version)
        if not force:
            if video.status in ("processed", "failed"):
                return Claim(video_id, False, f"already {video.status}", video.status)
            if video.status == "uploading":
                return Claim(video_id, False, "its upload has not finished", video.status)
            if owner and is_run_active(owner):
                return Claim(video_id, False, f"run {owner} is processing it", video.status)
        values: dict[str, Any] = {"processing_run_id": run_id}
        if video.status != "processed":
            values.update(status="processing", failure_reason=None)
        _update(session, key, **values)
        return Claim(video_id, True, None, video.status, video.media_version)


def mark_failed(*, settings: Settings, video_id: str, run_id: str | None, reason: str) -> bool:
    """Record a failure of ``run_id``'s attempt; False unless that run owns the claim
    (a published video, or one another run took over, is left alone).

    ``run_id=None`` records it whoever owns the claim (reconciliation gives up on it).
    """
    key = uuid.UUID(video_id)
    reason = reason.strip()[:MAX_REASON] or "Processing failed for an unknown reason."
    with session_scope(settings) as session:
        video = _locked(session, key)
        if video is None:
            return False
        if run_id is not None and video.processing_run_id != run_id:
            log.info(
                "not recording failure of %s: run %s owns it", video_id, video.processing_run_id
            )
            return False
        values: dict[str, Any] = {"processing_run_id": None}
        if video.status == "processed" and video.media_version:
            values["failure_reason"] = (
                f"Re-transcode failed; the previous version still plays. {reason}"
            )
        else:
            values.update(status="failed", failure_reason=reason)
        _update(session, key, **values)
        return True


@dataclass(frozen=True)
class RenditionRow:
    name: str
    width: int
    height: int
    bandwidth: int
    average_bandwidth: int
    codecs: str
    frame_rate: float | None
    playlist_url: str


@dataclass(frozen=True)
class Published:
    video_id: str
    published: bool
    #: The version readers saw before, to delete now that nobody points at it.
    previous_version: str | None = None
    #: Set when another run took the claim over: this run's staging must go.
    superseded_by: str | None = None


def publish(
    *,
    settings: Settings,
    video_id: str,
    run_id: str,
    version: str,
    manifest_url: str,
    dash_url: str,
    thumbnail_urls: dict[str, str],
    duration_seconds: float,
    renditions: Sequence[RenditionRow],
) -> Published:
    """Flip the video to ``processed`` at ``version`` in one transaction."""
    key = uuid.UUID(video_id)
    with session_scope(settings) as session:
        video = _locked(session, key)
        if video is None:
            return Published(video_id, False)
        if video.media_version == version:
            return Published(video_id, True)  # published already (a retry)
        if video.processing_run_id != run_id:
            return Published(video_id, False, superseded_by=video.processing_run_id or "none")
        session.execute(delete(Rendition).where(Rendition.video_id == key))
        if renditions:
            session.execute(
                insert(Rendition),
                [
                    {
                        "video_id": key,
                        "name": r.name,
                        "version": version,
                        "width": r.width,
                        "height": r.height,
                        "bandwidth": r.bandwidth,
                        "average_bandwidth": r.average_bandwidth,
                        "codecs": r.codecs,
                        "frame_rate": r.frame_rate,
                        "playlist_url": r.playlist_url,
                    }
                    for r in renditions
                ],
            )
        _update(
            session,
            key,
            status="processed",
            media_version=version,
            manifest_url=manifest_url,
            dash_url=dash_url,
            thumbnail_urls=thumbnail_urls,
            duration_seconds=duration_seconds,
            failure_reason=None,
            processing_run_id=None,
            processing_attempts=0,
        )
        return Published(video_id, True, previous_version=video.media_version)


def release(*, settings: Settings, video_id: str, run_id: str) -> None:
    """Drop ``run_id``'s claim without changing the status (nothing to publish)."""
    with session_scope(settings) as session:
        session.execute(
            update(Video)
            .where(Video.video_id == uuid.UUID(video_id), Video.processing_run_id == run_id)
            .values(processing_run_id=None, updated_at=func.now())
        )


@dataclass(frozen=True)
class StuckVideo:
    video_id: str
    run_id: str | None
    attempts: int
    size: int | None
    sha256: str | None


def stuck_videos(
    *, settings: Settings, older_than: timedelta, limit: int = 500
) -> list[StuckVideo]:
    """Videos in ``processing`` not touched for ``older_than``, oldest first."""
    cutoff = func.now() - older_than
    query = (
        select(
            Video.video_id,
            Video.processing_run_id,
            Video.processing_attempts,
            Upload.length,
            Upload.sha256,
        )
        .outerjoin(Upload, Upload.video_id == Video.video_id)
        .where(Video.status == "processing", Video.updated_at < cutoff)
        .order_by(Video.updated_at)
        .limit(limit)
    )
    with session_scope(settings) as session:
        return [
            StuckVideo(str(row[0]), row[1], row[2], row[3], row[4])
            for row in session.execute(query)
        ]


def note_reenqueued(*, settings: Settings, video_id: str, conn_hook: Callable[[Any], None]) -> bool:
    """Count a re-enqueue and run ``conn_hook(connection)`` in the same transaction (the
    outbox insert). False when the video left ``processing`` meanwhile."""
    with session_scope(settings) as session:
        result = session.execute(
            update(Video)
            .where(Video.video_id == uuid.UUID(video_id), Video.status == "processing")
            .values(
                processing_attempts=Video.processing_attempts + 1,
                processing_run_id=None,
                updated_at=func.now(),
            )
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
        conn_hook(session.connection())
        return True


@dataclass(frozen=True)
class VideoVersion:
    video_id: str
    status: str
    media_version: str | None
    run_id: str | None


def recently_updated(
    *, settings: Settings, within: timedelta, limit: int = 5000
) -> list[VideoVersion]:
    """Videos whose row changed within ``within`` (candidates for the staging sweep)."""
    query = (
        select(Video.video_id, Video.status, Video.media_version, Video.processing_run_id)
        .where(Video.updated_at >= func.now() - within, Video.status != "uploading")
        .order_by(Video.updated_at.desc())
        .limit(limit)
    )
    with session_scope(settings) as session:
        return [VideoVersion(str(v), s, m, r) for v, s, m, r in session.execute(query)]


def video_state(*, settings: Settings, video_id: str) -> dict[str, Any] | None:
    """The processing-related columns of one video (tests, reports)."""
    with session_scope(settings) as session:
        video = session.get(Video, uuid.UUID(video_id))
        if video is None:
            return None
        renditions = session.scalars(
            select(Rendition)
            .where(Rendition.video_id == video.video_id)
            .order_by(Rendition.height.desc(), Rendition.width.desc())
        ).all()
        return {
            "status": video.status,
            "failure_reason": video.failure_reason,
            "manifest_url": video.manifest_url,
            "dash_url": video.dash_url,
            "thumbnail_urls": video.thumbnail_urls,
            "duration_seconds": video.duration_seconds,
            "media_version": video.media_version,
            "processing_run_id": video.processing_run_id,
            "processing_attempts": video.processing_attempts,
            "renditions": [
                {
                    "name": r.name,
                    "version": r.version,
                    "width": r.width,
                    "height": r.height,
                    "bandwidth": r.bandwidth,
                    "average_bandwidth": r.average_bandwidth,
                    "codecs": r.codecs,
                    "frame_rate": r.frame_rate,
                    "playlist_url": r.playlist_url,
                }
                for r in renditions
            ],
        }
