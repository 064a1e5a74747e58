"""The one place where the upload service's domain errors become HTTP problems.

The service layers (:mod:`.writing`, :mod:`.completion`, :mod:`.sweeps`, :mod:`.locks`,
:mod:`vidflow.accounts`) raise plain domain errors; :func:`install_domain_handlers`
answers each with its status, title and headers as ``application/problem+json``.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from vidflow.accounts.errors import AccountError, AccountExists, InvalidCredentials, RateLimited
from vidflow.problems import Problem, problem_response
from vidflow.uploads.errors import (
    BodyTimeout,
    OffsetConflict,
    ServerBusy,
    StorageUnavailable,
    UploadComplete,
    UploadError,
    UploadGone,
    UploadLocked,
    UploadNotFound,
)

#: Status and title of each domain error.
STATUS: Mapping[type[Exception], tuple[int, str]] = {
    UploadNotFound: (404, "Upload not found"),
    UploadGone: (410, "Upload expired"),
    OffsetConflict: (409, "Offset mismatch"),
    UploadComplete: (409, "Upload already complete"),
    BodyTimeout: (408, "Request body timed out"),
    UploadLocked: (423, "Upload locked"),
    ServerBusy: (503, "Server busy"),
    StorageUnavailable: (503, "Storage unavailable"),
    AccountExists: (409, "Account exists"),
    InvalidCredentials: (401, "Invalid credentials"),
    RateLimited: (429, "Too many attempts"),
}


def _headers(exc: Exception) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(exc, UploadLocked):
        headers["Retry-After"] = "1"
    if isinstance(exc, ServerBusy | StorageUnavailable):
        headers["Retry-After"] = "2"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, OffsetConflict | BodyTimeout) and exc.offset is not None:
        headers["Upload-Offset"] = str(exc.offset)
    if isinstance(exc, BodyTimeout):
        headers["Connection"] = "close"  # the rest of the body is not read
    if isinstance(exc, InvalidCredentials):
        headers["WWW-Authenticate"] = 'Bearer realm="vidflow"'
    return headers


def error_response(
    exc: Problem | UploadError | AccountError,
    *,
    head: bool = False,
    extra_headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The problem+json answer to a domain error (or a protocol problem)."""
    if isinstance(exc, Problem):
        status, title, headers = exc.status, exc.title, dict(exc.headers)
    else:
        status, title = STATUS[type(exc)]
        headers = _headers(exc)
    headers.update(extra_headers or {})
    return problem_response(status, title, exc.detail, headers=headers, head=head)


def install_domain_handlers(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, UploadError | AccountError)
        return error_response(exc, head=request.method == "HEAD")

    app.add_exception_handler(UploadError, on_domain_error)
    app.add_exception_handler(AccountError, on_domain_error)
