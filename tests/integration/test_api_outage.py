"""A catalog outage answers 503 with Retry-After on every path of the upload API and the
viewer API, never 500: both run here against a PostgreSQL port where nothing listens
(everything else, S3 and the processes themselves, is real)."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.integration.tus_harness import UploadService, free_port
from tests.integration.viewer_harness import ViewerProcess, bearer, events_bucket
from vidflow.config import Settings


@dataclass(frozen=True)
class Down:
    settings: Settings
    upload: UploadService
    viewer: ViewerProcess


@pytest.fixture(scope="module")
def down(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Down]:
    tmp = tmp_path_factory.mktemp("outage")
    token = os.urandom(4).hex()
    dead = {"VIDFLOW_PG_PORT": str(free_port())}
    upload = UploadService(
        stack, f"vidflow-test-outage-{token}", tmp / "upload.log", extra_env=dead
    )
    with events_bucket(stack, token) as bucket:
        upload.start()  # then pick the viewer's port: two free ports picked at once may clash
        viewer = ViewerProcess(bucket, tmp / "viewer.log", extra_env=dead)
        try:
            viewer.start()
            yield Down(stack, upload, viewer)
        finally:
            viewer.stop()
            upload.stop()


def _is_outage(response: httpx.Response) -> bool:
    return (
        response.status_code == 503
        and int(response.headers.get("Retry-After", "0")) >= 1
        and (
            response.request.method == "HEAD"
            or response.headers["content-type"] == "application/problem+json"
        )
    )


def test_every_upload_api_path_answers_503(down: Down) -> None:
    base = down.upload.base_url
    auth = bearer(down.settings, uuid.uuid4())
    tus = {**auth, "Tus-Resumable": "1.0.0"}
    some = f"{base}/files/{uuid.uuid4()}"
    account = {"username": "outage1", "email": "o@example.com", "password": "Outage-pass-42"}
    responses = {
        "register": httpx.post(f"{base}/v1/accounts", json=account),
        "login": httpx.post(f"{base}/v1/auth/token", json={"username": "outage1", "password": "x"}),
        "me": httpx.get(f"{base}/v1/accounts/me", headers=auth),
        "create": httpx.post(f"{base}/files/", headers={**tus, "Upload-Length": "10"}),
        "create-with-upload": httpx.post(
            f"{base}/files/",
            headers={
                **tus,
                "Upload-Length": "10",
                "Content-Type": "application/offset+octet-stream",
            },
            content=b"0123456789",
        ),
        "head": httpx.head(some, headers=tus),
        "patch": httpx.patch(
            some,
            headers={
                **tus,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
            content=b"0123456789",
        ),
        "delete": httpx.delete(some, headers=tus),
    }
    wrong = {
        name: (r.status_code, r.text[:200]) for name, r in responses.items() if not _is_outage(r)
    }
    assert wrong == {}
    # What needs no catalog still works.
    assert httpx.options(f"{base}/files/", headers=auth).status_code == 204
    assert httpx.get(f"{base}/healthz").status_code == 200


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


def test_every_viewer_api_path_answers_503_never_500(down: Down) -> None:
    base = down.viewer.base_url
    auth = bearer(down.settings, uuid.uuid4())
    spec = httpx.get(f"{base}/openapi.json").json()
    answered: dict[str, int] = {}
    for path, operations in spec["paths"].items():
        for method in operations:
            if method not in {"get", "patch", "post", "put", "delete"}:
                continue
            body = {"title": "still here"} if method == "patch" else None
            response = httpx.request(method, base + _fill(path), headers=auth, json=body)
            answered[f"{method.upper()} {path}"] = response.status_code
            assert response.status_code < 500 or _is_outage(response), (path, response.text)
    catalog_paths = {
        "GET /v1/videos/{video_id}",
        "GET /v1/me/videos",
        "PATCH /v1/videos/{video_id}",
    }
    assert catalog_paths <= set(answered)
    assert {p: answered[p] for p in catalog_paths} == dict.fromkeys(catalog_paths, 503)
    # The operations that read the catalog all answered 503 (an events post without
    # events is refused as input first, 422; health needs nothing).
    assert sum(code == 503 for code in answered.values()) >= len(answered) - 2, answered
