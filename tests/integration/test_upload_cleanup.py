"""Termination and expiry leave nothing of an upload in the bucket, and record why on the
video. Expiry runs through the service function and through the real Airflow DAG."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.tus_harness import (
    Creator,
    MiB,
    UploadWorld,
    catalog_upload,
    head,
    patch,
    s3_leftovers,
    upload_id_of,
    upload_world,
    uploader,
)
from vidflow.airflow_api import AirflowClient
from vidflow.config import Settings
from vidflow.uploads.service import UploadBackend, expire_uploads

EXPIRY_SECONDS = 4
DAG_ID = "upload_maintenance"


@pytest.fixture(scope="module")
def world(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadWorld]:
    token = os.urandom(4).hex()
    yield from upload_world(
        stack,
        tmp_path_factory.mktemp("cleanup"),
        token,
        VIDFLOW_UPLOAD_EXPIRY_SECONDS=str(EXPIRY_SECONDS),
    )


def half_uploaded(world: UploadWorld, creator: Creator) -> tuple[str, uuid.UUID]:
    """An upload with a committed S3 part and a parked piece, then abandoned."""
    data = os.urandom(12 * MiB)
    tus = uploader(world.service, creator, data, chunk_size=3 * MiB)
    tus.upload_chunk()
    tus.upload_chunk()
    upload_id = upload_id_of(tus.url)
    row = catalog_upload(world.settings, upload_id)
    assert row["parts"] and row["parked_key"]
    leftovers = s3_leftovers(world.settings, upload_id)
    assert leftovers["multipart_uploads"] and leftovers["objects"]
    return tus.url, upload_id


def assert_clean(world: UploadWorld, upload_id: uuid.UUID, state: str, reason: str) -> None:
    assert s3_leftovers(world.settings, upload_id) == {"multipart_uploads": [], "objects": []}
    row = catalog_upload(world.settings, upload_id)
    assert row["state"] == state
    assert row["video_status"] == "failed"
    assert row["failure_reason"] == reason
    assert row["parts"] == [] and row["parked_key"] is None


def test_termination_removes_everything_at_once(world: UploadWorld) -> None:
    creator = world.creator()
    url, upload_id = half_uploaded(world, creator)
    response = httpx.delete(url, headers=creator.tus)
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert_clean(world, upload_id, "terminated", "upload terminated by its creator")
    assert head(url, creator).status_code == 404
    assert patch(url, creator, 6 * MiB, b"x").status_code == 404
    assert httpx.delete(url, headers=creator.tus).status_code == 404


def test_a_completed_upload_cannot_be_terminated(world: UploadWorld) -> None:
    creator = world.creator()
    data = os.urandom(MiB)
    tus = uploader(world.service, creator, data)
    tus.upload()
    response = httpx.delete(tus.url, headers=creator.tus)
    assert response.status_code == 409
    row = catalog_upload(world.settings, upload_id_of(tus.url))
    assert row["state"] == "completed" and row["video_status"] == "processing"
    world.queue.messages_for({row["video_id"]})


def test_expired_upload_answers_410_and_is_cleaned_up(world: UploadWorld) -> None:
    creator = world.creator()
    url, upload_id = half_uploaded(world, creator)
    assert head(url, creator).status_code == 200
    time.sleep(EXPIRY_SECONDS + 1)
    assert head(url, creator).status_code == 410
    response = patch(url, creator, 6 * MiB, b"late")
    assert response.status_code == 410
    assert "expired" in response.json()["detail"]
    backend = UploadBackend.from_settings(world.settings, lock_pool_size=1)
    try:
        assert expire_uploads(backend=backend, only=[upload_id]) == [upload_id]
        assert expire_uploads(backend=backend, only=[upload_id]) == []  # idempotent
    finally:
        backend.close()
    assert_clean(world, upload_id, "expired", "upload expired")
    assert head(url, creator).status_code == 410


def test_the_maintenance_dag_expires_uploads(world: UploadWorld, airflow: AirflowClient) -> None:
    creator = world.creator()
    url, upload_id = half_uploaded(world, creator)
    airflow.wait_for_dag(DAG_ID)
    time.sleep(EXPIRY_SECONDS + 1)
    run_id = airflow.trigger(DAG_ID)
    run = airflow.wait_for_run(DAG_ID, run_id, timeout=300)
    states = {ti["task_id"]: ti["state"] for ti in airflow.task_instances(DAG_ID, run_id)}
    assert run["state"] == "success", states
    assert states == {
        "expire_uploads": "success",
        "complete_stalled_uploads": "success",
        "relay_outbox": "success",
    }
    assert_clean(world, upload_id, "expired", "upload expired")
    assert head(url, creator).status_code == 410
