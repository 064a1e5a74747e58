"""The video_processing DAG end to end, through the real scheduler.

Sources are generated with ffmpeg lavfi (short clips, small where the case allows). Ten
videos go onto the real processing queue in the real message format, in one batch: the
SQS AssetWatcher turns them into asset events and the scheduler into runs that fan out
over every video. Then every output is checked the way a player would see it, over HTTP
from the S3 endpoint (the media bucket is public-read, see docs/processing.md):
playlists and MPD parse, every rendition decodes to its end, keyframes sit at identical
timestamps on every segment boundary, target durations cover every segment, BANDWIDTH is
the measured peak, durations match the source, thumbnails and storyboard exist; the
invalid uploads end ``failed`` with a reason and publish nothing.

Further tests: a forced re-transcode from Params (the previous version's objects go),
reconciliation of a video stuck in ``processing``, and a tus upload through the upload
service ending in a playable stream.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import m3u8
import psutil
import pytest
from mpegdash.parser import MPEGDASHParser
from sqlalchemy import insert, text, update

from vidflow.airflow_api import AirflowClient
from vidflow.catalog.db import session_scope
from vidflow.catalog.models import Video
from vidflow.config import Settings
from vidflow.processing.catalog import video_state
from vidflow.processing.maintenance import sweep_orphaned_versions
from vidflow.processing.objects import iter_keys, video_prefix
from vidflow.storage import file_sha256, original_key, s3_client, sqs_client

DAG_ID = "video_processing"
DONE = ("processed", "failed")


@dataclass(frozen=True)
class Shape:
    """A generated source and what the stream made from it must look like."""

    inputs: list[str]
    output: list[str]
    suffix: str = "mp4"
    rungs: list[str] = field(default_factory=list)
    frame_rate: float = 30.0
    audio: bool = False
    aspect: float | None = None
    #: An HDR (PQ) source: the renditions must be tone-mapped to SDR.
    hdr: bool = False


def lavfi(source: str) -> list[str]:
    return ["-f", "lavfi", "-i", source]


SINE = "sine=frequency=440:sample_rate=44100"
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]

VALID: dict[str, Shape] = {
    "1080p_16x9_audio": Shape(
        lavfi("testsrc2=size=1920x1080:rate=30:duration=7") + lavfi(f"{SINE}:duration=7"),
        [*H264, "-c:a", "aac", "-shortest"],
        rungs=["1080p", "720p", "540p", "432p", "360p", "234p"],
        audio=True,
        aspect=16 / 9,
    ),
    "720p_portrait": Shape(
        lavfi("testsrc2=size=720x1280:rate=30:duration=7"),
        H264,
        rungs=["720p", "540p", "432p", "360p", "234p"],
        aspect=9 / 16,
    ),
    "854x481_4x3": Shape(
        lavfi("testsrc=size=854x481:rate=25:duration=7"),
        ["-vf", "setdar=4/3", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"],
        suffix="webm",
        rungs=["480p", "432p", "360p", "234p"],
        frame_rate=25.0,
        aspect=4 / 3,
    ),
    "60fps_compliant_audio": Shape(
        lavfi("testsrc2=size=640x360:rate=60:duration=7")
        + lavfi("sine=frequency=300:sample_rate=48000:duration=7"),
        [*H264, "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2", "-shortest"],
        rungs=["360p", "234p"],
        frame_rate=60.0,
        audio=True,
    ),
    "variable_frame_rate": Shape(
        lavfi("testsrc2=size=320x240:rate=30:duration=7"),
        ["-vf", "select='if(lt(t,2),1,not(mod(n,3)))'", "-fps_mode", "vfr", *H264],
        rungs=["240p"],
    ),
    "one_second": Shape(
        lavfi("testsrc2=size=320x240:rate=30:duration=1") + lavfi(f"{SINE}:duration=1"),
        [*H264, "-c:a", "aac", "-shortest"],
        rungs=["240p"],
        audio=True,
    ),
    "hevc_10bit_hdr10": Shape(
        lavfi("testsrc2=size=320x240:rate=30:duration=4"),
        [
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p10le",
            "-x265-params",
            "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "smpte2084",
            "-colorspace",
            "bt2020nc",
        ],
        rungs=["240p"],
        hdr=True,
    ),
}

#: Invalid uploads and a word their failure_reason must contain.
INVALID: dict[str, str] = {
    "text_file": "not a video",
    "truncated_mp4": "truncated",
    "zero_bytes": "empty",
}


# --- helpers shared with test_video_processing_steps.py ---------------------------------


def make_source(directory: Path, name: str, shape: Shape) -> Path:
    path = directory / f"{name}.{shape.suffix}"
    args = ["ffmpeg", "-hide_banner", "-v", "error", "-y", *shape.inputs, *shape.output, str(path)]
    subprocess.run(args, check=True, timeout=120)
    return path


def make_invalid(directory: Path, name: str, valid_mp4: Path) -> Path:
    path = directory / name
    if name == "text_file":
        path.write_text("This is a text file, not a video.\n" * 20)
    elif name == "zero_bytes":
        path.write_bytes(b"")
    elif name == "truncated_mp4":
        data = valid_mp4.read_bytes()  # moov at the end: cutting it loses the index
        path.write_bytes(data[: len(data) // 2])
    return path


def create_video(settings: Settings, video_id: uuid.UUID, status: str = "processing") -> None:
    with session_scope(settings) as session:
        session.execute(
            insert(Video).values(
                video_id=video_id, user_id=uuid.uuid4(), title=f"test {video_id}", status=status
            )
        )


def upload_source(settings: Settings, video_id: uuid.UUID, path: Path) -> int:
    s3_client(settings).upload_file(str(path), settings.bucket_originals, original_key(video_id))
    return path.stat().st_size


def queue_message(video_id: uuid.UUID, size: int, sha256: str | None = None) -> str:
    """Exactly what the upload service's outbox relay publishes."""
    payload = {
        "video_id": str(video_id),
        "source_key": original_key(video_id),
        "size": size,
        "sha256": sha256,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def send_messages(settings: Settings, bodies: list[str]) -> None:
    sqs = sqs_client(settings)
    url = sqs.get_queue_url(QueueName=settings.processing_queue)["QueueUrl"]
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])
        ]
        result = sqs.send_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]
        assert not result.get("Failed"), result


