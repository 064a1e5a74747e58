"""The serving answer cache against the real catalog: answers come from memory
(``X-Vidflow-Cache: hit``) until a catalog write announces a change through the migration
0006 triggers and LISTEN/NOTIFY, in every API process; a lost listener reconnects and
invalidates again; an expired token is refused even when its verification and its answer
are cached.

Two real viewer API processes (uvicorn, one worker each) share the catalog. The expected
lists follow the rules of vidflow.viewer.ranking, worked out by hand: the viewer's
precomputed list is a1 a2 a3 (collaborative); a1's related list is r1 r2 (co-watch).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, text

from tests.integration.viewer_harness import (
    bearer,
    make_event,
    two_viewer_processes,
)
from vidflow.accounts.security import create_access_token
from vidflow.catalog.db import get_engine
from vidflow.catalog.models import Recommendation, RelatedVideo, SessionActivity, Video
from vidflow.config import Settings
from vidflow.processing.objects import media_base_url
from vidflow.viewer.app import create_app
from vidflow.viewer.recommendations import LISTENER_NAME

REGION = "us-east"
NAMES = ("a1", "a2", "a3", "a4", "r1", "r2")
MADE = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
#: The promise: a write shows in every process's next answers within a second.
WITHIN_SECONDS = 1.0


@dataclass(frozen=True)
class World:
    viewers: tuple[uuid.UUID, ...]
    v: dict[str, uuid.UUID]

    def names(self, body: dict[str, Any]) -> list[str]:
        by_id = {str(video_id): name for name, video_id in self.v.items()}
        return [by_id.get(item["video_id"], "?") for item in body["items"]]


def _recs(viewer: uuid.UUID, v: dict[str, uuid.UUID], names: tuple[str, ...]) -> list[dict]:
    return [
        {
            "user_id": viewer,
            "rank": rank,
            "video_id": v[name],
            "score": 1.0 / rank,
            "source": "collaborative",
            "model_version": "cache-1",
            "generated_at": MADE,
        }
        for rank, name in enumerate(names, start=1)
    ]


@pytest.fixture(scope="module")
def world(stack: Settings) -> Iterator[World]:
    token = os.urandom(3).hex()
    creator = uuid.uuid4()
    viewers = tuple(uuid.uuid4() for _ in range(7))
    v = {name: uuid.uuid4() for name in NAMES}
    base = media_base_url(stack)
    engine = get_engine(stack)
    with engine.begin() as conn:
        conn.execute(
            insert(Video),
            [
                {
                    "video_id": v[name],
                    "user_id": creator,
                    "title": f"Cache {name} {token}",
                    "status": "processed",
                    "duration_seconds": 30.0,
                    "manifest_url": f"{base}/media/videos/{v[name]}/v1/master.m3u8",
                    "thumbnail_urls": {},
                }
                for name in NAMES
            ],
        )
        for viewer in viewers:
            conn.execute(insert(Recommendation), _recs(viewer, v, ("a1", "a2", "a3")))
        conn.execute(
            insert(RelatedVideo),
            [
                {
                    "video_id": v["a1"],
                    "rank": rank,
                    "related_video_id": v[name],
                    "score": 0.5,
                    "source": "co-watch",
                    "model_version": "cache-1",
                    "generated_at": MADE,
                }
                for rank, name in enumerate(("r1", "r2"), start=1)
            ],
        )
    try:
        yield World(viewers, v)
    finally:
        with engine.begin() as conn:
            conn.execute(delete(SessionActivity).where(SessionActivity.user_id.in_(viewers)))
            conn.execute(delete(Recommendation).where(Recommendation.user_id.in_(viewers)))
            conn.execute(delete(RelatedVideo).where(RelatedVideo.video_id == v["a1"]))
            conn.execute(delete(Video).where(Video.user_id == creator))


@pytest.fixture(scope="module")
def processes(
    stack: Settings, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    with two_viewer_processes(stack, tmp_path_factory.mktemp("cache-viewers")) as urls:
        yield urls


def read(base: str, headers: dict[str, str], limit: int = 3) -> httpx.Response:
    response = httpx.get(
        f"{base}/v1/me/recommendations",
        params={"region": REGION, "limit": limit},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return response


def cached(base: str, headers: dict[str, str]) -> httpx.Response:
    """Read twice: the second answer must come from the process's memory."""
    read(base, headers)
    second = read(base, headers)
    assert second.headers["x-vidflow-cache"] == "hit"
    return second


