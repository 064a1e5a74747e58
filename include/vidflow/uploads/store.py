"""S3 side of an upload: one multipart upload per video source, plus parked tail pieces.

A PATCH body streams into parts of ``upload_part_size`` bytes. S3 wants every part but
the last to be at least 5 MiB, so a shorter tail that is not the end of the file is
*parked* as a small object of its own (as tusd's s3store does) and prepended to the next
PATCH. Parked pieces live under ``staging/uploads/{upload_id}/`` in the originals
bucket, never in process memory between requests. Keys are made from ids only.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from vidflow.config import Settings
from vidflow.storage import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef

log = logging.getLogger(__name__)

STAGING_PREFIX: Final = "staging/uploads"


class MultipartGone(Exception):
    """S3 no longer knows the multipart upload (completed or aborted)."""


class PartRejected(Exception):
    """S3 refused to complete: a part is missing or changed since it was committed."""


#: Every part carries a CRC32 that S3 checks on arrival (as boto3's own upload_file does);
#: the object gets the CRC32 of all its bytes (FULL_OBJECT, see MultipartStore.create).
CHECKSUM_ALGORITHM: Final = "CRC32"


@dataclass(frozen=True)
class StoredPart:
    number: int
    size: int
    etag: str


@dataclass(frozen=True, eq=False)
class SameSecondCopies(StoredPart):
    """Copies of one part number that SeaweedFS holds side by side, all written in the
    newest second (S3 replaces a part uploaded again; SeaweedFS keeps every copy, dates
    them to the second, and completion takes the copy whose ETag it names). Equal to a
    part with the size and ETag of any of them."""

    copies: frozenset[tuple[int, str]] = frozenset()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, StoredPart)
            and other.number == self.number
            and (other.size, other.etag) in self.copies
        )

    def __hash__(self) -> int:
        return hash((self.number, self.copies))


def upload_s3_client(settings: Settings) -> S3Client:
    """The platform's S3 client (:func:`vidflow.storage.s3_client`), tuned for streaming
    parts: a connection pool for every part in flight, and no SHA-256 over each part's
    payload. Every part carries a CRC32 that S3 verifies, which is why AWS skips payload
    signing over HTTPS already; botocore would still hash every byte on a plain-HTTP
    endpoint (the local one, MinIO), costing as much CPU as the upload itself."""
    base = s3_client(settings)
    pool = settings.upload_max_parallel_writes * settings.upload_part_concurrency + 8
    tuned = base.meta.config.merge(
        BotoConfig(
            max_pool_connections=pool,
            # Path-style as in vidflow.storage; only payload signing changes.
            s3={"addressing_style": "path", "payload_signing_enabled": False},
        )
    )
    key = settings.aws_access_key_id.get_secret_value() or None
    secret = settings.aws_secret_access_key.get_secret_value() if key else None
    client: S3Client = boto3.client(
        "s3",
        region_name=base.meta.region_name,
        endpoint_url=base.meta.endpoint_url if settings.endpoint_url else None,
        config=tuned,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )
    return client


def staging_prefix(upload_id: uuid.UUID) -> str:
    return f"{STAGING_PREFIX}/{upload_id}/"


def new_parked_key(upload_id: uuid.UUID) -> str:
    """A fresh key for a parked piece: a new piece never overwrites the committed one."""
    return f"{staging_prefix(upload_id)}tail-{uuid.uuid4().hex}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class MultipartStore:
    """The originals bucket, seen as multipart uploads and parked pieces."""

    client: S3Client
    bucket: str

    # --- multipart -------------------------------------------------------------------

    def create(self, key: str) -> str:
        # FULL_OBJECT: every part still carries a CRC32 that S3 verifies, and the object
        # gets the CRC32 of all its bytes; unlike COMPOSITE (the default for CRC32), the
        # completion need not repeat each part's checksum, which ListParts of some S3
        # servers (SeaweedFS, moto) does not report and SeaweedFS then insists on.
        response = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            ChecksumAlgorithm=CHECKSUM_ALGORITHM,
            ChecksumType="FULL_OBJECT",
        )
        return response["UploadId"]

    def upload_part(self, key: str, multipart_id: str, number: int, data: bytes) -> StoredPart:
        try:
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=multipart_id,
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm=CHECKSUM_ALGORITHM,
            )
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload":
                raise MultipartGone(key) from exc
            raise
        return StoredPart(number, len(data), response["ETag"])

    def list_parts(self, key: str, multipart_id: str, after: int = 0) -> dict[int, StoredPart]:
        """The parts S3 holds for the upload (committed or not) numbered above ``after``."""
        listed = self._list(key, multipart_id, after)
        return {number: part for number, (part, _) in listed.items()}

    def part_checksums(self, key: str, multipart_id: str) -> dict[int, str]:
        """The CRC32 S3 recorded per part (AWS reports it; some S3 implementations don't)."""
        listed = self._list(key, multipart_id)
        return {number: crc for number, (_, crc) in listed.items() if crc}

    def _list(
        self, key: str, multipart_id: str, after: int = 0
    ) -> dict[int, tuple[StoredPart, str | None]]:
        parts: dict[int, tuple[StoredPart, str | None]] = {}
        #: When each listed part was written. S3 replaces a part uploaded again under its
        #: number; SeaweedFS keeps every copy and lists them all. The newest copy is the
        #: one S3 would hold; copies of the same (newest) second cannot be told apart and
        #: count as any of them (:class:`SameSecondCopies`).
        written: dict[int, datetime] = {}
        marker = after
        while True:
            try:
                response = self.client.list_parts(
                    Bucket=self.bucket, Key=key, UploadId=multipart_id, PartNumberMarker=marker
                )
            except ClientError as exc:
                if _code(exc) == "NoSuchUpload":
                    raise MultipartGone(key) from exc
                raise
            for part in response.get("Parts", []):
                number = part["PartNumber"]
                stored = StoredPart(number, part["Size"], part["ETag"])
                modified = part["LastModified"]
                if number in parts:
                    if modified < written[number]:
                        continue
                    if modified == written[number]:
                        seen = parts[number][0]
                        copies = (
                            seen.copies
                            if isinstance(seen, SameSecondCopies)
                            else frozenset({(seen.size, seen.etag)})
                        )
                        stored = SameSecondCopies(
                            number, stored.size, stored.etag, copies | {(stored.size, stored.etag)}
                        )
                parts[number] = (stored, part.get("ChecksumCRC32"))
                written[number] = modified
            if not response.get("IsTruncated"):
                return parts
            marker = int(response["NextPartNumberMarker"])

    def complete(self, key: str, multipart_id: str, parts: list[StoredPart]) -> None:
        """Complete with exactly ``parts`` (the committed ones): S3 refuses a part whose
        ETag changed, and drops the parts not listed."""
        checksums = self.part_checksums(key, multipart_id)
        completed: list[CompletedPartTypeDef] = []
        for p in parts:
            entry: CompletedPartTypeDef = {"PartNumber": p.number, "ETag": p.etag}
            if p.number in checksums:
                entry["ChecksumCRC32"] = checksums[p.number]
            completed.append(entry)
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=multipart_id,
                MultipartUpload={"Parts": completed},
            )
        except ClientError as exc:
            code = _code(exc)
            if code == "NoSuchUpload":
                raise MultipartGone(key) from exc
            if code in {"InvalidPart", "InvalidPartOrder", "EntityTooSmall"}:
                raise PartRejected(f"{code}: {exc}") from exc
            raise

    def abort(self, key: str, multipart_id: str) -> None:
        """Abort the multipart upload and drop its parts (idempotent)."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=multipart_id)
        except ClientError as exc:
            if _code(exc) != "NoSuchUpload":
                raise

    def open_multipart_ids(self, key: str) -> list[str]:
        """Multipart uploads S3 still holds for ``key`` (should be none once finished)."""
        response = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        return [u["UploadId"] for u in response.get("Uploads", []) if u["Key"] == key]

    # --- objects -------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def size(self, key: str) -> int | None:
        """Size of an object, or None if it does not exist."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as exc:
            if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many there were."""
        deleted = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys: list[ObjectIdentifierTypeDef] = [
                {"Key": obj["Key"]} for obj in page.get("Contents", [])
            ]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                deleted += len(keys)
        return deleted
