"""`stack down` then `stack up` loses no object and no message (issue #10).

One test, because it restarts the whole local stack through its own Python API
(``vidflow.stack.cli.down`` / ``up``, what `make down` / `make up` run):

- a video published before the restart still plays afterwards: its master playlist and
  segments come through a CDN edge that never saw them before (so from the origin, the
  persistent object store), byte for byte what was stored;
- a processing message that was in the queue when the stack went down (moto keeps the
  queue in memory, so it is gone) is recovered: the video is still ``processing`` with no
  run, and the reconciliation DAG re-sends it through the outbox; it ends processed.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import m3u8
import pytest
from sqlalchemy import text, update

from tests.integration.test_video_processing import (
    H264,
    Shape,
    check_stream,
    create_video,
    lavfi,
    make_source,
    queue_message,
    send_messages,
    upload_source,
    wait_for_videos,
)
from vidflow.airflow_api import AirflowClient
from vidflow.catalog.db import get_engine, session_scope
from vidflow.catalog.models import OutboxMessage, Video
from vidflow.config import Settings
from vidflow.outbox import enqueue, relay_once
from vidflow.processing.catalog import video_state
from vidflow.processing.contracts import ProcessingMessage
from vidflow.processing.objects import iter_keys, video_prefix
from vidflow.stack import cli, supervisor
from vidflow.storage import object_sha256, s3_client

SHAPE = Shape(
    lavfi("testsrc2=size=160x120:rate=15:duration=2"), H264, rungs=["120p"], frame_rate=15.0
)


def edge_get(settings: Settings, key: str) -> httpx.Response:
    edge = settings.edge_urls()["us-east"]
    response = httpx.get(f"{edge}/{key}", timeout=30)
    assert response.status_code == 200, (key, response.status_code, response.text[:200])
    return response


def test_restart_keeps_published_streams_and_recovers_queued_messages(
    stack: Settings, airflow: AirflowClient, tmp_path: Path
) -> None:
    if stack.object_store != "seaweedfs" or stack.endpoint_url != stack.local_s3_url:
        pytest.fail(
            "the local objects live in moto's memory (VIDFLOW_OBJECT_STORE="
            f"{stack.object_store}): a restart loses them"
        )
    s3 = s3_client(stack)
    # A: published before the restart.
    published = uuid.uuid4()
    source = make_source(tmp_path, "published", SHAPE)
    create_video(stack, published)
    send_messages(stack, [queue_message(published, upload_source(stack, published, source))])
    state = wait_for_videos(stack, [str(published)], timeout=600)[str(published)]
    assert state["status"] == "processed", state
    keys = list(iter_keys(s3, stack.bucket_media, video_prefix(str(published))))
    stored = {key: object_sha256(s3, stack.bucket_media, key) for key in keys}
    master_key = next(k for k in keys if k.endswith("/master.m3u8"))

    # B: its message is in the queue, not yet consumed, when the stack goes down.
    lost = uuid.uuid4()
    create_video(stack, lost)
    lost_source = make_source(tmp_path, "lost", SHAPE)
    size = upload_source(stack, lost, lost_source)
    supervisor.ctl(stack, "stop", "airflow-triggerer")  # the queue's only consumer
    with get_engine(stack).begin() as conn:
        payload = ProcessingMessage.for_video(lost, size=size, sha256=None).to_payload()
        outbox_id = enqueue(conn, topic=stack.processing_queue, payload=payload)
    assert relay_once(settings=stack, ids=[outbox_id]) == 1
    with session_scope(stack) as session:
        assert session.get(OutboxMessage, outbox_id).sent_at is not None  # type: ignore[union-attr]

    cli.down(stack)
    assert not supervisor.is_running(stack)
    restarted = time.monotonic()
    cli.up(stack)
    print(f"stack up again after {time.monotonic() - restarted:.0f}s")

    # A: every object is still there, byte for byte, and plays through a cold edge.
    after = set(iter_keys(s3, stack.bucket_media, video_prefix(str(published))))
    assert after == set(keys)
    for key, digest in stored.items():
        assert object_sha256(s3, stack.bucket_media, key) == digest, key
    master = edge_get(stack, master_key)
    assert master.headers.get("X-Cache-Edge") != "HIT"  # never fetched through it before
    playlist = m3u8.loads(master.text)
    media_key = master_key.rsplit("/", 1)[0] + "/" + playlist.playlists[0].uri
    media = m3u8.loads(edge_get(stack, media_key).text)
    segment_key = media_key.rsplit("/", 1)[0] + "/" + media.segments[0].uri
    segment = edge_get(stack, segment_key)
    assert hashlib.sha256(segment.content).hexdigest() == stored[segment_key]
    edge = stack.edge_urls()["us-east"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", f"{edge}/{master_key}", "-map", "0", "-f", "null", "-"],
        check=True,
        timeout=300,
    )

    # B: the queue forgot its message; the watcher (running again) gets nothing for it.
    time.sleep(2 * stack.processing_queue_wait_seconds + 5)
    waiting = video_state(settings=stack, video_id=str(lost)) or {}
    assert waiting.get("status") == "processing", waiting
    assert not waiting.get("processing_run_id"), waiting
    # Reconciliation re-sends it once it counts as stuck (backdated instead of waited for).
    with session_scope(stack) as session:
        session.execute(
            update(Video)
            .where(Video.video_id == lost)
            .values(
                updated_at=text(f"now() - interval '{stack.stuck_processing_minutes + 5} minutes'")
            )
        )
    airflow.wait_for_dag("video_reconciliation")
    run_id = airflow.trigger("video_reconciliation")
    assert airflow.wait_for_run("video_reconciliation", run_id, timeout=300)["state"] == "success"
    recovered = wait_for_videos(stack, [str(lost)], timeout=600)[str(lost)]
    check_stream(recovered, lost_source, SHAPE)
