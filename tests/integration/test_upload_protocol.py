"""tus 1.0.0 protocol rules over raw HTTP: discovery, version, media type, offsets,
limits, metadata validation, HEAD headers, CORS and method override."""

from __future__ import annotations

import base64
import hashlib
import os
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
    start_raw_patch,
    upload_id_of,
    upload_world,
    wait_until,
)
from vidflow.config import Settings

MAX_SIZE = 64 * MiB


@pytest.fixture(scope="module")
def world(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadWorld]:
    token = os.urandom(4).hex()
    yield from upload_world(
        stack,
        tmp_path_factory.mktemp("protocol"),
        token,
        VIDFLOW_UPLOAD_MAX_SIZE=str(MAX_SIZE),
    )


@pytest.fixture(scope="module")
def creator(world: UploadWorld) -> Creator:
    return world.creator()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def create(world: UploadWorld, creator: Creator, length: int, **headers: str) -> httpx.Response:
    return httpx.post(
        world.service.files_url,
        headers={**creator.tus, "Upload-Length": str(length), **headers},
    )


def test_options_advertises_the_server(world: UploadWorld, creator: Creator) -> None:
    response = httpx.options(world.service.files_url, headers=creator.auth)
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Max-Size"] == str(MAX_SIZE)
    assert response.headers["Tus-Checksum-Algorithm"] == "sha1,sha256,md5"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "expiration",
        "checksum",
        "termination",
    }


def test_the_supervised_service_is_up(stack: Settings) -> None:
    """`make up` runs the upload API next to the rest of the stack."""
    url = f"http://{stack.bind_host}:{stack.upload_port}"
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    assert httpx.options(f"{url}/files/").status_code == 401


def test_creation_returns_location_and_expiry(world: UploadWorld, creator: Creator) -> None:
    response = create(
        world,
        creator,
        5000,
        **{"Upload-Metadata": f"filename {b64('a.mkv')},filetype {b64('video/x-matroska')}"},
    )
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    assert location.startswith(world.service.files_url)
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Upload-Expires"].endswith(" GMT")
    row = catalog_upload(world.settings, upload_id_of(location))
    assert row["state"] == "active" and row["video_status"] == "uploading"
    assert row["title"] == "a"
    assert row["video_user_id"] == creator.user_id


def test_head_reports_offset_length_and_no_store(world: UploadWorld, creator: Creator) -> None:
    url = create(world, creator, 3000, **{"Upload-Metadata": f"title {b64('Hi, there')}"})
    url_ = url.headers["Location"]
    assert patch(url_, creator, 0, b"x" * 1000).status_code == 204
    response = head(url_, creator)
    assert response.status_code == 200
    assert response.headers["Upload-Offset"] == "1000"
    assert response.headers["Upload-Length"] == "3000"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Upload-Metadata"] == f"title {b64('Hi, there')}"
    assert "Upload-Expires" in response.headers
    assert response.content == b""


def test_creation_with_upload_and_a_bad_checksum(world: UploadWorld, creator: Creator) -> None:
    """The upload is created (its URL comes back) but the body is refused: 460."""
    body = os.urandom(1000)
    wrong = base64.b64encode(hashlib.sha256(body + b"x").digest()).decode()
    response = httpx.post(
        world.service.files_url,
        content=body,
        headers={
            **creator.tus,
            "Upload-Length": "1000",
            "Content-Type": "application/offset+octet-stream",
            "Upload-Checksum": f"sha256 {wrong}",
        },
    )
    assert response.status_code == 460
    url = response.headers["Location"]
    assert head(url, creator).headers["Upload-Offset"] == "0"
    assert patch(url, creator, 0, body).status_code == 204
    assert catalog_upload(world.settings, upload_id_of(url))["state"] == "completed"


def test_wrong_or_missing_tus_version_is_412(world: UploadWorld, creator: Creator) -> None:
    for headers in ({**creator.auth}, {**creator.auth, "Tus-Resumable": "0.2.2"}):
        response = httpx.post(world.service.files_url, headers={**headers, "Upload-Length": "10"})
        assert response.status_code == 412
        assert response.headers["Tus-Version"] == "1.0.0"
        assert "1.0.0" in response.json()["detail"]


