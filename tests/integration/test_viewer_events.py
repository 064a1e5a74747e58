"""POST /v1/events against real object storage: accepted events end as the exact stored
lines, bad items are rejected with reasons next to good ones, the user comes from the
token, a failed write acknowledges nothing, and durability holds through kill -9 (every
acknowledged event is stored, exactly once) and through a clean stop (pending events are
written at once)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.integration.viewer_harness import (
    ViewerProcess,
    bearer,
    events_bucket,
    make_event,
    object_keys,
    stored_lines,
)
from vidflow.config import Settings
from vidflow.events import STORED_EVENT_FIELDS
from vidflow.viewer.app import create_app


@pytest.fixture(scope="module")
def bucket(stack: Settings) -> Iterator[str]:
    with events_bucket(stack, os.urandom(4).hex()) as name:
        yield name


@pytest.fixture
def fresh_bucket(stack: Settings) -> Iterator[str]:
    """A bucket of one test alone (the durability tests read theirs whole)."""
    with events_bucket(stack, os.urandom(4).hex()) as name:
        yield name


@pytest.fixture(scope="module")
def viewer(bucket: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    service = ViewerProcess(bucket, tmp_path_factory.mktemp("events") / "viewer.log", workers=2)
    service.start()
    try:
        yield service.base_url
    finally:
        service.stop()


def lines_by_id(settings: Settings, bucket: str) -> dict[str, list[dict[str, Any]]]:
    """Every stored line of the bucket, grouped by event id (so duplicates show)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for key, lines in stored_lines(settings, bucket).items():
        for line in lines:
            record = json.loads(line)
            found.setdefault(record["event_id"], []).append({**record, "_key": key, "_raw": line})
    return found


def millis(received_at: str) -> str:
    """The response's receive time as a stored line writes it (ms, Z)."""
    head, _, fraction = received_at.removesuffix("Z").partition(".")
    return f"{head}.{(fraction + '000')[:3]}Z"


