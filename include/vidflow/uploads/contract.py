"""The upload API's OpenAPI contract beyond what FastAPI infers: the tus headers each
response carries, and every status each tus route can answer (as problem+json).

The routes pass these as ``responses=``; :func:`vidflow.problems.document_problems` adds
what every route shares (401, 404, 422, 503).
"""

from __future__ import annotations

from typing import Any, Final

from vidflow.problems import problem_responses

_INT = {"type": "integer", "minimum": 0}
_STR = {"type": "string"}


def _header(description: str, schema: dict[str, Any] = _STR) -> dict[str, Any]:
    return {"description": description, "schema": schema}


TUS_RESUMABLE: Final = _header("The tus version of the response: 1.0.0.")
UPLOAD_OFFSET: Final = _header("Bytes of the upload the server holds.", _INT)
UPLOAD_EXPIRES: Final = _header("When an unfinished upload expires (an HTTP date).")

#: What each status means on the tus routes.
MEANINGS: Final[dict[int, str]] = {
    400: "A tus header is malformed (Upload-Length, Upload-Offset, Upload-Metadata, "
    "Upload-Checksum, Content-Length); the detail says which.",
    401: "No valid bearer token.",
    404: "No such upload, or not yours.",
    408: "The body sent nothing for the idle limit or ran past the total limit; the bytes "
    "that arrived are kept unless the detail says otherwise. HEAD, then resume.",
    409: "Upload-Offset differs from the upload's offset (the right one is in the "
    "Upload-Offset header), or the upload is already complete.",
    410: "The upload expired, or its stored data is gone; start a new upload.",
    412: "Tus-Resumable is missing or not 1.0.0 (Tus-Version lists what is supported).",
    413: "Upload-Length, or the body, exceeds what the upload or the server allows.",
    415: "The body's Content-Type must be application/offset+octet-stream.",
    423: "Another request is writing this upload; retry after Retry-After.",
    460: "Upload-Checksum does not match the body; none of its bytes were appended.",
    503: "The catalog or object storage is unavailable, or the server streams as many "
    "uploads as it may; retry after Retry-After (then HEAD and resume).",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    responses = problem_responses({status: MEANINGS[status] for status in statuses})
    for status in (409, 408):
        if status in responses:
            responses[status]["headers"] = {"Upload-Offset": UPLOAD_OFFSET}
    if 412 in responses:
        responses[412]["headers"] = {"Tus-Version": _header("Supported tus versions.")}
    return responses


def success(status: int, description: str, **headers: dict[str, Any]) -> dict[int | str, Any]:
    return {
        status: {
            "description": description,
            "headers": {"Tus-Resumable": TUS_RESUMABLE, **headers},
        }
    }


OPTIONS: Final = {
    **success(
        204,
        "The server's tus capabilities.",
        **{
            "Tus-Version": _header("Supported tus versions."),
            "Tus-Extension": _header("Supported extensions, comma-separated."),
            "Tus-Max-Size": _header("Largest Upload-Length accepted.", _INT),
            "Tus-Checksum-Algorithm": _header("Supported checksum algorithms."),
        },
    ),
    **errors(401),
}
CREATE: Final = {
    **success(
        201,
        "Upload created (with creation-with-upload, its first chunk written).",
        Location=_header("The URL of the new upload."),
        **{"Upload-Offset": UPLOAD_OFFSET, "Upload-Expires": UPLOAD_EXPIRES},
    ),
    **errors(400, 401, 408, 409, 412, 413, 415, 423, 460, 503),
}
HEAD: Final = {
    **success(
        200,
        "The upload's offset, length and metadata (no body).",
        **{
            "Upload-Offset": UPLOAD_OFFSET,
            "Upload-Length": _header("The upload's total size.", _INT),
            "Upload-Metadata": _header("The metadata given at creation (tus encoding)."),
            "Upload-Expires": UPLOAD_EXPIRES,
            "Cache-Control": _header("no-store"),
        },
    ),
    **errors(401, 404, 410, 412, 503),
}
PATCH: Final = {
    **success(
        204,
        "The body was appended; Upload-Offset is the new offset.",
        **{"Upload-Offset": UPLOAD_OFFSET, "Upload-Expires": UPLOAD_EXPIRES},
    ),
    **errors(400, 401, 404, 408, 409, 410, 412, 413, 415, 423, 460, 503),
}
DELETE: Final = {
    **success(204, "The upload and every byte it stored were removed."),
    **errors(401, 404, 409, 410, 412, 423, 503),
}