def test_patch_with_the_wrong_content_type_is_415(world: UploadWorld, creator: Creator) -> None:
    url = create(world, creator, 10).headers["Location"]
    response = httpx.patch(
        url,
        content=b"0123456789",
        headers={**creator.tus, "Upload-Offset": "0", "Content-Type": "application/json"},
    )
    assert response.status_code == 415
    assert head(url, creator).headers["Upload-Offset"] == "0"


def test_offset_mismatch_is_409_and_says_where_to_resume(
    world: UploadWorld, creator: Creator
) -> None:
    url = create(world, creator, 100).headers["Location"]
    assert patch(url, creator, 0, b"a" * 40).status_code == 204
    response = patch(url, creator, 10, b"b" * 10)
    assert response.status_code == 409
    assert response.headers["Upload-Offset"] == "40"
    assert head(url, creator).headers["Upload-Offset"] == "40"


def test_creation_limits(world: UploadWorld, creator: Creator) -> None:
    too_big = create(world, creator, MAX_SIZE + 1)
    assert too_big.status_code == 413
    assert "exceeds" in too_big.json()["detail"]
    at_max = create(world, creator, MAX_SIZE)  # no memory is allocated for the length
    assert at_max.status_code == 201
    missing = httpx.post(world.service.files_url, headers=creator.tus)
    assert missing.status_code == 400
    assert "Upload-Length" in missing.json()["detail"]
    assert create(world, creator, 0).status_code == 400


def test_body_past_the_length_is_refused(world: UploadWorld, creator: Creator) -> None:
    url = create(world, creator, 10).headers["Location"]
    response = patch(url, creator, 0, b"x" * 11)
    assert response.status_code == 413
    assert head(url, creator).headers["Upload-Offset"] == "0"


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ("title %%%", "not valid base64"),
        (f"title {b64('x' * 201)}", "limit is 200"),
        (f"tags {b64(','.join(f't{i}' for i in range(25)))}", "at most 20"),
        (f"filetype {b64('image/png')}", "not a video type"),
        (f"title {b64('a')},title {b64('b')}", "twice"),
    ],
)
def test_bad_metadata_is_a_clear_400(
    world: UploadWorld, creator: Creator, metadata: str, reason: str
) -> None:
    response = create(world, creator, 10, **{"Upload-Metadata": metadata})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert reason in response.json()["detail"]


def test_unknown_upload_is_404(world: UploadWorld, creator: Creator) -> None:
    for url in (f"{world.service.files_url}not-a-uuid", f"{world.service.files_url}{'0' * 32}"):
        assert head(url, creator).status_code == 404
        assert patch(url, creator, 0, b"x").status_code == 404


def test_memory_is_not_sized_by_the_client(world: UploadWorld, creator: Creator) -> None:
    """A PATCH announcing 60 MiB but sending 1 MiB costs the server one part buffer,
    not 60 MiB."""
    url = create(world, creator, MAX_SIZE).headers["Location"]
    before = world.service.peak_rss_kib()
    sock = start_raw_patch(url, creator, 0, 60 * MiB, os.urandom(MiB))
    sock.close()
    upload_id = upload_id_of(url)
    wait_until(lambda: catalog_upload(world.settings, upload_id)["offset"] > 0)
    grown_mib = (world.service.peak_rss_kib() - before) / 1024
    assert grown_mib < 30, f"peak RSS grew by {grown_mib:.0f} MiB"


def test_cors_preflight_and_exposed_headers(world: UploadWorld, creator: Creator) -> None:
    preflight = httpx.options(
        world.service.files_url,
        headers={
            "Origin": "https://studio.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,tus-resumable,upload-length",
        },
    )
    assert preflight.status_code == 200
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    response = create(world, creator, 10, Origin="https://studio.example.com")
    exposed = response.headers["Access-Control-Expose-Headers"].lower()
    assert "location" in exposed and "upload-offset" in exposed


def test_method_override_for_proxies_without_patch(world: UploadWorld, creator: Creator) -> None:
    url = create(world, creator, 4).headers["Location"]
    response = httpx.post(
        url,
        content=b"abcd",
        headers={
            **creator.tus,
            "X-HTTP-Method-Override": "PATCH",
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == "4"