def wait_for_videos(
    settings: Settings, ids: list[str], timeout: float = 900
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        states = {v: video_state(settings=settings, video_id=v) or {} for v in ids}
        pending = [v for v, s in states.items() if s.get("status") not in DONE]
        if not pending:
            return states
        if time.monotonic() > deadline:
            raise TimeoutError(f"still not done after {timeout}s: {pending}")
        time.sleep(2)


def media_keys(settings: Settings, video_id: str) -> list[str]:
    return list(iter_keys(s3_client(settings), settings.bucket_media, video_prefix(video_id)))


def ffprobe_json(target: str, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args, target],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def source_duration(path: Path) -> float:
    return float(ffprobe_json(str(path), "-show_format")["format"]["duration"])


def rfc_round(duration: float) -> int:
    """RFC 8216 4.3.3.1: an EXTINF, rounded to the nearest integer, <= the target."""
    return int(Decimal(str(duration)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def rfc_peak(durations: list[float], sizes: list[int], target: float) -> float:
    """Peak segment bit rate, RFC 8216 section 4.3.4.2 (written independently here)."""
    total = sum(durations)
    if total < 0.5 * target:
        return 8 * sum(sizes) / total
    peak = 0.0
    for i in range(len(durations)):
        for j in range(i, len(durations)):
            span = sum(durations[i : j + 1])
            if span > 1.5 * target:
                break
            if span >= 0.5 * target:
                peak = max(peak, 8 * sum(sizes[i : j + 1]) / span)
    return peak


def keyframe_times(url: str) -> list[float]:
    frames = ffprobe_json(
        url,
        "-select_streams",
        "v:0",
        "-skip_frame",
        "nokey",
        "-show_frames",
        "-show_entries",
        "frame=pts_time",
    )["frames"]
    return [round(float(f["pts_time"]), 3) for f in frames]


def luma_frame(target: str, at: float) -> bytes:
    """Luma (0-255) of the frame at ``at`` seconds, shrunk to 64x36."""
    shrink = ["-vf", "scale=64:36,format=gray", "-f", "rawvideo", "-"]
    pixels = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", target, "-ss", f"{at:.2f}", "-frames:v", "1", *shrink],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    assert pixels, f"no frame at {at}s in {target}"
    return pixels


def luma_distance(a: str, b: str, at: float) -> float:
    """Mean absolute per-pixel luma difference of two videos' frames at ``at`` seconds."""
    first, second = luma_frame(a, at), luma_frame(b, at)
    assert len(first) == len(second)
    return sum(abs(x - y) for x, y in zip(first, second, strict=True)) / len(first)


def untone_mapped_copy(source: Path) -> str:
    """The source converted to 8-bit SDR pixels without tone mapping (PQ read as SDR)."""
    copy = source.with_name(source.stem + "-naive.mp4")
    encode = ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-vf", "format=yuv420p"]
    subprocess.run(
        [*encode, *H264[:4], str(copy)],
        check=True,
        timeout=120,
    )
    return str(copy)


def decoded_frames(url: str) -> int:
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", url, "-map", "0:v:0", "-f", "framecrc", "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return sum(1 for line in result.stdout.splitlines() if line and not line.startswith("#"))


@dataclass
class Rendition:
    name: str
    url: str
    playlist: m3u8.M3U8
    sizes: list[int]

    @property
    def durations(self) -> list[float]:
        return [s.duration for s in self.playlist.segments]


def fetch(url: str) -> bytes:
    return httpx.get(url, timeout=30).raise_for_status().content


def load_rendition(base: str, uri: str) -> Rendition:
    url = f"{base}/{uri}"
    playlist = m3u8.loads(httpx.get(url).raise_for_status().text)
    folder = url.rsplit("/", 1)[0]
    # GET, as players do (moto answers anonymous HEADs 403 even under a public-read policy).
    sizes = [len(fetch(f"{folder}/{s.uri}")) for s in playlist.segments]
    assert fetch(f"{folder}/{playlist.segment_map[0].uri}")
    return Rendition(uri.split("/")[0], url, playlist, sizes)


def check_iframe_playlist(url: str) -> int:
    """Decode every I-frame of an I-frame playlist alone (init segment + its byte range,
    as a trick-play player fetches it); returns how many there are."""
    playlist = m3u8.loads(httpx.get(url).raise_for_status().text)
    assert playlist.is_i_frames_only and playlist.segment_map
    folder = url.rsplit("/", 1)[0]
    init = fetch(f"{folder}/{playlist.segment_map[0].uri}")
    for segment in playlist.segments:
        length, offset = (int(n) for n in segment.byterange.split("@"))
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        response = httpx.get(f"{folder}/{segment.uri}", headers=headers, timeout=30)
        chunk = response.raise_for_status().content
        assert len(chunk) == length and chunk[4:8] == b"moof", (segment.uri, offset)
        one_frame = ["-frames:v", "1", "-f", "framecrc", "-"]
        decoded = subprocess.run(
            ["ffmpeg", "-v", "quiet", "-f", "mp4", "-i", "pipe:", *one_frame],
            input=init + chunk,
            capture_output=True,
            timeout=60,
        )
        lines = [ln for ln in decoded.stdout.splitlines() if ln and not ln.startswith(b"#")]
        assert len(lines) == 1, (segment.uri, offset, decoded.returncode)
    return len(playlist.segments)


def check_stream(state: dict[str, Any], source: Path, shape: Shape) -> None:
    """Everything the issue asks of a processed video, verified over HTTP."""
    assert state["status"] == "processed", state
    manifest = state["manifest_url"]
    base = manifest.rsplit("/", 1)[0]
    master = m3u8.loads(httpx.get(manifest).raise_for_status().text)
    assert master.is_variant and master.is_independent_segments
    duration = source_duration(source)

    audio = None
    if shape.audio:
        (media,) = master.media
        audio = load_rendition(base, media.uri)
        assert abs(sum(audio.durations) - duration) <= 0.1
        assert all(audio.playlist.target_duration >= rfc_round(d) for d in audio.durations)
    else:
        assert not master.media

    renditions = []
    for variant in master.playlists:
        rendition = load_rendition(base, variant.uri)
        renditions.append(rendition)
        playlist, info = rendition.playlist, variant.stream_info
        assert playlist.is_endlist and playlist.segment_map
        assert all(playlist.target_duration >= rfc_round(d) for d in rendition.durations)
        assert abs(sum(rendition.durations) - duration) <= 0.1, (
            rendition.name,
            rendition.durations,
        )
        # Declared BANDWIDTH vs the peak measured from the bytes served (+ the audio's).
        peak = rfc_peak(rendition.durations, rendition.sizes, playlist.target_duration)
        if audio is not None:
            peak += rfc_peak(audio.durations, audio.sizes, audio.playlist.target_duration)
            assert info.audio == "audio" and "mp4a.40.2" in info.codecs
        assert abs(info.bandwidth - peak) <= 0.1 * peak, (rendition.name, info.bandwidth, peak)
        assert info.average_bandwidth <= info.bandwidth
        assert info.codecs.startswith("avc1.64")  # H.264 High
        assert info.frame_rate == pytest.approx(shape.frame_rate, abs=0.01)
        width, height = info.resolution
        assert width % 2 == 0 and height % 2 == 0
        if shape.aspect:
            assert abs(width / height - shape.aspect) < 0.02
        # Decodes to the end.
        expected_frames = duration * shape.frame_rate
        assert abs(decoded_frames(rendition.url) - expected_frames) <= 2
        # SDR BT.709, and says so.
        (stream,) = ffprobe_json(rendition.url, "-select_streams", "v:0", "-show_streams")[
            "streams"
        ]
        assert (stream["color_transfer"], stream["color_primaries"]) == ("bt709", "bt709")
        if shape.hdr:
            # Tone-mapped: its pixels are far from the PQ code values read naively as SDR,
            # while a copy made without tone mapping stays on them (the measure's control).
            # (The mean alone is no measure: Debian 12's ffmpeg 5.1.9 maps its mean 124 -> 116.)
            at = duration / 2
            control = luma_distance(str(source), untone_mapped_copy(source), at)
            mapped = luma_distance(str(source), rendition.url, at)
            assert control < 3 and mapped > 10, (control, mapped)

    assert sorted(r.name for r in renditions) == sorted(shape.rungs)
    assert [r["name"] for r in state["renditions"]] == shape.rungs

    # Keyframes: identical across renditions, and on every segment boundary.
    keyframes = {r.name: keyframe_times(r.url) for r in renditions}
    reference = next(iter(keyframes.values()))
    assert all(times == reference for times in keyframes.values()), keyframes
    start = reference[0]
    for rendition in renditions:
        boundary = 0.0
        for segment_duration in rendition.durations[:-1]:
            boundary += segment_duration
            assert any(abs((k - start) - boundary) < 0.002 for k in reference), (
                boundary,
                reference,
            )

    # I-frame playlists exist for every rendition, and each entry is a keyframe that
    # decodes on its own (after the init segment), at the rendition's keyframe times.
    assert {p.uri for p in master.iframe_playlists} == {
        f"{r.name}/iframes.m3u8" for r in renditions
    }
    for rendition in renditions:
        frames = check_iframe_playlist(f"{base}/{rendition.name}/iframes.m3u8")
        assert frames == len(keyframes[rendition.name]), (rendition.name, frames)

    # DASH: a static MPD over the same segments.
    mpd = MPEGDASHParser.parse(httpx.get(state["dash_url"]).raise_for_status().text)
    assert mpd.type == "static"
    video_set = mpd.periods[0].adaptation_sets[0]
    by_id = {rep.id: rep for rep in video_set.representations}
    assert set(by_id) == {r.name for r in renditions}
    for rendition in renditions:
        timeline = by_id[rendition.name].segment_templates[0].segment_timelines[0].Ss
        assert sum((s.r or 0) + 1 for s in timeline) == len(rendition.durations)
    assert len(mpd.periods[0].adaptation_sets) == (2 if shape.audio else 1)

    # Thumbnails and storyboard.
    thumbs = state["thumbnail_urls"]
    for kind, size in (("small", (320, 180)), ("large", (1280, 720))):
        stream = ffprobe_json(thumbs[kind], "-show_streams")["streams"][0]
        assert (stream["width"], stream["height"]) == size
    vtt = httpx.get(thumbs["storyboard"]).raise_for_status().text
    assert vtt.startswith("WEBVTT")
    sheet = vtt.split("#xywh=")[0].splitlines()[-1]
    assert fetch(thumbs["storyboard"].rsplit("/", 1)[0] + "/" + sheet)
    assert state["duration_seconds"] == pytest.approx(duration, abs=0.1)


# --- the suite ------------------------------------------------------------------------------


@dataclass
class Batch:
    ids: dict[str, str]
    sources: dict[str, Path]
    states: dict[str, dict[str, Any]]
    seconds: float


@pytest.fixture(scope="module")
def batch(
    stack: Settings, airflow: AirflowClient, tmp_path_factory: pytest.TempPathFactory
) -> Batch:
    """All shapes, valid and invalid, sent as one batch of queue messages."""
    airflow.wait_for_dag(DAG_ID)
    directory = tmp_path_factory.mktemp("sources")
    sources = {name: make_source(directory, name, shape) for name, shape in VALID.items()}
    for name in INVALID:
        sources[name] = make_invalid(directory, name, sources["1080p_16x9_audio"])
    ids = {name: uuid.uuid4() for name in sources}
    bodies = []
    for name, video_id in ids.items():
        create_video(stack, video_id)
        size = upload_source(stack, video_id, sources[name])
        bodies.append(queue_message(video_id, size, file_sha256(sources[name])))
    started = time.monotonic()
    send_messages(stack, bodies)
    as_text = {name: str(v) for name, v in ids.items()}
    states = wait_for_videos(stack, list(as_text.values()))
    return Batch(
        as_text, sources, {n: states[v] for n, v in as_text.items()}, time.monotonic() - started
    )


@pytest.mark.parametrize("name", list(VALID))
def test_valid_source_becomes_a_conforming_stream(batch: Batch, name: str) -> None:
    check_stream(batch.states[name], batch.sources[name], VALID[name])


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_upload_ends_failed_with_a_reason(batch: Batch, stack: Settings, name: str) -> None:
    state = batch.states[name]
    assert state["status"] == "failed"
    assert INVALID[name] in state["failure_reason"].lower(), state["failure_reason"]
    assert state["manifest_url"] is None and state["renditions"] == []
    assert media_keys(stack, batch.ids[name]) == []


def test_runs_fan_out_over_several_videos_and_end_cleanly(
    batch: Batch, airflow: AirflowClient
) -> None:
    ours = set(batch.ids.values())
    runs = airflow.request("GET", f"/dags/{DAG_ID}/dagRuns?order_by=-run_after&limit=50")[
        "dag_runs"
    ]
    carried: dict[str, set[str]] = {}
    for run in runs:
        if run["run_type"] != "asset_triggered":
            continue
        videos = airflow.videos_of_run(run["dag_run_id"])
        if videos & ours:
            carried[run["dag_run_id"]] = videos & ours
            # Invalid videos are recorded outcomes: the run itself succeeds.
            assert run["state"] == "success", run
            instances = airflow.task_instances(DAG_ID, run["dag_run_id"])
            transcodes = [ti for ti in instances if ti["task_id"] == "transcode"]
            assert all(ti["pool"] == "transcode" for ti in transcodes)
    assert set().union(*carried.values()) == ours
    assert max(len(v) for v in carried.values()) > 1, carried
    runs_used = len(carried)
    print(f"\n{len(ours)} videos from one message batch: {batch.seconds:.0f}s, {runs_used} run(s)")


def test_transcode_map_indexes_show_rendition_names(
    batch: Batch, stack: Settings, airflow: AirflowClient
) -> None:
    runs = airflow.request("GET", f"/dags/{DAG_ID}/dagRuns?order_by=-run_after&limit=50")[
        "dag_runs"
    ]
    ours = {video_id[:8] for video_id in batch.ids.values()}
    labels: dict[str, list[list[str]]] = {}
    for run in runs:
        for ti in airflow.task_instances(DAG_ID, run["dag_run_id"]):
            if ti["task_id"] == "transcode" and ti.get("rendered_map_index"):
                names, _, video = ti["rendered_map_index"].partition(" ")
                if video in ours:
                    labels.setdefault(video, []).append(names.split("+"))
    assert labels
    # Every video's renditions are spread over at most encode_groups tasks, each named
    # after its renditions, and no rendition is encoded twice.
    for encodes in labels.values():
        assert len(encodes) <= stack.encode_groups
        flat = [name for names in encodes for name in names]
        assert len(flat) == len(set(flat))
    full_ladder = max(labels.values(), key=lambda e: sum(map(len, e)))
    assert {"1080p", "720p", "234p", "audio"} <= {n for names in full_ladder for n in names}


def test_force_retranscode_from_params_replaces_the_version(
    batch: Batch, stack: Settings, airflow: AirflowClient
) -> None:
    video_id = batch.ids["one_second"]
    before = batch.states["one_second"]
    old_keys = media_keys(stack, video_id)
    assert old_keys and all(f"/{before['media_version']}/" in k for k in old_keys)

    run_id = airflow.trigger(DAG_ID, {"video_id": video_id, "force": True})
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=600)["state"] == "success"
    after = video_state(settings=stack, video_id=video_id)
    assert after is not None and after["status"] == "processed"
    assert after["media_version"] != before["media_version"]
    assert {r["version"] for r in after["renditions"]} == {after["media_version"]}
    # The previous version stays readable (players mid-stream) until the sweep removes it
    # after the grace period; here with a zero grace period.
    assert set(old_keys) <= set(media_keys(stack, video_id))
    check_stream(after, batch.sources["one_second"], VALID["one_second"])
    sweep_orphaned_versions(
        settings=stack.model_copy(update={"superseded_grace_hours": 0}),
        is_run_active=lambda run_id: False,
        only=[video_id],
    )
    assert all(f"/{after['media_version']}/" in k for k in media_keys(stack, video_id))

    # Without force, a processed video is left alone (a duplicate message, a second click).
    run_id = airflow.trigger(DAG_ID, {"video_id": video_id, "force": False})
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=300)["state"] == "success"
    assert video_state(settings=stack, video_id=video_id)["media_version"] == after["media_version"]  # type: ignore[index]


def kill_encoders(video_id: str) -> int:
    """SIGKILL every encoder (ffmpeg with -progress) reading this video's original, as
    the OOM killer would."""
    killed = 0
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if (
            proc.info["name"] == "ffmpeg"
            and "-progress" in cmdline
            and f"originals/{video_id}/" in cmdline
        ):
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
                killed += 1
    return killed


def test_an_unexpected_transcode_failure_is_recorded_and_keeps_the_old_version(
    stack: Settings, airflow: AirflowClient, tmp_path: Path
) -> None:
    shape = Shape(
        lavfi("testsrc2=size=640x360:rate=30:duration=20"),
        H264,
        rungs=["360p", "234p"],
        frame_rate=30.0,
    )
    source = make_source(tmp_path, "killed", shape)
    video_id = uuid.uuid4()
    create_video(stack, video_id)
    upload_source(stack, video_id, source)
    vid = str(video_id)
    run_id = airflow.trigger(DAG_ID, {"video_id": vid, "force": False})
    assert airflow.wait_for_run(DAG_ID, run_id, timeout=600)["state"] == "success"
    before = video_state(settings=stack, video_id=vid)
    assert before is not None and before["status"] == "processed"
    old_keys = media_keys(stack, vid)

    # A forced re-transcode whose encoders die on every attempt (retries included).
    run_id = airflow.trigger(DAG_ID, {"video_id": vid, "force": True})
    deadline = time.monotonic() + 600
    killed = 0
    while airflow.request("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, "the run did not finish"
        killed += kill_encoders(vid)
        time.sleep(0.1)
    run = airflow.request("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
    states = {
        (ti["task_id"], ti["map_index"]): ti["state"]
        for ti in airflow.task_instances(DAG_ID, run_id)
    }
    assert run["state"] == "failed", states
    assert states[("report", -1)] == "failed"
    transcodes = [state for (task, _), state in states.items() if task == "transcode"]
    assert "failed" in transcodes and killed >= 3, (killed, states)

    after = video_state(settings=stack, video_id=vid)
    assert after is not None
    # The uploader sees why; the previous version is untouched and still plays.
    assert after["failure_reason"].startswith(
        "Re-transcode failed; the previous version still plays. Internal error while "
    ), after["failure_reason"]
    assert after["status"] == "processed" and after["processing_run_id"] is None
    for column in ("media_version", "manifest_url", "dash_url", "renditions"):
        assert after[column] == before[column], column
    assert set(old_keys) <= set(media_keys(stack, vid))
    check_stream(after, source, shape)


def test_reconciliation_reenqueues_a_stuck_video(
    stack: Settings, airflow: AirflowClient, tmp_path: Path
) -> None:
    shape = Shape(
        lavfi("testsrc2=size=160x120:rate=15:duration=1"), H264, rungs=["120p"], frame_rate=15.0
    )
    source = make_source(tmp_path, "stuck", shape)
    video_id = uuid.uuid4()
    create_video(stack, video_id)
    upload_source(stack, video_id, source)
    # Its message was lost: it sits in `processing`, claimed by a run that no longer exists.
    with session_scope(stack) as session:
        session.execute(
            update(Video)
            .where(Video.video_id == video_id)
            .values(
                processing_run_id="manual__lost",
                updated_at=text(f"now() - interval '{stack.stuck_processing_minutes + 5} minutes'"),
            )
        )
    airflow.wait_for_dag("video_reconciliation")
    run_id = airflow.trigger("video_reconciliation")
    assert airflow.wait_for_run("video_reconciliation", run_id, timeout=300)["state"] == "success"
    state = wait_for_videos(stack, [str(video_id)], timeout=600)[str(video_id)]
    assert state["processing_attempts"] == 0  # reset by the publish
    check_stream(state, source, shape)


def test_tus_upload_to_playable_stream(stack: Settings, tmp_path: Path, unique: str) -> None:
    """upload (tuspy) -> outbox -> queue -> watcher -> DAG -> processed -> ffmpeg plays it."""
    from tusclient.client import TusClient

    from tests.integration.tus_harness import register
    from vidflow.stack.demo import video_of_upload

    base_url = f"http://{stack.bind_host}:{stack.upload_port}"
    try:
        httpx.get(f"{base_url}/healthz", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"the upload service of the stack is not answering: {exc}")
    shape = VALID["one_second"]
    source = make_source(tmp_path, "tus", shape)
    creator = register(base_url, f"vp{unique}")
    client = TusClient(f"{base_url}/files/", headers=dict(creator.auth))
    uploader = client.uploader(
        file_stream=io.BytesIO(source.read_bytes()),
        chunk_size=5 * 1024 * 1024,
        metadata={"filename": "clip.mp4", "title": "tus end to end"},
    )
    uploader.upload()
    video_id = video_of_upload(stack, uploader.url)
    state = wait_for_videos(stack, [video_id], timeout=600)[video_id]
    check_stream(state, source, shape)
    # A player reads the whole master playlist over HTTP.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", state["manifest_url"], "-map", "0", "-f", "null", "-"],
        check=True,
        timeout=300,
    )
