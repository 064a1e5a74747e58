"""The serving endpoints against the real catalog: a viewer's recommendations (history and
session filter, session re-rank, trending fill), "more like this", regional trending,
their errors, the session signal shared by two API processes, and degraded answers when
the catalog goes away (a real TCP proxy in front of PostgreSQL is closed).

The precomputed rows (recommendations, related_videos, trending_videos) are inserted
directly, as recs_scoring would write them. The region ``sa-east`` trending list is
replaced for the module and restored afterwards. Expected lists are worked out by hand
from the rules of vidflow.viewer.ranking.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select, text

from tests.integration.viewer_harness import (
    bearer,
    events_bucket,
    make_event,
    two_viewer_processes,
)
from vidflow.catalog.db import get_engine
from vidflow.catalog.models import (
    Recommendation,
    RelatedVideo,
    SessionActivity,
    TrendingVideo,
    User,
    Video,
    WatchHistory,
)
from vidflow.config import Settings
from vidflow.events import StoredEvent
from vidflow.processing.objects import media_base_url
from vidflow.viewer.app import create_app
from vidflow.viewer.session import SessionWriter

REGION = "sa-east"
MADE = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
TRENDED = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
NAMES = ("p1", "p2", "p3", "p5", "p6", "t1", "t2", "r1", "r2", "u")


@dataclass(frozen=True)
class World:
    viewer: uuid.UUID
    newcomer: uuid.UUID
    v: dict[str, uuid.UUID]  # name -> video id
    title: dict[str, str]

    def names(self, items: list[dict[str, Any]]) -> list[str]:
        by_id = {str(video_id): name for name, video_id in self.v.items()}
        return [by_id.get(item["video_id"], item["video_id"]) for item in items]


def _video(video_id: uuid.UUID, creator: uuid.UUID, title: str, base: str, status: str) -> dict:
    prefix = f"{base}/media/videos/{video_id}/v1"
    return {
        "video_id": video_id,
        "user_id": creator,
        "title": title,
        "status": status,
        "duration_seconds": 61.5,
        "manifest_url": f"{prefix}/master.m3u8",
        "thumbnail_urls": {
            "small": f"{prefix}/thumbnails/poster_320x180.jpg",
            "large": f"{prefix}/thumbnails/poster_1280x720.jpg",
        },
    }


@pytest.fixture(scope="module")
def world(stack: Settings) -> Iterator[World]:
    token = os.urandom(3).hex()
    viewer, newcomer, creator = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    v = {name: uuid.uuid4() for name in NAMES}
    title = {name: f"Recs {name} {token}" for name in NAMES}
    base = media_base_url(stack)
    recs = [  # (name, score, stored source)
        ("p1", 0.9, "collaborative"),  # watched before
        ("p2", 0.8, "collaborative"),
        ("p3", 0.7, "content"),
        ("u", 0.65, "collaborative"),  # not processed
        ("p5", 0.6, "co-watch"),
        ("p6", 0.5, "ranker"),  # the scorer's blend: shown as collaborative
    ]
    related = [("p3", "r1", 0.9, "co-watch"), ("p3", "r2", 0.8, "content")]
    related += [("p3", "p2", 0.7, "co-watch"), ("p2", "t1", 0.5, "co-watch")]
    trending = [("t1", 50.0), ("t2", 40.0), ("p2", 30.0)]
    engine = get_engine(stack)
    with engine.begin() as conn:
        saved = [
            dict(r._mapping)
            for r in conn.execute(select(TrendingVideo).where(TrendingVideo.region == REGION))
        ]
        conn.execute(delete(TrendingVideo).where(TrendingVideo.region == REGION))
        conn.execute(
            insert(User),
            [
                {
                    "user_id": viewer,
                    "username": f"recs_{token}",
                    "email": f"recs_{token}@example.com",
                    "password_hash": "x",
                }
            ],
        )
        conn.execute(
            insert(Video),
            [
                _video(v[n], creator, title[n], base, "processing" if n == "u" else "processed")
                for n in NAMES
            ],
        )
        conn.execute(
            insert(WatchHistory),
            [
                {
                    "user_id": viewer,
                    "video_id": v["p1"],
                    "watched_at": MADE,
                    "watch_duration_seconds": 60.0,
                }
            ],
        )
        conn.execute(
            insert(Recommendation),
            [
                {
                    "user_id": viewer,
                    "rank": i,
                    "video_id": v[n],
                    "score": s,
                    "source": src,
                    "model_version": "test-7",
                    "generated_at": MADE,
                }
                for i, (n, s, src) in enumerate(recs, start=1)
            ],
        )
        ranks: dict[str, int] = {}
        rows = []
        for anchor, n, s, src in related:
            ranks[anchor] = ranks.get(anchor, 0) + 1
            rows.append(
                {
                    "video_id": v[anchor],
                    "rank": ranks[anchor],
                    "related_video_id": v[n],
                    "score": s,
                    "source": src,
                    "model_version": "test-7",
                    "generated_at": MADE,
                }
            )
        conn.execute(insert(RelatedVideo), rows)
        conn.execute(
            insert(TrendingVideo),
            [
                {
                    "region": REGION,
                    "rank": i,
                    "video_id": v[n],
                    "score": s,
                    "model_version": "trend-3",
                    "generated_at": TRENDED,
                }
                for i, (n, s) in enumerate(trending, start=1)
            ],
        )
    try:
        yield World(viewer, newcomer, v, title)
    finally:
        with engine.begin() as conn:
            conn.execute(delete(TrendingVideo).where(TrendingVideo.region == REGION))
            if saved:
                conn.execute(insert(TrendingVideo), saved)
            conn.execute(delete(RelatedVideo).where(RelatedVideo.video_id.in_(v.values())))
            conn.execute(delete(Recommendation).where(Recommendation.user_id == viewer))
            conn.execute(
                delete(SessionActivity).where(SessionActivity.user_id.in_([viewer, newcomer]))
            )
            conn.execute(delete(WatchHistory).where(WatchHistory.user_id == viewer))
            conn.execute(delete(Video).where(Video.user_id == creator))
            conn.execute(delete(User).where(User.user_id == viewer))


@pytest.fixture(scope="module")
def client(stack: Settings, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(stack)) as test_client:
        yield test_client


def poster(stack: Settings, video_id: uuid.UUID, size: str = "320x180") -> str:
    edge = stack.edge_urls().get(REGION) or media_base_url(stack)
    return f"{edge}/media/videos/{video_id}/v1/thumbnails/poster_{size}.jpg"


# --- a viewer's list ---------------------------------------------------------------------


def test_a_viewers_list_drops_history_and_unplayable_then_fills_from_trending(
    stack: Settings, world: World, client: TestClient
) -> None:
    response = client.get(
        "/v1/me/recommendations",
        params={"region": REGION, "limit": 5},
        headers=bearer(stack, world.viewer),
    )
    assert response.status_code == 200, response.text
    assert "x-vidflow-degraded" not in response.headers
    body = response.json()
    assert body["model_version"] == "test-7"
    assert body["generated_at"] == "2026-11-30T03:00:00Z"
    assert body["region"] == REGION
    # p1 watched, u not processed; the list runs short after p6 and trending fills it.
    assert world.names(body["items"]) == ["p2", "p3", "p5", "p6", "t1"]
    assert [i["source"] for i in body["items"]] == [
        "collaborative",
        "content",
        "co-watch",
        "collaborative",
        "trending",
    ]
    assert [i["score"] for i in body["items"]] == [0.8, 0.7, 0.6, 0.5, 50.0]
    first, last = body["items"][0], body["items"][-1]
    assert first == {
        "video_id": str(world.v["p2"]),
        "title": world.title["p2"],
        "duration_seconds": 61.5,
        "poster_url": poster(stack, world.v["p2"]),
        "source": "collaborative",
        "score": 0.8,
        "reason": "Picked for you from viewers with similar taste",
    }
    assert last["reason"] == f"Trending in {REGION}"


def test_a_tv_gets_large_posters(stack: Settings, world: World, client: TestClient) -> None:
    response = client.get(
        "/v1/me/recommendations",
        params={"region": REGION, "limit": 1, "device": "tv"},
        headers=bearer(stack, world.viewer),
    )
    assert response.json()["items"][0]["poster_url"] == poster(stack, world.v["p2"], "1280x720")


def test_a_new_viewer_gets_regional_trending(
    stack: Settings, world: World, client: TestClient
) -> None:
    response = client.get(
        "/v1/me/recommendations",
        params={"region": REGION, "limit": 3},
        headers=bearer(stack, world.newcomer),
    )
    body = response.json()
    assert world.names(body["items"]) == ["t1", "t2", "p2"]
    assert {i["source"] for i in body["items"]} == {"trending"}
    assert body["model_version"] == "trend-3"
    assert body["generated_at"] == "2026-11-30T04:00:00Z"


def test_related_videos_then_trending(world: World, client: TestClient) -> None:
    response = client.get(
        f"/v1/videos/{world.v['p3']}/related", params={"region": REGION, "limit": 4}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert world.names(body["items"]) == ["r1", "r2", "p2", "t1"]
    assert [i["source"] for i in body["items"]] == ["co-watch", "content", "co-watch", "trending"]
    assert body["items"][0]["reason"] == f"Often watched with {world.title['p3']}"
    assert body["items"][1]["reason"] == f"Similar to {world.title['p3']}"
    assert body["model_version"] == "test-7"


@pytest.mark.parametrize("which", ["unprocessed", "unknown", "malformed"])
def test_related_of_no_published_video_is_404(world: World, client: TestClient, which: str) -> None:
    video = {"unprocessed": world.v["u"], "unknown": uuid.uuid4(), "malformed": "abc"}[which]
    response = client.get(f"/v1/videos/{video}/related")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_anonymous_trending(world: World, client: TestClient) -> None:
    response = client.get("/v1/trending", params={"region": REGION, "limit": 2})
    assert response.status_code == 200
    assert world.names(response.json()["items"]) == ["t1", "t2"]
    assert response.json()["items"][1]["reason"] == f"Trending in {REGION}"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/trending", {"region": "mars"}),
        ("/v1/trending", {"limit": 0}),
        ("/v1/trending", {"limit": 101}),
        ("/v1/me/recommendations", {"region": "mars"}),
        ("/v1/me/recommendations", {"device": "fridge"}),
    ],
)
def test_bad_parameters_are_422_problems(
    stack: Settings, world: World, client: TestClient, path: str, params: dict[str, Any]
) -> None:
    response = client.get(path, params=params, headers=bearer(stack, world.viewer))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    field = next(iter(params))
    assert field in response.json()["detail"]


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic dXNlcjpwdw=="])
def test_recommendations_need_a_valid_token(client: TestClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/v1/me/recommendations", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


# --- the session, across processes --------------------------------------------------------


@pytest.fixture(scope="module")
def two_processes(
    stack: Settings, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    with two_viewer_processes(stack, tmp_path_factory.mktemp("viewers")) as urls:
        yield urls


def test_an_event_posted_to_one_process_reranks_the_next_answer_of_another(
    stack: Settings, world: World, two_processes: tuple[str, str]
) -> None:
    writer, reader = two_processes
    headers = bearer(stack, world.viewer)
    event = make_event(video_id=str(world.v["p3"]), region=REGION, position_seconds=42.0)
    posted = httpx.post(f"{writer}/v1/events", json={"events": [event]}, headers=headers)
    assert posted.status_code == 200 and len(posted.json()["accepted"]) == 1, posted.text
    # The very next read, by the other process, reflects the event (how soon is measured
    # by benchmarks/serving.py: timing targets belong there, not in tests).
    response = httpx.get(
        f"{reader}/v1/me/recommendations", params={"region": REGION, "limit": 5}, headers=headers
    )
    assert response.status_code == 200
    items = response.json()["items"]
    # p3 watched now: its related list leads (up to 3 of 5 slots; p2 moves up), p1 stays
    # out (history), then the precomputed rest.
    assert world.names(items) == ["r1", "r2", "p2", "p5", "p6"]
    assert [i["source"] for i in items] == ["session"] * 3 + ["co-watch", "collaborative"]
    assert items[0]["reason"] == f"Because you watched {world.title['p3']}"
    with get_engine(stack).connect() as conn:
        row = conn.execute(
            select(SessionActivity).where(SessionActivity.user_id == world.viewer)
        ).one()
    assert (row.video_id, row.events, row.watched_seconds) == (world.v["p3"], 1, 42.0)


def test_old_session_rows_are_pruned(stack: Settings) -> None:
    now = datetime.now(UTC)
    user = uuid.uuid4()
    old, recent = uuid.uuid4(), uuid.uuid4()
    rows = [
        {
            "user_id": user,
            "video_id": old,
            "first_event_at": now - timedelta(hours=2),
            "last_event_at": now - timedelta(minutes=31),
        },
        {
            "user_id": user,
            "video_id": recent,
            "first_event_at": now - timedelta(hours=2),
            "last_event_at": now - timedelta(minutes=29),
        },
    ]
    engine = get_engine(stack)
    with engine.begin() as conn:
        conn.execute(insert(SessionActivity), rows)
    try:
        window = timedelta(minutes=30)
        SessionWriter(engine, window=window).prune(before=now - window)
        with engine.connect() as conn:
            left = conn.scalars(
                select(SessionActivity.video_id).where(SessionActivity.user_id == user)
            ).all()
        assert left == [recent]
    finally:
        with engine.begin() as conn:
            conn.execute(delete(SessionActivity).where(SessionActivity.user_id == user))


# --- degraded answers ---------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:port to the catalog until closed: then existing connections
    are cut and new ones refused, as when the database goes away."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone leaves it listening.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns.clear()


def _get(client: TestClient, path: str, **params: Any) -> httpx.Response:
    return client.get(path, params={"region": REGION, **params}, headers=client.headers)


def test_an_unavailable_catalog_gives_cached_then_trending_answers_never_errors(
    stack: Settings, world: World, unique: str
) -> None:
    proxy = TcpProxy((stack.pg_host, stack.pg_port))
    proxy.open()
    # No answers from memory once the invalidation listener is lost (it goes through the
    # proxy too): every read below goes to the catalog.
    settings = stack.model_copy(
        update={
            "pg_port": proxy.port,
            "recs_cache_seconds": 60.0,
            "recs_unsynced_ttl_seconds": 0.0,
        }
    )
    path = "/v1/me/recommendations"
    with (
        events_bucket(stack, unique) as bucket,
        TestClient(create_app(settings.model_copy(update={"bucket_events": bucket}))) as client,
    ):
        client.headers.update(bearer(stack, world.viewer))
        try:
            healthy = _get(client, path, limit=5)
            assert healthy.status_code == 200 and "x-vidflow-degraded" not in healthy.headers
            proxy.close()
            answers = client.app.state.serving.answers  # type: ignore[attr-defined]
            deadline = time.monotonic() + 5
            while answers.synced:  # the listener notices the cut connection
                assert time.monotonic() < deadline, "the listener did not notice the outage"
                time.sleep(0.01)
            cached = _get(client, path, limit=5)
            assert cached.status_code == 200
            assert cached.headers["x-vidflow-degraded"] == "cache"
            assert cached.json() == healthy.json()
            # Never asked before: the region's last known trending list.
            fallback = _get(client, path, limit=2)
            assert fallback.status_code == 200
            assert fallback.headers["x-vidflow-degraded"] == "trending"
            assert world.names(fallback.json()["items"]) == ["t1", "t2"]
            assert fallback.json()["model_version"] == "trend-3"
            related = _get(client, f"/v1/videos/{world.v['t1']}/related", limit=2)
            assert related.headers["x-vidflow-degraded"] == "trending"
            assert world.names(related.json()["items"]) == ["t2", "p2"]
            # A region this process never read: nothing to fall back on.
            unknown = client.get(path, params={"region": "ap-south"}, headers=client.headers)
            assert unknown.status_code == 503
            assert unknown.headers["content-type"] == "application/problem+json"
            assert unknown.headers["retry-after"] == "2"
            # Events are still stored (the session update is best effort).
            event = make_event(video_id=str(world.v["t1"]), region=REGION)
            posted = client.post("/v1/events", json={"events": [event]}, headers=client.headers)
            assert posted.status_code == 200 and len(posted.json()["accepted"]) == 1
            proxy.open()  # the catalog is back: fresh answers again
            again = _get(client, path, limit=2)
            assert again.status_code == 200 and "x-vidflow-degraded" not in again.headers
        finally:
            proxy.close()


def test_an_app_that_never_reached_the_catalog_answers_503_not_500(
    stack: Settings, world: World
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with TestClient(create_app(stack.model_copy(update={"pg_port": closed}))) as client:
        for path in (
            "/v1/trending",
            "/v1/me/recommendations",
            f"/v1/videos/{world.v['p3']}/related",
        ):
            response = client.get(path, headers=bearer(stack, world.viewer))
            assert response.status_code == 503, (path, response.text)
            assert response.json()["title"] == "Catalog unavailable"


def test_session_rows_count_watched_time(stack: Settings) -> None:
    """Sanity of the stored columns (the SQL upsert): a second batch extends the row."""
    user, video = uuid.uuid4(), uuid.uuid4()
    writer = SessionWriter(get_engine(stack), window=timedelta(minutes=30))
    now = datetime.now(UTC)

    def stored(ago: float, position: float) -> StoredEvent:
        return StoredEvent(
            str(uuid.uuid4()),
            "heartbeat",
            str(video),
            str(uuid.uuid4()),
            str(user),
            now - timedelta(seconds=ago),
            now,
            position,
            REGION,
            "phone",
        )

    try:
        writer.record([stored(20, 10.0), stored(10, 20.0)], now=now)
        writer.record([stored(5, 15.0)], now=now)
        with get_engine(stack).connect() as conn:
            row = conn.execute(
                text(
                    "SELECT events, watched_seconds, first_event_at, last_event_at "
                    "FROM session_activity WHERE user_id = :u"
                ),
                {"u": user},
            ).one()
        assert (row.events, row.watched_seconds) == (3, 20.0)
        assert row.first_event_at == now - timedelta(seconds=20)
        assert row.last_event_at == now - timedelta(seconds=5)
    finally:
        with get_engine(stack).begin() as conn:
            conn.execute(delete(SessionActivity).where(SessionActivity.user_id == user))
