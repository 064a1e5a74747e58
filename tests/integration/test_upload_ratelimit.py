"""Sign-in rate limits: counted in the catalog, so two upload-service processes share
them; refused with 429 and Retry-After, and without running argon2.

Every request names its own client address in ``X-Forwarded-For`` (uvicorn trusts it from
loopback, as from a proxy in front), so this module's counts never block the loopback
address that other tests log in from.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.integration.tus_harness import (
    PASSWORD,
    Creator,
    UploadService,
    UploadWorld,
    upload_world,
)
from vidflow.accounts import ratelimit, service
from vidflow.catalog.db import get_engine
from vidflow.config import Settings

LIMITS = {
    "VIDFLOW_AUTH_WINDOW_SECONDS": "4",
    "VIDFLOW_AUTH_ACCOUNT_MAX_FAILURES": "3",
    "VIDFLOW_AUTH_CLIENT_MAX_FAILURES": "5",
    "VIDFLOW_AUTH_CLIENT_MAX_REGISTRATIONS": "2",
}


@pytest.fixture(scope="module")
def world(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadWorld]:
    yield from upload_world(
        stack, tmp_path_factory.mktemp("ratelimit"), os.urandom(4).hex(), **LIMITS
    )


@pytest.fixture(scope="module")
def second(world: UploadWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UploadService]:
    other = world.another_service(tmp_path_factory.mktemp("ratelimit2"), **LIMITS)
    yield other
    other.stop()


def _address() -> str:
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}-{uuid.uuid4().hex[:6]}"


def _register(base: str, world: UploadWorld, name: str, client: str) -> httpx.Response:
    response = httpx.post(
        f"{base}/v1/accounts",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
        headers={"X-Forwarded-For": client},
        timeout=30,
    )
    if response.status_code == 201:
        world.creators.append(Creator(name, uuid.UUID(response.json()["user_id"]), ""))
    return response


def _login(base: str, name: str, password: str, client: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/auth/token",
        json={"username": name, "password": password},
        headers={"X-Forwarded-For": client},
        timeout=30,
    )


def _forget(settings: Settings, *keys: str) -> None:
    with get_engine(settings).begin() as conn:
        conn.execute(text("DELETE FROM auth_attempts WHERE key = ANY(:k)"), {"k": list(keys)})


def test_account_limit_is_shared_by_two_processes_and_lifts_after_retry_after(
    world: UploadWorld, second: UploadService
) -> None:
    name = f"rl_{world.token}_acct"
    setup_client = _address()
    assert _register(world.service.base_url, world, name, setup_client).status_code == 201
    bases = [world.service.base_url, second.base_url]
    # Three failures (the limit), alternating processes and addresses: each is a 401.
    for i in range(3):
        response = _login(bases[i % 2], name, "Wrong-password-1", _address())
        assert response.status_code == 401, response.text
    # The fourth attempt, even with the right password and from a fresh address, is
    # refused by both processes.
    for base in bases:
        refused = _login(base, name, PASSWORD, _address())
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 4
    time.sleep(retry_after + 0.5)
    ok = _login(second.base_url, name, PASSWORD, _address())
    assert ok.status_code == 200, ok.text
    _forget(world.settings, f"register:client:{setup_client}")


def test_client_limit_covers_every_account_and_unknown_names(
    world: UploadWorld, second: UploadService
) -> None:
    client = _address()
    bases = [world.service.base_url, second.base_url]
    for i in range(5):  # five different (unknown) accounts, one address
        response = _login(bases[i % 2], f"nobody_{world.token}_{i}", "Wrong-password-1", client)
        assert response.status_code == 401, response.text
    refused = _login(world.service.base_url, f"nobody_{world.token}_x", "Whatever-1x", client)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    # Another address is not affected.
    assert (
        _login(second.base_url, f"nobody_{world.token}_x", "Whatever-1x", _address()).status_code
        == 401
    )
    _forget(world.settings, *(f"login:account:nobody_{world.token}_{i}" for i in range(5)))


def test_registrations_per_address_across_processes(
    world: UploadWorld, second: UploadService
) -> None:
    client = _address()
    first = _register(world.service.base_url, world, f"rl_{world.token}_r1", client)
    again = _register(second.base_url, world, f"rl_{world.token}_r2", client)
    third = _register(world.service.base_url, world, f"rl_{world.token}_r3", client)
    assert (first.status_code, again.status_code, third.status_code) == (201, 201, 429)
    assert int(third.headers["Retry-After"]) >= 1
    with get_engine(world.settings).connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM usernames WHERE username = :n"),
            {"n": f"rl_{world.token}_r3"},
        ).scalar_one()
    assert stored == 0


def test_a_blocked_login_runs_no_argon2(
    world: UploadWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In process, with the real catalog: count the password verifications (the real
    argon2 still runs) while a key is blocked."""
    settings = world.settings.model_copy(
        update={"auth_account_max_failures": 2, "auth_client_max_failures": 100}
    )
    real_verify = service.verify_password
    calls: list[int] = []

    def counting_verify(password_hash: str, password: str) -> bool:
        calls.append(1)
        return real_verify(password_hash, password)

    monkeypatch.setattr(service, "verify_password", counting_verify)
    login = f"ghost_{world.token}"
    client = _address()
    with Session(get_engine(settings)) as session:
        for _ in range(2):
            with pytest.raises(service.InvalidCredentials):
                service.authenticate(
                    session=session, login=login, password="x", settings=settings, client=client
                )
        assert len(calls) == 2
        for _ in range(3):
            with pytest.raises(ratelimit.RateLimited):
                service.authenticate(
                    session=session, login=login, password="x", settings=settings, client=client
                )
    assert len(calls) == 2
    _forget(settings, f"login:account:{login}", f"login:client:{client}")


def test_prune_removes_counters_whose_window_and_block_are_over(world: UploadWorld) -> None:
    tag = world.token
    rows = {  # key -> (window_start, blocked_until), judged at 2000-01-01 12:00
        f"t:{tag}:over": ("2000-01-01 11:00+00", None),
        f"t:{tag}:blocked": ("2000-01-01 11:00+00", "2000-01-01 13:00+00"),
        f"t:{tag}:current": ("2000-01-01 11:50+00", None),
    }
    with get_engine(world.settings).begin() as conn:
        for key, (start, blocked) in rows.items():
            conn.execute(
                text(
                    "INSERT INTO auth_attempts (key, window_start, failures, blocked_until) "
                    "VALUES (:k, :s, 1, :b)"
                ),
                {"k": key, "s": start, "b": blocked},
            )
    try:
        with get_engine(world.settings).begin() as conn:
            ratelimit.prune(
                conn,
                window=timedelta(minutes=15),
                now=datetime(2000, 1, 1, 12, tzinfo=UTC),
            )
            left = set(
                conn.scalars(
                    text("SELECT key FROM auth_attempts WHERE key LIKE :p"), {"p": f"t:{tag}:%"}
                )
            )
        assert left == {f"t:{tag}:blocked", f"t:{tag}:current"}
    finally:
        _forget(world.settings, *rows)
