"""The viewer web app, served by the viewer API as static files at ``/app/``.

The app (``webapp/public/`` in the repository) is plain ES modules with no build step;
its two players come from npm (``webapp/package.json``: hls.js, tus-js-client) and
``scripts/setup.sh`` copies their dist files into ``webapp/public/vendor/``. Nothing is
loaded from another site: the pages carry a Content-Security-Policy that allows only this
origin, the upload API, the region edges and the media base URL.

``mount_web_app(app, settings)`` adds:

- ``GET /`` -> redirect to ``/app/``;
- ``GET /app/config.json``: what the browser needs from the settings (the upload API's
  URL, the regions and devices);
- ``/app/...``: the static files (``index.html`` for ``/app/``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidflow.config import REPO_ROOT, Settings
from vidflow.processing.objects import media_base_url
from vidflow.regions import DEVICES, REGION_NAMES

log = logging.getLogger(__name__)

APP_PREFIX: Final = "/app"
WEBAPP_DIR: Final = REPO_ROOT / "webapp" / "public"
#: What scripts/setup.sh copies from node_modules; the app cannot play or upload without.
VENDOR_FILES: Final = ("vendor/hls.mjs", "vendor/tus.min.js")


def upload_url(settings: Settings) -> str:
    """The upload API's base URL as a browser reaches it."""
    configured = settings.webapp_upload_url.strip().rstrip("/")
    return configured or f"http://{settings.bind_host}:{settings.upload_port}"


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: Settings) -> str:
    """Only this origin, the upload API, the edges and the media base URL; no inline
    script, no other site (so a CDN link anywhere in the app would fail loudly)."""
    media = sorted(
        {
            origin
            for origin in (
                _origin(u) for u in (*settings.edge_urls().values(), media_base_url(settings))
            )
            if origin
        }
    )
    upload = _origin(upload_url(settings))
    connect = ["'self'", *([upload] if upload else []), *media]
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: {' '.join(media)}".rstrip(),
            f"connect-src {' '.join(connect)}",
            # hls.js feeds the <video> through Media Source (a blob: URL) and runs its
            # transmuxer in a blob: worker.
            f"media-src 'self' blob: {' '.join(media)}".rstrip(),
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        )
    )


class WebAppHeaders:
    """Security and caching headers on every response under ``/app/``. The files change
    with the code, so browsers revalidate (ETag) instead of keeping a stale copy."""

    def __init__(self, app: ASGIApp, *, csp: str) -> None:
        self.app = app
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != APP_PREFIX and not path.startswith(APP_PREFIX + "/"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = self.csp
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                headers.setdefault("Cache-Control", "no-cache")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def missing_vendor_files(directory: Path = WEBAPP_DIR) -> list[str]:
    return [name for name in VENDOR_FILES if not (directory / name).is_file()]


def mount_web_app(app: FastAPI, settings: Settings, *, directory: Path = WEBAPP_DIR) -> None:
    """Serve the web app at ``/app/`` (``/`` redirects there)."""
    if not (directory / "index.html").is_file():
        log.warning("web app not served: %s has no index.html", directory)
        return
    missing = missing_vendor_files(directory)
    if missing:
        # The API stays up; the page itself tells the viewer what is missing.
        log.warning("web app players missing (%s): run scripts/setup.sh", ", ".join(missing))
    browser_config = {
        "upload_url": upload_url(settings),
        "regions": list(REGION_NAMES),
        "devices": list(DEVICES),
        "default_region": REGION_NAMES[0],
    }

    @app.get("/", include_in_schema=False)
    def to_web_app() -> RedirectResponse:
        return RedirectResponse(f"{APP_PREFIX}/", status_code=307)

    @app.get(f"{APP_PREFIX}/config.json", include_in_schema=False)
    def web_app_config() -> JSONResponse:
        return JSONResponse(browser_config)

    app.mount(APP_PREFIX, StaticFiles(directory=directory, html=True), name="webapp")
    app.add_middleware(WebAppHeaders, csp=content_security_policy(settings))
