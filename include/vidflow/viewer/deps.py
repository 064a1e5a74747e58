"""Dependencies of the viewer API beyond the shared ones in :mod:`vidflow.accounts.deps`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vidflow.accounts.deps import NotAuthenticated, SettingsDep, TokenCache
from vidflow.accounts.security import InvalidToken, TokenClaims
from vidflow.viewer.event_log import EventLog
from vidflow.viewer.recommendations import Serving


async def get_optional_user(
    request: Request,
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
        return tokens_of(request.app).verify(token.strip(), settings=settings)
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


def serving_of(app: FastAPI) -> Serving:
    """The app's serving reads, made and started on first use (on the event loop: no
    race); the lifespan makes them at start-up. They live as long as the app."""
    serving: Serving | None = getattr(app.state, "serving", None)
    if serving is None:
        serving = app.state.serving = Serving(app.state.settings)
        serving.start()
    return serving


def tokens_of(app: FastAPI) -> TokenCache:
    """The app's verified-token cache (made on first use)."""
    tokens: TokenCache | None = getattr(app.state, "tokens", None)
    if tokens is None:
        tokens = app.state.tokens = TokenCache.from_settings(app.state.settings)
    return tokens


async def get_serving(request: Request) -> Serving:
    return serving_of(request.app)


async def get_viewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_viewer_bearer)],
) -> TokenClaims:
    """The signed-in caller (401 otherwise), checked on the event loop; a token verified
    in the last VIDFLOW_VIEWER_TOKEN_CACHE_SECONDS is not verified again (until expiry)."""
    if credentials is None:
        raise NotAuthenticated("an 'Authorization: Bearer <token>' header is required")
    try:
        return tokens_of(request.app).verify(
            credentials.credentials, settings=request.app.state.settings
        )
    except InvalidToken as exc:
        raise NotAuthenticated(str(exc)) from exc


ServingDep = Annotated[Serving, Depends(get_serving)]
Viewer = Annotated[TokenClaims, Depends(get_viewer)]
