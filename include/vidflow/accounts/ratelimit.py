"""Sign-in rate limits shared by every upload-API process, kept in the catalog.

Each limited key (``login:account:<user id or name>``, ``login:client:<address>``,
``register:client:<address>``) has one row in ``auth_attempts``: when its window began,
how many attempts counted in it, and until when the key is refused. One atomic upsert
per counted attempt keeps the count right under any number of processes; a key that
reaches its limit is refused until its window ends. Refusal is checked *before* a
password is hashed or verified, so a blocked caller costs one indexed read and no argon2.

Logins count failures (a right password resets its account's count); registrations
count every attempt, since each one hashes a password.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import Connection, delete, func, or_, select, text

from vidflow.accounts.errors import RateLimited
from vidflow.catalog.models import AuthAttempt
from vidflow.config import Settings

#: Longest stored key (the column is String(400)); longer logins are cut, still unique
#: enough to count and never an error.
KEY_MAX: Final = 400

__all__ = ["KEY_MAX", "Limit", "RateLimited", "check", "count", "prune", "reset"]


@dataclass(frozen=True)
class Limit:
    """At most ``max_count`` counted attempts of ``key`` per window."""

    key: str
    max_count: int


def login_limits(settings: Settings, *, account: str, client: str) -> list[Limit]:
    return [
        Limit(_key("login:account:", account), settings.auth_account_max_failures),
        Limit(_key("login:client:", client), settings.auth_client_max_failures),
    ]


def registration_limits(settings: Settings, *, client: str) -> list[Limit]:
    return [Limit(_key("register:client:", client), settings.auth_client_max_registrations)]


def _key(prefix: str, value: str) -> str:
    return (prefix + value.strip().lower())[:KEY_MAX]


def _now() -> datetime:
    return datetime.now(UTC)


def check(conn: Connection, limits: Sequence[Limit], *, now: datetime | None = None) -> None:
    """Raise :class:`RateLimited` if any key is blocked right now (one indexed read)."""
    now = now or _now()
    blocked = conn.scalar(
        select(func.max(AuthAttempt.blocked_until)).where(
            AuthAttempt.key.in_([limit.key for limit in limits]),
            AuthAttempt.blocked_until > now,
        )
    )
    if blocked is not None:
        raise RateLimited(max(1, math.ceil((blocked - now).total_seconds())))


_COUNT = text(
    """
    INSERT INTO auth_attempts AS a (key, window_start, failures, blocked_until)
    VALUES (:key, :now, 1, CASE WHEN :max_count <= 1 THEN :now + :window END)
    ON CONFLICT (key) DO UPDATE SET
        window_start = CASE WHEN a.window_start <= :now - :window THEN :now
                            ELSE a.window_start END,
        failures = CASE WHEN a.window_start <= :now - :window THEN 1
                        ELSE a.failures + 1 END,
        blocked_until = CASE
            WHEN a.window_start <= :now - :window THEN
                CASE WHEN :max_count <= 1 THEN :now + :window END
            WHEN a.failures + 1 >= :max_count THEN a.window_start + :window
            ELSE a.blocked_until END
    RETURNING failures
    """
)


def count(
    conn: Connection, limits: Sequence[Limit], *, window: timedelta, now: datetime | None = None
) -> None:
    """Count one attempt against every key (the caller commits). A key whose count
    reaches its limit is blocked until its window ends."""
    now = now or _now()
    for limit in sorted(limits, key=lambda lim: lim.key):  # one lock order: no deadlocks
        conn.execute(
            _COUNT, {"key": limit.key, "now": now, "window": window, "max_count": limit.max_count}
        )


def reset(conn: Connection, keys: Sequence[str]) -> None:
    """Forget the counts of ``keys`` (an account's failures after a right password)."""
    conn.execute(delete(AuthAttempt).where(AuthAttempt.key.in_(list(keys))))


def prune(conn: Connection, *, window: timedelta, now: datetime | None = None) -> int:
    """Delete rows whose window and block are over; returns how many."""
    now = now or _now()
    result = conn.execute(
        delete(AuthAttempt).where(
            AuthAttempt.window_start <= now - window,
            or_(AuthAttempt.blocked_until.is_(None), AuthAttempt.blocked_until <= now),
        )
    )
    return int(result.rowcount)
