"""The upload service's FastAPI application: accounts, tus under ``/files/``, health.

``create_app()`` is the uvicorn factory (``python -m vidflow.uploads`` runs it). The app
also runs the outbox relay in a background thread, so a finished upload reaches the
processing queue even if its immediate publish failed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Final

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidflow.accounts import ratelimit
from vidflow.accounts.routes import router as accounts_router
from vidflow.accounts.security import _secret
from vidflow.catalog.db import get_engine
from vidflow.config import Settings, get_settings
from vidflow.outbox import run_relay
from vidflow.problems import install_problem_handlers
from vidflow.uploads import protocol
from vidflow.uploads.problems import install_domain_handlers
from vidflow.uploads.routes import router as tus_router
from vidflow.uploads.service import UploadBackend

log = logging.getLogger(__name__)

TUS_REQUEST_HEADERS: Final = [
    "Authorization",
    "Content-Type",
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Offset",
    "Upload-Checksum",
    "Upload-Defer-Length",
    "Upload-Concat",
    "X-HTTP-Method-Override",
    "X-Requested-With",
]
TUS_RESPONSE_HEADERS: Final = [
    "Location",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Retry-After",
]


class MethodOverride:
    """tus clients behind proxies that drop PATCH/DELETE send POST with
    ``X-HTTP-Method-Override`` (tus-js-client's ``overridePatchMethod``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for name, value in scope["headers"]:
                if name == b"x-http-method-override":
                    method = value.decode("latin-1").strip().upper()
                    if method in {"PATCH", "DELETE", "HEAD"}:
                        scope = {**scope, "method": method}
                    break
        await self.app(scope, receive, send)


class TusResumableHeader:
    """Every response under /files carries ``Tus-Resumable`` (errors included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/files"):
            await self.app(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"tus-resumable" for name, _ in headers):
                    headers.append((b"tus-resumable", protocol.TUS_VERSION.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_version)


def _check_settings(settings: Settings) -> None:
    _secret(settings)  # refuse to start without a signing secret
    most = protocol.MAX_PARTS * protocol.MIN_PART_SIZE
    if settings.upload_max_size > most:
        raise RuntimeError(
            f"VIDFLOW_UPLOAD_MAX_SIZE {settings.upload_max_size} exceeds what S3 multipart "
            f"can hold with 5 MiB parts ({most} bytes)"
        )


#: Seconds between two prunes of the sign-in counters whose window is over.
AUTH_PRUNE_EVERY: Final = 600.0


def prune_auth_attempts(*, settings: Settings, stop: threading.Event) -> None:
    """Delete the sign-in counters whose window and block are over, every few minutes."""
    window = timedelta(seconds=settings.auth_window_seconds)
    while not stop.wait(AUTH_PRUNE_EVERY):
        try:
            with get_engine(settings).begin() as conn:
                ratelimit.prune(conn, window=window)
        except Exception:
            log.exception("pruning auth_attempts failed")


def create_app(settings: Settings | None = None, *, relay: bool = True) -> FastAPI:
    """The upload service. ``relay=False`` leaves the outbox to another process."""
    settings = settings or get_settings()
    _check_settings(settings)
    backend = UploadBackend.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        threads = []
        if relay:
            for name, target in (("outbox-relay", run_relay), ("auth-prune", prune_auth_attempts)):
                thread = threading.Thread(
                    target=target,
                    kwargs={"settings": settings, "stop": stop},
                    name=name,
                    daemon=True,
                )
                thread.start()
                threads.append(thread)
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
            backend.close()

    app = FastAPI(
        title="vidflow upload service",
        summary="tus 1.0.0 resumable uploads into S3 multipart, with accounts",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.backend = backend
    install_problem_handlers(app)
    install_domain_handlers(app)
    app.include_router(accounts_router)
    app.include_router(tus_router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(TusResumableHeader)
    origins = [o.strip() for o in settings.upload_cors_origins.split(",") if o.strip()]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "HEAD", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=TUS_REQUEST_HEADERS,
        expose_headers=TUS_RESPONSE_HEADERS,
        max_age=86400,
    )
    app.add_middleware(MethodOverride)
    return app
