"""FastAPI dependencies shared by the vidflow HTTP services, as ``Annotated`` aliases.

``SettingsDep`` is the settings object the app was created with; ``SessionDep`` a catalog
session (the service functions commit); ``CurrentUser`` the claims of the request's
bearer token, checked without a database round trip. :class:`TokenCache` keeps verified
tokens for a short while, for the endpoints where verifying dominates an answer's cost.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Annotated, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from vidflow.accounts.security import (
    TOKEN_LEEWAY_SECONDS,
    InvalidToken,
    TokenClaims,
    decode_access_token,
)
from vidflow.catalog.db import get_engine
from vidflow.config import Settings
from vidflow.problems import Problem


class NotAuthenticated(Problem):
    status = 401
    title = "Not authenticated"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="vidflow"'})


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with Session(get_engine(settings), expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_client_address(request: Request) -> str:
    """The caller's address (behind a proxy, uvicorn's --forwarded-allow-ips makes this
    the forwarded one)."""
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(get_client_address)]

_bearer = HTTPBearer(auto_error=False, description="A token from POST /v1/auth/token")


def get_current_user(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenClaims:
    if credentials is None:
        raise NotAuthenticated("an 'Authorization: Bearer <token>' header is required")
    try:
        return decode_access_token(credentials.credentials, settings=settings)
    except InvalidToken as exc:
        raise NotAuthenticated(str(exc)) from exc


CurrentUser = Annotated[TokenClaims, Depends(get_current_user)]


#: Verified tokens one process keeps (a viewer sends the same token with every request).
TOKEN_CACHE_ENTRIES: Final = 50_000
#: Share of the TTL by which a verification's reuse is shortened at random.
TOKEN_TTL_JITTER: Final = 0.2


class TokenCache:
    """Verified bearer tokens of one process, each for ``ttl_seconds`` at most and never
    past its expiry (with the same leeway as :func:`decode_access_token`): verifying an
    HS256 JWT costs more than serving a cached answer. A token that is refused is never
    kept, so it is checked again on every request. Single-threaded use (the event loop)."""

    def __init__(
        self,
        *,
        ttl_seconds: float,
        entries: int = TOKEN_CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._rng = rng
        self.entries = entries
        self._clock = clock
        self._wallclock = wallclock
        # token -> (claims, valid until (wall clock), verified at (monotonic))
        self._verified: OrderedDict[str, tuple[TokenClaims, float, float]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCache:
        return cls(ttl_seconds=settings.viewer_token_cache_seconds)

    def get(self, token: str) -> TokenClaims | None:
        """The claims of ``token`` when it was verified recently and has not expired."""
        entry = self._verified.get(token)
        if entry is None:
            return None
        claims, valid_until, verified_at = entry
        if self._wallclock() >= valid_until or self._clock() - verified_at > self.ttl_seconds:
            del self._verified[token]
            return None
        return claims

    def verify(self, token: str, *, settings: Settings) -> TokenClaims:
        """The claims of a valid token, from the cache or verified now; raises
        :class:`InvalidToken` (never cached) otherwise."""
        claims = self.get(token)
        if claims is not None:
            return claims
        claims = decode_access_token(token, settings=settings)
        if self.ttl_seconds > 0:
            valid_until = claims.expires_at.timestamp() + TOKEN_LEEWAY_SECONDS
            # kept for 80-100 % of the TTL, so tokens verified together (many viewers
            # after a restart) are not all verified again in the same second
            verified_at = self._clock() - TOKEN_TTL_JITTER * self.ttl_seconds * self._rng()
            self._verified[token] = (claims, valid_until, verified_at)
            if len(self._verified) > self.entries:
                self._verified.popitem(last=False)
        return claims

    def __len__(self) -> int:
        return len(self._verified)
