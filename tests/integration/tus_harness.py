"""Helpers for the upload service's integration tests.

Tests run their *own* upload service (``python -m vidflow.uploads`` on a free port) with
``VIDFLOW_PROCESSING_QUEUE`` set to a queue of the test, so nothing they upload reaches
the real processing queue, and so they may kill and restart it. Everything else is real:
PostgreSQL, the S3/SQS endpoint and the tuspy client.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import requests
from sqlalchemy import text
from tusclient.client import TusClient
from tusclient.uploader import Uploader

from vidflow import storage
from vidflow.catalog.db import get_engine
from vidflow.config import REPO_ROOT, Settings
from vidflow.storage import s3_client, sqs_client
from vidflow.uploads.locks import lock_key
from vidflow.uploads.store import staging_prefix

MiB = 1024 * 1024
PASSWORD = "Test-upload-pw-42"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class UploadService:
    """An upload service process this test started (and may kill)."""

    settings: Settings
    queue: str
    log_path: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def files_url(self) -> str:
        return f"{self.base_url}/files/"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60) -> None:
        env = {
            **os.environ,
            "VIDFLOW_PROCESSING_QUEUE": self.queue,
            "VIDFLOW_UPLOAD_PART_SIZE": str(5 * MiB),
            **self.extra_env,
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vidflow.uploads",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"upload service exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"upload service not healthy:\n{self.log_path.read_text()[-3000:]}"
                )
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")


@dataclass(frozen=True)
class Creator:
    username: str
    user_id: uuid.UUID
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def tus(self) -> dict[str, str]:
        return {**self.auth, "Tus-Resumable": "1.0.0"}


def own_client() -> dict[str, str]:
    """Headers that make a request come from a client address of its own: the service
    trusts X-Forwarded-For from loopback, as behind a proxy. The whole suite registers far
    more accounts than one address may within the registration rate limit's window."""
    return {"X-Forwarded-For": ".".join(str(b) for b in (10, *uuid.uuid4().bytes[:3]))}


