"""Uploads survive the service: a SIGKILL mid-PATCH, a second replica, concurrent writers,
S3 losing a parked piece, and a crash between the last byte and completion."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.integration.tus_harness import (
    MiB,
    UploadWorld,
    catalog_upload,
    head,
    lock_held,
    object_sha256,
    patch,
    read_response_status,
    s3_offset,
    sha256,
    start_raw_patch,
    upload_id_of,
    upload_world,
    uploader,
    wait_until,
)
from vidflow.catalog.db import get_engine
from vidflow.config import Settings
from vidflow.storage import s3_client
from vidflow.uploads.service import UploadBackend, complete_stalled_uploads


@pytest.fixture(scope="module")
def world(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadWorld]:
    token = os.urandom(4).hex()
    yield from upload_world(stack, tmp_path_factory.mktemp("resilience"), token)


@pytest.fixture
def replica(world: UploadWorld, tmp_path: Path) -> Iterator[str]:
    """A second service process on the same catalog, bucket and queue; its base URL."""
    other = world.another_service(tmp_path)
    yield other.base_url
    other.stop()


def on(base_url: str, url: str) -> str:
    """The same upload URL, addressed to another replica."""
    return base_url + httpx.URL(url).path


def assert_stored(world: UploadWorld, url: str, data: bytes) -> dict[str, object]:
    row = catalog_upload(world.settings, upload_id_of(url))
    assert row["state"] == "completed" and row["video_status"] == "processing"
    assert object_sha256(world.settings, row["s3_key"]) == sha256(data)
    (message,) = world.queue.messages_for({row["video_id"]})[row["video_id"]]
    assert message["size"] == len(data) and message["sha256"] == row["sha256"]
    return row


def s3_part_numbers(world: UploadWorld, upload_id: uuid.UUID) -> list[int]:
    row = catalog_upload(world.settings, upload_id)
    listed = s3_client(world.settings).list_parts(
        Bucket=world.settings.bucket_originals, Key=row["s3_key"], UploadId=row["s3_multipart_id"]
    )
    return [p["PartNumber"] for p in listed.get("Parts", [])]


def test_service_killed_mid_patch_then_resumed(world: UploadWorld) -> None:
    creator = world.creator()
    data = os.urandom(17 * MiB)
    tus = uploader(world.service, creator, data, chunk_size=3 * MiB)
    tus.upload_chunk()
    tus.upload_chunk()  # 6 MiB: one 5 MiB part and a parked 1 MiB
    upload_id = upload_id_of(tus.url)
    committed = catalog_upload(world.settings, upload_id)
    assert committed["offset"] == 6 * MiB and len(committed["parts"]) == 1

    sock = start_raw_patch(tus.url, creator, 6 * MiB, 10 * MiB, data[6 * MiB : 14 * MiB])
    # Kill while the PATCH holds the lock and has streamed a part nobody committed.
    wait_until(lambda: len(s3_part_numbers(world, upload_id)) >= 2)
    assert lock_held(world.settings, upload_id)
    world.service.kill()
    sock.close()
    # PostgreSQL frees the lock once its backend notices the dead client: soon, not at once.
    wait_until(lambda: not lock_held(world.settings, upload_id), timeout=15)
    world.service.start()

    response = head(tus.url, creator)
    assert response.status_code == 200
    assert int(response.headers["Upload-Offset"]) == 6 * MiB == s3_offset(world.settings, upload_id)
    resumed = uploader(world.service, creator, data, url=tus.url, chunk_size=4 * MiB)
    assert resumed.offset == 6 * MiB
    resumed.upload()
    row = assert_stored(world, tus.url, data)
    assert row["sha256"] is None  # the new process never saw bytes 0..6 MiB


def test_a_second_replica_resumes_the_upload(world: UploadWorld, replica: str) -> None:
    creator = world.creator()
    data = os.urandom(12 * MiB + 7)
    tus = uploader(world.service, creator, data, chunk_size=4 * MiB)
    tus.upload_chunk()  # parked 4 MiB, on replica A
    url_b = on(replica, tus.url)
    resumed = uploader(world.service, creator, data, url=url_b, chunk_size=6 * MiB)
    assert resumed.offset == 4 * MiB  # B rebuilt it from the catalog and S3
    resumed.upload()
    assert_stored(world, tus.url, data)


def test_concurrent_patch_is_locked_out_on_every_replica(world: UploadWorld, replica: str) -> None:
    creator = world.creator()
    data = os.urandom(9 * MiB)
    tus = uploader(world.service, creator, data, chunk_size=2 * MiB)
    tus.upload_chunk()
    upload_id = upload_id_of(tus.url)
    first = start_raw_patch(tus.url, creator, 2 * MiB, 4 * MiB, data[2 * MiB : 3 * MiB])
    wait_until(lambda: lock_held(world.settings, upload_id))
    same = patch(tus.url, creator, 2 * MiB, data[2 * MiB : 4 * MiB])
    other = patch(on(replica, tus.url), creator, 2 * MiB, data[2 * MiB : 4 * MiB])
    terminate = httpx.delete(tus.url, headers=creator.tus)
    assert (same.status_code, other.status_code, terminate.status_code) == (423, 423, 423)
    assert "another request" in same.json()["detail"]
    first.sendall(data[3 * MiB : 6 * MiB])
    assert read_response_status(first) == 204
    first.close()
    assert head(tus.url, creator).headers["Upload-Offset"] == str(6 * MiB)
    resumed = uploader(world.service, creator, data, url=tus.url)
    resumed.upload()
    assert_stored(world, tus.url, data)


def test_offset_is_rebuilt_from_s3_when_a_parked_piece_is_lost(world: UploadWorld) -> None:
    creator = world.creator()
    data = os.urandom(11 * MiB)
    tus = uploader(world.service, creator, data, chunk_size=3 * MiB)
    tus.upload_chunk()
    tus.upload_chunk()  # part 1 (5 MiB) + parked 1 MiB
    upload_id = upload_id_of(tus.url)
    row = catalog_upload(world.settings, upload_id)
    s3_client(world.settings).delete_object(
        Bucket=world.settings.bucket_originals, Key=row["parked_key"]
    )
    response = patch(tus.url, creator, 6 * MiB, data[6 * MiB : 7 * MiB])
    assert response.status_code == 409
    assert response.headers["Upload-Offset"] == str(5 * MiB)
    assert head(tus.url, creator).headers["Upload-Offset"] == str(5 * MiB)
    resumed = uploader(world.service, creator, data, url=tus.url)
    resumed.upload()
    assert_stored(world, tus.url, data)


def test_a_part_changed_behind_the_service_is_rolled_back(world: UploadWorld) -> None:
    """As if a writer that lost its lock had overwritten a committed part: the next PATCH
    sees the ETag differ, rolls the offset back to before that part, and the client
    resends it."""
    creator = world.creator()
    data = os.urandom(14 * MiB)
    tus = uploader(world.service, creator, data, chunk_size=5 * MiB)
    tus.upload_chunk()
    tus.upload_chunk()  # parts 1 and 2, 5 MiB each
    upload_id = upload_id_of(tus.url)
    row = catalog_upload(world.settings, upload_id)
    assert [number for number, _, _ in row["parts"]] == [1, 2]
    # A later writer: SeaweedFS keeps both copies and dates them to the second, so only a
    # later second tells which copy S3 would hold.
    time.sleep(1.1)
    s3_client(world.settings).upload_part(
        Bucket=world.settings.bucket_originals,
        Key=row["s3_key"],
        UploadId=row["s3_multipart_id"],
        PartNumber=2,
        Body=os.urandom(5 * MiB),
    )
    response = patch(tus.url, creator, 10 * MiB, data[10 * MiB : 11 * MiB])
    assert response.status_code == 409
    assert response.headers["Upload-Offset"] == str(5 * MiB)
    resumed = uploader(world.service, creator, data, url=tus.url, chunk_size=5 * MiB)
    assert resumed.offset == 5 * MiB
    resumed.upload()
    assert_stored(world, tus.url, data)


def _crash_after_last_commit(world: UploadWorld, data: bytes) -> tuple[str, uuid.UUID]:
    """Leave an upload as a service that died right after committing the last byte (and
    before completing it) would: all parts stored and committed, offset == length."""
    creator = world.creator()
    tus = uploader(world.service, creator, data, chunk_size=5 * MiB)
    tus.upload_chunk()
    upload_id = upload_id_of(tus.url)
    row = catalog_upload(world.settings, upload_id)
    tail = data[5 * MiB :]
    part = s3_client(world.settings).upload_part(
        Bucket=world.settings.bucket_originals,
        Key=row["s3_key"],
        UploadId=row["s3_multipart_id"],
        PartNumber=2,
        Body=tail,
    )
    with get_engine(world.settings).begin() as conn:
        conn.execute(
            text("INSERT INTO upload_parts VALUES (:id, 2, :size, :etag)"),
            {"id": upload_id, "size": len(tail), "etag": part["ETag"]},
        )
        conn.execute(
            text('UPDATE uploads SET "offset" = length WHERE upload_id = :id'), {"id": upload_id}
        )
    assert catalog_upload(world.settings, upload_id)["video_status"] == "uploading"
    return tus.url, upload_id


def test_head_completes_an_upload_whose_completion_crashed(world: UploadWorld) -> None:
    data = os.urandom(6 * MiB)
    url, _ = _crash_after_last_commit(world, data)
    creator = world.creators[-1]
    response = head(url, creator)
    assert response.headers["Upload-Offset"] == str(len(data))
    assert_stored(world, url, data)


def test_an_empty_patch_completes_it_too(world: UploadWorld) -> None:
    data = os.urandom(5 * MiB + 1)
    url, _ = _crash_after_last_commit(world, data)
    response = patch(url, world.creators[-1], len(data), b"")
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == str(len(data))
    assert_stored(world, url, data)


def test_reconciliation_completes_stalled_uploads(world: UploadWorld) -> None:
    data = os.urandom(7 * MiB)
    url, upload_id = _crash_after_last_commit(world, data)
    backend = UploadBackend.from_settings(world.settings, lock_pool_size=1)
    try:
        assert backend.settings.processing_queue == world.queue.name
        # Not stalled yet: its last write is seconds old.
        only = [upload_id]
        assert complete_stalled_uploads(backend=backend, only=only) == []
        done = complete_stalled_uploads(backend=backend, only=only, older_than=timedelta(0))
        assert done == [upload_id]
        assert complete_stalled_uploads(backend=backend, only=only, older_than=timedelta(0)) == []
    finally:
        backend.close()
    assert_stored(world, url, data)
    time.sleep(0.5)
    assert world.queue.drain_extra(2) == []  # exactly one message
