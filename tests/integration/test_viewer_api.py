"""The viewer API's video endpoints against the real catalog: public metadata of processed
videos only, region edge URLs, a creator's own videos (any status, paged, newest first)
and owner-only edits. Catalog rows are inserted directly and removed afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select

from tests.integration.tus_harness import upload_world, uploader
from tests.integration.viewer_harness import ViewerProcess, bearer, events_bucket
from vidflow.catalog.db import get_engine
from vidflow.catalog.models import Video
from vidflow.config import Settings
from vidflow.processing.objects import media_base_url
from vidflow.viewer.app import create_app

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Catalog:
    alice: uuid.UUID
    bob: uuid.UUID
    #: Alice's videos, newest first (two share an upload time: ordered by id, descending).
    alice_videos: list[uuid.UUID]
    published: uuid.UUID  # Alice's, processed
    failed: uuid.UUID
    uploading: uuid.UUID
    bobs: uuid.UUID  # Bob's, processed
    base: str


def _video(video_id: uuid.UUID, user_id: uuid.UUID, base: str, **values: Any) -> dict[str, Any]:
    prefix = f"{base}/media/videos/{video_id}/v1"
    row: dict[str, Any] = {
        "video_id": video_id,
        "user_id": user_id,
        "title": f"video {video_id.hex[:6]}",
        "description": "",
        "tags": [],
        "view_count": 0,
        "like_count": 0,
        "failure_reason": None,
        "status": "processed",
        "manifest_url": f"{prefix}/master.m3u8",
        "dash_url": f"{prefix}/manifest.mpd",
        "thumbnail_urls": {
            "small": f"{prefix}/thumbnails/poster_320x180.jpg",
            "large": f"{prefix}/thumbnails/poster_1280x720.jpg",
        },
        "duration_seconds": 12.5,
    }
    row.update(values)
    return row


@pytest.fixture(scope="module")
def catalog(stack: Settings) -> Iterator[Catalog]:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    base = media_base_url(stack)
    ids = [uuid.uuid4() for _ in range(5)]
    # Two videos uploaded at the same instant: the higher id comes first.
    tied = sorted(ids[1:3], reverse=True)
    published, failed, uploading = ids[0], tied[0], ids[3]
    rows = [
        _video(
            published,
            alice,
            base,
            title="Sunset timelapse",
            description="Over the bay.\nShot on a phone.",
            tags=["timelapse", "sunset"],
            view_count=1234,
            like_count=56,
            upload_timestamp=T0,
        ),
        _video(
            failed,
            alice,
            base,
            status="failed",
            failure_reason="the file is not a video: no video stream found",
            manifest_url=None,
            dash_url=None,
            thumbnail_urls=None,
            duration_seconds=None,
            upload_timestamp=T0 - timedelta(hours=1),
        ),
        _video(tied[1], alice, base, upload_timestamp=T0 - timedelta(hours=1)),
        _video(
            uploading,
            alice,
            base,
            status="uploading",
            manifest_url=None,
            dash_url=None,
            thumbnail_urls=None,
            upload_timestamp=T0 - timedelta(hours=2),
        ),
        _video(ids[4], alice, base, status="processing", upload_timestamp=T0 - timedelta(days=1)),
    ]
    bobs = uuid.uuid4()
    rows.append(_video(bobs, bob, base, title="Bob's", upload_timestamp=T0 + timedelta(hours=1)))
    with get_engine(stack).begin() as conn:
        conn.execute(insert(Video), rows)
    try:
        yield Catalog(
            alice=alice,
            bob=bob,
            alice_videos=[published, tied[0], tied[1], uploading, ids[4]],
            published=published,
            failed=failed,
            uploading=uploading,
            bobs=bobs,
            base=base,
        )
    finally:
        with get_engine(stack).begin() as conn:
            conn.execute(delete(Video).where(Video.user_id.in_([alice, bob])))


@pytest.fixture(scope="module")
def viewer(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The module's own viewer API (one worker; the events tests run two)."""
    with events_bucket(stack, os.urandom(4).hex()) as bucket:
        service = ViewerProcess(bucket, tmp_path_factory.mktemp("viewer") / "viewer.log")
        service.start()
        try:
            yield service.base_url
        finally:
            service.stop()


def _row(settings: Settings, video_id: uuid.UUID) -> Video:
    with get_engine(settings).connect() as conn:
        row = conn.execute(select(Video).where(Video.video_id == video_id)).one()
    return Video(**row._asdict())


# --- GET /v1/videos/{id} ------------------------------------------------------------------------


