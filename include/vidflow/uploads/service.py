"""The upload service layer: every catalog query and S3 call of the tus server.

The routes and the maintenance DAG import from here; the work lives in
:mod:`.writing` (creation and the PATCH write path, with :mod:`.chunks` streaming a body
into parts), :mod:`.completion` (the last byte, the outbox message), :mod:`.sweeps`
(termination, expiry, stalled completions), :mod:`.state` (the backend, the catalog row)
and :mod:`.errors`.

How an upload's bytes are kept
------------------------------
Each upload is one S3 multipart upload to ``originals/{video_id}/source``. A PATCH body
streams through a fixed buffer of ``upload_part_size`` bytes into parts, with up to
``upload_part_concurrency`` part uploads in flight, so memory per request is bounded no
matter what the client announces. A tail shorter than S3's 5 MiB minimum that is not the
end of the file is parked as a small S3 object and prepended to the next PATCH.

What counts as written
----------------------
A PATCH *commits* in one catalog transaction: the new parts' rows (``upload_parts``:
number, size, ETag), the new offset and the parked piece's key. Parts S3 holds beyond
the committed ones are leftovers of a PATCH that failed (checksum mismatch, crash) and
are ignored; the next PATCH overwrites those part numbers. So a checksum is verified
before anything commits, and an interrupted PATCH without a checksum commits the bytes
that did arrive (tus: keep as much as possible).

The offset is rebuilt from S3 and the catalog whenever a process meets an upload state it
did not write itself (after a restart, or when another replica wrote last): the committed
parts that ListParts still shows with the same size and ETag, plus the parked piece if it
is still there. If S3 lost something, the offset moves back and the client resends from
there. For a state the process committed itself, a PATCH only checks the tail (the last
committed part and the parked piece), so its cost does not grow with the part count;
completion then presents every committed ETag to S3, which refuses any part that changed.

One writer at a time: see :mod:`vidflow.uploads.locks`. Completion (the last byte) runs
CompleteMultipartUpload with the committed ETags, then one transaction flips the upload
to ``completed``, the video to ``processing`` and adds the outbox message announcing it
(:mod:`vidflow.outbox`).
"""

from __future__ import annotations

from vidflow.uploads.completion import get_upload_status
from vidflow.uploads.errors import (
    REASON_EXPIRED,
    REASON_LOST,
    REASON_TERMINATED,
    OffsetConflict,
    StorageUnavailable,
    UploadComplete,
    UploadGone,
    UploadNotFound,
)
from vidflow.uploads.state import (
    CreatedUpload,
    DigestCache,
    UploadBackend,
    UploadStatus,
    VerifiedOffsets,
)
from vidflow.uploads.sweeps import complete_stalled_uploads, expire_uploads, terminate_upload
from vidflow.uploads.writing import create_upload, write_chunk

__all__ = [
    "REASON_EXPIRED",
    "REASON_LOST",
    "REASON_TERMINATED",
    "CreatedUpload",
    "DigestCache",
    "OffsetConflict",
    "StorageUnavailable",
    "UploadBackend",
    "UploadComplete",
    "UploadGone",
    "UploadNotFound",
    "UploadStatus",
    "VerifiedOffsets",
    "complete_stalled_uploads",
    "create_upload",
    "expire_uploads",
    "get_upload_status",
    "terminate_upload",
    "write_chunk",
]
