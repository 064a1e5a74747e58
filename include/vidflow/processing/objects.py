"""Object storage of video processing: sources in, staged media out, old versions gone.

Media of one version lives under ``media/videos/{video_id}/{version}/`` in the media bucket:

    master.m3u8, manifest.mpd           HLS master playlist, DASH MPD
    {rendition}/init.mp4                CMAF header of a rendition (1080p, 720p, ..., audio)
    {rendition}/seg_00001.m4s ...       CMAF segments, shared by HLS and DASH
    {rendition}/index.m3u8              HLS media playlist
    {rendition}/iframes.m3u8            HLS I-frame playlist (video renditions)
    thumbnails/poster_320x180.jpg, thumbnails/poster_1280x720.jpg
    thumbnails/storyboard_001.jpg ..., thumbnails/storyboard.vtt

A version is immutable once written, so everything is cacheable forever; what readers see
changes only when the catalog points at another version. The version a publish replaces
stays readable for a grace period (players mid-stream, caches): publishing writes
``{version}/.superseded.json`` into it, and the orphan sweep deletes the version once
that marker is older than ``superseded_grace_hours``.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from botocore.exceptions import ClientError

from vidflow.config import Settings
from vidflow.storage import media_prefix, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

CONTENT_TYPES: Final = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
    ".json": "application/json",
}
IMMUTABLE: Final = "public, max-age=31536000, immutable"
#: Written into a version when a newer one is published; its age starts the grace period.
SUPERSEDED_MARKER: Final = ".superseded.json"
UPLOAD_THREADS: Final = 8


def media_base_url(settings: Settings) -> str:
    """Public base URL of the media bucket: the CDN, or the bucket on the S3 endpoint."""
    if settings.cdn_base_url:
        return settings.cdn_base_url.rstrip("/")
    if settings.endpoint_url:
        return f"{settings.endpoint_url.rstrip('/')}/{settings.bucket_media}"
    return f"https://{settings.bucket_media}.s3.{settings.aws_region}.amazonaws.com"


def public_url(settings: Settings, key: str) -> str:
    return f"{media_base_url(settings)}/{key}"


def version_prefix(video_id: str, version: str) -> str:
    return media_prefix(uuid.UUID(video_id), version)


def video_prefix(video_id: str) -> str:
    """Prefix holding every version of a video (``media/videos/{video_id}/``)."""
    return media_prefix(uuid.UUID(video_id), "x")[: -len("x/")]


def source_size(s3: S3Client, bucket: str, key: str) -> int | None:
    """Size of an object, or None when it does not exist."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def presigned_get(s3: S3Client, bucket: str, key: str, seconds: int) -> str:
    """A URL ffmpeg can stream (with range requests) without credentials."""
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds
    )


def _content_type(path: Path) -> str:
    return (
        CONTENT_TYPES.get(path.suffix)
        or mimetypes.guess_type(path.name)[0]
        or ("application/octet-stream")
    )


def upload_tree(s3: S3Client, directory: Path, bucket: str, prefix: str) -> list[str]:
    """Upload every file under ``directory`` to ``prefix`` (same relative paths)."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())

    def put(path: Path) -> str:
        key = prefix + path.relative_to(directory).as_posix()
        s3.upload_file(
            str(path),
            bucket,
            key,
            ExtraArgs={"ContentType": _content_type(path), "CacheControl": IMMUTABLE},
        )
        return key

    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        return list(pool.map(put, files))


def put_text(s3: S3Client, bucket: str, key: str, text: str) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=text.encode(),
        ContentType=_content_type(Path(key)),
        CacheControl=IMMUTABLE,
    )


def iter_keys(s3: S3Client, bucket: str, prefix: str) -> Iterator[str]:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def delete_prefix(s3: S3Client, bucket: str, prefix: str) -> int:
    """Delete every object under ``prefix``; returns how many."""
    if not prefix.endswith("/"):
        raise ValueError(f"refusing to delete a prefix without a trailing slash: {prefix!r}")
    deleted = 0
    batch: list[str] = []
    for key in iter_keys(s3, bucket, prefix):
        batch.append(key)
        if len(batch) == 1000:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch]})
            deleted += len(batch)
            batch = []
    if batch:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch]})
        deleted += len(batch)
    return deleted


def version_folders(s3: S3Client, bucket: str, video_id: str) -> list[str]:
    """The versions stored for a video (its sub-prefixes)."""
    prefix = video_prefix(video_id)
    paginator = s3.get_paginator("list_objects_v2")
    versions = []
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            versions.append(common["Prefix"][len(prefix) :].rstrip("/"))
    return versions


def newest_write(s3: S3Client, bucket: str, prefix: str) -> datetime | None:
    """When the most recently written object under ``prefix`` was written."""
    newest = None
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if newest is None or item["LastModified"] > newest:
                newest = item["LastModified"]
    return newest


def public_read_policy(bucket: str) -> str:
    """Anyone may GET packaged media (never list, never the originals)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicReadPackagedMedia",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/media/*",
                }
            ],
        }
    )


def ensure_public_read(settings: Settings, s3: S3Client | None = None) -> None:
    """Apply :func:`public_read_policy` to the media bucket when settings ask for it.

    Locally this makes the S3 endpoint act as the CDN origin; in a deployment where a CDN
    reads the bucket with its own identity, set VIDFLOW_MEDIA_PUBLIC_READ=false.
    """
    if not settings.media_public_read:
        return
    s3 = s3 or s3_client(settings)
    s3.put_bucket_policy(
        Bucket=settings.bucket_media, Policy=public_read_policy(settings.bucket_media)
    )


def object_time(s3: S3Client, bucket: str, key: str) -> datetime | None:
    """When an object was written, or None when it does not exist."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)["LastModified"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def mark_superseded(s3: S3Client, bucket: str, prefix: str, *, by: str) -> None:
    """Note in a version's prefix that version ``by`` replaced it (now): the sweep removes
    it once the grace period has passed."""
    s3.put_object(
        Bucket=bucket,
        Key=prefix + SUPERSEDED_MARKER,
        Body=json.dumps({"superseded_by": by}).encode(),
        ContentType="application/json",
        CacheControl="no-store",
    )


def superseded_at(s3: S3Client, bucket: str, prefix: str) -> datetime | None:
    """When a version was superseded (its marker's time), or None when it was not."""
    return object_time(s3, bucket, prefix + SUPERSEDED_MARKER)