def test_a_processed_video_shows_its_public_metadata(viewer: str, catalog: Catalog) -> None:
    response = httpx.get(f"{viewer}/v1/videos/{catalog.published}")
    assert response.status_code == 200, response.text
    prefix = f"{catalog.base}/media/videos/{catalog.published}/v1"
    assert response.json() == {
        "video_id": str(catalog.published),
        "title": "Sunset timelapse",
        "description": "Over the bay.\nShot on a phone.",
        "tags": ["timelapse", "sunset"],
        "duration_seconds": 12.5,
        "view_count": 1234,
        "like_count": 56,
        "uploaded_at": "2026-01-10T12:00:00Z",
        "hls_url": f"{prefix}/master.m3u8",
        "dash_url": f"{prefix}/manifest.mpd",
        "thumbnails": {
            "small": f"{prefix}/thumbnails/poster_320x180.jpg",
            "large": f"{prefix}/thumbnails/poster_1280x720.jpg",
        },
    }


def test_unprocessed_unknown_and_malformed_ids_are_the_same_404(
    viewer: str, catalog: Catalog
) -> None:
    for video_id in [catalog.failed, catalog.uploading, uuid.uuid4(), "not-a-uuid", "1"]:
        response = httpx.get(f"{viewer}/v1/videos/{video_id}")
        assert response.status_code == 404, (video_id, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "no published video has this id"


def test_an_unknown_region_is_422_naming_the_regions(viewer: str, catalog: Catalog) -> None:
    response = httpx.get(f"{viewer}/v1/videos/{catalog.published}", params={"region": "mars"})
    assert response.status_code == 422
    assert "'us-east', 'eu-west', 'ap-south' or 'sa-east'" in response.json()["detail"]


def test_a_region_with_an_edge_gets_edge_urls_and_others_the_stored_ones(
    stack: Settings, catalog: Catalog
) -> None:
    edged = stack.model_copy(update={"cdn_edge_urls": "eu-west=http://127.0.0.1:9102"})
    path = f"media/videos/{catalog.published}/v1"
    with TestClient(create_app(edged)) as client:
        on_edge = client.get(f"/v1/videos/{catalog.published}", params={"region": "eu-west"})
        elsewhere = client.get(f"/v1/videos/{catalog.published}", params={"region": "ap-south"})
        unspecified = client.get(f"/v1/videos/{catalog.published}")
    assert on_edge.status_code == 200, on_edge.text
    body = on_edge.json()
    assert body["hls_url"] == f"http://127.0.0.1:9102/{path}/master.m3u8"
    assert body["dash_url"] == f"http://127.0.0.1:9102/{path}/manifest.mpd"
    assert body["thumbnails"] == {
        "small": f"http://127.0.0.1:9102/{path}/thumbnails/poster_320x180.jpg",
        "large": f"http://127.0.0.1:9102/{path}/thumbnails/poster_1280x720.jpg",
    }
    for other in (elsewhere, unspecified):
        assert other.json()["hls_url"] == f"{catalog.base}/{path}/master.m3u8"
        assert other.json()["thumbnails"]["small"].startswith(catalog.base + "/")


# --- GET /v1/me/videos ------------------------------------------------------------------------


def test_my_videos_lists_only_mine_in_every_status_newest_first(
    stack: Settings, viewer: str, catalog: Catalog
) -> None:
    response = httpx.get(f"{viewer}/v1/me/videos", headers=bearer(stack, catalog.alice))
    assert response.status_code == 200, response.text
    page = response.json()
    assert [v["video_id"] for v in page["items"]] == [str(v) for v in catalog.alice_videos]
    assert page["next_cursor"] is None
    by_id = {v["video_id"]: v for v in page["items"]}
    failed = by_id[str(catalog.failed)]
    assert (failed["status"], failed["failure_reason"], failed["hls_url"]) == (
        "failed",
        "the file is not a video: no video stream found",
        None,
    )
    statuses = ["processed", "failed", "processed", "uploading", "processing"]
    assert [v["status"] for v in page["items"]] == statuses
    bobs = httpx.get(f"{viewer}/v1/me/videos", headers=bearer(stack, catalog.bob)).json()
    assert [v["video_id"] for v in bobs["items"]] == [str(catalog.bobs)]


def test_pages_follow_the_cursor_without_repeats_or_gaps(
    stack: Settings, viewer: str, catalog: Catalog
) -> None:
    auth = bearer(stack, catalog.alice)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{viewer}/v1/me/videos", params=params, headers=auth).json()
        seen += [v["video_id"] for v in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3  # 2 + 2 + 1
    assert seen == [str(v) for v in catalog.alice_videos]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": 0}, 422),
        ({"limit": 101}, 422),
        ({"cursor": "garbage"}, 422),
        ({"limit": 100}, 200),
    ],
)
def test_page_parameters_are_bounded(
    stack: Settings, viewer: str, catalog: Catalog, params: dict[str, Any], status: int
) -> None:
    response = httpx.get(
        f"{viewer}/v1/me/videos", params=params, headers=bearer(stack, catalog.alice)
    )
    assert response.status_code == status, response.text


