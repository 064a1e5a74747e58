"""HTTP problem details (RFC 9457) for vidflow's HTTP services.

Service layers raise a :class:`Problem` subclass that names the HTTP status it maps to;
:func:`install_problem_handlers` turns it, request-validation errors, a catalog outage
(503 with ``Retry-After``, never 500) and anything unexpected into an
``application/problem+json`` response with a clear message and never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
#: Seconds a client is asked to wait when the catalog cannot be reached.
CATALOG_RETRY_AFTER = 5
#: What the database driver raises when the catalog is down, unreachable or saturated.
CATALOG_OUTAGE = (OperationalError, InterfaceError, PoolTimeout)


class Problem(Exception):
    """An error a client caused or can act on; ``status`` is its HTTP status."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers: dict[str, str] = dict(headers or {})


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    head: bool = False,
) -> JSONResponse:
    """A problem+json response. HEAD responses carry the status and headers only."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    body.update(extra or {})
    response = JSONResponse(body, status_code=status, headers=dict(headers or {}))
    response.media_type = PROBLEM_JSON
    response.headers["content-type"] = PROBLEM_JSON
    if head:
        # A HEAD response has no body; keep the headers a client reads.
        response.body = b""
        del response.headers["content-length"]
    return response


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    errors = []
    for error in exc.errors():
        # Drop "body" from the location and never echo the input (it may be a password).
        loc = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        errors.append({"field": loc, "message": str(error.get("msg", "invalid"))})
    detail = "; ".join(
        f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors
    )
    return detail or "invalid input", errors


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` as problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            headers=exc.headers,
            head=request.method == "HEAD",
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail, errors = _validation_detail(exc)
        return problem_response(422, "Unprocessable input", detail, extra={"errors": errors})

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        try:
            title = HTTPStatus(exc.status_code).phrase
        except ValueError:
            title = "Error"
        return problem_response(
            exc.status_code,
            title,
            str(exc.detail),
            headers=exc.headers,
            head=request.method == "HEAD",
        )

    async def on_catalog_outage(request: Request, exc: Exception) -> JSONResponse:
        # Never the driver's message: it can name hosts and users.
        log.error(
            "catalog unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
        )
        return problem_response(
            503,
            "Service unavailable",
            "the catalog database cannot be reached; retry later",
            headers={"Retry-After": str(CATALOG_RETRY_AFTER)},
            head=request.method == "HEAD",
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "Internal server error", "The server failed to handle the request; retry."
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for outage in CATALOG_OUTAGE:
        app.add_exception_handler(outage, on_catalog_outage)
    app.add_exception_handler(Exception, on_unexpected)
