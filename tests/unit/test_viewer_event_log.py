"""Group commit of viewer events: the batching rule (CommitBuffer, pure) and the asyncio
event log around it, with an in-memory writer in place of S3."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from vidflow.events import StoredEvent
from vidflow.viewer.event_log import (
    CommitBuffer,
    EventLog,
    EventsNotStored,
    new_writer_id,
    receive_hour,
)

TEN = datetime(2026, 3, 14, 10, tzinfo=UTC)
ELEVEN = TEN + timedelta(hours=1)


def line(n: int) -> str:
    """A line of n bytes (n + 1 with its newline)."""
    return "x" * n


# --- CommitBuffer ---------------------------------------------------------------------------


def test_a_batch_is_sealed_once_it_reaches_the_byte_limit() -> None:
    buffer = CommitBuffer(flush_bytes=100, flush_seconds=60)
    first, sealed = buffer.append([line(49)], hour=TEN, now=0.0)  # 50 bytes
    assert sealed == [] and first.size == 50
    second, sealed = buffer.append([line(48)], hour=TEN, now=1.0)  # 99 bytes
    assert sealed == [] and second is first
    third, sealed = buffer.append([line(0)], hour=TEN, now=2.0)  # 100 bytes: the limit
    assert sealed == [first] and third is first
    assert first.body() == (line(49) + "\n" + line(48) + "\n\n").encode()
    assert len(first.body()) == 100
    assert buffer.open_batch is None


def test_one_append_stays_in_one_batch_even_above_the_limit() -> None:
    buffer = CommitBuffer(flush_bytes=100, flush_seconds=60)
    batch, sealed = buffer.append([line(99), line(99), line(99)], hour=TEN, now=0.0)
    assert sealed == [batch] and len(batch.lines) == 3 and batch.size == 300


def test_a_batch_is_due_when_its_oldest_event_has_waited_flush_seconds() -> None:
    buffer = CommitBuffer(flush_bytes=10**6, flush_seconds=0.2)
    batch, _ = buffer.append([line(10)], hour=TEN, now=100.0)
    buffer.append([line(10)], hour=TEN, now=100.15)  # younger events do not reset the age
    wall = TEN + timedelta(minutes=5)
    assert buffer.due(now=100.19, wall=wall) == []
    assert buffer.seconds_until_due(now=100.1, wall=wall) == pytest.approx(0.1)
    assert buffer.due(now=100.2, wall=wall) == [batch]
    assert buffer.due(now=100.3, wall=wall) == []  # nothing left open
    assert buffer.seconds_until_due(now=100.3, wall=wall) is None


def test_a_new_receive_hour_seals_the_previous_hours_batch() -> None:
    buffer = CommitBuffer(flush_bytes=10**6, flush_seconds=60)
    ten, _ = buffer.append([line(5)], hour=TEN, now=0.0)
    eleven, sealed = buffer.append([line(6)], hour=ELEVEN, now=0.1)
    assert sealed == [ten] and eleven is not ten
    assert (ten.hour, ten.lines, ten.number) == (TEN, [line(5)], 1)
    assert (eleven.hour, eleven.lines, eleven.number) == (ELEVEN, [line(6)], 2)


def test_the_hour_boundary_seals_an_open_batch_before_its_age_limit() -> None:
    buffer = CommitBuffer(flush_bytes=10**6, flush_seconds=10)
    batch, _ = buffer.append([line(5)], hour=TEN, now=50.0)
    almost = ELEVEN - timedelta(seconds=2)
    assert buffer.seconds_until_due(now=50.0, wall=almost) == pytest.approx(2.0)
    assert buffer.due(now=51.0, wall=ELEVEN - timedelta(microseconds=1)) == []
    assert buffer.due(now=51.0, wall=ELEVEN) == [batch]


def test_seal_all_takes_the_open_batch_and_numbers_keep_rising() -> None:
    buffer = CommitBuffer(flush_bytes=10**6, flush_seconds=60)
    assert buffer.seal_all() == []
    first, _ = buffer.append([line(1)], hour=TEN, now=0.0)
    assert buffer.seal_all() == [first]
    second, _ = buffer.append([line(1)], hour=TEN, now=0.0)
    assert (first.number, second.number) == (1, 2)


def test_receive_hour_truncates_in_utc() -> None:
    local = datetime(2026, 3, 14, 12, 59, 59, 999999, tzinfo=UTC).astimezone(
        ZoneInfo("Asia/Kolkata")
    )
    assert receive_hour(local) == datetime(2026, 3, 14, 12, tzinfo=UTC)


def test_writer_ids_differ_per_log_and_fit_in_a_key() -> None:
    ids = {new_writer_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9-]+-\d+-[0-9a-f]{8}", i) for i in ids)


# --- EventLog with an in-memory writer ----------------------------------------------------------


class MemoryWriter:
    """Stores objects in a dict; can be told to fail or to block."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, key: str, body: bytes) -> None:
        self.gate.wait(10)
        if self.fail:
            raise OSError("storage down")
        self.objects[key] = body


