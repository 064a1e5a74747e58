"""Object storage (S3 API) and the processing queue (SQS API).

Clients are built from settings only, so the same code talks to the local object store
(SeaweedFS or moto), the local queue (moto), MinIO or AWS. Object keys are made from ids
and never from user-supplied names.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config as BotoConfig

from vidflow.config import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


def _client_kwargs(
    settings: Settings, endpoint_url: str | None, *, connections: int = 10
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "region_name": settings.aws_region,
        "endpoint_url": endpoint_url,
        "config": BotoConfig(
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=connections,
            # Local endpoints and MinIO want path-style addressing; AWS accepts it too.
            s3={"addressing_style": "path"},
            # SigV4 for presigned URLs too (botocore would presign SigV2 for us-east-1 on
            # a custom endpoint): every S3 server and region accepts it.
            signature_version="s3v4",
        ),
    }
    if settings.aws_access_key_id.get_secret_value():
        kwargs["aws_access_key_id"] = settings.aws_access_key_id.get_secret_value()
        kwargs["aws_secret_access_key"] = settings.aws_secret_access_key.get_secret_value()
    return kwargs


#: boto3's default session is not thread-safe while it builds a client (clients are, once
#: built), and the processing steps build clients from worker threads.
_CLIENT_LOCK = threading.Lock()


def s3_client(settings: Settings | None = None, *, connections: int = 10) -> S3Client:
    """The platform's S3 client; ``connections`` bounds its connection pool (botocore's
    default, 10), to be raised by callers that run more requests at once."""
    settings = settings or get_settings()
    with _CLIENT_LOCK:
        return boto3.client(
            "s3", **_client_kwargs(settings, settings.endpoint_url, connections=connections)
        )


def sqs_client(settings: Settings | None = None) -> SQSClient:
    settings = settings or get_settings()
    with _CLIENT_LOCK:
        return boto3.client("sqs", **_client_kwargs(settings, settings.queue_endpoint_url))


def all_buckets(settings: Settings) -> list[str]:
    """Every bucket the platform uses, without duplicates (several may share one)."""
    names = [
        settings.bucket_originals,
        settings.bucket_media,
        settings.bucket_cdn_logs,
        settings.bucket_events,
        settings.bucket_mlflow,
        settings.bucket_lake,
    ]
    return list(dict.fromkeys(names))


def ensure_buckets(settings: Settings | None = None) -> list[str]:
    """Create any missing bucket; returns the buckets that were created."""
    settings = settings or get_settings()
    client = s3_client(settings)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    created = []
    for name in all_buckets(settings):
        if name not in existing:
            if settings.aws_region == "us-east-1":
                client.create_bucket(Bucket=name)
            else:
                client.create_bucket(
                    Bucket=name,
                    CreateBucketConfiguration={"LocationConstraint": settings.aws_region},  # type: ignore[typeddict-item]
                )
            created.append(name)
    return created


def ensure_queue(settings: Settings | None = None) -> str:
    """Create the processing queue if missing; returns its URL (idempotent)."""
    settings = settings or get_settings()
    response = sqs_client(settings).create_queue(
        QueueName=settings.processing_queue,
        # A consumer that does not delete a message within 15 min sees it again.
        Attributes={"VisibilityTimeout": "900", "MessageRetentionPeriod": "1209600"},
    )
    return response["QueueUrl"]


def queue_url(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return sqs_client(settings).get_queue_url(QueueName=settings.processing_queue)["QueueUrl"]


def list_keys(
    settings: Settings, bucket: str, prefixes: Iterable[str], suffix: str = ""
) -> list[str]:
    """Sorted keys under any of ``prefixes`` that end with ``suffix`` (every page)."""
    paginator = s3_client(settings).get_paginator("list_objects_v2")
    keys = []
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(suffix)]
    return sorted(keys)


def original_key(video_id: uuid.UUID) -> str:
    """Key of an uploaded source in the originals bucket."""
    return f"originals/{video_id}/source"


def media_prefix(video_id: uuid.UUID, version: str) -> str:
    """Key prefix of one packaged version of a video in the media bucket."""
    return f"media/videos/{video_id}/{version}/"


HASH_CHUNK = 8 * 1024 * 1024


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a local file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def object_sha256(s3: S3Client, bucket: str, key: str) -> str:
    """SHA-256 (hex) of an object, streamed in chunks (memory stays flat)."""
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(HASH_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()
