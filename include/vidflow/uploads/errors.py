"""Domain errors of the upload service and the reasons it records on failed videos.

Each error names the HTTP status it maps to (see :mod:`vidflow.problems`); the routes
never build a status themselves.
"""

from __future__ import annotations

from typing import Final

from vidflow.problems import Problem

REASON_EXPIRED: Final = "upload expired"
REASON_TERMINATED: Final = "upload terminated by its creator"
REASON_LOST: Final = "upload failed: its stored data disappeared from object storage"


class UploadNotFound(Problem):
    status = 404
    title = "Upload not found"

    def __init__(self) -> None:
        super().__init__("no such upload")


class UploadGone(Problem):
    status = 410
    title = "Upload expired"

    def __init__(self, detail: str = "the upload expired before it was completed") -> None:
        super().__init__(detail)


class OffsetConflict(Problem):
    status = 409
    title = "Offset mismatch"


class UploadComplete(Problem):
    status = 409
    title = "Upload already complete"


class StorageUnavailable(Problem):
    status = 503
    title = "Storage unavailable"

    def __init__(self) -> None:
        super().__init__(
            "object storage or the catalog failed while handling the upload; HEAD the upload "
            "and resume from its Upload-Offset",
            headers={"Retry-After": "2"},
        )


class BodyTimeout(Problem):
    """The PATCH body stalled (idle limit) or took too long (total limit)."""

    status = 408
    title = "Request body timed out"

    def __init__(self, why: str, *, offset: int | None, kept: bool) -> None:
        what = "the bytes that arrived were kept" if kept else "none of its bytes were appended"
        super().__init__(
            f"{why}; {what}. HEAD the upload and resume from its Upload-Offset",
            headers={"Connection": "close"},
        )
        if offset is not None:
            self.headers["Upload-Offset"] = str(offset)
