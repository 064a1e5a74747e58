"""tus uploads end to end with the real tuspy client, against an upload service this
module starts, the real S3 endpoint and PostgreSQL. Every completed upload is compared
byte for byte (sha256) with its source, in S3 and in the processing message."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterator

import pytest
from tusclient.exceptions import TusCommunicationError
from tusclient.uploader import Uploader

from tests.integration.tus_harness import (
    CreationWithUploadUploader,
    MiB,
    UploadWorld,
    catalog_upload,
    head,
    object_sha256,
    patch,
    s3_offset,
    sha256,
    start_raw_patch,
    upload_id_of,
    upload_world,
    uploader,
    wait_until,
)
from vidflow.config import Settings
from vidflow.storage import s3_client


@pytest.fixture(scope="module")
def world(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadWorld]:
    token = os.urandom(4).hex()
    yield from upload_world(stack, tmp_path_factory.mktemp("uploads"), token)


def assert_completed(world: UploadWorld, url: str, data: bytes) -> dict[str, object]:
    """The upload is complete, the video processing, S3 holds exactly ``data``, and the
    one processing message says what the catalog says."""
    upload_id = upload_id_of(url)
    row = catalog_upload(world.settings, upload_id)
    assert row["state"] == "completed"
    assert row["video_status"] == "processing"
    assert row["offset"] == row["length"] == len(data)
    assert object_sha256(world.settings, row["s3_key"]) == sha256(data)
    messages = world.queue.messages_for({row["video_id"]})[row["video_id"]]
    assert len(messages) == 1
    message = {k: v for k, v in messages[0].items() if not k.startswith("_")}
    assert message == {
        "video_id": str(row["video_id"]),
        "source_key": row["s3_key"],
        "size": row["length"],
        "sha256": row["sha256"],
    }
    assert row["s3_key"] == f"originals/{row['video_id']}/source"
    return row


def test_small_upload_in_a_single_request(world: UploadWorld) -> None:
    creator = world.creator()
    data = os.urandom(700 * 1024)
    tus = CreationWithUploadUploader(
        file_stream=io.BytesIO(data),
        client=uploader(world.service, creator, b"x").client,
        chunk_size=4 * MiB,
        metadata={"filename": "tiny.mp4", "title": "Tiny", "tags": "cats,Short"},
    )
    tus.upload()
    assert tus.created_offset == len(data)  # the POST carried every byte
    row = assert_completed(world, tus.url, data)
    assert row["sha256"] == sha256(data)
    assert row["title"] == "Tiny"
    assert row["tags"] == ["cats", "short"]
    assert row["video_user_id"] == creator.user_id


def test_chunks_smaller_and_larger_than_five_mib(world: UploadWorld) -> None:
    creator = world.creator()
    data = os.urandom(19 * MiB + 12345)
    tus = uploader(world.service, creator, data)
    settings = world.settings
    sizes = [3 * MiB, 7 * MiB, 1 * MiB, 6 * MiB, 512 * 1024, 4 * MiB]
    for i, size in enumerate(sizes):
        tus.chunk_size = size
        tus.upload_chunk()
        row = catalog_upload(settings, upload_id_of(tus.url))
        if i == 0:
            # 3 MiB is no S3 part: it is parked in S3, outside the service's memory.
            assert row["parts"] == []
            assert row["parked_size"] == 3 * MiB
            parked = (
                s3_client(settings)
                .get_object(Bucket=settings.bucket_originals, Key=row["parked_key"])["Body"]
                .read()
            )
            assert parked == data[: 3 * MiB]
        if tus.offset < len(data):
            assert row["offset"] == tus.offset == s3_offset(settings, upload_id_of(tus.url))
            assert all(size >= 5 * MiB for _, size, _ in row["parts"])
    tus.chunk_size = 4 * MiB
    tus.upload()
    row = assert_completed(world, tus.url, data)
    assert row["sha256"] == sha256(data)
    assert row["parked_key"] is None
    # The parked pieces went with completion.
    staged = s3_client(settings).list_objects_v2(
        Bucket=settings.bucket_originals, Prefix=f"staging/uploads/{row['upload_id']}/"
    )
    assert staged.get("KeyCount", 0) == 0


def test_interrupted_mid_chunk_resumes_from_head_offset(world: UploadWorld) -> None:
    creator = world.creator()
    data = os.urandom(14 * MiB)
    tus = uploader(world.service, creator, data, chunk_size=2 * MiB)
    tus.upload_chunk()  # 2 MiB committed (parked)
    url, start = tus.url, tus.offset
    # A 10 MiB PATCH whose connection drops after 7 MiB.
    sock = start_raw_patch(url, creator, start, 10 * MiB, data[start : start + 7 * MiB])
    sock.close()
    upload_id = upload_id_of(url)

    def settled() -> bool:
        return catalog_upload(world.settings, upload_id)["offset"] > start

    wait_until(settled)
    offset = int(head(url, creator).headers["Upload-Offset"])
    # What arrived before the drop was kept (tus: keep as much as possible).
    assert start < offset <= start + 7 * MiB
    assert offset == s3_offset(world.settings, upload_id)
    resumed = uploader(world.service, creator, data, url=url, chunk_size=5 * MiB)
    assert resumed.offset == offset  # tuspy asked HEAD
    resumed.upload()
    assert_completed(world, url, data)


def test_checksum_mismatch_is_460_and_appends_nothing(world: UploadWorld) -> None:
    creator = world.creator()
    data = os.urandom(13 * MiB)
    tus = uploader(world.service, creator, data, chunk_size=1 * MiB)
    tus.upload_chunk()  # 1 MiB parked
    upload_id = upload_id_of(tus.url)
    before = catalog_upload(world.settings, upload_id)
    body = data[MiB : 12 * MiB]  # long enough to stream whole parts into S3
    wrong = base64.b64encode(hashlib.sha1(body + b"x").digest()).decode()  # noqa: S324
    response = patch(tus.url, creator, MiB, body, {"Upload-Checksum": f"sha1 {wrong}"})
    assert response.status_code == 460, response.text
    assert "checksum" in response.json()["detail"]
    after = catalog_upload(world.settings, upload_id)
    assert after["offset"] == before["offset"] == MiB
    assert after["parts"] == before["parts"] == []
    assert after["parked_key"] == before["parked_key"]
    assert int(head(tus.url, creator).headers["Upload-Offset"]) == MiB
    # Resume with checksums on (sha1, tuspy's default): S3's stray parts do not count.
    resumed = uploader(world.service, creator, data, url=tus.url, upload_checksum=True)
    resumed.upload()
    assert_completed(world, tus.url, data)


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_checksum_algorithms_beyond_sha1(world: UploadWorld, algorithm: str) -> None:
    class ChecksumUploader(Uploader):
        CHECKSUM_ALGORITHM_PAIR = (algorithm, getattr(hashlib, algorithm))

    creator = world.creator()
    data = os.urandom(6 * MiB + 99)
    client = uploader(world.service, creator, b"x").client
    tus = ChecksumUploader(
        file_stream=io.BytesIO(data),
        client=client,
        chunk_size=2 * MiB,
        upload_checksum=True,
        metadata={"filename": "c.mp4"},
    )
    tus.upload()
    assert_completed(world, tus.url, data)


def test_resuming_with_a_stale_offset_is_a_conflict(world: UploadWorld) -> None:
    creator = world.creator()
    data = os.urandom(3 * MiB)
    tus = uploader(world.service, creator, data, chunk_size=MiB)
    tus.upload_chunk()
    stale = uploader(world.service, creator, data, url=tus.url, chunk_size=MiB)
    tus.upload_chunk()
    with pytest.raises(TusCommunicationError) as exc:
        stale.upload_chunk()  # still thinks the offset is 1 MiB
    assert exc.value.status_code == 409
    tus.upload()
    assert_completed(world, tus.url, data)


def test_completed_upload_stays_complete(world: UploadWorld) -> None:
    creator = world.creator()
    data = os.urandom(MiB)
    tus = uploader(world.service, creator, data)
    tus.upload()
    assert_completed(world, tus.url, data)
    response = head(tus.url, creator)
    assert response.status_code == 200
    assert response.headers["Upload-Offset"] == response.headers["Upload-Length"] == str(MiB)
    assert "Upload-Expires" not in response.headers
    assert patch(tus.url, creator, MiB, b"").status_code == 204
    assert patch(tus.url, creator, 0, b"again").status_code == 409
    # No second message for the same video.
    assert world.queue.drain_extra(2) == []
