"""Work items of a video_processing run, from queue messages and from UI Params.

A processing-queue message is a :class:`~vidflow.processing.contracts.ProcessingMessage`;
the SQS watcher hands the DAG batches of them inside asset events
(``extra["payload"]["message_batch"]``). A run may carry several events with several
messages each, and delivery is at least once, so the same video may appear more than
once: requests are de-duplicated per video. Malformed messages are logged and dropped;
they cannot be retried into validity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vidflow.processing.contracts import ProcessingMessage, video_id_of


@dataclass(frozen=True)
class VideoRequest:
    """A video a run must process: its message, and whether to re-transcode it."""

    message: ProcessingMessage
    force: bool = False

    @property
    def video_id(self) -> str:
        return self.message.video_id

    @classmethod
    def of_video(cls, video_id: str, *, force: bool = False) -> VideoRequest:
        """A request from the UI Params (no size or digest to check against)."""
        return cls(ProcessingMessage.for_video(video_id, size=None, sha256=None), force)


def parse_message(body: str) -> VideoRequest | None:
    """A request from one message body, or None (logged) when it is malformed."""
    message = ProcessingMessage.parse(body)
    return VideoRequest(message) if message is not None else None


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
        valid = video_id_of(video_id)
        if valid is None:
            raise ValueError(f"video_id {video_id!r} is not a UUID")
        found[valid] = VideoRequest.of_video(valid, force=force)
    return list(found.values())
