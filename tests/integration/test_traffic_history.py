"""``history --register`` against the real events bucket and catalog: objects under the
receive-hour keys whose lines parse as stored events of registered users and videos, an
idempotent re-run, and model accounts that cannot log in (401, not 500)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from vidflow.catalog.db import session_scope
from vidflow.config import Settings
from vidflow.events import StoredEvent, hour_prefix
from vidflow.storage import s3_client
from vidflow.traffic.cli import main
from vidflow.traffic.history import run_tag
from vidflow.traffic.model import build_population
from vidflow.traffic.register import usernames

VIEWERS, VIDEOS, START = 40, 12, "2024-01-15"


def _count(settings: Settings, sql: str, ids: list[uuid.UUID] | list[str]) -> int:
    with session_scope(settings) as session:
        return int(session.execute(text(sql), {"ids": ids}).scalar_one())


@pytest.fixture
def seed(stack: Settings, unique: str) -> Iterator[int]:
    """A seed no other run uses; its objects and catalog rows are removed afterwards."""
    seed = int(unique[:8], 16)
    yield seed
    from datetime import UTC, datetime

    population = build_population(
        seed, viewers=VIEWERS, videos=VIDEOS, start=datetime(2024, 1, 15, tzinfo=UTC), days=1
    )
    s3 = s3_client(stack)
    tag = run_tag(population)
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack.bucket_events, Prefix="events/date=2024-01-1"
    ):
        for obj in page.get("Contents", []):
            if f"history-{tag}-" in obj["Key"]:
                s3.delete_object(Bucket=stack.bucket_events, Key=obj["Key"])
    names = usernames(population)
    ids = [uuid.UUID(u) for u in names]
    with session_scope(stack) as session:
        videos = [uuid.UUID(v) for v in population.catalog.video_ids]
        session.execute(text("DELETE FROM videos WHERE video_id = ANY(:ids)"), {"ids": videos})
        session.execute(text("DELETE FROM users WHERE user_id = ANY(:ids)"), {"ids": ids})
        session.execute(text("DELETE FROM usernames WHERE user_id = ANY(:ids)"), {"ids": ids})
        session.execute(text("DELETE FROM user_emails WHERE user_id = ANY(:ids)"), {"ids": ids})


def _objects(settings: Settings, tag: str) -> dict[str, str]:
    s3 = s3_client(settings)
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=settings.bucket_events, Prefix="events/date=2024-01-1"
    ):
        for obj in page.get("Contents", []):
            if f"history-{tag}-" in obj["Key"]:
                found[obj["Key"]] = obj["ETag"]
    return found


def test_history_register_writes_events_of_known_users_and_videos(
    stack: Settings, seed: int, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    args = ["history", "--seed", str(seed), "--start", START, "--days", "1"]
    args += ["--viewers", str(VIEWERS), "--videos", str(VIDEOS), "--register"]
    args += ["--truth", str(tmp_path / "truth.json")]
    assert main(args) == 0

    population = build_population(
        seed, viewers=VIEWERS, videos=VIDEOS, start=datetime(2024, 1, 15, tzinfo=UTC), days=1
    )
    objects = _objects(stack, run_tag(population))
    assert objects, "no event objects written"
    s3 = s3_client(stack)
    users, videos, events = set(), set(), 0
    for key in objects:
        body = s3.get_object(Bucket=stack.bucket_events, Key=key)["Body"].read().decode()
        for line in body.splitlines():
            event = StoredEvent.from_json_line(line)
            assert key.startswith(hour_prefix(event.received_at))
            users.add(event.user_id)
            videos.add(event.video_id)
            events += 1
    assert events > 100
    signed_in = sorted(u for u in users if u is not None)
    assert signed_in and None in users  # both kinds of viewer
    assert _count(stack, "SELECT count(*) FROM users WHERE user_id = ANY(:ids)", signed_in) == (
        len(signed_in)
    )
    video_ids = [uuid.UUID(v) for v in videos]
    processed = "SELECT count(*) FROM videos WHERE video_id = ANY(:ids) AND status = 'processed'"
    assert _count(stack, processed, video_ids) == len(video_ids)
    names = usernames(population)
    ids = [uuid.UUID(u) for u in names]
    lookups = (
        "SELECT (SELECT count(*) FROM usernames WHERE user_id = ANY(:ids))"
        " + (SELECT count(*) FROM user_emails WHERE user_id = ANY(:ids))"
    )
    assert _count(stack, lookups, ids) == 2 * len(ids)
    with session_scope(stack) as session:
        row = session.execute(
            text("SELECT title, tags, manifest_url FROM videos WHERE video_id = :v"),
            {"v": uuid.UUID(population.catalog.video_ids[0])},
        ).one()
    assert row.title == population.catalog.titles[0]
    assert list(row.tags) == population.catalog.tags[0]
    assert row.manifest_url is None

    # A model account cannot log in: a clean 401, not a server error.
    name = next(iter(names.values()))
    login = httpx.post(
        f"http://{stack.bind_host}:{stack.upload_port}/v1/auth/token",
        json={"username": name, "password": "Any-password-1"},
        timeout=30,
    )
    assert login.status_code == 401

    # Re-running changes nothing: same keys and bytes, no duplicate rows.
    counts = "SELECT count(*) FROM users WHERE user_id = ANY(:ids)"
    users_before = _count(stack, counts, ids)
    assert main(args) == 0
    assert _objects(stack, run_tag(population)) == objects
    assert _count(stack, counts, ids) == users_before == len(ids)
    assert _count(stack, lookups, ids) == 2 * len(ids)
    videos_sql = "SELECT count(*) FROM videos WHERE video_id = ANY(:ids)"
    model_videos = [uuid.UUID(v) for v in population.catalog.video_ids]
    assert _count(stack, videos_sql, model_videos) == VIDEOS