def test_accepted_events_are_stored_as_exact_lines_in_the_receive_hour(
    stack: Settings, viewer: str, bucket: str
) -> None:
    user_id = uuid.uuid4()
    # An hour ago on a client in India (+05:30); stored in UTC with milliseconds.
    moment = datetime.now(UTC).replace(microsecond=123456) - timedelta(hours=1)
    event = make_event(
        event_type="play",
        client_ts=moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
        position_seconds=0,
        region="ap-south",
        device="phone",
    )
    response = httpx.post(
        f"{viewer}/v1/events", json={"events": [event]}, headers=bearer(stack, user_id)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == [event["event_id"]] and body["rejected"] == []
    (stored,) = lines_by_id(stack, bucket)[event["event_id"]]
    received = body["received_at"]
    assert stored["_raw"] == (
        '{"schema":1,'
        f'"event_id":"{event["event_id"]}",'
        '"event_type":"play",'
        f'"video_id":"{event["video_id"]}",'
        f'"session_id":"{event["session_id"]}",'
        f'"user_id":"{user_id}",'
        f'"client_ts":"{moment:%Y-%m-%dT%H:%M:%S}.123Z",'
        f'"received_at":"{millis(received)}",'
        '"position_seconds":0.0,'
        '"region":"ap-south",'
        '"device":"phone"}'
    )
    assert list(json.loads(stored["_raw"])) == list(STORED_EVENT_FIELDS)
    assert stored["_key"].startswith(
        f"events/date={received[:10]}/hour={received[11:13]}/"
    ) and stored["_key"].endswith(".ndjson")


def test_good_items_are_stored_and_bad_ones_rejected_with_reasons(
    stack: Settings, viewer: str, bucket: str
) -> None:
    good = [make_event(), make_event(event_type="like")]
    bad_region = make_event(region="mars")
    bad_device = make_event(device="toaster")
    future = make_event(client_ts="2099-01-01T00:00:00Z")
    ancient = make_event(client_ts="2020-01-01T00:00:00Z")
    items: list[Any] = [
        bad_region,
        good[0],
        "not an event",
        bad_device,
        {**make_event(), "event_id": "nope"},
        future,
        good[1],
        ancient,
        {**good[0]},  # resent within the batch
        {**make_event(), "surprise": True},
    ]
    response = httpx.post(f"{viewer}/v1/events", json={"events": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == [good[0]["event_id"], good[1]["event_id"]]
    rejected = {r["index"]: r for r in body["rejected"]}
    assert sorted(rejected) == [0, 2, 3, 4, 5, 7, 8, 9]
    assert rejected[0]["event_id"] == bad_region["event_id"]
    assert "region: Input should be" in rejected[0]["reason"]
    assert rejected[2] == {"index": 2, "event_id": None, "reason": "an event must be a JSON object"}
    assert "device: Input should be" in rejected[3]["reason"]
    assert (
        rejected[4]["event_id"] is None
        and "event_id: Input should be a valid UUID" in (rejected[4]["reason"])
    )
    assert "ahead of the server clock" in rejected[5]["reason"]
    assert "more than 72 hours in the past" in rejected[7]["reason"]
    assert rejected[8]["reason"] == "duplicate of item 1 (same event_id)"
    assert "surprise: Extra inputs are not permitted" in rejected[9]["reason"]
    stored = lines_by_id(stack, bucket)
    for item in good:
        assert len(stored[item["event_id"]]) == 1
        assert stored[item["event_id"]][0]["user_id"] is None  # anonymous
    for item in (bad_region, bad_device, future, ancient):
        assert item["event_id"] not in stored


def test_an_invalid_token_is_401_and_stores_nothing(
    stack: Settings, viewer: str, bucket: str
) -> None:
    event = make_event()
    for header in ("Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer"):
        response = httpx.post(
            f"{viewer}/v1/events", json={"events": [event]}, headers={"Authorization": header}
        )
        assert response.status_code == 401, (header, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert event["event_id"] not in lines_by_id(stack, bucket)


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"events": "not a list"}, 422, "events: Input should be a valid list"),
        ({"events": {"a": 1}}, 422, "events: Input should be a valid list"),
        ({}, 422, "events: Field required"),
        ([make_event()], 422, "Input should be a valid dictionary"),
        ({"events": [], "extra": 1}, 422, "extra: Extra inputs are not permitted"),
        ({"events": [{}] * 501}, 413, "501 events in one request; at most 500"),
    ],
)
def test_malformed_batches_are_refused_whole(
    viewer: str, body: Any, status: int, detail: str
) -> None:
    response = httpx.post(f"{viewer}/v1/events", json=body)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]


