"""Dependencies of the viewer API beyond the shared ones in :mod:`vidflow.accounts.deps`."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, Header, Request

from vidflow.accounts.deps import NotAuthenticated, SettingsDep
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


_serving_lock = threading.Lock()


def get_serving(request: Request, settings: SettingsDep) -> Serving:
    """The app's serving reads (made on first use: its caches live as long as the app)."""
    serving: Serving | None = getattr(request.app.state, "serving", None)
    if serving is None:
        with _serving_lock:
            serving = getattr(request.app.state, "serving", None)
            if serving is None:
                serving = request.app.state.serving = Serving(settings)
    return serving


ServingDep = Annotated[Serving, Depends(get_serving)]
