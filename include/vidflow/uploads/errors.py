"""Domain errors of the upload service, and the reasons it records on failed videos.

These know nothing about HTTP: :mod:`vidflow.uploads.problems` maps each to its status
and headers, in one place. (The tus header parser, :mod:`.protocol`, is part of the HTTP
layer and raises problems itself.)
"""

from __future__ import annotations

from typing import Final

REASON_EXPIRED: Final = "upload expired"
REASON_TERMINATED: Final = "upload terminated by its creator"
REASON_LOST: Final = "upload failed: its stored data disappeared from object storage"


class UploadError(Exception):
    """Base of the upload domain's errors; ``detail`` is the message for the client."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UploadNotFound(UploadError):
    def __init__(self) -> None:
        super().__init__("no such upload")


class UploadGone(UploadError):
    def __init__(self, detail: str = "the upload expired before it was completed") -> None:
        super().__init__(detail)


class OffsetConflict(UploadError):
    """The request's offset is not the upload's (``offset``, when known)."""

    def __init__(self, detail: str, *, offset: int | None = None) -> None:
        super().__init__(detail)
        self.offset = offset


class UploadComplete(UploadError):
    pass


class StorageUnavailable(UploadError):
    def __init__(self) -> None:
        super().__init__(
            "object storage or the catalog failed while handling the upload; HEAD the upload "
            "and resume from its Upload-Offset"
        )


class UploadLocked(UploadError):
    def __init__(self) -> None:
        super().__init__(
            "another request is writing to this upload; wait for it to finish, then HEAD "
            "the upload and resume from its Upload-Offset"
        )


class ServerBusy(UploadError):
    def __init__(self) -> None:
        super().__init__("the server is streaming as many uploads as it may at once; retry shortly")


class BodyTimeout(UploadError):
    """The PATCH body stalled (idle limit) or took too long (total limit)."""

    def __init__(self, why: str, *, offset: int | None, kept: bool) -> None:
        what = "the bytes that arrived were kept" if kept else "none of its bytes were appended"
        super().__init__(f"{why}; {what}. HEAD the upload and resume from its Upload-Offset")
        self.offset = offset
