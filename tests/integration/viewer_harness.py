"""Helpers for the viewer API's integration tests.

Tests run their *own* viewer API (``python -m vidflow.viewer`` on a free port) with
``VIDFLOW_BUCKET_EVENTS`` set to a bucket of the test, so their events never reach the
analytics runs of the real events bucket, and so they may kill and stop it. Everything
else is real: PostgreSQL, the S3 endpoint, uvicorn.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.integration.tus_harness import free_port
from vidflow.accounts.security import create_access_token
from vidflow.config import REPO_ROOT, Settings
from vidflow.storage import s3_client


@dataclass
class ViewerProcess:
    """A viewer API this test started (and may kill)."""

    bucket: str
    log_path: Path
    workers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, "VIDFLOW_BUCKET_EVENTS": self.bucket, **self.extra_env}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vidflow.viewer",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"viewer API exited:\n{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"viewer API not healthy:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@contextlib.contextmanager
def events_bucket(settings: Settings, token: str) -> Iterator[str]:
    """A bucket of the test's own, emptied and removed afterwards."""
    name = f"vidflow-test-events-{token}"
    s3 = s3_client(settings)
    s3.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        for key in object_keys(settings, name):
            s3.delete_object(Bucket=name, Key=key)
        s3.delete_bucket(Bucket=name)


@contextlib.contextmanager
def two_viewer_processes(settings: Settings, logs: Path) -> Iterator[tuple[str, str]]:
    """Two viewer APIs of the test sharing one events bucket of its own: their base URLs."""
    with events_bucket(settings, os.urandom(4).hex()) as bucket:
        services = [ViewerProcess(bucket, logs / f"viewer{i}.log") for i in (1, 2)]
        try:
            for service in services:
                service.start()
            yield services[0].base_url, services[1].base_url
        finally:
            for service in services:
                service.stop()


def object_keys(settings: Settings, bucket: str) -> list[str]:
    s3 = s3_client(settings)
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [obj["Key"] for obj in page.get("Contents", [])]
    return keys


def stored_lines(settings: Settings, bucket: str) -> dict[str, list[str]]:
    """Every object of the bucket: key -> its NDJSON lines."""
    s3 = s3_client(settings)
    return {
        key: s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
        for key in object_keys(settings, bucket)
    }


def bearer(settings: Settings, user_id: uuid.UUID) -> dict[str, str]:
    token, _ = create_access_token(settings=settings, user_id=user_id, username="viewer-test")
    return {"Authorization": f"Bearer {token}"}


def make_event(**changes: Any) -> dict[str, Any]:
    """A valid client event stamped now (each call a new event id)."""
    values: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "heartbeat",
        "video_id": str(uuid.uuid4()),
        "session_id": str(uuid.uuid4()),
        "client_ts": datetime.now(UTC).isoformat(),
        "position_seconds": 10.0,
        "region": "us-east",
        "device": "desktop",
    }
    values.update(changes)
    return values