def stored(n: int, received_at: datetime | None = None) -> list[StoredEvent]:
    moment = received_at or datetime.now(UTC)
    return [
        StoredEvent(
            event_id=str(uuid.uuid4()),
            event_type="play",
            video_id=str(uuid.uuid4()),
            session_id=str(uuid.uuid4()),
            user_id=None,
            client_ts=moment,
            received_at=moment,
            position_seconds=float(i),
            region="us-east",
            device="tv",
        )
        for i in range(n)
    ]


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=20))


def lines_of(writer: MemoryWriter) -> list[str]:
    return [line for body in writer.objects.values() for line in body.decode().splitlines()]


def test_appends_within_the_window_share_one_object_written_before_they_return() -> None:
    writer = MemoryWriter()

    async def scenario() -> None:
        log = EventLog(write=writer, flush_bytes=10**6, flush_seconds=0.1, writer_id="w-1")
        await log.start()
        batches = [stored(3) for _ in range(5)]
        await asyncio.gather(*(log.append(batch) for batch in batches))
        # Every append has returned: the object is there, with all 15 lines in order.
        assert len(writer.objects) == 1
        (key,) = writer.objects
        hour = receive_hour(batches[0][0].received_at)
        assert key == f"events/date={hour:%Y-%m-%d}/hour={hour:%H}/w-1-00000001.ndjson"
        assert lines_of(writer) == [e.to_json_line() for batch in batches for e in batch]
        await log.close()

    run(scenario())


def test_the_byte_limit_writes_without_waiting_for_the_age_limit() -> None:
    writer = MemoryWriter()

    async def scenario() -> None:
        log = EventLog(write=writer, flush_bytes=1024, flush_seconds=10, writer_id="w")
        await log.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await log.append(stored(5))  # ~5 x 300 bytes > 1 KiB
        assert loop.time() - started < 5
        assert len(writer.objects) == 1
        await log.close()

    run(scenario())


def test_a_failed_write_fails_every_request_of_that_batch_and_the_next_one_succeeds() -> None:
    writer = MemoryWriter()

    async def scenario() -> None:
        log = EventLog(write=writer, flush_bytes=10**6, flush_seconds=0.05, writer_id="w")
        await log.start()
        writer.fail = True
        results = await asyncio.gather(
            log.append(stored(2)), log.append(stored(2)), return_exceptions=True
        )
        assert all(isinstance(r, EventsNotStored) for r in results)
        assert writer.objects == {}
        writer.fail = False
        good = stored(1)
        await log.append(good)
        assert lines_of(writer) == [good[0].to_json_line()]
        await log.close()

    run(scenario())


def test_close_writes_pending_events_and_answers_their_requests() -> None:
    writer = MemoryWriter()

    async def scenario() -> None:
        log = EventLog(write=writer, flush_bytes=10**6, flush_seconds=10, writer_id="w")
        await log.start()
        events = stored(4)
        waiting = asyncio.create_task(log.append(events))
        await asyncio.sleep(0.05)
        assert not waiting.done() and writer.objects == {}  # held for the age limit
        await log.close()
        await asyncio.wait_for(waiting, 1)
        assert lines_of(writer) == [e.to_json_line() for e in events]
        with pytest.raises(EventsNotStored):
            await log.append(stored(1))

    run(scenario())


def test_begin_shutdown_writes_at_once_and_later_appends_do_not_wait() -> None:
    writer = MemoryWriter()

    async def scenario() -> None:
        log = EventLog(write=writer, flush_bytes=10**6, flush_seconds=10, writer_id="w")
        await log.start()
        waiting = asyncio.create_task(log.append(stored(2)))
        await asyncio.sleep(0.05)
        log.begin_shutdown()
        await asyncio.wait_for(waiting, 1)
        await asyncio.wait_for(log.append(stored(3)), 1)
        assert len(writer.objects) == 2 and len(lines_of(writer)) == 5
        await log.close()

    run(scenario())


def test_a_cancelled_request_does_not_cancel_the_batch_others_wait_on() -> None:
    writer = MemoryWriter()

    async def scenario() -> None:
        log = EventLog(write=writer, flush_bytes=10**6, flush_seconds=0.1, writer_id="w")
        await log.start()
        first, second = stored(1), stored(1)
        doomed = asyncio.create_task(log.append(first))
        survivor = asyncio.create_task(log.append(second))
        await asyncio.sleep(0.01)
        doomed.cancel()
        await survivor
        # The cancelled request's event was appended before it gave up: it is stored
        # too (at least once), never acknowledged.
        assert lines_of(writer) == [first[0].to_json_line(), second[0].to_json_line()]
        await log.close()

    run(scenario())


def test_events_received_in_another_hour_go_to_another_object() -> None:
    writer = MemoryWriter()

    async def scenario() -> None:
        log = EventLog(write=writer, flush_bytes=10**6, flush_seconds=0.1, writer_id="w")
        await log.start()
        late = datetime.now(UTC) - timedelta(hours=1)
        await asyncio.gather(log.append(stored(1, late)), log.append(stored(1)))
        hours = sorted(re.findall(r"hour=(\d\d)", " ".join(writer.objects)))
        assert hours == sorted({f"{late:%H}", f"{datetime.now(UTC):%H}"})
        await log.close()

    run(scenario())
