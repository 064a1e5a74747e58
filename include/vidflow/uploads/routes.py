"""The tus 1.0.0 endpoints under ``/files/``: thin shells over :mod:`.service`.

Each route parses headers with :mod:`.protocol`, calls one service function and turns the
result into tus response headers. Errors are problem+json responses (see vidflow.problems).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from vidflow.accounts.deps import CurrentUser, SettingsDep
from vidflow.uploads import contract, protocol, service
from vidflow.uploads.problems import error_response
from vidflow.uploads.service import UploadBackend, UploadStatus

router = APIRouter(tags=["uploads (tus 1.0.0)"])

FILES = "/files"
UPLOAD = "/files/{upload_id}"


def get_backend(request: Request) -> UploadBackend:
    backend: UploadBackend = request.app.state.backend
    return backend


BackendDep = Annotated[UploadBackend, Depends(get_backend)]


def require_tus_resumable(tus_resumable: Annotated[str | None, Header()] = None) -> None:
    protocol.check_tus_resumable(tus_resumable)


TusResumable = Annotated[None, Depends(require_tus_resumable)]


def _upload_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise service.UploadNotFound() from None


def _offset_headers(status: UploadStatus) -> dict[str, str]:
    headers = {"Upload-Offset": str(status.offset), "Tus-Resumable": protocol.TUS_VERSION}
    if not status.complete:
        headers["Upload-Expires"] = protocol.http_date(status.expires_at)
    return headers


@router.options(FILES, include_in_schema=False)
@router.options(FILES + "/", status_code=204, response_class=Response, responses=contract.OPTIONS)
@router.options(UPLOAD, status_code=204, response_class=Response, responses=contract.OPTIONS)
def discover(user: CurrentUser, settings: SettingsDep) -> Response:
    """Server capabilities: version, extensions, maximum size, checksum algorithms."""
    return Response(
        status_code=204, headers=protocol.capability_headers(max_size=settings.upload_max_size)
    )


@router.post(FILES, include_in_schema=False)
@router.post(FILES + "/", status_code=201, response_class=Response, responses=contract.CREATE)
async def create(
    request: Request,
    user: CurrentUser,
    _: TusResumable,
    backend: BackendDep,
    upload_length: Annotated[str | None, Header()] = None,
    upload_defer_length: Annotated[str | None, Header()] = None,
    upload_metadata: Annotated[str | None, Header()] = None,
    upload_checksum: Annotated[str | None, Header()] = None,
    content_type: Annotated[str | None, Header()] = None,
    content_length: Annotated[str | None, Header(include_in_schema=False)] = None,
    transfer_encoding: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """creation (and creation-with-upload: a body of application/offset+octet-stream is
    the first chunk). Also creates the video, status `uploading`."""
    length = protocol.parse_upload_length(
        upload_length, max_size=backend.settings.upload_max_size, deferred=upload_defer_length
    )
    metadata = protocol.validate_metadata(protocol.parse_metadata(upload_metadata))
    first_chunk = protocol.parse_creation_body(
        content_type=content_type,
        content_length=content_length,
        upload_checksum=upload_checksum,
        transfer_encoding=transfer_encoding,
    )
    created = await service.create_upload(
        backend=backend,
        user_id=user.user_id,
        length=length,
        metadata=metadata,
        first_chunk=first_chunk,
        body=request.stream() if first_chunk else None,
    )
    location = str(request.url_for("tus_upload", upload_id=str(created.status.upload_id)))
    if created.chunk_error is not None:  # the upload exists: its URL goes with the error
        return error_response(created.chunk_error, extra_headers={"Location": location})
    headers = {"Location": location, **_offset_headers(created.status)}
    return Response(status_code=201, headers=headers)


@router.head(UPLOAD, name="tus_upload", response_class=Response, responses=contract.HEAD)
async def head(upload_id: str, user: CurrentUser, _: TusResumable, backend: BackendDep) -> Response:
    """The upload's offset, length and metadata (never cached)."""
    status = await service.get_upload_status(
        backend=backend, user_id=user.user_id, upload_id=_upload_id(upload_id)
    )
    headers = {
        **_offset_headers(status),
        "Upload-Length": str(status.length),
        "Cache-Control": "no-store",
    }
    if status.metadata:
        headers["Upload-Metadata"] = protocol.encode_metadata(status.metadata)
    return Response(status_code=200, headers=headers)


@router.patch(UPLOAD, status_code=204, response_class=Response, responses=contract.PATCH)
async def append(
    upload_id: str,
    request: Request,
    user: CurrentUser,
    _: TusResumable,
    backend: BackendDep,
    content_type: Annotated[str | None, Header()] = None,
    upload_offset: Annotated[str | None, Header()] = None,
    content_length: Annotated[str | None, Header(include_in_schema=False)] = None,
    upload_checksum: Annotated[str | None, Header()] = None,
) -> Response:
    """Append the body at Upload-Offset; the last byte hands the video to processing."""
    chunk = protocol.parse_patch(
        content_type=content_type,
        upload_offset=upload_offset,
        content_length=content_length,
        upload_checksum=upload_checksum,
    )
    status = await service.write_chunk(
        backend=backend,
        user_id=user.user_id,
        upload_id=_upload_id(upload_id),
        chunk=chunk,
        body=request.stream(),
    )
    return Response(status_code=204, headers=_offset_headers(status))


@router.delete(UPLOAD, status_code=204, response_class=Response, responses=contract.DELETE)
async def terminate(
    upload_id: str, user: CurrentUser, _: TusResumable, backend: BackendDep
) -> Response:
    """termination: drop an unfinished upload and everything it stored."""
    await service.terminate_upload(
        backend=backend, user_id=user.user_id, upload_id=_upload_id(upload_id)
    )
    return Response(status_code=204, headers={"Tus-Resumable": protocol.TUS_VERSION})
