"""Transactional outbox: messages written with the change they announce, then relayed.

A writer calls :func:`enqueue` inside the transaction that makes the change (for an
upload: ``videos.status = 'processing'``), naming the SQS queue in the row's ``topic``.
The relay publishes pending rows to the queue their topic names and marks them sent.
A crash between the commit and the publish loses nothing: the row stays pending and the
next sweep sends it. A crash between the publish and the mark sends it twice, which is
why consumers are idempotent (delivery is at least once). Several relays may run at once:
each sweep locks its rows with ``FOR UPDATE SKIP LOCKED``.

The upload service runs a relay in a background thread; ``python -m vidflow.outbox``
runs one on its own (``--once`` for a single sweep), and the ``upload_maintenance`` DAG
sweeps as a safety net.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection, insert, select

from vidflow.catalog.db import session_scope
from vidflow.catalog.models import OutboxMessage
from vidflow.config import Settings, get_settings
from vidflow.storage import sqs_client

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)


def enqueue(conn: Connection, *, topic: str, payload: Mapping[str, Any]) -> int:
    """Add a message to the outbox inside the caller's transaction; returns its id."""
    row_id: int = conn.execute(
        insert(OutboxMessage).values(topic=topic, payload=dict(payload)).returning(OutboxMessage.id)
    ).scalar_one()
    return row_id


def message_body(payload: Mapping[str, Any]) -> str:
    """The SQS message body of a payload: compact JSON with sorted keys."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def relay_once(
    *,
    settings: Settings,
    sqs: SQSClient | None = None,
    ids: Sequence[int] | None = None,
    batch_size: int | None = None,
) -> int:
    """Publish one batch of pending messages (or just ``ids``); returns how many were sent.

    A row that fails to publish keeps ``sent_at`` NULL, counts the attempt and records
    the error; rows with fewer attempts go first, so one broken topic cannot starve the
    others.
    """
    sqs = sqs or sqs_client(settings)
    queue_urls: dict[str, str] = {}
    sent = 0
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None))
        .order_by(OutboxMessage.attempts, OutboxMessage.id)
        .limit(batch_size or settings.outbox_batch_size)
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(list(ids)))
    with session_scope(settings) as session:
        for row in session.scalars(query):
            row.attempts += 1
            try:
                if row.topic not in queue_urls:
                    queue_urls[row.topic] = sqs.get_queue_url(QueueName=row.topic)["QueueUrl"]
                sqs.send_message(
                    QueueUrl=queue_urls[row.topic],
                    MessageBody=message_body(row.payload),
                    MessageAttributes={
                        "outbox_id": {"DataType": "Number", "StringValue": str(row.id)}
                    },
                )
            except (BotoCoreError, ClientError) as exc:
                row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                log.warning("outbox row %s (topic %s) not sent: %s", row.id, row.topic, exc)
                continue
            row.sent_at = datetime.now(UTC)
            row.last_error = None
            sent += 1
    return sent


def drain(*, settings: Settings, sqs: SQSClient | None = None) -> int:
    """Sweep until a sweep sends nothing; returns the total sent."""
    sqs = sqs or sqs_client(settings)
    total = 0
    while True:
        sent = relay_once(settings=settings, sqs=sqs)
        total += sent
        if sent == 0:
            return total


def run_relay(*, settings: Settings, stop: threading.Event) -> None:
    """Sweep every ``outbox_relay_interval_seconds`` until ``stop`` is set."""
    sqs = sqs_client(settings)
    while not stop.is_set():
        try:
            drain(settings=settings, sqs=sqs)
        except Exception:
            # The database or the queue is down: keep the relay alive and try again.
            log.exception("outbox relay sweep failed")
        stop.wait(settings.outbox_relay_interval_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidflow.outbox", description=__doc__)
    parser.add_argument("--once", action="store_true", help="sweep until empty, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = get_settings()
    if args.once:
        print(f"sent {drain(settings=settings)} message(s)")
        return 0
    stop = threading.Event()
    try:
        run_relay(settings=settings, stop=stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