def test_an_oversized_body_is_413_before_it_is_read(viewer: str) -> None:
    big = json.dumps({"events": ["x" * 2_000_000]}).encode()
    sized = httpx.post(
        f"{viewer}/v1/events", content=big, headers={"Content-Type": "application/json"}
    )
    assert sized.status_code == 413
    assert "exceeds" in sized.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    chunked = httpx.post(
        f"{viewer}/v1/events", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413
    assert "exceeds" in chunked.json()["detail"]


def test_a_failed_write_is_503_with_retry_after_and_acknowledges_nothing(
    stack: Settings,
) -> None:
    missing = stack.model_copy(update={"bucket_events": f"vidflow-missing-{uuid.uuid4().hex}"})
    with TestClient(create_app(missing)) as client:
        response = client.post(
            "/v1/events", json={"events": [make_event(), make_event(), {"bad": 1}]}
        )
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "2"
        assert "none was accepted" in response.json()["detail"]
        assert "accepted" not in response.json()
        # A batch with nothing to store needs no write: answered as usual.
        only_bad = client.post("/v1/events", json={"events": [{"bad": 1}]})
        assert only_bad.status_code == 200 and only_bad.json()["accepted"] == []


# --- durability ---------------------------------------------------------------------------------


def _post_until_stopped(
    url: str, stop: threading.Event, acknowledged: list[list[str]], errors: list[str]
) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            batch = [make_event() for _ in range(20)]
            try:
                response = client.post(f"{url}/v1/events", json={"events": batch})
            except httpx.HTTPError:
                continue  # the process is gone: nothing acknowledged
            if response.status_code == 200:
                assert response.json()["rejected"] == []
                acknowledged.append(response.json()["accepted"])
            else:
                errors.append(f"{response.status_code} {response.text[:200]}")


def test_kill_9_loses_no_acknowledged_event(
    stack: Settings, fresh_bucket: str, tmp_path: Path
) -> None:
    service = ViewerProcess(
        fresh_bucket,
        tmp_path / "viewer-kill.log",
        workers=1,
        # Small objects: many writes in flight when the process dies.
        extra_env={"VIDFLOW_EVENTS_FLUSH_BYTES": "4096", "VIDFLOW_EVENTS_FLUSH_SECONDS": "0.1"},
    )
    service.start()
    stop = threading.Event()
    acknowledged: list[list[str]] = []
    errors: list[str] = []
    threads = [
        threading.Thread(
            target=_post_until_stopped, args=(service.base_url, stop, acknowledged, errors)
        )
        for _ in range(4)
    ]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        service.signal(signal.SIGKILL)  # mid-stream: posts are in flight
        assert service.wait() == -signal.SIGKILL
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        service.stop()
    assert errors == []
    acked = [event_id for post in acknowledged for event_id in post]
    assert len(acknowledged) >= 60 and len(acked) == 20 * len(acknowledged)
    stored = lines_by_id(stack, fresh_bucket)
    copies = Counter({event_id: len(stored.get(event_id, [])) for event_id in acked})
    assert [e for e, n in copies.items() if n == 0] == []  # none lost
    assert [e for e, n in copies.items() if n > 1] == []  # none twice


def test_sigterm_writes_pending_events_at_once_and_answers_their_request(
    stack: Settings, fresh_bucket: str, tmp_path: Path
) -> None:
    service = ViewerProcess(
        fresh_bucket,
        tmp_path / "viewer-term.log",
        workers=1,
        # Nothing would be written for 10 s without the stop.
        extra_env={"VIDFLOW_EVENTS_FLUSH_SECONDS": "10"},
    )
    service.start()
    events = [make_event() for _ in range(5)]
    answer: dict[str, Any] = {}

    def post() -> None:
        started = time.monotonic()
        try:
            response = httpx.post(
                f"{service.base_url}/v1/events", json={"events": events}, timeout=30
            )
        except httpx.HTTPError as exc:
            answer["error"] = repr(exc)
            return
        answer.update(status=response.status_code, body=response.json(), at=time.monotonic())
        answer["waited"] = answer["at"] - started

    poster = threading.Thread(target=post)
    try:
        poster.start()
        time.sleep(2.0)  # the request is waiting for its group commit
        # A request on a later connection is answered: the loop has read the post too.
        assert httpx.get(f"{service.base_url}/healthz", timeout=30).status_code == 200
        assert answer == {}
        assert object_keys(stack, fresh_bucket) == []  # nothing written yet
        signalled = time.monotonic()
        service.signal(signal.SIGTERM)
        poster.join(timeout=30)
        # uvicorn re-raises the signal once its graceful shutdown is done.
        assert service.wait() == -signal.SIGTERM
    finally:
        service.stop()
    assert answer.get("status") == 200, answer
    assert answer["body"]["accepted"] == [e["event_id"] for e in events]
    # Written on the signal, not at the 10 s age limit (with room for a loaded machine).
    assert answer["waited"] < 9 and answer["at"] > signalled, answer["waited"]
    stored = lines_by_id(stack, fresh_bucket)
    assert all(len(stored[e["event_id"]]) == 1 for e in events)
    assert "Application shutdown complete" in service.log_path.read_text()
