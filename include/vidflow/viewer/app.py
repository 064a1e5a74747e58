"""The viewer API's FastAPI application: video metadata, the creator's own videos, edits,
watch events, health.

``create_app()`` is the uvicorn factory (``python -m vidflow.viewer`` runs it, one app per
worker process). Its lifespan runs the process's :class:`~vidflow.viewer.event_log.EventLog`
(group commit of events into the events bucket) and writes what is pending on a clean
stop, and the serving reads with their answer cache and its invalidation listener.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Final

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidflow.accounts.security import _secret
from vidflow.config import Settings, get_settings
from vidflow.problems import install_problem_handlers, problem_response
from vidflow.regions import REGION_NAMES
from vidflow.viewer.deps import serving_of, tokens_of
from vidflow.viewer.event_log import EventLog
from vidflow.viewer.fastpath import CachedRecommendations
from vidflow.viewer.routes import router
from vidflow.viewer.web import mount_web_app

log = logging.getLogger(__name__)

EVENTS_PATH: Final = "/v1/events"
#: Generous room per event in a request body (a valid event is about 300 bytes).
EVENT_BYTES_MAX: Final = 2048


def events_body_limit(settings: Settings) -> int:
    """Largest ``POST /v1/events`` body read (413 above): a full batch of large events."""
    return settings.events_max_batch * EVENT_BYTES_MAX + 64 * 1024


class BodyLimit:
    """413 for a request body on ``path`` larger than ``max_bytes``, judged by
    Content-Length when sent and counted while reading otherwise (chunked bodies), so an
    oversized batch is never read into memory whole."""

    def __init__(self, app: ASGIApp, *, path: str, max_bytes: int) -> None:
        self.app = app
        self.path = path
        self.max_bytes = max_bytes

    def _detail(self) -> str:
        return f"the request body exceeds {self.max_bytes} bytes: send fewer events per request"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                response = problem_response(413, "Request body too large", self._detail())
                await response(scope, receive, send)
                return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI re-raises an HTTPException met while reading the body.
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, counting_receive, send)


def _check_settings(settings: Settings) -> None:
    _secret(settings)  # tokens cannot be checked without the signing secret
    unknown = set(settings.edge_urls()) - set(REGION_NAMES)
    if unknown:
        raise RuntimeError(f"VIDFLOW_CDN_EDGE_URLS names unknown regions: {sorted(unknown)}")


def _seal_on_stop_signals(event_log: EventLog) -> Callable[[], None]:
    """On SIGTERM/SIGINT, write pending events at once, then let uvicorn handle the
    signal. uvicorn answers in-flight requests before the lifespan ends; without this, a
    request waiting for its group commit would wait out the age limit first. Returns a
    function restoring the previous handlers (a no-op off the main thread, where signals
    cannot be caught, e.g. under a test client)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in stop_signals}

    def on_signal(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(event_log.begin_shutdown)
        handler = previous[signal.Signals(sig)]
        if callable(handler):
            handler(sig, frame)
        elif handler == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    for sig in stop_signals:
        signal.signal(sig, on_signal)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"
#: How long start-up waits for the invalidation listener before serving anyway (until it
#: listens, cached answers live the unsynced TTL only).
LISTENER_START_SECONDS: Final = 2.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """The viewer API of one process."""
    settings = settings or get_settings()
    _check_settings(settings)
    if not logging.getLogger().handlers:
        # uvicorn's worker processes are fresh interpreters: without this, vidflow's
        # warnings (a failed event write) would go nowhere there.
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        event_log = EventLog.from_settings(settings)
        await event_log.start()
        app.state.event_log = event_log
        tokens_of(app)
        serving = serving_of(app)
        restore_signals = _seal_on_stop_signals(event_log)
        log.info("viewer API writing events as %s", event_log.writer_id)
        await serving.wait_listening(LISTENER_START_SECONDS)
        # What start-up made lives as long as the process: out of the collector's sight,
        # a full collection no longer walks ~140,000 objects (a pause of tens of ms that
        # would show in the answers' p99).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await serving.close()
            await event_log.close()
            restore_signals()

    app = FastAPI(
        title="vidflow viewer API",
        summary="Video metadata, creators' own videos and watch events",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    app.include_router(router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BodyLimit, path=EVENTS_PATH, max_bytes=events_body_limit(settings))
    mount_web_app(app, settings)
    # Outermost (added last): a cached answer skips every other layer.
    app.add_middleware(CachedRecommendations, host=app)
    return app
