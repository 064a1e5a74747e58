"""FastAPI dependencies shared by the vidflow HTTP services, as ``Annotated`` aliases.

``SettingsDep`` is the settings object the app was created with; ``SessionDep`` a catalog
session (the service functions commit); ``CurrentUser`` the claims of the request's
bearer token, checked without a database round trip.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from vidflow.accounts.security import InvalidToken, TokenClaims, decode_access_token
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
