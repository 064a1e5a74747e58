"""A small pool of async, autocommit catalog connections for the serving reads.

The serving endpoints answer from one statement each. Running it on the event loop
(psycopg's async connection) instead of in a thread, and without SQLAlchemy's statement
layer, roughly halves the CPU of an answer: at 1,000 answers a second on two cores, the
Python work per request is the budget. Connections are opened on demand up to ``size``,
with a connect timeout and a statement timeout, and reused last-in first-out; one that
failed is dropped. The pool belongs to one event loop (one per API process).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from vidflow.config import Settings

#: Errors that mean "the catalog is unavailable now" (not a bug in a statement).
UNAVAILABLE: Final = (psycopg.OperationalError, psycopg.InterfaceError, TimeoutError)


def serving_conninfo(
    settings: Settings, *, application_name: str = "vidflow-viewer-serving"
) -> str:
    timeout_ms = settings.recs_catalog_timeout_ms
    return make_conninfo(
        host=settings.pg_host,
        port=settings.pg_port,
        dbname=settings.pg_catalog_db,
        user=settings.pg_user,
        password=settings.pg_password.get_secret_value(),
        # libpq counts whole seconds, at least 2.
        connect_timeout=max(2, math.ceil(timeout_ms / 1000)),
        options=f"-c statement_timeout={timeout_ms}",
        application_name=application_name,
    )


class ReadPool:
    """Up to ``size`` async autocommit connections, opened on demand."""

    def __init__(self, conninfo: str, *, size: int, wait_seconds: float) -> None:
        self.conninfo = conninfo
        self.size = size
        self.wait_seconds = wait_seconds
        self._idle: list[psycopg.AsyncConnection[dict[str, Any]]] = []
        self._opened = 0
        self._returned = asyncio.Condition()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        size: int = 10,
        application_name: str = "vidflow-viewer-serving",
    ) -> ReadPool:
        return cls(
            serving_conninfo(settings, application_name=application_name),
            size=size,
            wait_seconds=settings.recs_catalog_timeout_ms / 1000,
        )

    async def _take(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        async with asyncio.timeout(self.wait_seconds):
            async with self._returned:
                while not self._idle and self._opened >= self.size:
                    await self._returned.wait()
                if self._idle:
                    return self._idle.pop()
                self._opened += 1
        try:
            return await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, row_factory=dict_row
            )
        except BaseException:
            await self._give_back(None)
            raise

    async def _give_back(self, conn: psycopg.AsyncConnection[dict[str, Any]] | None) -> None:
        async with self._returned:
            if conn is None or conn.closed or conn.broken:
                self._opened -= 1
            else:
                self._idle.append(conn)
            self._returned.notify()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        conn = await self._take()
        healthy = False
        try:
            yield conn
            healthy = True
        finally:
            if not healthy:
                await conn.close()
            await self._give_back(conn if healthy else None)

    async def close(self) -> None:
        """Close the idle connections (those in use close when given back broken)."""
        async with self._returned:
            idle, self._idle = self._idle, []
            self._opened -= len(idle)
        for conn in idle:
            await conn.close()

    async def one(self, statement: str, params: dict[str, Any]) -> dict[str, Any]:
        """The single row of ``statement`` (prepared on the connection)."""
        async with self.connection() as conn:
            cursor = await conn.execute(statement, params, prepare=True)
            row = await cursor.fetchone()
        if row is None:
            raise RuntimeError("the serving statement returned no row")
        return row
