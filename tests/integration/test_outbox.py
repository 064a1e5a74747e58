"""The transactional outbox relay against the real catalog and SQS endpoint: a message
committed but not yet published (a crash in between) is published once and marked sent;
a queue that is missing leaves the row pending with the error, to be retried."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.tus_harness import TestQueue, wait_until
from vidflow.catalog.db import get_engine
from vidflow.config import Settings
from vidflow.outbox import enqueue, relay_once


@pytest.fixture
def queue(stack: Settings) -> Iterator[TestQueue]:
    queue = TestQueue(stack, f"vidflow-test-outbox-{os.urandom(4).hex()}")
    queue.create()
    yield queue
    queue.delete()


def add_row(settings: Settings, topic: str, payload: dict[str, Any]) -> int:
    with get_engine(settings).begin() as conn:
        return enqueue(conn, topic=topic, payload=payload)


def outbox_row(settings: Settings, row_id: int) -> dict[str, Any]:
    with get_engine(settings).connect() as conn:
        return dict(
            conn.execute(text("SELECT * FROM outbox WHERE id = :id"), {"id": row_id})
            .mappings()
            .one()
        )


def delete_row(settings: Settings, row_id: int) -> None:
    with get_engine(settings).begin() as conn:
        conn.execute(text("DELETE FROM outbox WHERE id = :id"), {"id": row_id})


def test_pending_message_is_published_once_and_marked_sent(
    stack: Settings, queue: TestQueue
) -> None:
    video_id = uuid.uuid4()
    payload = {
        "video_id": str(video_id),
        "source_key": f"originals/{video_id}/source",
        "size": 123,
        "sha256": None,
    }
    row_id = add_row(stack, queue.name, payload)
    try:
        relay_once(settings=stack, ids=[row_id])
        # Relays run in every upload service too; whichever sent it, it is sent once.
        wait_until(lambda: outbox_row(stack, row_id)["sent_at"] is not None)
        (message,) = queue.messages_for({video_id})[video_id]
        attributes = message.pop("_attributes")
        assert message == payload
        assert attributes["outbox_id"]["StringValue"] == str(row_id)
        assert relay_once(settings=stack, ids=[row_id]) == 0  # already sent
        assert queue.drain_extra(2) == []
        row = outbox_row(stack, row_id)
        assert row["attempts"] >= 1 and row["last_error"] is None
    finally:
        delete_row(stack, row_id)


def test_missing_queue_keeps_the_row_pending_with_the_error(
    stack: Settings, queue: TestQueue
) -> None:
    missing = f"{queue.name}-late"
    video_id = uuid.uuid4()
    row_id = add_row(stack, missing, {"video_id": str(video_id)})
    try:
        assert relay_once(settings=stack, ids=[row_id]) == 0
        row = outbox_row(stack, row_id)
        assert row["sent_at"] is None
        assert row["attempts"] >= 1
        assert "NonExistentQueue" in row["last_error"]
        # The queue appears: the next sweep delivers.
        late = TestQueue(stack, missing)
        late.create()
        try:
            relay_once(settings=stack, ids=[row_id])
            wait_until(lambda: outbox_row(stack, row_id)["sent_at"] is not None)
            (message,) = late.messages_for({video_id})[video_id]
            assert message["video_id"] == str(video_id)
        finally:
            late.delete()
    finally:
        delete_row(stack, row_id)
