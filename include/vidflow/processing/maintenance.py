"""The video_reconciliation steps: re-enqueue videos stuck in ``processing`` and sweep
media versions nothing points at any more. Both are idempotent."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from vidflow.config import Settings
from vidflow.media import package
from vidflow.processing import catalog, objects
from vidflow.processing.contracts import ProcessingMessage
from vidflow.storage import s3_client

log = logging.getLogger(__name__)


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
        # The same message the upload service sends.
        message = ProcessingMessage.for_video(stuck.video_id, size=stuck.size, sha256=stuck.sha256)
        payload = message.to_payload()

        def add_message(conn: Any, payload: dict[str, Any] = payload) -> None:
            enqueue(conn, payload)

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