def register(base_url: str, username: str) -> Creator:
    response = httpx.post(
        f"{base_url}/v1/accounts",
        json={"username": username, "email": f"{username}@example.com", "password": PASSWORD},
        headers=own_client(),
    )
    assert response.status_code == 201, response.text
    login = httpx.post(
        f"{base_url}/v1/auth/token", json={"username": username, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    return Creator(username, uuid.UUID(response.json()["user_id"]), login.json()["access_token"])


def uploader(
    service: UploadService,
    creator: Creator,
    data: bytes,
    *,
    chunk_size: int = 4 * MiB,
    url: str | None = None,
    metadata: dict[str, str] | None = None,
    **kwargs: Any,
) -> Uploader:
    """A tuspy uploader for ``data`` (a new upload, or ``url`` to resume one)."""
    client = TusClient(service.files_url, headers=dict(creator.auth))
    return client.uploader(
        file_stream=io.BytesIO(data),
        chunk_size=chunk_size,
        url=url,
        metadata=metadata if metadata is not None else {"filename": "clip.mp4", "title": "t"},
        **kwargs,
    )


class CreationWithUploadUploader(Uploader):
    """tuspy with the creation-with-upload extension: the POST carries the first chunk.

    tuspy itself creates with an empty POST; this adds the extension in the way the spec
    describes, reusing tuspy's headers, metadata encoding and chunking.
    """

    created_offset = 0

    def create_url(self) -> str:
        size = self.get_file_size()  # moves the shared stream to its end
        stream = self.get_file_stream()
        stream.seek(0)
        first = stream.read(min(self.chunk_size, size))
        headers = {
            **self.get_url_creation_headers(),
            "Content-Type": "application/offset+octet-stream",
        }
        response = requests.post(self.client.url, headers=headers, data=first, timeout=60)
        assert response.status_code == 201, response.text
        self.created_offset = int(response.headers["Upload-Offset"])
        return urljoin(self.client.url, response.headers["Location"])

    def upload(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at or self.get_file_size()
        if not self.url:
            self.set_url(self.create_url())
            self.offset = self.created_offset
        while self.offset < self.stop_at:
            self.upload_chunk()


def upload_id_of(url: str) -> uuid.UUID:
    return uuid.UUID(url.rstrip("/").rsplit("/", 1)[1])


def head(url: str, creator: Creator) -> httpx.Response:
    return httpx.head(url, headers=creator.tus)


def patch(
    url: str,
    creator: Creator,
    offset: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return httpx.patch(
        url,
        content=body,
        headers={
            **creator.tus,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **(headers or {}),
        },
        timeout=60,
    )


def start_raw_patch(
    url: str, creator: Creator, offset: int, content_length: int, first_bytes: bytes
) -> socket.socket:
    """Open a PATCH that announces ``content_length`` bytes but sends only
    ``first_bytes``; the caller sends more, or closes the socket to drop the connection."""
    parsed = httpx.URL(url)
    sock = socket.create_connection((parsed.host, parsed.port or 80))
    lines = [
        f"PATCH {parsed.raw_path.decode()} HTTP/1.1",
        f"Host: {parsed.host}:{parsed.port}",
        f"Authorization: Bearer {creator.token}",
        "Tus-Resumable: 1.0.0",
        f"Upload-Offset: {offset}",
        "Content-Type: application/offset+octet-stream",
        f"Content-Length: {content_length}",
        "",
        "",
    ]
    sock.sendall("\r\n".join(lines).encode() + first_bytes)
    return sock


def read_response_status(sock: socket.socket, timeout: float = 60) -> int:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


# --- the catalog and S3 as the tests see them ------------------------------------------------


def catalog_upload(settings: Settings, upload_id: uuid.UUID) -> dict[str, Any]:
    with get_engine(settings).connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT u.*, v.status AS video_status, v.failure_reason, v.title, v.tags, "
                    "v.user_id AS video_user_id "
                    "FROM uploads u JOIN videos v USING (video_id) WHERE u.upload_id = :id"
                ),
                {"id": upload_id},
            )
            .mappings()
            .one()
        )
        parts = conn.execute(
            text(
                "SELECT part_number, size, etag FROM upload_parts WHERE upload_id = :id "
                "ORDER BY part_number"
            ),
            {"id": upload_id},
        ).all()
    return {**row, "parts": [tuple(p) for p in parts]}


def s3_offset(settings: Settings, upload_id: uuid.UUID) -> int:
    """The offset as S3 proves it: the committed parts ListParts shows (same ETag) plus
    the parked piece, computed here independently of the service."""
    row = catalog_upload(settings, upload_id)
    s3 = s3_client(settings)
    listed = s3.list_parts(
        Bucket=settings.bucket_originals, Key=row["s3_key"], UploadId=row["s3_multipart_id"]
    ).get("Parts", [])
    by_number = {p["PartNumber"]: (p["Size"], p["ETag"]) for p in listed}
    total = 0
    for number, size, etag in row["parts"]:
        assert by_number.get(number) == (size, etag), f"part {number} differs in S3"
        total += size
    if row["parked_key"]:
        parked = s3.head_object(Bucket=settings.bucket_originals, Key=row["parked_key"])
        assert parked["ContentLength"] == row["parked_size"]
        total += row["parked_size"]
    return total


def object_sha256(settings: Settings, key: str) -> str:
    return storage.object_sha256(s3_client(settings), settings.bucket_originals, key)


def s3_leftovers(settings: Settings, upload_id: uuid.UUID) -> dict[str, list[str]]:
    """Whatever S3 still holds of an upload: open multipart uploads, objects."""
    row = catalog_upload(settings, upload_id)
    s3 = s3_client(settings)
    bucket = settings.bucket_originals
    multiparts = s3.list_multipart_uploads(Bucket=bucket, Prefix=row["s3_key"]).get("Uploads", [])
    objects = []
    for prefix in (f"originals/{row['video_id']}/", staging_prefix(upload_id)):
        found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        objects += [o["Key"] for o in found]
    return {"multipart_uploads": [m["UploadId"] for m in multiparts], "objects": objects}


def lock_held(settings: Settings, upload_id: uuid.UUID) -> bool:
    """Is the upload's advisory lock held by some session right now?"""
    key = lock_key(upload_id) & 0xFFFFFFFFFFFFFFFF
    with get_engine(settings).connect() as conn:
        held = conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
            ),
            {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
        ).scalar_one()
    return bool(held)


