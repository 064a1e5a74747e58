"""Work items of a run: queue messages from asset events (several events, several
messages each, duplicates, garbage) and the UI Params; plus encode planning."""

from __future__ import annotations

import json
import uuid
from fractions import Fraction
from typing import Any

import pytest

from vidflow.config import Settings
from vidflow.media.ladder import AudioPlan, LadderRung
from vidflow.media.probe import AudioStream, ProbeResult, VideoStream
from vidflow.orchestration.video_processing import processing_queue_url, video_ids_of_task
from vidflow.processing.contracts import (
    Encode,
    Outcome,
    ProcessingMessage,
    RenditionPlan,
    RenditionResult,
    VideoJob,
)
from vidflow.processing.planning import group_renditions, plan_encodes
from vidflow.processing.probing import media_version
from vidflow.processing.requests import parse_message, requests_for_run

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
    assert requests[0].message.source_key == f"originals/{A}/source"
    assert requests[0].message.size == 10 and requests[0].message.sha256 is None


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
    assert request is not None and request.message.source_key == f"originals/{A}/source"


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


def test_failure_callback_reads_the_videos_from_typed_arguments() -> None:
    encode = encode_of(A)
    assert video_ids_of_task({"encode": encode.to_xcom()}, {}) == [A]
    jobs = [VideoJob(B, "ready").to_xcom(), None, VideoJob(A, "failed", "x").to_xcom()]
    assert video_ids_of_task({"jobs": jobs, "transcoded": [[{"video_id": C}]]}, {}) == [B, A]
    # A task of the whole run (probe): every video the run was given.
    context = {"params": {"video_id": C, "force": False}, "triggering_asset_events": {}}
    assert video_ids_of_task({}, context) == [C]


def encode_of(video_id: str) -> Encode:
    rung = LadderRung("720p", 1280, 720, Fraction(30000, 1001), 4_500_000)
    return Encode(
        video_id=video_id,
        version="v1",
        source_key=f"originals/{video_id}/source",
        duration=7.5,
        label="720p",
        video_index=0,
        audio_index=None,
        renditions=(RenditionPlan("video", "720p", rung=rung, storyboard=True),),
    )


def test_the_message_wire_format_is_unchanged() -> None:
    message = ProcessingMessage.for_video(A.upper(), size=10, sha256="ab")
    # Hand-written: what the upload service's outbox relay has always published.
    assert message.to_json() == (
        f'{{"sha256":"ab","size":10,"source_key":"originals/{A}/source","video_id":"{A}"}}'
    )
    assert ProcessingMessage.parse(message.to_json()) == message
    assert ProcessingMessage.parse(json.dumps({"video_id": A, "size": True})) == (
        ProcessingMessage(A, f"originals/{A}/source", None, None)
    )


def test_every_contract_round_trips_through_its_xcom() -> None:
    encode = encode_of(A)
    assert Encode.from_xcom(json.loads(json.dumps(encode.to_xcom()))) == encode
    job = plan_job(A, 1280, 720, audio=True)
    assert VideoJob.from_xcom(json.loads(json.dumps(job.to_xcom()))) == job
    result = RenditionResult(A, "720p", "failed", "why")
    assert RenditionResult.from_xcom(json.loads(json.dumps(result.to_xcom()))) == result
    posters = RenditionResult(A, "1080p", "ready", poster_urls={"small": "http://x/s.jpg"})
    assert RenditionResult.from_xcom(json.loads(json.dumps(posters.to_xcom()))) == posters
    outcome = Outcome(A, "published", version="v1")
    assert Outcome.from_xcom(json.loads(json.dumps(outcome.to_xcom()))) == outcome


def test_versions_are_unique_per_run_video_and_attempt() -> None:
    versions = {media_version(r, v, t) for r in ("r1", "r2") for v in (A, B) for t in (1, 2)}
    assert len(versions) == 8
    assert media_version("r1", A, 1) == media_version("r1", A, 1)


def plan_job(video_id: str, width: int, height: int, *, audio: bool) -> VideoJob:
    return VideoJob.from_xcom(job(video_id, width, height, audio=audio))


def plan(jobs: list[Any], encodes_per_video: int) -> list[dict[str, Any]]:
    """plan_encodes over jobs in their XCom form, answered in XCom form."""
    typed = [VideoJob.from_xcom(j) if j else None for j in jobs]
    return [e.to_xcom() for e in plan_encodes(typed, encodes_per_video=encodes_per_video)]


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
    items = plan(
        [
            job(A, 1280, 720, audio=True),
            {"video_id": B, "status": "failed"},
            None,
            job(C, 640, 360, audio=False),
        ],
        10,
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
    single = plan([job(A, 640, 360, audio=False)], 10)
    assert [i["label"] for i in single] == ["360p", "234p"]
    assert single[0]["audio_index"] is None
    # Exactly one rendition per video makes the storyboard: the smallest.
    assert [i["renditions"][0]["storyboard"] for i in single] == [False, True]
    boards = [
        (i["video_id"], r["name"]) for i in items for r in i["renditions"] if r.get("storyboard")
    ]
    assert sorted(boards) == sorted([(A, "234p"), (C, "234p")])


def test_a_video_is_split_into_balanced_encodes_that_share_a_decode() -> None:
    items = plan([job(A, 1920, 1080, audio=True)], 2)
    # 1080p alone weighs about as much as the five rungs below it together.
    assert [i["label"] for i in items] == ["720p+540p+432p+360p+234p", "1080p+audio"]
    assert sorted(n for _, n in renditions_of(items)) == sorted(
        ["1080p", "720p", "540p", "432p", "360p", "234p", "audio"]
    )
    assert all(i["version"] == "v1" and i["duration"] == 10.0 for i in items)
    one = plan([job(A, 1920, 1080, audio=True)], 1)
    assert [i["label"] for i in one] == ["1080p+720p+540p+432p+360p+234p+audio"]


def test_several_videos_each_get_their_encodes_biggest_first() -> None:
    items = plan(
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
        RenditionPlan("video", f"r{i}", rung=LadderRung(f"r{i}", int(c), 1, Fraction(1), 1))
        for i, c in enumerate(costs)
    ] + [RenditionPlan("audio", "audio")]
    bins = group_renditions(renditions, groups)
    assert len(bins) == groups
    assert sorted(r.name for b in bins for r in b) == sorted(r.name for r in renditions)
    loads = [sum(r.rung.width for r in b if r.rung is not None) for b in bins]
    # Longest processing time first: no group exceeds the mean by more than the biggest item.
    assert max(loads) <= sum(costs) / groups + max(costs)
    assert len(group_renditions(renditions[:2], 5)) == 2  # never an empty encode
