"""Password hashing (argon2id) and the upload API's JWT bearer tokens.

The signing secret is ``VIDFLOW_JWT_SECRET`` (generated into ``.local/secrets.env`` for a
local checkout). Tokens are HS256, short-lived, and carry the user id in ``sub``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from vidflow.config import Settings

JWT_ALGORITHM: Final = "HS256"
JWT_ISSUER: Final = "vidflow"
JWT_AUDIENCE: Final = "vidflow-upload"
#: Seconds of clock skew allowed when checking a token's expiry.
TOKEN_LEEWAY_SECONDS: Final = 5

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane). The library default takes 64 MiB
# per hash, which would dominate the upload service's memory under concurrent logins.
_HASHER: Final = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class InvalidToken(Exception):
    """The bearer token is missing, malformed, expired or not ours."""


@dataclass(frozen=True)
class TokenClaims:
    """Who a valid token speaks for."""

    user_id: uuid.UUID
    username: str
    expires_at: datetime


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Does ``password`` match ``password_hash``? Never raises on a bad hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def dummy_password_hash() -> str:
    """A hash to verify against when the user does not exist, so a login takes as long
    for an unknown name as for a wrong password (no user enumeration by timing)."""
    return _HASHER.hash("not-a-real-password-" + uuid.uuid4().hex)


def _secret(settings: Settings) -> str:
    secret = settings.jwt_secret.get_secret_value()
    if len(secret) < 32:
        raise RuntimeError(
            "VIDFLOW_JWT_SECRET must be set to at least 32 characters "
            "(`make up` generates one into .local/secrets.env)"
        )
    return secret


def create_access_token(
    *, settings: Settings, user_id: uuid.UUID, username: str, now: datetime | None = None
) -> tuple[str, int]:
    """A signed token for ``user_id``; returns it and its lifetime in seconds."""
    issued = now or datetime.now(UTC)
    ttl = settings.jwt_ttl_seconds
    claims = {
        "sub": str(user_id),
        "name": username,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "iat": issued,
        "nbf": issued,
        "exp": issued + timedelta(seconds=ttl),
    }
    return jwt.encode(claims, _secret(settings), algorithm=JWT_ALGORITHM), ttl


def decode_access_token(token: str, *, settings: Settings) -> TokenClaims:
    """The claims of a valid token; raises :class:`InvalidToken` with the reason."""
    try:
        claims = jwt.decode(
            token,
            _secret(settings),
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            issuer=JWT_ISSUER,
            options={"require": ["sub", "exp", "iat", "iss", "aud"]},
            leeway=TOKEN_LEEWAY_SECONDS,
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the token has expired; log in again") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("the token is invalid") from exc
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise InvalidToken("the token is invalid") from exc
    return TokenClaims(
        user_id=user_id,
        username=str(claims.get("name", "")),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
    )
