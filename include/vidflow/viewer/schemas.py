"""Request and response bodies of the viewer API.

A video has three shapes: :class:`VideoPublic` (what anyone may see of a processed video),
:class:`OwnVideo` (what its creator sees, any status, failure reason included) and
:class:`VideoUpdate` (what its creator may change). Internal columns (media version,
processing run, attempts) appear in none of them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vidflow.catalog.fields import (
    DESCRIPTION_MAX,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
    InvalidField,
    clean_text,
    normalize_tags,
)
from vidflow.regions import RegionName


class VideoPublic(BaseModel):
    """A processed video as any viewer sees it."""

    video_id: uuid.UUID
    title: str
    description: str
    tags: list[str]
    duration_seconds: float | None
    view_count: int
    like_count: int
    uploaded_at: datetime
    hls_url: str = Field(description="HLS master playlist, on the viewer's region edge if any.")
    dash_url: str | None = Field(description="DASH MPD, on the viewer's region edge if any.")
    thumbnails: dict[str, str] = Field(
        description="Poster and storyboard URLs by kind (small, large, storyboard)."
    )


class OwnVideo(BaseModel):
    """One of the caller's own videos, whatever its status."""

    video_id: uuid.UUID
    title: str
    description: str
    tags: list[str]
    status: str = Field(description="uploading, processing, processed or failed.")
    failure_reason: str | None = Field(description="Why processing failed (status failed).")
    duration_seconds: float | None
    view_count: int
    like_count: int
    uploaded_at: datetime
    hls_url: str | None
    dash_url: str | None
    thumbnails: dict[str, str]


class OwnVideoPage(BaseModel):
    """A page of the caller's videos, newest first."""

    items: list[OwnVideo]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class VideoUpdate(BaseModel):
    """The creator-editable fields; omitted fields stay as they are. Tags are trimmed,
    lower-cased and deduplicated."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, description=f"1-{TITLE_MAX} characters.")
    description: str | None = Field(None, description=f"At most {DESCRIPTION_MAX} characters.")
    tags: list[str] | None = Field(
        None, description=f"At most {TAGS_MAX} distinct tags of at most {TAG_MAX} chars each."
    )

    @field_validator("title", "description", "tags", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        try:
            title = clean_text("title", value, TITLE_MAX)
        except InvalidField as exc:
            raise ValueError(str(exc)) from None
        if not title:
            raise ValueError("the title may not be empty")
        return title

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        try:
            return clean_text("description", value, DESCRIPTION_MAX, multiline=True)
        except InvalidField as exc:
            raise ValueError(str(exc)) from None

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        try:
            return list(normalize_tags(value))
        except InvalidField as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _something_to_change(self) -> VideoUpdate:
        if not self.model_fields_set:
            raise ValueError("nothing to change: send title, description and/or tags")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, as column values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class EventBatchIn(BaseModel):
    """``POST /v1/events``: items are validated one by one (see ViewerEventIn)."""

    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(description="Viewer events; each is accepted or rejected alone.")


class RejectedEventOut(BaseModel):
    index: int = Field(description="Position of the item in `events`.")
    event_id: uuid.UUID | None = Field(description="The item's event_id, when readable.")
    reason: str


class EventsResult(BaseModel):
    """What was stored: accepted events are durable when this is returned."""

    received_at: datetime
    accepted: list[uuid.UUID]
    rejected: list[RejectedEventOut]


class RecommendedVideo(BaseModel):
    """One item of a recommendations, related or trending list."""

    video_id: uuid.UUID
    title: str
    duration_seconds: float | None
    poster_url: str | None = Field(
        description="Poster thumbnail on the region's CDN edge (large for TVs), or null."
    )
    source: Literal["collaborative", "co-watch", "content", "trending", "session"] = Field(
        description="Where the item comes from: the precomputed lists (collaborative, "
        "co-watch, content), regional trending, or the viewer's current session."
    )
    score: float = Field(description="The source's own score; the list order is the ranking.")
    reason: str = Field(description="Why it is there, for the viewer.")


class RecommendationList(BaseModel):
    """A ranked list, stamped with the model version that computed it."""

    model_version: str | None = Field(description="Null when no model has scored yet.")
    generated_at: datetime | None = Field(description="When the precomputed rows were made.")
    region: RegionName
    items: list[RecommendedVideo]
