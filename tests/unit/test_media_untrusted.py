"""Untrusted originals: demuxer/protocol allow-lists and credential redaction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vidflow.media.encode import EncodeError, run_ffmpeg
from vidflow.media.tools import ToolTimeout, run_text
from vidflow.media.untrusted import (
    REDACTED,
    input_args,
    input_options,
    is_allowed_container,
    redact,
    redact_command,
    refused_demuxer,
)

PRESIGNED = (
    "http://127.0.0.1:4566/vidflow-originals/originals/0b0e/source"
    "?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=dGhlIHNpZ25hdHVyZQ%3D%3D&Expires=1767225600"
)
SIGV4 = (
    "https://bucket.s3.eu-west-1.amazonaws.com/originals/x/source?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=ASIAXXXXXXXXXXXXXXXX%2F20260101%2Feu-west-1%2Fs3%2Faws4_request"
    "&X-Amz-Security-Token=FwoGZXIvYXdzEJr&X-Amz-Signature=abcdef0123456789"
)


@pytest.mark.parametrize("url", [PRESIGNED, SIGV4])
def test_presigned_urls_lose_their_credentials(url: str) -> None:
    line = f"ffmpeg -i {url} -f null -"
    cleaned = redact(line)
    for secret in (
        "AKIAIOSFODNN7EXAMPLE",
        "dGhlIHNpZ25hdHVyZQ",
        "ASIAXXXX",
        "FwoGZXIv",
        "abcdef01",
    ):
        assert secret not in cleaned
    # What the line was about stays readable.
    assert cleaned.startswith("ffmpeg -i http") and "/originals/" in cleaned
    assert cleaned.endswith(f"?{REDACTED} -f null -")


def test_loose_credentials_are_redacted() -> None:
    text = "key AKIAIOSFODNN7EXAMPLE, X-Amz-Signature=deadbeef&x=1, secret hunter2-secret"
    cleaned = redact(text, secrets=["hunter2-secret", ""])
    assert cleaned == f"key {REDACTED}, X-Amz-Signature={REDACTED}&x=1, secret {REDACTED}"
    assert redact("no secrets here: /tmp/a.mp4") == "no secrets here: /tmp/a.mp4"
    assert redact_command(["ffprobe", "-i", PRESIGNED]).count(REDACTED) == 1


def test_input_options_pin_demuxers_and_protocols() -> None:
    remote = input_options(PRESIGNED)
    assert remote["protocol_whitelist"] == "http,https,tcp,tls"
    assert "hls" not in remote["format_whitelist"].split(",")
    assert "concat" not in remote["format_whitelist"].split(",")
    assert "rw_timeout" in remote
    local = input_options("/tmp/clip.mp4")
    assert local["protocol_whitelist"] == "file" and "rw_timeout" not in local
    args = input_args("/tmp/clip.mp4")
    assert args[args.index("-protocol_whitelist") + 1] == "file"


def test_allowed_containers() -> None:
    assert is_allowed_container("mov,mp4,m4a,3gp,3g2,mj2")
    assert is_allowed_container("matroska,webm")
    assert not is_allowed_container("hls")
    assert not is_allowed_container("concat")
    assert not is_allowed_container("")
    assert refused_demuxer("[concat @ 0x55d] Format not on whitelist 'avi'") == "concat"
    assert refused_demuxer("Invalid data found when processing input") is None


def test_real_ffprobe_refuses_a_playlist_and_an_ffconcat(tmp_path: Path) -> None:
    playlist = tmp_path / "clip.mp4"
    playlist.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\nhttp://127.0.0.1:9/a.ts\n#EXT-X-ENDLIST\n"
    )
    listing = tmp_path / "list.mp4"
    listing.write_text("ffconcat version 1.0\nfile http://127.0.0.1:9/a.mp4\n")
    for path, name in ((playlist, "hls"), (listing, "concat")):
        result = run_text(
            ["ffprobe", "-v", "error", *input_args(str(path)), "-show_format", str(path)],
            timeout=30,
        )
        assert result.returncode != 0
        assert refused_demuxer(result.stderr) == name, result.stderr


def test_a_tool_that_runs_too_long_is_stopped_without_leaking_its_command() -> None:
    slow = [sys.executable, "-c", "import time; time.sleep(30)", PRESIGNED]
    with pytest.raises(ToolTimeout) as caught:
        run_text(slow, timeout=0.5)
    assert "AKIA" not in str(caught.value) and "within 0.5 s" in str(caught.value)
    assert not isinstance(caught.value, subprocess.TimeoutExpired)


def test_an_encode_that_runs_too_long_is_stopped(tmp_path: Path) -> None:
    lines: list[str] = []
    args = [
        "ffmpeg", "-hide_banner", "-nostdin", "-re", "-f", "lavfi",
        "-i", "testsrc2=size=64x64:rate=10:duration=60", "-f", "null", "-progress", "pipe:1", "-",
    ]  # fmt: skip
    with pytest.raises(ToolTimeout):
        run_ffmpeg(args, label="slow", duration=60, report=lines.append, timeout=1.0)


def test_encode_errors_are_redacted(tmp_path: Path) -> None:
    missing = str(tmp_path / "nothing.mp4") + "?X-Amz-Signature=abcdef"
    lines: list[str] = []
    args = ["ffmpeg", "-hide_banner", "-nostdin", "-i", PRESIGNED.replace("http", "file", 1)]
    args += ["-i", missing, "-f", "null", "-progress", "pipe:1", "-"]
    with pytest.raises(EncodeError) as caught:
        run_ffmpeg(args, label="broken", duration=1, report=lines.append)
    assert "AKIA" not in str(caught.value) and "abcdef" not in str(caught.value)
    assert lines and all("AKIA" not in line and "Signature=d" not in line for line in lines)
