"""Viewer events: the one contract between the clients, the viewer API, the traffic
model's ``history`` mode and the analytics jobs.

A client posts :class:`ViewerEventIn` objects to ``POST /v1/events``. The API stamps the
receive time and the user (from the bearer token, or none) and stores each accepted event
as one line of newline-delimited JSON (:meth:`StoredEvent.to_json_line`) in an object of
the events bucket under :func:`event_object_key`. The folders are the *receive* hour, so
the hourly analytics run reads exactly the objects that arrived in its data interval; the
Delta tables are partitioned by the *event* time (``client_ts``), so a late event lands in
the partition of its own day.

``history`` writes the same lines under the same keys, so backfills and benchmarks read
exactly what the live path produces. :data:`STORED_EVENT_FIELDS` is the column contract the
Spark jobs parse.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vidflow.regions import Device, RegionName

EventType = Literal["play", "heartbeat", "pause", "seek", "complete", "like"]
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType)

#: Longest position a player can report (a 12-hour source is the processing limit).
MAX_POSITION_SECONDS: Final = 12 * 3600.0
#: Prefix of event objects in the events bucket.
EVENTS_PREFIX: Final = "events"
#: Version of the stored line format (``schema`` field of every line).
SCHEMA_VERSION: Final = 1

#: Field order of a stored line; the Spark jobs parse exactly these.
STORED_EVENT_FIELDS: Final[tuple[str, ...]] = (
    "schema",
    "event_id",
    "event_type",
    "video_id",
    "session_id",
    "user_id",
    "client_ts",
    "received_at",
    "position_seconds",
    "region",
    "device",
)


class ViewerEventIn(BaseModel):
    """One event as a client sends it. Validated on its own: a batch may mix good and bad."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID = Field(description="Client-generated id; a resent event is a duplicate.")
    event_type: EventType
    video_id: uuid.UUID
    session_id: uuid.UUID = Field(description="One playback session of one viewer.")
    client_ts: AwareDatetime = Field(description="When it happened, on the client's clock.")
    position_seconds: float = Field(ge=0, le=MAX_POSITION_SECONDS)
    region: RegionName
    device: Device


@dataclass(frozen=True)
class StoredEvent:
    """An accepted event as the events bucket holds it (one JSON line)."""

    event_id: str
    event_type: str
    video_id: str
    session_id: str
    user_id: str | None
    client_ts: datetime
    received_at: datetime
    position_seconds: float
    region: str
    device: str

    @classmethod
    def accept(
        cls, event: ViewerEventIn, *, user_id: uuid.UUID | None, received_at: datetime
    ) -> StoredEvent:
        return cls(
            event_id=str(event.event_id),
            event_type=event.event_type,
            video_id=str(event.video_id),
            session_id=str(event.session_id),
            user_id=str(user_id) if user_id else None,
            client_ts=event.client_ts.astimezone(UTC),
            received_at=received_at.astimezone(UTC),
            position_seconds=float(event.position_seconds),
            region=event.region,
            device=event.device,
        )

    def to_json_line(self) -> str:
        """The stored form: one JSON object, UTC ISO-8601 times with ``Z``, no newline."""
        values: dict[str, Any] = {"schema": SCHEMA_VERSION, **asdict(self)}
        values["client_ts"] = _iso(self.client_ts)
        values["received_at"] = _iso(self.received_at)
        return json.dumps({k: values[k] for k in STORED_EVENT_FIELDS}, separators=(",", ":"))

    @classmethod
    def from_json_line(cls, line: str) -> StoredEvent:
        values = json.loads(line)
        return cls(
            event_id=values["event_id"],
            event_type=values["event_type"],
            video_id=values["video_id"],
            session_id=values["session_id"],
            user_id=values["user_id"],
            client_ts=datetime.fromisoformat(values["client_ts"]),
            received_at=datetime.fromisoformat(values["received_at"]),
            position_seconds=float(values["position_seconds"]),
            region=values["region"],
            device=values["device"],
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hour_prefix(hour: datetime) -> str:
    """``events/date=YYYY-MM-DD/hour=HH/``: the objects received in that UTC hour."""
    hour = hour.astimezone(UTC)
    return f"{EVENTS_PREFIX}/date={hour:%Y-%m-%d}/hour={hour:%H}/"


def event_object_key(received_hour: datetime, writer_id: str, sequence: int) -> str:
    """Key of one batch object: the receive hour's folder, then the writer and a sequence
    number, so concurrent writers (API processes, history shards) never collide."""
    return f"{hour_prefix(received_hour)}{writer_id}-{sequence:08d}.ndjson"


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """The UTC hours starting in ``[start, end)``, each truncated to the hour."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours
