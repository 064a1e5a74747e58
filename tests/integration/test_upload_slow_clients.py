"""Slow clients: PATCH bodies that stall or trickle are cut by the idle and total limits
(408, the bytes that arrived are kept), and 64 of them at once hold no catalog
connection, so a normal upload still finishes."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.tus_harness import (
    MiB,
    UploadWorld,
    catalog_upload,
    head,
    lock_held,
    read_response_status,
    s3_offset,
    start_raw_patch,
    upload_id_of,
    upload_world,
    uploader,
    wait_until,
)
from vidflow.config import Settings

IDLE = 3.0
TOTAL = 10.0
STALLED = 64


@pytest.fixture(scope="module")
def world(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadWorld]:
    yield from upload_world(
        stack,
        tmp_path_factory.mktemp("slow"),
        os.urandom(4).hex(),
        VIDFLOW_UPLOAD_BODY_IDLE_SECONDS=str(IDLE),
        VIDFLOW_UPLOAD_BODY_TOTAL_SECONDS=str(TOTAL),
    )


def _create(world: UploadWorld, headers: dict[str, str], length: int) -> str:
    response = httpx.post(
        world.service.files_url,
        headers={**headers, "Upload-Length": str(length)},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(httpx.URL(world.service.files_url).join(response.headers["Location"]))


def _response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str]]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head_lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in head_lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(head_lines[0].split(" ", 2)[1]), headers


def test_a_stalled_body_is_cut_after_the_idle_limit_and_its_bytes_are_kept(
    world: UploadWorld,
) -> None:
    creator = world.creator("idle")
    url = _create(world, creator.tus, 8 * MiB)
    upload_id = upload_id_of(url)
    first = os.urandom(MiB)
    started = time.monotonic()
    sock = start_raw_patch(url, creator, 0, 8 * MiB, first)  # then silence
    try:
        wait_until(lambda: lock_held(world.settings, upload_id), timeout=10)
        status, headers = _response(sock, timeout=IDLE + 15)
    finally:
        sock.close()
    waited = time.monotonic() - started
    assert status == 408
    assert headers["upload-offset"] == str(MiB)
    assert IDLE <= waited < IDLE + 12
    wait_until(lambda: not lock_held(world.settings, upload_id), timeout=10)
    assert int(head(url, creator).headers["Upload-Offset"]) == MiB
    assert s3_offset(world.settings, upload_id) == MiB


def test_64_trickling_clients_do_not_stop_a_normal_upload(world: UploadWorld) -> None:
    slow = world.creator("slow")
    urls = [_create(world, slow.tus, 6 * MiB) for _ in range(STALLED)]
    socks = [start_raw_patch(url, slow, 0, 6 * MiB, b"x") for url in urls]
    stop = threading.Event()

    def trickle() -> None:  # one byte per client per second: never idle
        while not stop.wait(1.0):
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.sendall(b"x")

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        time.sleep(2)  # every stalled PATCH is in the server
        assert not any(lock_held(world.settings, upload_id_of(url)) for url in urls)
        creator = world.creator("normal")
        data = os.urandom(6 * MiB)
        started = time.monotonic()
        tus = uploader(world.service, creator, data, chunk_size=6 * MiB)
        tus.upload()
        took = time.monotonic() - started
        assert tus.url is not None
        row = catalog_upload(world.settings, upload_id_of(tus.url))
        assert (row["state"], row["offset"], row["video_status"]) == (
            "completed",
            6 * MiB,
            "processing",
        )
        assert took < 20
        # The trickling clients end at the total limit; with less than the first window
        # sent, nothing of theirs is appended and no lock was ever taken.
        statuses = [read_response_status(sock, timeout=TOTAL + 20) for sock in socks]
    finally:
        stop.set()
        trickler.join(timeout=5)
        for sock in socks:
            sock.close()
    assert statuses == [408] * STALLED
    kept = [catalog_upload(world.settings, upload_id_of(url))["offset"] for url in urls]
    assert kept == [0] * STALLED