def test_my_videos_needs_a_valid_token(viewer: str) -> None:
    assert httpx.get(f"{viewer}/v1/me/videos").status_code == 401
    bad = httpx.get(f"{viewer}/v1/me/videos", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"].startswith("Bearer")


# --- PATCH /v1/videos/{id} ----------------------------------------------------------------------


def test_the_owner_edits_title_description_and_normalised_tags(
    stack: Settings, viewer: str, catalog: Catalog
) -> None:
    target = catalog.alice_videos[2]
    before = _row(stack, target)
    response = httpx.patch(
        f"{viewer}/v1/videos/{target}",
        json={
            "title": "  New title ",
            "description": "Line 1\nLine 2",
            "tags": [" Cats", "DOGS ", "cats", "", "dogs", "c++"],
        },
        headers=bearer(stack, catalog.alice),
    )
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["cats", "dogs", "c++"]
    after = _row(stack, target)
    assert (after.title, after.description, after.tags) == (
        "New title",
        "Line 1\nLine 2",
        ["cats", "dogs", "c++"],
    )
    # Only what was sent changes; the processing clock is untouched.
    assert (after.status, after.manifest_url, after.updated_at) == (
        before.status,
        before.manifest_url,
        before.updated_at,
    )
    only_tags = httpx.patch(
        f"{viewer}/v1/videos/{target}", json={"tags": []}, headers=bearer(stack, catalog.alice)
    )
    assert only_tags.status_code == 200
    assert (_row(stack, target).title, _row(stack, target).tags) == ("New title", [])


def test_the_owner_may_edit_a_video_that_is_not_processed(
    stack: Settings, viewer: str, catalog: Catalog
) -> None:
    response = httpx.patch(
        f"{viewer}/v1/videos/{catalog.failed}",
        json={"title": "Retry later"},
        headers=bearer(stack, catalog.alice),
    )
    assert response.status_code == 200
    assert response.json()["status"] == "failed"


def test_someone_elses_unknown_or_malformed_video_is_404_and_unchanged(
    stack: Settings, viewer: str, catalog: Catalog
) -> None:
    before = _row(stack, catalog.bobs)
    for video_id in [catalog.bobs, uuid.uuid4(), "not-a-uuid"]:
        response = httpx.patch(
            f"{viewer}/v1/videos/{video_id}",
            json={"title": "hijacked"},
            headers=bearer(stack, catalog.alice),
        )
        assert response.status_code == 404, response.text
        assert response.json()["detail"] == "you have no video with this id"
    assert _row(stack, catalog.bobs).title == before.title == "Bob's"


def test_an_edit_without_a_token_is_401(viewer: str, catalog: Catalog) -> None:
    response = httpx.patch(f"{viewer}/v1/videos/{catalog.bobs}", json={"title": "x"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tags": [f"t{i}" for i in range(21)]}, "21 tags given; at most 20"),
        ({"tags": ["x" * 41]}, "longer than 40"),
        ({"tags": ["a,b"]}, "may not have"),
        ({"title": "x" * 201}, "the limit is 200"),
        ({"title": ""}, "may not be empty"),
        ({"status": "processed"}, "Extra inputs are not permitted"),
        ({}, "nothing to change"),
    ],
)
def test_invalid_edits_are_422_with_the_reason(
    stack: Settings, viewer: str, catalog: Catalog, body: dict[str, Any], message: str
) -> None:
    response = httpx.patch(
        f"{viewer}/v1/videos/{catalog.published}", json=body, headers=bearer(stack, catalog.alice)
    )
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert _row(stack, catalog.published).title == "Sunset timelapse"


# --- tags sent at upload -----------------------------------------------------------------------


def test_tags_sent_in_tus_upload_metadata_land_on_the_video(
    stack: Settings, viewer: str, tmp_path: Path
) -> None:
    """A real tus upload (tuspy, the upload service with a queue of this test) with
    ``tags`` in Upload-Metadata; the creator then sees them through the viewer API."""
    with contextmanager(upload_world)(stack, tmp_path, os.urandom(4).hex()) as world:
        creator = world.creator("tags")
        upload = uploader(
            world.service,
            creator,
            b"\x00" * 1024,
            metadata={"filename": "clip.mp4", "title": "Tagged", "tags": " Cats ,Short,cats"},
        )
        upload.upload()
        mine = httpx.get(f"{viewer}/v1/me/videos", headers=creator.auth).json()["items"]
        assert [(v["title"], v["tags"], v["status"]) for v in mine] == [
            ("Tagged", ["cats", "short"], "processing")
        ]
