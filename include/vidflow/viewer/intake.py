"""Validation of posted viewer events, one item at a time.

A batch may mix good and bad items: each item is parsed with
:class:`vidflow.events.ViewerEventIn` on its own, then checked against the server's clock
(not too far in the future, not too late), and duplicates inside one batch are refused.
Good items become :class:`vidflow.events.StoredEvent` stamped with the receive time and
the user; bad ones a :class:`RejectedEvent` with a reason a person can act on. Pure
functions, no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from pydantic import ValidationError

from vidflow.config import Settings
from vidflow.events import StoredEvent, ViewerEventIn

#: Errors named per rejected item; the rest are summarised.
MAX_ERRORS_PER_ITEM: Final = 5
#: Longest field name echoed back (an unknown field is named by the client).
MAX_FIELD_NAME: Final = 64


@dataclass(frozen=True)
class EventRules:
    """How far a client's clock may be ahead of the server's, and how late an event may
    arrive."""

    max_clock_skew: timedelta
    max_lateness: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> EventRules:
        return cls(
            max_clock_skew=timedelta(seconds=settings.events_max_clock_skew_seconds),
            max_lateness=timedelta(hours=settings.events_max_lateness_hours),
        )


@dataclass(frozen=True)
class RejectedEvent:
    """An item of a batch that was not accepted: its position, its id when readable,
    and why."""

    index: int
    event_id: uuid.UUID | None
    reason: str


@dataclass(frozen=True)
class Intake:
    """The outcome of one posted batch."""

    received_at: datetime
    accepted: tuple[StoredEvent, ...]
    rejected: tuple[RejectedEvent, ...]


class InvalidEvent(ValueError):
    """One item breaks a rule; the message is the reason."""


def _validation_reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if any(not e["loc"] and e["type"] in ("model_type", "dict_type") for e in errors):
        return "an event must be a JSON object"
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing" and e["loc"]]
    parts = [f"missing fields: {', '.join(missing)}"] if missing else []
    others = [e for e in errors if e["type"] != "missing"]
    for error in others[:MAX_ERRORS_PER_ITEM]:
        field = ".".join(str(part) for part in error["loc"])[:MAX_FIELD_NAME]
        parts.append(f"{field}: {error['msg']}" if field else error["msg"])
    if len(others) > MAX_ERRORS_PER_ITEM:
        parts.append(f"and {len(others) - MAX_ERRORS_PER_ITEM} more errors")
    return "; ".join(parts)


def check_event(item: object, *, received_at: datetime, rules: EventRules) -> ViewerEventIn:
    """``item`` as a valid event, or InvalidEvent with the reason."""
    try:
        event = ViewerEventIn.model_validate(item)
    except ValidationError as exc:
        raise InvalidEvent(_validation_reason(exc)) from None
    ahead = event.client_ts - received_at
    if ahead > rules.max_clock_skew:
        raise InvalidEvent(
            f"client_ts is {ahead.total_seconds():.0f} s ahead of the server clock; at most "
            f"{rules.max_clock_skew.total_seconds():.0f} s of clock skew is accepted"
        )
    if received_at - event.client_ts > rules.max_lateness:
        hours = rules.max_lateness.total_seconds() / 3600
        raise InvalidEvent(
            f"client_ts is more than {hours:g} hours in the past; events that late are not accepted"
        )
    return event


def readable_event_id(item: object) -> uuid.UUID | None:
    """The ``event_id`` of a raw item when it is there and a UUID, else None."""
    if not isinstance(item, dict):
        return None
    raw = item.get("event_id")
    if not isinstance(raw, str):
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def check_events(
    items: Sequence[object],
    *,
    user_id: uuid.UUID | None,
    received_at: datetime,
    rules: EventRules,
) -> Intake:
    """Each item accepted or rejected on its own; a repeated ``event_id`` within the
    batch is rejected after its first occurrence."""
    accepted: list[StoredEvent] = []
    rejected: list[RejectedEvent] = []
    first_seen: dict[uuid.UUID, int] = {}
    for index, item in enumerate(items):
        try:
            event = check_event(item, received_at=received_at, rules=rules)
        except InvalidEvent as exc:
            rejected.append(RejectedEvent(index, readable_event_id(item), str(exc)))
            continue
        if event.event_id in first_seen:
            reason = f"duplicate of item {first_seen[event.event_id]} (same event_id)"
            rejected.append(RejectedEvent(index, event.event_id, reason))
            continue
        first_seen[event.event_id] = index
        accepted.append(StoredEvent.accept(event, user_id=user_id, received_at=received_at))
    return Intake(received_at, tuple(accepted), tuple(rejected))