def wait_until(predicate: Any, timeout: float = 30, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(interval)


# --- the test's own queue ---------------------------------------------------------------------


@dataclass
class TestQueue:
    __test__ = False  # not a test class, despite its name

    settings: Settings
    name: str
    url: str = ""

    def create(self) -> None:
        self.url = sqs_client(self.settings).create_queue(
            QueueName=self.name, Attributes={"VisibilityTimeout": "30"}
        )["QueueUrl"]

    def messages_for(
        self, video_ids: set[uuid.UUID], timeout: float = 30
    ) -> dict[uuid.UUID, list[dict[str, Any]]]:
        """Receive (and delete) messages until each video has one; returns every message
        seen per video, so duplicates show."""
        sqs = sqs_client(self.settings)
        found: dict[uuid.UUID, list[dict[str, Any]]] = {}
        deadline = time.monotonic() + timeout
        while not video_ids <= set(found) and time.monotonic() < deadline:
            batch = sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            for message in batch:
                body = json.loads(message["Body"])
                found.setdefault(uuid.UUID(body["video_id"]), []).append(
                    {**body, "_attributes": message.get("MessageAttributes", {})}
                )
                sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def drain_extra(self, seconds: float = 3) -> list[dict[str, Any]]:
        """Messages arriving within ``seconds`` (to prove there is no duplicate)."""
        sqs = sqs_client(self.settings)
        seen = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for message in sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", []):
                seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return seen

    def delete(self) -> None:
        with get_engine(self.settings).begin() as conn:
            # Rows still pending for this queue would fail forever once it is gone.
            conn.execute(
                text("DELETE FROM outbox WHERE topic = :q AND sent_at IS NULL"), {"q": self.name}
            )
        sqs_client(self.settings).delete_queue(QueueUrl=self.url)


def cleanup_creators(settings: Settings, user_ids: list[uuid.UUID]) -> None:
    """Remove what the test's accounts left: S3 objects, catalog rows. Nothing of a test
    stays behind for a reconciliation job to find."""
    if not user_ids:
        return
    s3 = s3_client(settings)
    bucket = settings.bucket_originals
    with get_engine(settings).begin() as conn:
        uploads = conn.execute(
            text(
                "SELECT upload_id, video_id, s3_key, s3_multipart_id, state FROM uploads "
                "WHERE user_id = ANY(:ids)"
            ),
            {"ids": user_ids},
        ).all()
        for upload_id, video_id, key, multipart_id, state in uploads:
            if state == "active" and multipart_id:
                with contextlib.suppress(s3.exceptions.ClientError):
                    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=multipart_id)
            for prefix in (f"originals/{video_id}/", staging_prefix(upload_id)):
                for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
                    s3.delete_object(Bucket=bucket, Key=obj["Key"])
        conn.execute(
            text(
                "DELETE FROM outbox WHERE payload->>'video_id' IN "
                "(SELECT video_id::text FROM videos WHERE user_id = ANY(:ids))"
            ),
            {"ids": user_ids},
        )
        conn.execute(text("DELETE FROM uploads WHERE user_id = ANY(:ids)"), {"ids": user_ids})
        conn.execute(text("DELETE FROM videos WHERE user_id = ANY(:ids)"), {"ids": user_ids})
        conn.execute(text("DELETE FROM usernames WHERE user_id = ANY(:ids)"), {"ids": user_ids})
        conn.execute(text("DELETE FROM user_emails WHERE user_id = ANY(:ids)"), {"ids": user_ids})
        conn.execute(text("DELETE FROM users WHERE user_id = ANY(:ids)"), {"ids": user_ids})


@dataclass
class UploadWorld:
    """One test module's service, queue and accounts, cleaned up afterwards."""

    settings: Settings
    service: UploadService
    queue: TestQueue
    token: str
    creators: list[Creator] = field(default_factory=list)

    def creator(self, name: str = "c") -> Creator:
        creator = register(self.service.base_url, f"tus_{self.token}_{name}_{uuid.uuid4().hex[:6]}")
        self.creators.append(creator)
        return creator

    def another_service(self, tmp_dir: Path, **extra_env: str) -> UploadService:
        """A second replica (or a differently configured instance) on the same queue."""
        other = UploadService(
            self.settings,
            self.queue.name,
            tmp_dir / f"upload-service-{uuid.uuid4().hex[:6]}.log",
            extra_env=extra_env,
        )
        other.start()
        return other


def upload_world(
    settings: Settings,
    tmp_dir: Path,
    token: str,
    settings_update: dict[str, Any] | None = None,
    **extra_env: str,
) -> Iterator[UploadWorld]:
    """Generator behind the tests' module fixtures. ``world.settings`` names the test's
    queue too, so service functions the test calls in-process never write to the real
    processing queue either."""
    settings = settings.model_copy(
        update={"processing_queue": f"vidflow-test-uploads-{token}", **(settings_update or {})}
    )
    queue = TestQueue(settings, settings.processing_queue)
    queue.create()
    service = UploadService(
        settings, queue.name, tmp_dir / "upload-service.log", extra_env=extra_env
    )
    service.start()
    world = UploadWorld(settings, service, queue, token)
    try:
        yield world
    finally:
        service.stop()
        cleanup_creators(settings, [c.user_id for c in world.creators])
        queue.delete()