def until_changed(base: str, headers: dict[str, str], before: bytes) -> tuple[float, Any]:
    """Seconds until ``base`` answers something else than ``before`` (gives up after 3 s)."""
    started = time.monotonic()
    while time.monotonic() - started < 3 * WITHIN_SECONDS:
        response = read(base, headers)
        if response.content != before:
            return time.monotonic() - started, response
        time.sleep(0.01)
    raise AssertionError(f"{base} still served the old answer after 3 s")


def test_an_event_invalidates_the_cached_answers_of_every_process(
    stack: Settings, world: World, processes: tuple[str, str]
) -> None:
    writer, reader = processes
    headers = bearer(stack, world.viewers[0])
    before_writer, before_reader = cached(writer, headers), cached(reader, headers)
    assert world.names(before_reader.json()) == ["a1", "a2", "a3"]
    event = make_event(video_id=str(world.v["a1"]), region=REGION)
    posted = httpx.post(f"{writer}/v1/events", json={"events": [event]}, headers=headers)
    assert posted.status_code == 200 and len(posted.json()["accepted"]) == 1, posted.text
    # The process that took the event: its very next answer.
    mine = read(writer, headers)
    assert mine.content != before_writer.content
    assert mine.headers["x-vidflow-cache"] == "miss"
    # The other process: within a second, through the catalog's NOTIFY.
    elapsed, theirs = until_changed(reader, headers, before_reader.content)
    assert elapsed < WITHIN_SECONDS
    # a1 is in the session: its related videos lead (2 of 3 slots), a1 itself is left out.
    assert world.names(theirs.json()) == ["r1", "r2", "a2"]
    assert [i["source"] for i in theirs.json()["items"]][:2] == ["session", "session"]
    assert read(reader, headers).headers["x-vidflow-cache"] == "hit"
    # Another viewer's cached answer was left alone.
    other = bearer(stack, world.viewers[1])
    cached(reader, other)


def test_a_heartbeat_on_the_video_being_watched_keeps_every_cached_answer(
    stack: Settings, world: World, processes: tuple[str, str]
) -> None:
    """Migration 0007: a session write names its video, and an answer made while that
    video led the session stays cached in every process; another video re-ranks."""
    writer, reader = processes
    watcher, marker = bearer(stack, world.viewers[5]), bearer(stack, world.viewers[6])

    def post(headers: dict[str, str], video: str, kind: str) -> None:
        event = make_event(video_id=str(world.v[video]), region=REGION, event_type=kind)
        posted = httpx.post(f"{writer}/v1/events", json={"events": [event]}, headers=headers)
        assert posted.status_code == 200 and len(posted.json()["accepted"]) == 1, posted.text

    before = cached(reader, watcher)
    post(watcher, "a1", "play")
    _, watching = until_changed(reader, watcher, before.content)
    assert world.names(watching.json()) == ["r1", "r2", "a2"]
    watching = cached(reader, watcher)
    mine = cached(writer, watcher)
    marker_before = cached(reader, marker)
    post(watcher, "a1", "heartbeat")
    # Notifications arrive in commit order: once the marker viewer's event has reached
    # the reader, so has the heartbeat's.
    post(marker, "a1", "play")
    until_changed(reader, marker, marker_before.content)
    still = read(reader, watcher)
    assert still.headers["x-vidflow-cache"] == "hit"
    assert still.content == watching.content
    assert read(writer, watcher).headers["x-vidflow-cache"] == "hit"
    assert read(writer, watcher).content == mine.content
    # A different video changes the session's order: re-ranked everywhere.
    post(watcher, "a2", "play")
    elapsed, moved = until_changed(reader, watcher, watching.content)
    assert elapsed < WITHIN_SECONDS
    assert "a2" not in world.names(moved.json())
    assert read(writer, watcher).headers["x-vidflow-cache"] == "miss"


