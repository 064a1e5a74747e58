"""The viewer API's service layer: catalog reads and edits, and event intake.

Catalog queries always name the shard key: a video by ``video_id`` (the partition key of
``videos``), a creator's videos by ``user_id`` (indexed). Functions take keyword
arguments only and raise :class:`~vidflow.problems.Problem` subclasses that the HTTP layer
renders; none of them knows about requests or responses.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from vidflow.catalog.models import Video
from vidflow.config import Settings
from vidflow.problems import Problem
from vidflow.viewer.edges import region_url
from vidflow.viewer.event_log import EventLog, EventsNotStored
from vidflow.viewer.intake import EventRules, Intake, check_events
from vidflow.viewer.recommendations import READS_DOWN
from vidflow.viewer.schemas import OwnVideo, OwnVideoPage, VideoPublic, VideoUpdate
from vidflow.viewer.session import SessionWriter

logger = logging.getLogger(__name__)

#: Seconds a client should wait before resending events after a 503.
EVENTS_RETRY_AFTER: Final = 2
NOT_PUBLISHED: Final = "no published video has this id"
NOT_YOURS: Final = "you have no video with this id"


class VideoNotFound(Problem):
    status = 404
    title = "Video not found"

    # One answer for unknown, unpublished and someone else's: nothing leaks.
    def __init__(self, detail: str = NOT_PUBLISHED) -> None:
        super().__init__(detail)


class InvalidCursor(Problem):
    status = 422
    title = "Unprocessable input"

    def __init__(self) -> None:
        super().__init__("cursor: not a cursor this API returned; start again without one")


class EventBatchTooLarge(Problem):
    status = 413
    title = "Too many events"


class EventsUnavailable(Problem):
    status = 503
    title = "Events not stored"

    def __init__(self) -> None:
        super().__init__(
            "the events could not be stored and none was accepted; resend the batch",
            headers={"Retry-After": str(EVENTS_RETRY_AFTER)},
        )


# --- videos ---------------------------------------------------------------------------------


def _thumbnails(video: Video, *, region: str | None, settings: Settings) -> dict[str, str]:
    return {
        kind: region_url(url, region=region, settings=settings)
        for kind, url in (video.thumbnail_urls or {}).items()
    }


def get_public_video(
    *, session: Session, settings: Settings, video_id: uuid.UUID, region: str | None = None
) -> VideoPublic:
    """A processed video, its stream and thumbnail URLs on ``region``'s edge when it has
    one. VideoNotFound for anything else."""
    video = session.scalar(
        select(Video).where(Video.video_id == video_id, Video.status == "processed")
    )
    if video is None or video.manifest_url is None:
        raise VideoNotFound()
    return VideoPublic(
        video_id=video.video_id,
        title=video.title,
        description=video.description,
        tags=list(video.tags),
        duration_seconds=video.duration_seconds,
        view_count=video.view_count,
        like_count=video.like_count,
        uploaded_at=video.upload_timestamp,
        hls_url=region_url(video.manifest_url, region=region, settings=settings),
        dash_url=(
            region_url(video.dash_url, region=region, settings=settings) if video.dash_url else None
        ),
        thumbnails=_thumbnails(video, region=region, settings=settings),
    )


def _own(video: Video) -> OwnVideo:
    return OwnVideo(
        video_id=video.video_id,
        title=video.title,
        description=video.description,
        tags=list(video.tags),
        status=video.status,
        failure_reason=video.failure_reason,
        duration_seconds=video.duration_seconds,
        view_count=video.view_count,
        like_count=video.like_count,
        uploaded_at=video.upload_timestamp,
        hls_url=video.manifest_url,
        dash_url=video.dash_url,
        thumbnails=dict(video.thumbnail_urls or {}),
    )


def encode_cursor(uploaded_at: datetime, video_id: uuid.UUID) -> str:
    """The position after a video in the newest-first order (opaque to clients)."""
    raw = json.dumps([uploaded_at.astimezone(UTC).isoformat(), str(video_id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, video_id = json.loads(raw)
        moment = datetime.fromisoformat(stamp)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, uuid.UUID(video_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidCursor() from None


def list_own_videos(
    *, session: Session, user_id: uuid.UUID, limit: int, cursor: str | None = None
) -> OwnVideoPage:
    """The caller's videos, newest upload first (ties by id), ``limit`` per page: keyset
    paging, so a page never repeats or skips a video while others are added."""
    query = select(Video).where(Video.user_id == user_id)
    if cursor is not None:
        after = decode_cursor(cursor)
        query = query.where(tuple_(Video.upload_timestamp, Video.video_id) < tuple_(*after))
    rows = list(
        session.scalars(
            query.order_by(Video.upload_timestamp.desc(), Video.video_id.desc()).limit(limit + 1)
        )
    )
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if page else None
    return OwnVideoPage(
        items=[_own(video) for video in page],
        next_cursor=encode_cursor(last.upload_timestamp, last.video_id) if more and last else None,
    )


def update_video(
    *, session: Session, user_id: uuid.UUID, video_id: uuid.UUID, changes: VideoUpdate
) -> OwnVideo:
    """Apply the creator's edits in one statement scoped to the owner (VideoNotFound for
    an unknown video or someone else's). ``updated_at`` is left alone: it clocks the
    processing state, which an edit does not change."""
    statement = (
        update(Video)
        .where(Video.video_id == video_id, Video.user_id == user_id)
        .values(**changes.changes())
        .returning(Video)
    )
    video = session.scalars(statement).one_or_none()
    if video is None:
        session.rollback()
        raise VideoNotFound(NOT_YOURS)
    session.commit()
    return _own(video)


# --- events ---------------------------------------------------------------------------------


async def record_events(
    *,
    log: EventLog,
    settings: Settings,
    items: Sequence[object],
    user_id: uuid.UUID | None,
    received_at: datetime | None = None,
    sessions: SessionWriter | None = None,
) -> Intake:
    """Validate each item, store the accepted ones durably (group commit), and say which
    were accepted and why the others were not. EventBatchTooLarge above the batch limit,
    EventsUnavailable when the write failed (then nothing is accepted).

    Then, for a signed-in viewer, the accepted events update the session (``sessions``)
    before the answer, so the next recommendations read sees them. That is best effort:
    the events are already stored, so a catalog outage costs only the re-rank."""
    if len(items) > settings.events_max_batch:
        raise EventBatchTooLarge(
            f"{len(items)} events in one request; at most {settings.events_max_batch} are "
            "accepted: split the batch"
        )
    intake = check_events(
        items,
        user_id=user_id,
        received_at=received_at or datetime.now(UTC),
        rules=EventRules.from_settings(settings),
    )
    try:
        await log.append(intake.accepted)
    except EventsNotStored:
        raise EventsUnavailable() from None
    if sessions is not None and user_id is not None and intake.accepted:
        try:
            await sessions.record_async(intake.accepted, now=intake.received_at)
        except READS_DOWN as exc:
            logger.warning("session not updated (catalog unavailable): %s", type(exc).__name__)
    return intake
