"""``seed`` puts one generated clip through the real upload API and the scheduler's
video_processing run; ``live`` then plays streams through the viewer API and gets its
events acknowledged."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from vidflow.catalog.db import session_scope
from vidflow.config import Settings
from vidflow.traffic.live import run_live
from vidflow.traffic.model import TOPICS
from vidflow.traffic.seed import seed_clips


def test_seed_then_live(stack: Settings, unique: str, tmp_path: Path) -> None:
    said: list[str] = []
    seed = int(unique[:6], 16)
    [video_id] = seed_clips(
        stack,
        seed=seed,
        count=1,
        seconds=3,
        truth_file=tmp_path / "clips.json",
        say=said.append,
    )
    with session_scope(stack) as session:
        row = session.execute(
            text("SELECT status, title, tags, manifest_url FROM videos WHERE video_id = :v"),
            {"v": video_id},
        ).one()
    clip = json.loads((tmp_path / "clips.json").read_text())["clips"][0]
    assert row.status == "processed" and row.manifest_url
    assert row.title == clip["title"] and list(row.tags) == clip["tags"]
    vocabulary = {tag for tags in TOPICS.values() for tag in tags}
    assert set(row.tags) <= vocabulary

    report = run_live(
        stack,
        seed=seed,
        viewers=1,
        duration=8,
        speed=20,
        truth_file=tmp_path / "live.json",
        say=said.append,
    )
    assert report.errors == []
    assert report.playbacks >= 1
    assert report.segments >= 2 * report.playbacks  # an init and a media segment each
    assert report.bytes > 10_000
    assert report.events_acknowledged >= report.playbacks  # at least each play event
    assert report.events_refused == 0
    live_truth = json.loads((tmp_path / "live.json").read_text())
    assert len(live_truth["viewers"]) == 1