def test_a_new_precomputed_list_invalidates_cached_answers(
    stack: Settings, world: World, processes: tuple[str, str]
) -> None:
    viewer = world.viewers[2]
    headers = bearer(stack, viewer)
    before = [cached(base, headers) for base in processes]
    # What recs_scoring's publish does: the viewer's rows swapped in one transaction, on
    # the partition itself.
    with get_engine(stack).begin() as conn:
        part = conn.execute(
            text("SELECT tableoid::regclass::text FROM recommendations WHERE user_id = :u LIMIT 1"),
            {"u": viewer},
        ).scalar_one()
        conn.execute(text(f"DELETE FROM {part} WHERE user_id = :u"), {"u": viewer})  # noqa: S608
        conn.execute(insert(Recommendation), _recs(viewer, world.v, ("a4", "a3", "a2")))
    for base, old in zip(processes, before, strict=True):
        elapsed, now = until_changed(base, headers, old.content)
        assert elapsed < WITHIN_SECONDS
        assert world.names(now.json()) == ["a4", "a3", "a2"]


def _listener_pids(stack: Settings) -> list[int]:
    with get_engine(stack).connect() as conn:
        return list(
            conn.scalars(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                {"name": f"{LISTENER_NAME}-{os.getpid()}"},
            )
        )


def test_a_lost_listener_reconnects_and_invalidates_again(stack: Settings, world: World) -> None:
    headers = bearer(stack, world.viewers[3])
    with TestClient(create_app(stack)) as client:
        answers = client.app.state.serving.answers  # type: ignore[attr-defined]
        client.headers.update(headers)

        def get() -> httpx.Response:
            response = client.get("/v1/me/recommendations", params={"region": REGION, "limit": 3})
            assert response.status_code == 200, response.text
            return response

        get()
        assert get().headers["x-vidflow-cache"] == "hit"
        deadline = time.monotonic() + 5  # listeners of earlier apps of this process close
        while len(pids := _listener_pids(stack)) != 1:
            assert time.monotonic() < deadline, pids
            time.sleep(0.05)
        [pid] = pids
        with get_engine(stack).connect() as conn:
            assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + 10
        while answers.stats.listener_losses == 0 or not answers.synced:
            assert time.monotonic() < deadline, "the listener did not reconnect"
            time.sleep(0.05)
        assert _listener_pids(stack) not in ([], [pid])
        # Everything was invalidated on reconnecting (notifications may have been missed).
        assert get().headers["x-vidflow-cache"] == "miss"
        before = get()
        assert before.headers["x-vidflow-cache"] == "hit"
        with get_engine(stack).begin() as conn:
            conn.execute(
                insert(SessionActivity),
                [
                    {
                        "user_id": world.viewers[3],
                        "video_id": world.v["a1"],
                        "first_event_at": datetime.now(UTC),
                        "last_event_at": datetime.now(UTC),
                    }
                ],
            )
        started = time.monotonic()
        while (after := get()).content == before.content:
            assert time.monotonic() - started < WITHIN_SECONDS, "no invalidation after reconnect"
            time.sleep(0.01)
        assert world.names(after.json()) == ["r1", "r2", "a2"]


def test_an_expired_token_is_refused_even_with_its_answer_cached(
    stack: Settings, world: World
) -> None:
    """The token's verification and the answer are both in memory; the fast path still
    checks expiry (with the 5 s leeway of every token check) and the route refuses."""
    issued = datetime.now(UTC) - timedelta(seconds=stack.jwt_ttl_seconds - 1)
    token, _ = create_access_token(
        settings=stack, user_id=world.viewers[1], username="expiring", now=issued
    )
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(stack)) as client:

        def get() -> httpx.Response:
            return client.get(
                "/v1/me/recommendations", params={"region": REGION, "limit": 3}, headers=headers
            )

        assert get().status_code == 200
        assert get().headers["x-vidflow-cache"] == "hit"
        time.sleep(max(0.0, issued.timestamp() + stack.jwt_ttl_seconds + 5.2 - time.time()))
        refused = get()
        assert refused.status_code == 401, refused.text
        assert refused.json()["detail"] == "the token has expired; log in again"
        assert refused.headers["www-authenticate"].startswith("Bearer")
        # A forged token never reaches the cached answer either.
        forged = client.get(
            "/v1/me/recommendations",
            params={"region": REGION, "limit": 3},
            headers={"Authorization": f"Bearer {token[:-4]}AAAA"},
        )
        assert forged.status_code == 401


