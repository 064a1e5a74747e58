"""Work items of a video_processing run, from queue messages and from UI Params.

A processing-queue message is JSON ``{"video_id": "<uuid>", "source_key":
"originals/<uuid>/source", "size": <int>, "sha256": "<hex or null>"}``; the SQS watcher
hands the DAG batches of them inside asset events (``extra["payload"]["message_batch"]``).
A run may carry several events with several messages each, and delivery is at least once,
so the same video may appear more than once: requests are de-duplicated per video.
Malformed messages are logged and dropped; they cannot be retried into validity.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from vidflow.storage import original_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoRequest:
    video_id: str
    source_key: str
    force: bool = False
    size: int | None = None
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoRequest:
        return cls(**dict(data))


def _video_id(value: object) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError):
        return None


def parse_message(body: str) -> VideoRequest | None:
    """A request from one message body, or None (logged) when it is malformed."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        log.warning("dropping a processing message that is not JSON: %.200r", body)
        return None
    if not isinstance(data, dict):
        log.warning("dropping a processing message that is not an object: %.200r", body)
        return None
    video_id = _video_id(data.get("video_id"))
    if video_id is None:
        log.warning("dropping a processing message without a valid video_id: %.200r", body)
        return None
    # Keys are made from ids, never taken on trust from a message.
    expected = original_key(uuid.UUID(video_id))
    if data.get("source_key") not in (None, expected):
        log.warning(
            "message for %s names source_key %r; using %s", video_id, data["source_key"], expected
        )
    size = data.get("size")
    sha256 = data.get("sha256")
    return VideoRequest(
        video_id=video_id,
        source_key=expected,
        size=size if isinstance(size, int) and size >= 0 else None,
        sha256=sha256 if isinstance(sha256, str) else None,
    )


def message_bodies(event_extras: Iterable[Mapping[str, Any]]) -> list[str]:
    """Message bodies inside the extras of SQS-watcher asset events."""
    bodies = []
    for extra in event_extras:
        payload = extra.get("payload") or {}
        for message in payload.get("message_batch") or []:
            body = message.get("Body") if isinstance(message, Mapping) else None
            if isinstance(body, str):
                bodies.append(body)
    return bodies


def requests_for_run(
    event_extras: Iterable[Mapping[str, Any]], *, video_id: str | None, force: bool
) -> list[VideoRequest]:
    """Every video a run must process, once each, in arrival order.

    ``video_id``/``force`` are the run's Params (a trigger from the UI); queue messages
    come from the asset events that triggered the run.
    """
    found: dict[str, VideoRequest] = {}
    for body in message_bodies(event_extras):
        request = parse_message(body)
        if request is not None:
            found.setdefault(request.video_id, request)
    if video_id:
        valid = _video_id(video_id)
        if valid is None:
            raise ValueError(f"video_id {video_id!r} is not a UUID")
        found[valid] = VideoRequest(
            video_id=valid, source_key=original_key(uuid.UUID(valid)), force=force
        )
    return list(found.values())
