"""The traffic model's output: reproducible from the seed, exactly the stored-event
contract, written under the receive-hour keys; live mode's pure parts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import m3u8
import pytest

from vidflow.events import STORED_EVENT_FIELDS, StoredEvent, ViewerEventIn, hour_prefix
from vidflow.traffic.cli import main
from vidflow.traffic.history import day_objects, directory_put, write_history
from vidflow.traffic.live import LiveError, _loopback, choose_variant
from vidflow.traffic.model import TOPICS, build_population, truth
from vidflow.traffic.simulate import random_uuids, simulate, stored_lines

START = datetime(2026, 3, 2, tzinfo=UTC)


def lines_of(seed: int, days: int = 1) -> list[str]:
    population = build_population(seed, viewers=150, videos=40, start=START, days=days)
    return [line for day in simulate(population) for line in stored_lines(population, day)[0]]


def test_same_seed_same_events_other_seed_other_events() -> None:
    first, again, other = lines_of(11), lines_of(11), lines_of(12)
    assert len(first) > 1000
    assert first == again
    assert set(first).isdisjoint(other)


def test_population_ids_are_uuid5_of_the_seed() -> None:
    a = build_population(3, viewers=5, videos=5, start=START, days=1)
    b = build_population(3, viewers=5, videos=5, start=START, days=1)
    c = build_population(4, viewers=5, videos=5, start=START, days=1)
    assert a.catalog.video_ids == b.catalog.video_ids
    assert a.viewers.user_ids == b.viewers.user_ids
    assert set(a.catalog.video_ids).isdisjoint(c.catalog.video_ids)
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "vidflow-traffic/3/5/5/2026-03-02")
    assert a.catalog.video_ids[0] == str(uuid.uuid5(namespace, "video/0"))


def test_lines_are_stored_events_byte_for_byte() -> None:
    population = build_population(5, viewers=200, videos=50, start=START, days=1)
    day = next(simulate(population))
    lines, hours = stored_lines(population, day)
    assert len(lines) == len(day.events)
    kinds = set()
    for line, hour in list(zip(lines, hours, strict=True))[::3]:
        stored = StoredEvent.from_json_line(line)
        assert stored.to_json_line() == line  # the contract's own serialisation
        values = json.loads(line)
        assert tuple(values) == STORED_EVENT_FIELDS
        client_side = {
            k: v for k, v in values.items() if k not in ("schema", "user_id", "received_at")
        }
        ViewerEventIn.model_validate(client_side)
        assert stored.received_at >= stored.client_ts
        assert int(stored.received_at.timestamp()) // 3600 * 3600 == hour
        kinds.add(stored.event_type)
    assert kinds == {"play", "heartbeat", "pause", "seek", "complete", "like"}
    received = [StoredEvent.from_json_line(line).received_at for line in lines]
    assert received == sorted(received)
    users = {json.loads(line)["user_id"] for line in lines}
    assert None in users and len(users) > 10  # anonymous and signed-in viewers


def test_random_uuids_are_version_4() -> None:
    import numpy as np

    ids = random_uuids(np.random.default_rng(1), 1000)
    assert len(set(ids)) == 1000
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


def test_objects_group_by_receive_hour(tmp_path: Path) -> None:
    population = build_population(6, viewers=150, videos=60, start=START, days=2)
    result = write_history(population, directory_put(tmp_path), lambda _: None, per_object=500)
    files = sorted(tmp_path.rglob("*.ndjson"))
    assert len(files) == result.objects and result.events > 5000
    total = 0
    for path in files:
        key = path.relative_to(tmp_path).as_posix()
        text = path.read_text()
        assert text.endswith("\n")
        lines = text.splitlines()
        assert 0 < len(lines) <= 500
        for line in lines:
            assert key.startswith(hour_prefix(StoredEvent.from_json_line(line).received_at))
        total += len(lines)
    assert total == result.events
    assert result.late_events > 0
    # A second run writes the same keys with the same bytes.
    before = {p: p.read_bytes() for p in files}
    again = write_history(population, directory_put(tmp_path), lambda _: None, per_object=500)
    assert again.keys == result.keys
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("*.ndjson"))} == before


def test_day_objects_number_objects_within_each_hour() -> None:
    import numpy as np

    hours = np.array([0, 0, 0, 3600, 3600])
    objects = day_objects(["a", "b", "c", "d", "e"], hours, "history-x-d000", per_object=2)
    assert [key for key, _ in objects] == [
        "events/date=1970-01-01/hour=00/history-x-d000-00000000.ndjson",
        "events/date=1970-01-01/hour=00/history-x-d000-00000001.ndjson",
        "events/date=1970-01-01/hour=01/history-x-d000-00000000.ndjson",
    ]
    assert [body for _, body in objects] == [b"a\nb\n", b"c\n", b"d\ne\n"]


def test_truth_holds_what_the_events_do_not() -> None:
    population = build_population(8, viewers=20, videos=10, start=START, days=2)
    facts = truth(population)
    assert len(facts["viewers"]) == 20 and len(facts["videos"]) == 10
    assert facts["viral"] and set(facts["topics"]) == set(TOPICS)
    assert all(abs(sum(v["preferences"].values()) - 1) < 0.06 for v in facts["viewers"])
    tags = {t for tags in TOPICS.values() for t in tags}
    assert all(set(v["tags"]) <= tags for v in facts["videos"])
    json.dumps(facts)  # serialisable
    line = stored_lines(population, next(simulate(population)))[0][0]
    assert "preferences" not in line and "topics" not in line


MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=6000000,RESOLUTION=1920x1080
1080p/index.m3u8
"""


@pytest.mark.parametrize(
    ("mbps", "expected"), [(2.5, "360p"), (4.0, "720p"), (8.0, "1080p"), (0.3, "360p")]
)
def test_rendition_follows_bandwidth(mbps: float, expected: str) -> None:
    master = m3u8.loads(MASTER, uri="http://127.0.0.1:4566/m/master.m3u8")
    # 80 % headroom: 2.5 Mb/s -> 2.0 fits 0.8 only; 4 -> 3.2 fits 3.0; 8 -> 6.4 fits 6.0.
    assert choose_variant(master, mbps * 1e6).uri == f"{expected}/index.m3u8"


def test_live_mode_stays_on_loopback() -> None:
    assert _loopback("http://127.0.0.1:8101/a.m3u8")
    assert _loopback("http://localhost:4566/b")
    for url in ("http://example.com/a.m3u8", "http://10.0.0.5/x", "file:///etc/passwd"):
        with pytest.raises(LiveError):
            _loopback(url)


def test_cli_help_and_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    for mode in ("history", "live", "seed"):
        with pytest.raises(SystemExit) as exit_:
            main([mode, "--help"])
        assert exit_.value.code == 0
        assert "--seed" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["history", "--days", "0"])
    assert exit_.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_history_cli_writes_to_a_directory(tmp_path: Path) -> None:
    code = main(
        ["history", "--seed", "9", "--start", "2026-03-02", "--viewers", "50", "--videos", "20",
         "--out", str(tmp_path / "out"), "--truth", str(tmp_path / "truth.json")]
    )  # fmt: skip
    assert code == 0
    keys = [p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")]
    assert any(k.startswith("events/date=2026-03-02/hour=") for k in keys)
    facts = json.loads((tmp_path / "truth.json").read_text())
    assert facts["seed"] == 9 and len(facts["viewers"]) == 50
