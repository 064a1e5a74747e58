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
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
#: Seconds a client is asked to wait when the catalog cannot be reached.
CATALOG_RETRY_AFTER = 5
#: What the database driver raises when the catalog is down, unreachable or saturated.
CATALOG_OUTAGE = (OperationalError, InterfaceError, PoolTimeout)


class FieldError(BaseModel):
    field: str
    message: str


class ProblemDetails(BaseModel):
    """The body of every error response (RFC 9457 problem details)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


#: What a status means when a route does not say more.
GENERIC_MEANING: dict[int, str] = {
    401: "No valid bearer token (see WWW-Authenticate).",
    404: "No such resource, or not yours.",
    422: "The input failed validation; `errors` lists each field.",
    503: "A store the service needs (the catalog) is unavailable; retry after Retry-After.",
}
_RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "The scheme to use.", "schema": {"type": "string"}}},
    423: {"Retry-After": _RETRY_AFTER},
    429: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}


def problem_responses(meanings: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses: problem+json bodies, with the
    headers those statuses carry."""
    schema = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    schema["properties"]["errors"] = {
        "anyOf": [
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
            {"type": "null"},
        ]
    }
    return {
        status: {
            "description": meaning,
            "content": {PROBLEM_JSON: {"schema": schema}},
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
        for status, meaning in meanings.items()
    }


def document_problems(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document say what the problem handlers answer on every
    operation: 422 and every error as problem+json, 503 (a catalog outage) everywhere but
    health checks, 401 where a bearer token is required, 404 where a path names a
    resource. A route's own ``responses`` (more specific) win."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        for path, operations in spec.get("paths", {}).items():
            for operation in operations.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                wanted = [503] if "health" not in operation.get("tags", []) else []
                if operation.get("security"):
                    wanted.append(401)
                if "{" in path:
                    wanted.append(404)
                if operation.get("parameters") or operation.get("requestBody"):
                    wanted.append(422)
                for status, entry in problem_responses(
                    {code: GENERIC_MEANING[code] for code in wanted}
                ).items():
                    key = str(status)
                    existing = responses.get(key)
                    if existing is None or "HTTPValidationError" in str(existing):
                        responses[key] = entry
        schemas = spec.get("components", {}).get("schemas", {})
        if "HTTPValidationError" not in str(spec.get("paths")):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


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

    document_problems(app)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for outage in CATALOG_OUTAGE:
        app.add_exception_handler(outage, on_catalog_outage)
    app.add_exception_handler(Exception, on_unexpected)
