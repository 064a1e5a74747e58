"""The viewer API's endpoints: thin shells over :mod:`vidflow.viewer.service`.

Catalog routes are plain functions (FastAPI runs them in its thread pool, as the
catalog session is synchronous); the events route is async, as it waits for the group
commit of its events.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Final

from fastapi import APIRouter, Query, Response

from vidflow.accounts.deps import CurrentUser, SessionDep, SettingsDep
from vidflow.regions import Device, RegionName
from vidflow.viewer import service
from vidflow.viewer.answers import CACHE_HEADER, SERVED_BY_HEADER, instance_id
from vidflow.viewer.deps import EventLogDep, OptionalUser, ServingDep, Viewer
from vidflow.viewer.recommendations import DEGRADED_HEADER, Served
from vidflow.viewer.schemas import (
    EventBatchIn,
    EventsResult,
    OwnVideo,
    OwnVideoPage,
    RecommendationList,
    RejectedEventOut,
    VideoPublic,
    VideoUpdate,
)

router = APIRouter()

PAGE_DEFAULT: Final = 20
PAGE_MAX: Final = 100


def _video_id(raw: str, *, own: bool = False) -> uuid.UUID:
    """A malformed id names no video: 404 like an unknown one."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise service.VideoNotFound(service.NOT_YOURS if own else service.NOT_PUBLISHED) from None


@router.get("/v1/videos/{video_id}", response_model=VideoPublic, tags=["videos"])
def get_video(
    video_id: str,
    session: SessionDep,
    settings: SettingsDep,
    region: Annotated[
        RegionName | None,
        Query(description="The viewer's region: stream and thumbnail URLs on its CDN edge."),
    ] = None,
) -> VideoPublic:
    """A processed video: metadata, counts, thumbnails, HLS and DASH URLs. 404 for
    anything unknown or not (yet) processed."""
    return service.get_public_video(
        session=session, settings=settings, video_id=_video_id(video_id), region=region
    )


@router.get("/v1/me/videos", response_model=OwnVideoPage, tags=["videos"])
def my_videos(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> OwnVideoPage:
    """The caller's own videos in any status (with the failure reason), newest first."""
    return service.list_own_videos(
        session=session, user_id=user.user_id, limit=limit, cursor=cursor
    )


@router.patch("/v1/videos/{video_id}", response_model=OwnVideo, tags=["videos"])
def edit_video(
    video_id: str, changes: VideoUpdate, user: CurrentUser, session: SessionDep
) -> OwnVideo:
    """Change the title, description or tags of one of the caller's videos."""
    return service.update_video(
        session=session,
        user_id=user.user_id,
        video_id=_video_id(video_id, own=True),
        changes=changes,
    )


@router.post("/v1/events", response_model=EventsResult, tags=["events"])
async def post_events(
    batch: EventBatchIn,
    user: OptionalUser,
    settings: SettingsDep,
    event_log: EventLogDep,
    serving: ServingDep,
) -> EventsResult:
    """Record watch events. Each item is accepted or rejected on its own; the answer
    comes once the accepted ones are durably stored (503 and nothing accepted if they
    could not be). Anonymous without a token; a signed-in viewer's events also update
    their session, which re-ranks their next recommendations."""
    intake = await service.record_events(
        log=event_log,
        settings=settings,
        items=batch.events,
        user_id=user.user_id if user else None,
        sessions=serving.sessions,
    )
    if user is not None and intake.accepted:
        # This process's own answers at once, as the triggers will tell the others: per
        # session video (an answer led by the only video touched stays).
        for video in {event.video_id for event in intake.accepted}:
            serving.answers.invalidate_viewer(user.user_id, session_video=uuid.UUID(video))
    return EventsResult(
        received_at=intake.received_at,
        accepted=[uuid.UUID(e.event_id) for e in intake.accepted],
        rejected=[
            RejectedEventOut(index=r.index, event_id=r.event_id, reason=r.reason)
            for r in intake.rejected
        ],
    )


# --- recommendations ------------------------------------------------------------------------
# Async routes, dependencies and catalog reads: an answer never leaves the event loop. The
# answers are JSON bytes made once (and mostly sent from memory); response_model documents
# them in the OpenAPI document.

RegionQuery = Annotated[
    RegionName | None,
    Query(
        description="The viewer's region (trending list, poster URLs on its edge); "
        "default VIDFLOW_VIEWER_DEFAULT_REGION."
    ),
]
LimitQuery = Annotated[int, Query(ge=1, le=PAGE_MAX)]


def _shaped(served: Served) -> Response:
    headers: dict[str, str] = {CACHE_HEADER: served.cache, SERVED_BY_HEADER: instance_id()}
    if served.degraded:
        headers[DEGRADED_HEADER] = served.degraded
    return Response(served.body, media_type="application/json", headers=headers)


@router.get("/v1/me/recommendations", response_model=RecommendationList, tags=["recommendations"])
async def my_recommendations(
    user: Viewer,
    serving: ServingDep,
    limit: LimitQuery = PAGE_DEFAULT,
    region: RegionQuery = None,
    device: Annotated[
        Device | None, Query(description="tv gets large posters, others small ones.")
    ] = None,
) -> Response:
    """The caller's recommendations: precomputed top-N minus what they watched (history
    and this session), videos related to this session's watches first, regional trending
    to fill. Degraded answers (catalog unavailable) carry `X-Vidflow-Degraded`."""
    served = await serving.for_viewer(
        user_id=user.user_id,
        region=region or serving.settings.viewer_default_region,
        device=device,
        limit=limit,
    )
    return _shaped(served)


@router.get(
    "/v1/videos/{video_id}/related", response_model=RecommendationList, tags=["recommendations"]
)
async def related_videos(
    video_id: str,
    serving: ServingDep,
    limit: LimitQuery = PAGE_DEFAULT,
    region: RegionQuery = None,
) -> Response:
    """ "More like this": the video's precomputed related list, then regional trending.
    404 for anything that is not a processed video."""
    served = await serving.for_video(
        video_id=_video_id(video_id),
        region=region or serving.settings.viewer_default_region,
        limit=limit,
    )
    return _shaped(served)


@router.get("/v1/trending", response_model=RecommendationList, tags=["recommendations"])
async def trending(
    serving: ServingDep,
    limit: LimitQuery = PAGE_DEFAULT,
    region: RegionQuery = None,
) -> Response:
    """The region's trending videos (then the global list), for anyone."""
    served = await serving.for_region(
        region=region or serving.settings.viewer_default_region,
        limit=limit,
    )
    return _shaped(served)
