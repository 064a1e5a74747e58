"""Streaming one request body into S3 multipart parts through a fixed buffer."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from anyio import CancelScope

from vidflow.uploads.protocol import (
    MAX_PARTS,
    MIN_PART_SIZE,
    Hasher,
    UploadTooLarge,
)
from vidflow.uploads.state import UploadRow, in_thread
from vidflow.uploads.store import (
    MultipartStore,
    StoredPart,
    new_parked_key,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Written:
    """What one request body left in S3, to be committed."""

    parts: list[StoredPart]
    parked_key: str | None
    parked_size: int


class ChunkWriter:
    """Streams one request body into S3 parts through a fixed buffer.

    Memory: one buffer of ``part_size`` plus at most ``concurrency`` parts in flight,
    whatever the client's Content-Length says.
    """

    def __init__(
        self,
        *,
        store: MultipartStore,
        row: UploadRow,
        part_size: int,
        concurrency: int,
        first_part: int,
        parked: bytes,
        checksum: Hasher | None,
        digest: Hasher | None,
    ) -> None:
        assert row.s3_multipart_id is not None
        self._store = store
        self._upload_id = row.upload_id
        self._key = row.s3_key
        self._multipart_id = row.s3_multipart_id
        self._part_size = part_size
        self._concurrency = concurrency
        self._next_part = first_part
        self._remaining = row.length - row.offset
        self._buffer = memoryview(bytearray(part_size))
        self._filled = len(parked)
        self._buffer[: self._filled] = parked
        self._in_flight: set[asyncio.Task[StoredPart]] = set()
        self._written: list[StoredPart] = []
        self.checksum = checksum
        self.digest = digest
        self.received = 0

    async def feed(self, data: bytes) -> None:
        size = len(data)
        if self.received + size > self._remaining:
            raise UploadTooLarge(
                f"the body runs past Upload-Length: only {self._remaining} more byte(s) fit"
            )
        self.received += size
        if self.checksum is not None:
            self.checksum.update(data)
        if self.digest is not None:
            self.digest.update(data)
        view, pos = memoryview(data), 0
        while pos < size:
            take = min(self._part_size - self._filled, size - pos)
            self._buffer[self._filled : self._filled + take] = view[pos : pos + take]
            self._filled += take
            pos += take
            if self._filled == self._part_size:
                await self._submit(bytes(self._buffer))
                self._filled = 0

    async def _submit(self, data: bytes) -> None:
        while len(self._in_flight) >= self._concurrency:
            done, self._in_flight = await asyncio.wait(
                self._in_flight, return_when=asyncio.FIRST_COMPLETED
            )
            self._written.extend(task.result() for task in done)
        number = self._next_part
        if number > MAX_PARTS:
            raise UploadTooLarge(f"the upload needs more than {MAX_PARTS} parts")
        self._next_part += 1
        upload = self._store.upload_part
        self._in_flight.add(
            asyncio.ensure_future(in_thread(upload, self._key, self._multipart_id, number, data))
        )

    async def finish(self, *, final: bool) -> Written:
        """Write the buffered tail (as the last part, as a part of its own if S3 allows,
        or as a parked piece) and wait for every part."""
        tail = bytes(self._buffer[: self._filled])
        parked_key: str | None = None
        if tail and (final or len(tail) >= MIN_PART_SIZE):
            await self._submit(tail)
        elif tail:
            parked_key = new_parked_key(self._upload_id)
            await in_thread(self._store.put, parked_key, tail)
        while self._in_flight:
            done, self._in_flight = await asyncio.wait(self._in_flight)
            self._written.extend(task.result() for task in done)
        parts = sorted(self._written, key=lambda p: p.number)
        return Written(parts, parked_key, len(tail) if parked_key else 0)

    async def abandon(self) -> None:
        """Wait for the parts in flight and forget them: nothing of this body commits."""
        with CancelScope(shield=True):
            if self._in_flight:
                await asyncio.wait(self._in_flight)
            for task in self._in_flight:
                if not task.cancelled():
                    task.exception()  # retrieved, so asyncio does not log it
            self._in_flight = set()
