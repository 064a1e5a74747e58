"""Probe validation: ffprobe JSON (as ffprobe 5.1 prints it) -> ProbeResult, or a
human-readable reason."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from typing import Any

import pytest

from vidflow.media.probe import (
    InvalidSource,
    ProbeResult,
    ToolKilled,
    explain_ffprobe_error,
    parse_probe,
    raise_if_killed,
)

TWELVE_HOURS = 12 * 3600.0


def video_stream(**overrides: Any) -> dict[str, Any]:
    stream: dict[str, Any] = {
        "index": 0,
        "codec_name": "h264",
        "profile": "High",
        "codec_type": "video",
        "width": 1920,
        "height": 1080,
        "sample_aspect_ratio": "1:1",
        "pix_fmt": "yuv420p",
        "r_frame_rate": "30/1",
        "avg_frame_rate": "30/1",
        "duration": "10.000000",
        "bits_per_raw_sample": "8",
        "disposition": {"default": 1, "attached_pic": 0},
    }
    stream.update(overrides)
    return stream


def audio_stream(**overrides: Any) -> dict[str, Any]:
    stream: dict[str, Any] = {
        "index": 1,
        "codec_name": "aac",
        "profile": "LC",
        "codec_type": "audio",
        "sample_rate": "48000",
        "channels": 2,
        "bit_rate": "128000",
        "disposition": {"default": 1},
    }
    stream.update(overrides)
    return stream


def probe(
    *streams: dict[str, Any], duration: str | None = "10.000000", fmt: str = "mov,mp4"
) -> dict[str, Any]:
    fmt_data: dict[str, Any] = {"format_name": fmt, "bit_rate": "5000000"}
    if duration is not None:
        fmt_data["duration"] = duration
    return {"streams": list(streams), "format": fmt_data}


def parse(data: dict[str, Any], max_duration: float = TWELVE_HOURS) -> ProbeResult:
    return parse_probe(data, size=1234, max_duration=max_duration)


def reason(data: dict[str, Any], max_duration: float = TWELVE_HOURS) -> str:
    with pytest.raises(InvalidSource) as caught:
        parse(data, max_duration)
    return caught.value.reason


def test_a_valid_source() -> None:
    result = parse(probe(video_stream(), audio_stream()))
    assert result.duration == 10.0
    assert (result.video.width, result.video.height) == (1920, 1080)
    assert result.video.frame_rate == Fraction(30)
    assert not result.video.is_variable_frame_rate
    assert result.audio is not None and result.audio.sample_rate == 48000
    assert ProbeResult.from_dict(result.to_dict()) == result


def test_no_streams_is_not_a_video() -> None:
    assert "not a video" in reason({"streams": [], "format": {"format_name": "tty"}})
    assert "not a video" in reason({})


def test_audio_only_has_no_video_stream() -> None:
    text = reason(probe(audio_stream(index=0)))
    assert "no video stream" in text and "audio" in text


def test_cover_art_is_not_a_video_stream() -> None:
    art = video_stream(codec_name="mjpeg", disposition={"attached_pic": 1})
    text = reason(probe(audio_stream(index=0), art))
    assert "no video stream" in text and "audio, cover art" in text


def test_a_still_image_is_rejected() -> None:
    assert "still image" in reason(probe(video_stream(codec_name="png"), fmt="png_pipe"))


def test_above_8k_is_rejected_with_the_size() -> None:
    text = reason(probe(video_stream(width=15360, height=8640)))
    assert "15360x8640" in text and "8K" in text
    parse(probe(video_stream(width=7680, height=4320)))  # exactly 8K is fine
    parse(probe(video_stream(width=4320, height=7680)))  # and so is portrait 8K


def test_duration_limit_is_configurable() -> None:
    long = probe(video_stream(), duration=str(13 * 3600))
    assert "13:00:00" in reason(long) and "12:00:00" in reason(long)
    assert "0:01:00" in reason(probe(video_stream(), duration="61"), max_duration=60)
    parse(probe(video_stream(), duration="59"), max_duration=60)


def test_missing_or_zero_duration() -> None:
    data = probe(video_stream(duration=None), duration=None)
    del data["streams"][0]["duration"]
    assert "duration cannot be determined" in reason(data)
    assert "no frames" in reason(probe(video_stream(), duration="0.000000"))


def test_missing_picture_size_or_frame_rate_is_corrupt() -> None:
    assert "corrupt" in reason(probe(video_stream(width=0, height=0)))
    assert "corrupt" in reason(probe(video_stream(r_frame_rate="0/0", avg_frame_rate="0/0")))


def test_rotation_and_sample_aspect_ratio_give_display_size() -> None:
    rotated = parse(
        probe(video_stream(side_data_list=[{"side_data_type": "Display Matrix", "rotation": -90}]))
    )
    assert rotated.video.rotation == 270
    assert (rotated.video.display_width, rotated.video.display_height) == (1080, 1920)
    legacy = parse(probe(video_stream(tags={"rotate": "90"})))
    assert legacy.video.rotation == 90
    anamorphic = parse(probe(video_stream(width=720, height=576, sample_aspect_ratio="64:45")))
    assert anamorphic.video.display_width == pytest.approx(1024)
    unknown_sar = parse(probe(video_stream(sample_aspect_ratio="0:1")))
    assert unknown_sar.video.sample_aspect_ratio == 1


def test_variable_frame_rate_and_bit_depth() -> None:
    vfr = parse(probe(video_stream(avg_frame_rate="1500/89")))
    assert vfr.video.is_variable_frame_rate
    hevc10 = parse(probe(video_stream(codec_name="hevc", profile="Main 10", pix_fmt="yuv420p10le")))
    assert hevc10.video.bit_depth == 10


def test_default_streams_are_preferred() -> None:
    second = video_stream(index=1, width=640, height=360)
    first = video_stream(index=0, disposition={"default": 0})
    assert parse(probe(first, second)).video.index == 1


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("source: Invalid data found when processing input", "not a video"),
        ("[mov,mp4 @ 0x1] moov atom not found\nsource: Invalid data found", "truncated"),
        ("something: End of file", "truncated"),
        ("weird: Permission denied", "could not be read as a video"),
        ("", "could not be read as a video"),
        ("[hls @ 0x55d6eb64f4c0] Format not on whitelist 'mov,mp4'\nx: Invalid argument", "(hls)"),
    ],
)
def test_ffprobe_errors_are_explained(stderr: str, expected: str) -> None:
    assert expected in explain_ffprobe_error(stderr)


def test_a_reason_never_quotes_the_tool() -> None:
    """ffmpeg's last line starts with the input URL: a presigned URL with credentials."""
    url = (
        "http://127.0.0.1:4566/originals/x/source?AWSAccessKeyId=AKIAABCDEFGHIJKLMNOP"
        "&Signature=c2lnbmF0dXJl&Expires=1"
    )
    for stderr in (f"{url}: Permission denied", f"{url}: Server returned 403 Forbidden"):
        text = explain_ffprobe_error(stderr)
        assert "127.0.0.1" not in text and "Signature" not in text and "AKIA" not in text


def test_containers_outside_the_allow_list_are_refused_before_decoding() -> None:
    for fmt in ("hls", "concat", "image2", "tty", "lavfi"):
        assert f"({fmt})" in reason(probe(video_stream(), fmt=fmt))
    for fmt in ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mpegts", "avi"):
        parse(probe(video_stream(), fmt=fmt))


def test_a_killed_tool_is_not_blamed_on_the_source() -> None:
    killed = subprocess.run(["sh", "-c", "kill -KILL $$"], capture_output=True, text=True)
    with pytest.raises(ToolKilled, match="killed by signal 9") as caught:
        raise_if_killed("sh", killed.returncode)
    assert not isinstance(caught.value, InvalidSource)
    failed = subprocess.run(["sh", "-c", "exit 1"], capture_output=True, text=True)
    raise_if_killed("sh", failed.returncode)  # an ordinary error exit is for the caller
