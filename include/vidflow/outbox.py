"""Transactional outbox: messages written with the change they announce, then relayed.

A writer calls :func:`enqueue` inside the transaction that makes the change (for an
upload: ``videos.status = 'processing'``), naming the SQS queue in the row's ``topic``.
The relay publishes pending rows to the queue their topic names and marks them sent,
in three short steps that hold no row lock while the queue is being talked to:

1. *claim* a batch in one transaction (``FOR UPDATE SKIP LOCKED`` picks rows no other
   relay is claiming, ``claimed_until = now() + outbox_claim_seconds``), and commit;
2. *publish* each claimed row;
3. *mark* the sent rows ``sent_at`` (and record the error of the others), releasing the
   claims, in one transaction.

A crash between the commit and the publish loses nothing: the row stays pending and the
next sweep sends it (a claimed row once its claim runs out). A crash between the publish
and the mark sends it twice, which is why consumers are idempotent (delivery is at least
once). Sent rows are deleted ``outbox_retention_seconds`` after they were sent
(:func:`prune_sent`, run by the relay loop about every ten minutes).

The upload service runs a relay in a background thread; ``python -m vidflow.outbox``
runs one on its own (``--once`` for a single sweep), and the ``upload_maintenance`` DAG
sweeps as a safety net.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Connection, delete, func, insert, or_, select, update

from vidflow.catalog.db import get_engine
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


@dataclass(frozen=True)
class Claimed:
    """A row a relay claimed: what to publish where."""

    id: int
    topic: str
    payload: dict[str, Any]


def claim(
    conn: Connection,
    *,
    limit: int,
    lease: timedelta,
    ids: Sequence[int] | None = None,
) -> list[Claimed]:
    """Claim up to ``limit`` pending rows (fewest attempts first, so one broken topic
    cannot starve the others) that no relay holds; counts the attempt. The caller
    commits, which releases the row locks: the claim is the lease, not a lock."""
    now = func.now()
    pick = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.sent_at.is_(None),
            or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
        )
        .order_by(OutboxMessage.attempts, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        pick = pick.where(OutboxMessage.id.in_(list(ids)))
    rows = conn.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(pick.scalar_subquery()))
        .values(claimed_until=now + lease, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage.id, OutboxMessage.topic, OutboxMessage.payload)
    ).all()
    return sorted((Claimed(i, t, p) for i, t, p in rows), key=lambda c: c.id)


def mark(conn: Connection, *, sent: Sequence[int], failed: Mapping[int, str]) -> None:
    """Record the outcome of a batch and release its claims (the caller commits)."""
    if sent:
        conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(sent)))
            .values(sent_at=func.now(), last_error=None, claimed_until=None)
        )
    for row_id, error in failed.items():
        conn.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .values(last_error=error[:2000], claimed_until=None)
        )


def relay_once(
    *,
    settings: Settings,
    sqs: SQSClient | None = None,
    ids: Sequence[int] | None = None,
    batch_size: int | None = None,
) -> int:
    """Claim, publish and mark one batch of pending messages (or just ``ids``); returns
    how many were sent. A row that fails to publish keeps ``sent_at`` NULL, counts the
    attempt and records the error."""
    sqs = sqs or sqs_client(settings)
    engine = get_engine(settings)
    with engine.begin() as conn:
        claimed = claim(
            conn,
            limit=batch_size or settings.outbox_batch_size,
            lease=timedelta(seconds=settings.outbox_claim_seconds),
            ids=ids,
        )
    if not claimed:
        return 0
    queue_urls: dict[str, str] = {}
    sent: list[int] = []
    failed: dict[int, str] = {}
    try:
        for row in claimed:  # no transaction, no row lock while the queue answers
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
                failed[row.id] = f"{type(exc).__name__}: {exc}"
                log.warning("outbox row %s (topic %s) not sent: %s", row.id, row.topic, exc)
                continue
            sent.append(row.id)
    finally:
        # Even when interrupted, record what was sent; unrecorded claims run out.
        with engine.begin() as conn:
            mark(conn, sent=sent, failed=failed)
    return len(sent)


#: Rows one prune statement deletes (a long backlog goes in several short transactions).
PRUNE_BATCH: Final = 10_000


def prune_sent(*, settings: Settings, now: datetime | None = None) -> int:
    """Delete rows sent more than ``outbox_retention_seconds`` ago; returns how many."""
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=settings.outbox_retention_seconds)
    total = 0
    while True:
        old = (
            select(OutboxMessage.id)
            .where(OutboxMessage.sent_at < cutoff)
            .limit(PRUNE_BATCH)
            .scalar_subquery()
        )
        with get_engine(settings).begin() as conn:
            deleted = conn.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(old)))
        total += int(deleted.rowcount)
        if deleted.rowcount < PRUNE_BATCH:
            return total


def drain(*, settings: Settings, sqs: SQSClient | None = None) -> int:
    """Sweep until a sweep sends nothing; returns the total sent."""
    sqs = sqs or sqs_client(settings)
    total = 0
    while True:
        sent = relay_once(settings=settings, sqs=sqs)
        total += sent
        if sent == 0:
            return total


#: Seconds between two prunes by a running relay.
PRUNE_EVERY: Final = 600.0


def run_relay(*, settings: Settings, stop: threading.Event) -> None:
    """Sweep every ``outbox_relay_interval_seconds`` until ``stop`` is set; prune sent
    rows every ``PRUNE_EVERY`` seconds."""
    sqs = sqs_client(settings)
    next_prune = time.monotonic()
    while not stop.is_set():
        try:
            drain(settings=settings, sqs=sqs)
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + PRUNE_EVERY
                pruned = prune_sent(settings=settings)
                if pruned:
                    log.info("outbox: pruned %d sent row(s)", pruned)
        except Exception:
            # The database or the queue is down: keep the relay alive and try again.
            log.exception("outbox relay sweep failed")
        stop.wait(settings.outbox_relay_interval_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidflow.outbox", description=__doc__)
    parser.add_argument("--once", action="store_true", help="sweep until empty, then exit")
    parser.add_argument("--prune", action="store_true", help="delete old sent rows, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = get_settings()
    if args.prune:
        print(f"pruned {prune_sent(settings=settings)} sent row(s)")
        return 0
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
