"""``seed`` mode: put N short generated clips through the real upload and processing path.

Each clip has its own look (a different lavfi pattern and tone) and the title and tags
of one video of the model's catalog, uploaded with tus as the demo creator
(:mod:`vidflow.stack.demo`). The mode waits until the scheduler's ``video_processing``
runs have published every clip, then returns the video ids. ``live`` and
``history --from-catalog`` then watch these videos.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from vidflow.config import Settings
from vidflow.stack import demo
from vidflow.traffic.model import build_population, truth

#: Distinct looks: ffmpeg lavfi video sources, cycled.
PATTERNS: Final = (
    "testsrc2",
    "smptehdbars",
    "mandelbrot",
    "cellauto=rule=110",
    "rgbtestsrc",
    "life=mold=10:ratio=0.1",
    "colorspectrum",
    "gradients",
)

Say = Callable[[str], None]


def seed_clips(
    settings: Settings,
    *,
    seed: int,
    count: int,
    seconds: int,
    truth_file: Path | None,
    say: Say,
) -> list[str]:
    """Upload ``count`` clips of ``seconds`` each; the ids of the processed videos."""
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    population = build_population(seed, viewers=1, videos=count, start=now, days=0)
    catalog = population.catalog
    base_url = f"http://{settings.bind_host}:{settings.upload_port}"
    token = demo.login(settings, base_url)
    video_ids = []
    with tempfile.TemporaryDirectory(prefix="vidflow-seed-") as scratch:
        for i in range(count):
            clip = Path(scratch) / f"clip-{i}.mp4"
            pattern = PATTERNS[(seed + i) % len(PATTERNS)]
            demo.make_clip(clip, seconds, pattern=pattern, tone_hz=220 + 55 * ((seed + i) % 12))
            upload_url = demo.upload(
                base_url, token, clip, title=catalog.titles[i], tags=catalog.tags[i]
            )
            video_id = demo.video_of_upload(settings, upload_url)
            say(f"uploaded {catalog.titles[i]!r} ({pattern}, tags {catalog.tags[i]}): {video_id}")
            video_ids.append(video_id)
    if truth_file is not None:  # the clips' true topics, under their real ids
        clips = truth(population)["videos"]
        for clip_truth, video_id in zip(clips, video_ids, strict=True):
            clip_truth["video_id"] = video_id
        truth_file.parent.mkdir(parents=True, exist_ok=True)
        truth_file.write_text(json.dumps({"seed": seed, "clips": clips}, indent=1) + "\n")
        say(f"ground truth of the clips written to {truth_file}")
    started = time.monotonic()
    for video_id in video_ids:
        demo.wait_until_processed(settings, video_id, say)
    say(f"{count} clips processed in {time.monotonic() - started:.0f} s")
    return video_ids
