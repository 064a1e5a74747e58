"""The transactional outbox relay against the real catalog and SQS endpoint: a message
committed but not yet published (a crash in between) is published once and marked sent;
a queue that is missing leaves the row pending with the error, to be retried; the relay
holds no row lock while it publishes (a claim with a lease instead); sent rows are
pruned after the retention period."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from tests.integration.tus_harness import TestQueue, wait_until
from vidflow.catalog.db import get_engine
from vidflow.config import Settings
from vidflow.outbox import claim, enqueue, prune_sent, relay_once
from vidflow.storage import sqs_client


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


class LockProbingSQS:
    """The real SQS client; before each send it checks, from another catalog connection,
    that the row being published is not locked and is claimed."""

    def __init__(self, settings: Settings) -> None:
        self._sqs = sqs_client(settings)
        self._settings = settings
        self.probes: list[tuple[int, bool, bool]] = []

    def get_queue_url(self, **kwargs: Any) -> Any:
        return self._sqs.get_queue_url(**kwargs)

    def send_message(self, **kwargs: Any) -> Any:
        row_id = int(kwargs["MessageAttributes"]["outbox_id"]["StringValue"])
        with get_engine(self._settings).connect() as conn:
            try:
                claimed = conn.execute(
                    text(
                        "SELECT claimed_until > now() FROM outbox WHERE id = :id FOR UPDATE NOWAIT"
                    ),
                    {"id": row_id},
                ).scalar_one()
                unlocked = True
            except OperationalError:  # LockNotAvailable: the relay holds the row
                claimed, unlocked = None, False
            conn.rollback()
        self.probes.append((row_id, unlocked, bool(claimed)))
        return self._sqs.send_message(**kwargs)


def test_relay_holds_no_row_lock_while_publishing(stack: Settings, queue: TestQueue) -> None:
    for _ in range(3):  # another process's relay may send a row first: try a new one
        video_id = uuid.uuid4()
        row_id = add_row(stack, queue.name, {"video_id": str(video_id)})
        try:
            probing = LockProbingSQS(stack)
            sent = relay_once(settings=stack, sqs=probing, ids=[row_id])  # type: ignore[arg-type]
            if sent == 0:
                continue
            assert probing.probes == [(row_id, True, True)]
            row = outbox_row(stack, row_id)
            assert row["sent_at"] is not None and row["claimed_until"] is None
            assert video_id in queue.messages_for({video_id})
            return
        finally:
            delete_row(stack, row_id)
    pytest.fail("other relays sent every row first")


def test_a_claimed_row_is_left_until_its_claim_runs_out(stack: Settings) -> None:
    # A topic with no queue: no relay of any process can send the row meanwhile.
    row_id = add_row(stack, f"vidflow-test-noqueue-{os.urandom(4).hex()}", {"n": 1})
    lease = timedelta(seconds=60)
    try:
        first: list[Any] = []
        for _ in range(50):  # another process's relay may hold the row for a moment
            with get_engine(stack).begin() as conn:
                first = claim(conn, limit=10, lease=lease, ids=[row_id])
            if first:
                break
            time.sleep(0.1)
        assert [c.id for c in first] == [row_id]
        with get_engine(stack).begin() as conn:
            assert claim(conn, limit=10, lease=lease, ids=[row_id]) == []  # still held
            conn.execute(
                text(
                    "UPDATE outbox SET claimed_until = now() - interval '1 second' WHERE id = :id"
                ),
                {"id": row_id},
            )
        with get_engine(stack).begin() as conn:
            again = claim(conn, limit=10, lease=lease, ids=[row_id])
        assert [c.id for c in again] == [row_id]
        assert outbox_row(stack, row_id)["attempts"] >= 2
    finally:
        delete_row(stack, row_id)


def test_prune_deletes_rows_sent_before_the_retention_only(stack: Settings) -> None:
    topic = f"vidflow-test-prune-{os.urandom(4).hex()}"
    sent_at = {
        "old": datetime(1999, 12, 1, tzinfo=UTC),
        "recent": datetime(2000, 1, 7, tzinfo=UTC),
        "pending": None,
    }
    ids = {}
    with get_engine(stack).begin() as conn:
        for name, when in sent_at.items():
            ids[name] = enqueue(conn, topic=topic, payload={"name": name})
            conn.execute(
                text("UPDATE outbox SET sent_at = :t WHERE id = :id"),
                {"t": when, "id": ids[name]},
            )
    try:
        settings = stack.model_copy(update={"outbox_retention_seconds": 7 * 24 * 3600})
        # "now" is 2000-01-08: kept are rows sent after 2000-01-01, and pending rows.
        pruned = prune_sent(settings=settings, now=datetime(2000, 1, 8, tzinfo=UTC))
        with get_engine(stack).connect() as conn:
            left = set(
                conn.scalars(
                    text("SELECT payload->>'name' FROM outbox WHERE topic = :t"), {"t": topic}
                )
            )
        assert left == {"recent", "pending"}
        assert pruned == 1
    finally:
        with get_engine(stack).begin() as conn:
            conn.execute(text("DELETE FROM outbox WHERE topic = :t"), {"t": topic})
