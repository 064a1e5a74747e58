"""Dependencies of the viewer API beyond the shared ones in :mod:`vidflow.accounts.deps`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vidflow.accounts.deps import NotAuthenticated, SettingsDep, get_current_user
from vidflow.accounts.security import InvalidToken, TokenClaims, decode_access_token
from vidflow.viewer.event_log import EventLog
from vidflow.viewer.recommendations import Serving


def get_optional_user(
    settings: SettingsDep,
    authorization: Annotated[
        str | None,
        Header(description="Optional `Bearer <token>`; without it the request is anonymous."),
    ] = None,
) -> TokenClaims | None:
    """The caller when a token is sent, None when no Authorization header is; a header
    that is present but not a valid bearer token is a 401, never silently anonymous."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
    try:
        return decode_access_token(token.strip(), settings=settings)
    except InvalidToken as exc:
        raise NotAuthenticated(str(exc)) from exc


OptionalUser = Annotated[TokenClaims | None, Depends(get_optional_user)]


def get_event_log(request: Request) -> EventLog:
    event_log: EventLog = request.app.state.event_log
    return event_log


EventLogDep = Annotated[EventLog, Depends(get_event_log)]


# The serving routes are async and so are their dependencies: a sync dependency costs a
# thread-pool hop per request, which dominated the CPU of a recommendations answer.
_viewer_bearer = HTTPBearer(auto_error=False, description="A token from POST /v1/auth/token")


async def get_serving(request: Request) -> Serving:
    """The app's serving reads, made on first use (on the event loop: no race); their
    degraded-mode caches live as long as the app."""
    serving: Serving | None = getattr(request.app.state, "serving", None)
    if serving is None:
        serving = request.app.state.serving = Serving(request.app.state.settings)
    return serving


#: Verified tokens kept per app. A viewer sends the same token with every request
#: of its lifetime; verifying an HS256 JWT costs more than the rest of the request's
#: Python work, and a token's verdict changes only when it expires (checked on every hit).
VERIFIED_TOKENS_MAX = 50_000


async def get_viewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_viewer_bearer)],
) -> TokenClaims:
    """The signed-in caller (401 otherwise), checked on the event loop."""
    verified: dict[str, TokenClaims] | None = getattr(request.app.state, "verified_tokens", None)
    if verified is None:
        verified = request.app.state.verified_tokens = {}
    token = credentials.credentials if credentials else None
    claims = verified.get(token) if token else None
    if claims is not None and claims.expires_at > datetime.now(UTC):
        return claims
    claims = get_current_user(request.app.state.settings, credentials)
    if token:
        if len(verified) >= VERIFIED_TOKENS_MAX:
            verified.clear()
        verified[token] = claims
    return claims


ServingDep = Annotated[Serving, Depends(get_serving)]
Viewer = Annotated[TokenClaims, Depends(get_viewer)]
