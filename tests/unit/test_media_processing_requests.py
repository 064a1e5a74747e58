"""Work items of a run: queue messages from asset events (several events, several
messages each, duplicates, garbage) and the UI Params; plus encode planning."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from vidflow.config import Settings
from vidflow.media.ladder import AudioPlan
from vidflow.media.probe import AudioStream, ProbeResult, VideoStream
from vidflow.orchestration.video_processing import processing_queue_url, video_ids_of
from vidflow.processing.requests import parse_message, requests_for_run
from vidflow.processing.steps import group_renditions, media_version, plan_encodes

A, B, C = (str(uuid.uuid4()) for _ in range(3))


def message(video_id: str, **extra: Any) -> dict[str, str]:
    body = {
        "video_id": video_id,
        "source_key": f"originals/{video_id}/source",
        "size": 10,
        "sha256": None,
    }
    body.update(extra)
    return {"MessageId": uuid.uuid4().hex, "Body": json.dumps(body)}


def event(*messages: dict[str, str]) -> dict[str, Any]:
    return {"payload": {"status": "success", "message_batch": list(messages)}}


def test_every_video_of_every_event_once() -> None:
    extras = [event(message(A), message(B)), event(message(A), message(C))]
    requests = requests_for_run(extras, video_id=None, force=False)
    assert [r.video_id for r in requests] == [A, B, C]
    assert requests[0].source_key == f"originals/{A}/source"
    assert requests[0].size == 10 and requests[0].sha256 is None


def test_malformed_messages_are_dropped() -> None:
    garbage = [
        {"Body": "not json"},
        {"Body": json.dumps(["a list"])},
        {"Body": json.dumps({"video_id": "nope"})},
        {"no": "body"},
    ]
    extras = [event(*garbage, message(A)), {"unrelated": True}]
    assert [r.video_id for r in requests_for_run(extras, video_id=None, force=False)] == [A]


def test_source_key_comes_from_the_id_not_the_message() -> None:
    request = parse_message(json.dumps({"video_id": A, "source_key": "../../etc/passwd"}))
    assert request is not None and request.source_key == f"originals/{A}/source"


def test_ui_params_add_a_forced_video() -> None:
    requests = requests_for_run([event(message(A))], video_id=A.upper(), force=True)
    assert [(r.video_id, r.force) for r in requests] == [(A, True)]
    with pytest.raises(ValueError, match="not a UUID"):
        requests_for_run([], video_id="42", force=False)


def test_queue_url_is_built_from_settings_alone() -> None:
    local = Settings(aws_endpoint_url="http://127.0.0.1:4566/", sqs_endpoint_url=None)
    assert processing_queue_url(local) == "http://127.0.0.1:4566/123456789012/vidflow-processing"
    aws = Settings(
        aws_endpoint_url="", sqs_endpoint_url=None, aws_region="eu-west-1", sqs_account_id="42"
    )
    assert processing_queue_url(aws) == "https://sqs.eu-west-1.amazonaws.com/42/vidflow-processing"
    elasticmq = Settings(sqs_endpoint_url="http://elasticmq:9324", sqs_account_id="000000000000")
    assert (
        processing_queue_url(elasticmq) == "http://elasticmq:9324/000000000000/vidflow-processing"
    )


def test_failure_callback_finds_the_videos_in_task_arguments() -> None:
    op_kwargs = {
        "rendition": {"video_id": A, "name": "720p"},
        "transcoded": [{"video_id": B}, None, {"video_id": A}],
        "nested": {"deeper": {"video_id": C}},
        "text": A,
        # Task context values are lazy mappings that reject plain string keys.
        "triggering_asset_events": StrictMapping(),
    }
    assert video_ids_of(op_kwargs) == [A, B, C]


class StrictMapping(Mapping[object, object]):
    """Like the task context's ``triggering_asset_events``: only asset keys allowed."""

    def __getitem__(self, key: object) -> object:
        raise TypeError(f"Key should be either an asset or an asset alias, not {type(key)}")

    def __iter__(self) -> Iterator[object]:
        raise TypeError("not iterable by key")

    def __len__(self) -> int:
        return 1


def test_versions_are_unique_per_run_video_and_attempt() -> None:
    versions = {media_version(r, v, t) for r in ("r1", "r2") for v in (A, B) for t in (1, 2)}
    assert len(versions) == 8
    assert media_version("r1", A, 1) == media_version("r1", A, 1)


