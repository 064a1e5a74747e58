"""A PATCH body read with an idle and a total time limit.

A client that sends its headers and then trickles (or stops) must not hold server
resources for ever. :class:`TimedBody` ends the body with :class:`BodyStalled` when no
bytes arrive for ``idle`` seconds or the whole body takes longer than ``total``; and
:meth:`TimedBody.prefetch` reads the first bytes *before* the write path takes the
upload's lock connection, so a client that never gets going holds no catalog
connection at all (only a read-ahead of at most ``FIRST_WINDOW`` bytes and one chunk).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Final

#: Bytes a body must deliver before its PATCH takes a lock connection (or end sooner).
FIRST_WINDOW: Final = 64 * 1024


class BodyStalled(Exception):
    """The body sent nothing for the idle limit, or ran past the total limit."""


class TimedBody:
    """An async iterator over a request body that enforces the time limits."""

    def __init__(self, body: AsyncIterator[bytes], *, idle: float, total: float) -> None:
        self._body = body.__aiter__()
        self._idle = idle
        self._total = total
        self._deadline = time.monotonic() + total
        self._ahead: deque[bytes] = deque()
        self._pending_error: BaseException | None = None
        self._ended = False

    def _stalled(self, why: str) -> BodyStalled:
        return BodyStalled(why)

    async def _receive(self) -> bytes:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise self._stalled(f"the body took longer than {self._total:g} s")
        idle = remaining >= self._idle
        try:
            async with asyncio.timeout(min(self._idle, remaining)):
                return await self._body.__anext__()
        except TimeoutError:
            if idle:
                raise self._stalled(f"the body sent nothing for {self._idle:g} s") from None
            raise self._stalled(f"the body took longer than {self._total:g} s") from None

    async def prefetch(self, size: int = FIRST_WINDOW) -> int:
        """Read ahead until ``size`` bytes arrived or the body ended or failed (the failure
        is raised to the consumer after the bytes read ahead). Returns the bytes held."""
        held = sum(len(b) for b in self._ahead)
        while held < size and not self._ended and self._pending_error is None:
            try:
                data = await self._receive()
            except StopAsyncIteration:
                self._ended = True
            except Exception as exc:  # a stall, or the client went away
                self._pending_error = exc
            else:
                if data:
                    self._ahead.append(data)
                    held += len(data)
        return held

    @property
    def stalled(self) -> BodyStalled | None:
        """The stall met while reading ahead, if any (before the consumer sees it)."""
        error = self._pending_error
        return error if isinstance(error, BodyStalled) else None

    def __aiter__(self) -> TimedBody:
        return self

    async def __anext__(self) -> bytes:
        if self._ahead:
            return self._ahead.popleft()
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            self._ended = True
            raise error
        if self._ended:
            raise StopAsyncIteration
        return await self._receive()
