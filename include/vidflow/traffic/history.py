"""``history`` mode: days of events written straight to the events bucket (or a directory).

Lines and keys are exactly what the viewer API writes: :func:`stored_lines` per event,
objects under :func:`vidflow.events.event_object_key` of their *receive* hour. Late events
(a phone that was offline) therefore land in a later hour's folder, as they would live.

The writer id names the run (a hash of the population and the number of days) and the
simulated day, so a re-run with the same arguments writes the same keys with the same
bytes (idempotent), and runs with other arguments never overwrite each other's objects.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np

from vidflow.config import Settings
from vidflow.events import event_object_key
from vidflow.traffic.model import Population
from vidflow.traffic.simulate import simulate, stored_lines

#: Lines per object: ~330 bytes a line, so objects of about 6 MB.
LINES_PER_OBJECT: Final = 20_000
WRITER_THREADS: Final = 8

Say = Callable[[str], None]
Put = Callable[[str, bytes], None]


@dataclass
class HistoryResult:
    events: int = 0
    objects: int = 0
    bytes: int = 0
    late_events: int = 0
    seconds: float = 0.0
    keys: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def run_tag(population: Population) -> str:
    """Short stable name of a history run: same population and days, same tag."""
    key = "|".join([str(population.namespace), str(population.days), *population.catalog.video_ids])
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def s3_put(settings: Settings) -> Put:
    from vidflow.storage import s3_client

    client = s3_client(settings)  # boto3 clients are thread-safe once built
    bucket = settings.bucket_events

    def put(key: str, body: bytes) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-ndjson")

    return put


def directory_put(root: Path) -> Put:
    def put(key: str, body: bytes) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(body)
        tmp.replace(path)  # readers never see half an object

    return put


def day_objects(
    lines: list[str], hours: np.ndarray, writer_id: str, per_object: int = LINES_PER_OBJECT
) -> list[tuple[str, bytes]]:
    """Group receive-ordered lines into objects: per receive hour, ``per_object`` lines
    each, numbered from 0 within the hour."""
    objects = []
    bounds = np.flatnonzero(np.diff(hours)) + 1
    starts = [0, *bounds.tolist()]
    ends = [*bounds.tolist(), len(lines)]
    for lo, hi in zip(starts, ends, strict=True):
        if lo == hi:
            continue
        hour = datetime.fromtimestamp(int(hours[lo]), UTC)
        for seq, at in enumerate(range(lo, hi, per_object)):
            body = ("\n".join(lines[at : min(at + per_object, hi)]) + "\n").encode()
            objects.append((event_object_key(hour, writer_id, seq), body))
    return objects


def write_history(
    population: Population,
    put: Put,
    say: Say = print,
    *,
    threads: int = WRITER_THREADS,
    per_object: int = LINES_PER_OBJECT,
) -> HistoryResult:
    """Simulate every day of ``population`` and write its objects through ``put``."""
    result = HistoryResult()
    tag = run_tag(population)
    started = time.perf_counter()
    # Bounded in-flight writes: a day is generated while the previous one uploads.
    slots = threading.BoundedSemaphore(threads * 2)
    failures: list[BaseException] = []

    def done(future: Future[None]) -> None:
        slots.release()
        if future.exception() is not None:
            failures.append(future.exception())  # type: ignore[arg-type]

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="history") as pool:
        for day in simulate(population):
            lines, hours = stored_lines(population, day)
            writer_id = f"history-{tag}-d{day.index:03d}"
            late = int((day.events.received_ts - day.events.client_ts > 3600).sum())
            for key, body in day_objects(lines, hours, writer_id, per_object):
                if failures:
                    raise failures[0]
                slots.acquire()
                pool.submit(put, key, body).add_done_callback(done)
                result.keys.append(key)
                result.objects += 1
                result.bytes += len(body)
            result.events += len(lines)
            result.late_events += late
            elapsed = time.perf_counter() - started
            say(
                f"day {day.index + 1}/{population.days} "
                f"({datetime.fromtimestamp(day.start_ts, UTC):%Y-%m-%d}): "
                f"{len(day.sessions)} sessions, {len(day.playbacks)} playbacks, "
                f"{len(lines)} events ({late} late); total {result.events} events in "
                f"{elapsed:.1f} s"
            )
    if failures:
        raise failures[0]
    result.seconds = time.perf_counter() - started
    return result