def test_the_fast_path_sends_the_routes_bytes_and_leaves_bad_input_to_it(
    stack: Settings, world: World
) -> None:
    headers = bearer(stack, world.viewers[1])
    with TestClient(create_app(stack)) as client:
        path = "/v1/me/recommendations"
        first = client.get(path, params={"region": REGION, "limit": 3}, headers=headers)
        second = client.get(path, params={"region": REGION, "limit": 3}, headers=headers)
        assert (first.headers["x-vidflow-cache"], second.headers["x-vidflow-cache"]) == (
            "miss",
            "hit",
        )
        assert second.content == first.content
        assert second.headers["content-type"] == first.headers["content-type"]
        assert second.headers["content-length"] == str(len(first.content))
        # Same viewer, with an answer cached: bad input is still a 422 problem.
        bad = client.get(path, params={"region": REGION, "limit": 0}, headers=headers)
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"


def test_an_answer_with_session_items_expires_when_the_session_would_change(
    stack: Settings, world: World
) -> None:
    """No write announces a session row leaving the window: the cached answer expires
    then by itself."""
    viewer = world.viewers[4]
    window = timedelta(seconds=stack.recs_session_window_seconds)
    touched = datetime.now(UTC) - window + timedelta(seconds=4)
    with get_engine(stack).begin() as conn:
        conn.execute(
            insert(SessionActivity),
            [
                {
                    "user_id": viewer,
                    "video_id": world.v["a1"],
                    "first_event_at": touched,
                    "last_event_at": touched,
                }
            ],
        )
    with TestClient(create_app(stack)) as client:
        client.headers.update(bearer(stack, viewer))

        def get() -> httpx.Response:
            response = client.get("/v1/me/recommendations", params={"region": REGION, "limit": 3})
            assert response.status_code == 200, response.text
            return response

        assert world.names(get().json()) == ["r1", "r2", "a2"]
        assert get().headers["x-vidflow-cache"] == "hit"
        time.sleep(max(0.0, (touched + window - datetime.now(UTC)).total_seconds() + 0.1))
        after = get()
        assert after.headers["x-vidflow-cache"] == "miss"
        assert world.names(after.json()) == ["a1", "a2", "a3"]


def test_the_triggers_name_the_viewer_whose_rows_changed(stack: Settings, world: World) -> None:
    """A viewer's own rows (here recommendations) notify that viewer only;
    a processed video's card notifies everyone."""
    import psycopg

    from vidflow.viewer.invalidation import CHANNEL
    from vidflow.viewer.readpool import serving_conninfo

    viewer, creator = uuid.uuid4(), uuid.uuid4()
    video = uuid.uuid4()
    with psycopg.connect(serving_conninfo(stack), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        engine = get_engine(stack)
        try:
            with engine.begin() as conn:
                conn.execute(insert(Recommendation), _recs(viewer, world.v, ("a1",)))
            with engine.begin() as conn:  # a session row names its video too (0007)
                conn.execute(
                    insert(SessionActivity),
                    [
                        {
                            "user_id": viewer,
                            "video_id": world.v["a2"],
                            "first_event_at": datetime.now(UTC),
                            "last_event_at": datetime.now(UTC),
                        }
                    ],
                )
            with engine.begin() as conn:
                conn.execute(
                    insert(Video),
                    [
                        {
                            "video_id": video,
                            "user_id": creator,
                            "title": "trigger test",
                            "status": "processed",
                            "thumbnail_urls": {},
                        }
                    ],
                )
            payloads = {n.payload for n in listener.notifies(timeout=2)}
        finally:
            with engine.begin() as conn:
                conn.execute(delete(Recommendation).where(Recommendation.user_id == viewer))
                conn.execute(delete(SessionActivity).where(SessionActivity.user_id == viewer))
                conn.execute(delete(Video).where(Video.video_id == video))
    # One notification per distinct payload and transaction: the viewer's, the session
    # row's (viewer and video), then the card's.
    assert f"v:{viewer}" in payloads
    assert f"v:{viewer}:{world.v['a2']}" in payloads
    assert any(p.startswith("*:videos") for p in payloads), payloads  # names the partition
