"""boto3 against the local S3/SQS endpoint: put/get, multipart, send/receive."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator

import pytest

from vidflow.config import Settings
from vidflow.storage import all_buckets, ensure_buckets, s3_client, sqs_client

MIB = 1024 * 1024


def test_every_platform_bucket_exists(stack: Settings) -> None:
    assert ensure_buckets(stack) == []  # idempotent: nothing left to create
    names = {b["Name"] for b in s3_client(stack).list_buckets()["Buckets"]}
    assert set(all_buckets(stack)) <= names


def test_put_and_get_round_trip(stack: Settings, unique: str) -> None:
    s3 = s3_client(stack)
    body = os.urandom(4096)
    key = f"tests/{unique}/blob.bin"
    s3.put_object(Bucket=stack.bucket_lake, Key=key, Body=body)
    assert s3.get_object(Bucket=stack.bucket_lake, Key=key)["Body"].read() == body
    s3.delete_object(Bucket=stack.bucket_lake, Key=key)
    assert "Contents" not in s3.list_objects_v2(Bucket=stack.bucket_lake, Prefix=f"tests/{unique}/")


def test_multipart_upload_assembles_parts_in_order(stack: Settings, unique: str) -> None:
    s3 = s3_client(stack)
    key = f"tests/{unique}/multipart.bin"
    parts_data = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(123_457)]
    upload = s3.create_multipart_upload(Bucket=stack.bucket_originals, Key=key)
    parts = []
    for number, data in enumerate(parts_data, start=1):
        etag = s3.upload_part(
            Bucket=stack.bucket_originals,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data,
        )["ETag"]
        parts.append({"ETag": etag, "PartNumber": number})
    listed = s3.list_parts(Bucket=stack.bucket_originals, Key=key, UploadId=upload["UploadId"])
    assert [p["Size"] for p in listed["Parts"]] == [len(d) for d in parts_data]
    s3.complete_multipart_upload(
        Bucket=stack.bucket_originals,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
    )
    stored = s3.get_object(Bucket=stack.bucket_originals, Key=key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(b"".join(parts_data)).hexdigest()
    s3.delete_object(Bucket=stack.bucket_originals, Key=key)


@pytest.fixture
def queue(stack: Settings, unique: str) -> Iterator[str]:
    """A queue of this test only: the processing queue has a live consumer."""
    sqs = sqs_client(stack)
    url = sqs.create_queue(QueueName=f"test-{unique}")["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


def test_sqs_send_and_receive(stack: Settings, queue: str) -> None:
    sqs = sqs_client(stack)
    sent = [{"video_id": f"v{i}", "size": i} for i in range(3)]
    for message in sent:
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(message))
    received = []
    for _ in range(10):
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in batch.get("Messages", []):
            received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        if len(received) == len(sent):
            break
    assert sorted(received, key=lambda m: str(m["video_id"])) == sent


def test_processing_queue_exists(stack: Settings) -> None:
    url = sqs_client(stack).get_queue_url(QueueName=stack.processing_queue)["QueueUrl"]
    assert url.endswith(f"/{stack.processing_queue}")


def test_packaged_media_is_publicly_readable_and_originals_are_not(
    stack: Settings, unique: str
) -> None:
    """`make up` opens media/* of the media bucket to unsigned GETs (the CDN's origin),
    before any video is published; nothing else is readable without credentials."""
    import httpx

    s3 = s3_client(stack)
    media_key, original_key = f"media/tests/{unique}/seg.m4s", f"tests/{unique}/source"
    s3.put_object(Bucket=stack.bucket_media, Key=media_key, Body=b"segment")
    s3.put_object(Bucket=stack.bucket_originals, Key=original_key, Body=b"original")
    try:
        base = stack.endpoint_url
        media = httpx.get(f"{base}/{stack.bucket_media}/{media_key}", timeout=10)
        assert media.status_code == 200 and media.content == b"segment"
        original = httpx.get(f"{base}/{stack.bucket_originals}/{original_key}", timeout=10)
        assert original.status_code == 403
    finally:
        s3.delete_object(Bucket=stack.bucket_media, Key=media_key)
        s3.delete_object(Bucket=stack.bucket_originals, Key=original_key)
