"""Accounts and authorisation of the upload API: registration rules, login, bearer
tokens on every tus request, and creators isolated from each other's uploads."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from tests.integration.tus_harness import (
    PASSWORD,
    Creator,
    MiB,
    UploadWorld,
    catalog_upload,
    head,
    object_sha256,
    own_client,
    patch,
    sha256,
    upload_id_of,
    upload_world,
    uploader,
)
from vidflow.accounts.security import create_access_token
from vidflow.catalog.db import get_engine
from vidflow.config import Settings


@pytest.fixture(scope="module")
def world(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadWorld]:
    token = os.urandom(4).hex()
    yield from upload_world(stack, tmp_path_factory.mktemp("auth"), token)


def _register(world: UploadWorld, **body: str) -> httpx.Response:
    response = httpx.post(f"{world.service.base_url}/v1/accounts", json=body, headers=own_client())
    if response.status_code == 201:
        user_id = uuid.UUID(response.json()["user_id"])
        world.creators.append(Creator(body["username"], user_id, ""))
    return response


def test_registration_writes_user_and_lookups_with_an_argon2_hash(world: UploadWorld) -> None:
    name = f"tus_{world.token}_reg"
    response = _register(
        world, username=name.upper(), email=f"{name}@Example.com", password=PASSWORD
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"user_id", "username", "email", "created_at"}  # no hash leaks
    assert body["username"] == name and body["email"] == f"{name}@example.com"
    with get_engine(world.settings).connect() as conn:
        stored = conn.execute(
            text("SELECT password_hash FROM users WHERE user_id = :id"), {"id": body["user_id"]}
        ).scalar_one()
        lookups = conn.execute(
            text(
                "SELECT (SELECT user_id FROM usernames WHERE username = :n), "
                "(SELECT user_id FROM user_emails WHERE email = :e)"
            ),
            {"n": name, "e": f"{name}@example.com"},
        ).one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert [str(u) for u in lookups] == [body["user_id"]] * 2


def test_duplicates_are_409(world: UploadWorld) -> None:
    name = f"tus_{world.token}_dup"
    assert (
        _register(world, username=name, email=f"{name}@example.com", password=PASSWORD).status_code
        == 201
    )
    same_name = _register(
        world, username=name.upper(), email=f"other{name}@example.com", password=PASSWORD
    )
    assert same_name.status_code == 409
    assert "username" in same_name.json()["detail"]
    same_email = _register(
        world, username=f"{name}x", email=f"{name.upper()}@EXAMPLE.com", password=PASSWORD
    )
    assert same_email.status_code == 409
    assert "e-mail" in same_email.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"email": "x@example.com", "password": PASSWORD}, "username", "required"),
        (
            {"username": "bad name!", "email": "x@example.com", "password": PASSWORD},
            "username",
            "3-32",
        ),
        ({"username": "okname", "email": "nope", "password": PASSWORD}, "email", "email"),
        (
            {"username": "okname", "email": "x@example.com", "password": "short"},
            "password",
            "at least 10",
        ),
        (
            {"username": "okname", "email": "x@example.com", "password": "onlylowercase"},
            "password",
            "mix",
        ),
    ],
)
def test_weak_or_malformed_input_is_422_with_the_reason(
    world: UploadWorld, body: dict[str, str], field: str, reason: str
) -> None:
    response = httpx.post(f"{world.service.base_url}/v1/accounts", json=body)
    assert response.status_code == 422
    problem = response.json()
    assert any(e["field"] == field and reason in e["message"] for e in problem["errors"]), problem
    assert PASSWORD not in response.text and "onlylowercase" not in response.text


def test_login(world: UploadWorld) -> None:
    creator = world.creator("login")
    url = f"{world.service.base_url}/v1/auth/token"
    ok = httpx.post(url, json={"username": creator.username, "password": PASSWORD})
    assert ok.status_code == 200
    assert ok.json()["token_type"] == "bearer"
    assert ok.json()["expires_in"] == world.settings.jwt_ttl_seconds
    by_email = httpx.post(
        url, json={"username": f"{creator.username}@example.com", "password": PASSWORD}
    )
    assert by_email.status_code == 200
    me = httpx.get(f"{world.service.base_url}/v1/accounts/me", headers=creator.auth)
    assert me.json()["user_id"] == str(creator.user_id)
    for bad in (
        {"username": creator.username, "password": "Wrong-password-1"},
        {"username": "nobody-" + world.token, "password": PASSWORD},
    ):
        response = httpx.post(url, json=bad)
        assert response.status_code == 401
        assert response.json()["detail"] == "unknown username or wrong password"


def test_tus_requests_need_a_valid_token(world: UploadWorld) -> None:
    creator = world.creator("auth")
    files = world.service.files_url
    upload = httpx.post(files, headers={**creator.tus, "Upload-Length": "10"}).headers["Location"]
    expired, _ = create_access_token(
        settings=world.settings,
        user_id=creator.user_id,
        username=creator.username,
        now=datetime.now(UTC) - timedelta(hours=2),
    )
    forged = creator.token[:-4] + ("AAAA" if not creator.token.endswith("AAAA") else "BBBB")
    for headers in (
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Basic {creator.token}"},
    ):
        tus = {**headers, "Tus-Resumable": "1.0.0"}
        responses = [
            httpx.options(files, headers=tus),
            httpx.post(files, headers={**tus, "Upload-Length": "10"}),
            httpx.head(upload, headers=tus),
            httpx.patch(
                upload,
                content=b"x",
                headers={
                    **tus,
                    "Upload-Offset": "0",
                    "Content-Type": "application/offset+octet-stream",
                },
            ),
            httpx.delete(upload, headers=tus),
        ]
        assert [r.status_code for r in responses] == [401] * 5, headers
        assert responses[1].headers["WWW-Authenticate"].startswith("Bearer")
    assert head(upload, creator).headers["Upload-Offset"] == "0"  # nothing was touched


def test_two_creators_upload_at_once_and_cannot_see_each_other(world: UploadWorld) -> None:
    alice, bob = world.creator("alice"), world.creator("bob")
    files = {alice: os.urandom(7 * MiB), bob: os.urandom(9 * MiB)}
    urls: dict[Creator, str] = {}
    errors: list[BaseException] = []

    def run(creator: Creator) -> None:
        try:
            tus = uploader(world.service, creator, files[creator], chunk_size=2 * MiB)
            tus.upload()
            urls[creator] = tus.url
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    for creator, data in files.items():
        row = catalog_upload(world.settings, upload_id_of(urls[creator]))
        assert row["user_id"] == row["video_user_id"] == creator.user_id
        assert object_sha256(world.settings, row["s3_key"]) == sha256(data)
    world.queue.messages_for(
        {catalog_upload(world.settings, upload_id_of(u))["video_id"] for u in urls.values()}
    )

    # An unfinished upload of Alice's: Bob gets 404 for every verb, as for a missing one.
    pending = httpx.post(
        world.service.files_url, headers={**alice.tus, "Upload-Length": "100"}
    ).headers["Location"]
    assert patch(pending, alice, 0, b"a" * 10).status_code == 204
    assert head(pending, bob).status_code == 404
    assert patch(pending, bob, 10, b"b" * 10).status_code == 404
    assert httpx.delete(pending, headers=bob.tus).status_code == 404
    assert head(urls[alice], bob).status_code == 404
    mine = head(pending, alice)
    assert mine.status_code == 200 and mine.headers["Upload-Offset"] == "10"