def job(video_id: str, width: int, height: int, *, audio: bool) -> dict[str, Any]:
    from vidflow.media.ladder import plan_audio, plan_ladder

    probe = ProbeResult(
        format_name="mp4",
        size=1,
        duration=10.0,
        bit_rate=None,
        video=VideoStream(0, "h264", None, width, height, "yuv420p", 8, 1, 0, 30, 30),  # type: ignore[arg-type]
        audio=AudioStream(1, "aac", "LC", 44100, 2, 128000) if audio else None,
    )
    plan = plan_audio(probe)
    return {
        "video_id": video_id,
        "status": "ready",
        "version": "v1",
        "source_key": f"originals/{video_id}/source",
        "probe": probe.to_dict(),
        "rungs": [r.to_dict() for r in plan_ladder(probe)],
        "audio": plan.to_dict() if plan else None,
    }


def renditions_of(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(i["video_id"], r["name"]) for i in items for r in i["renditions"]]


def test_one_task_per_rendition_when_encodes_are_not_shared() -> None:
    items = plan_encodes(
        [
            job(A, 1280, 720, audio=True),
            {"video_id": B, "status": "failed"},
            None,
            job(C, 640, 360, audio=False),
        ],
        encodes_per_video=10,
    )
    assert all(len(i["renditions"]) == 1 for i in items)
    names = renditions_of(items)
    assert names[0] == (A, "720p")
    assert (A, "audio") in names and not any(v == C and n == "audio" for v, n in names)
    assert all(v != B for v, _ in names)
    assert len(items) == 5 + 1 + 2  # A: 5 rungs + audio, C: 2 rungs
    assert items[0]["label"] == f"720p {A[:8]}"
    audio_item = next(i for i in items if i["renditions"][0]["name"] == "audio")
    assert AudioPlan.from_dict(audio_item["renditions"][0]["audio"]) == AudioPlan(copy=False)
    assert (audio_item["video_index"], audio_item["audio_index"]) == (0, 1)
    single = plan_encodes([job(A, 640, 360, audio=False)], encodes_per_video=10)
    assert [i["label"] for i in single] == ["360p", "234p"]
    assert single[0]["audio_index"] is None
    # Exactly one rendition per video makes the storyboard: the smallest.
    assert [i["renditions"][0]["storyboard"] for i in single] == [False, True]
    boards = [
        (i["video_id"], r["name"]) for i in items for r in i["renditions"] if r.get("storyboard")
    ]
    assert sorted(boards) == sorted([(A, "234p"), (C, "234p")])


def test_a_video_is_split_into_balanced_encodes_that_share_a_decode() -> None:
    items = plan_encodes([job(A, 1920, 1080, audio=True)], encodes_per_video=2)
    # 1080p alone weighs about as much as the five rungs below it together.
    assert [i["label"] for i in items] == ["720p+540p+432p+360p+234p", "1080p+audio"]
    assert sorted(n for _, n in renditions_of(items)) == sorted(
        ["1080p", "720p", "540p", "432p", "360p", "234p", "audio"]
    )
    assert all(i["version"] == "v1" and i["duration"] == 10.0 for i in items)
    one = plan_encodes([job(A, 1920, 1080, audio=True)], encodes_per_video=1)
    assert [i["label"] for i in one] == ["1080p+720p+540p+432p+360p+234p+audio"]


def test_several_videos_each_get_their_encodes_biggest_first() -> None:
    items = plan_encodes(
        [job(C, 640, 360, audio=False), job(A, 1280, 720, audio=True)], encodes_per_video=2
    )
    assert [(i["video_id"], i["label"].split()[0]) for i in items] == [
        (A, "540p+432p+360p"),
        (A, "720p+234p+audio"),
        (C, "360p"),
        (C, "234p"),
    ]


@pytest.mark.parametrize("groups", [1, 2, 3, 4])
def test_grouping_keeps_every_rendition_once_and_balances_the_cost(groups: int) -> None:
    costs = [9.0, 4.0, 3.0, 2.0, 1.0, 1.0]
    renditions = [
        {"kind": "video", "name": f"r{i}", "rung": {"width": c, "height": 1, "frame_rate": "1"}}
        for i, c in enumerate(costs)
    ] + [{"kind": "audio", "name": "audio"}]
    bins = group_renditions(renditions, groups)
    assert len(bins) == groups
    assert sorted(r["name"] for b in bins for r in b) == sorted(r["name"] for r in renditions)
    loads = [sum(r["rung"]["width"] for r in b if r["kind"] == "video") for b in bins]
    # Longest processing time first: no group exceeds the mean by more than the biggest item.
    assert max(loads) <= sum(costs) / groups + max(costs)
    assert len(group_renditions(renditions[:2], 5)) == 2  # never an empty encode
