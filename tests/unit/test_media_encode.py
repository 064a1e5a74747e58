"""ffmpeg command building (argument lists, capped CRF, aligned GOPs) and progress parsing."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from vidflow.media.encode import (
    AudioOutput,
    EncodeError,
    Progress,
    VideoOutput,
    encode_args,
    gop_seconds,
    parse_progress,
    run_ffmpeg,
)
from vidflow.media.ladder import AudioPlan, LadderRung
from vidflow.media.probe import ToolKilled

PROGRESS = """\
frame=0
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=N/A
out_time_ms=N/A
out_time=N/A
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=151
fps=75.42
stream_0_0_q=29.0
bitrate= 312.4kbits/s
total_size=196608
out_time_us=5033333
out_time_ms=5033333
out_time=00:00:05.033333
dup_frames=0
drop_frames=0
speed=2.51x
progress=continue
frame=300
fps=80.10
out_time_us=9966667
speed=2.66x
progress=end
"""


def test_progress_blocks_become_reports() -> None:
    reports = list(parse_progress(PROGRESS.splitlines(), duration=10.0))
    assert len(reports) == 3
    start, middle, end = reports
    assert start == Progress(out_time=0.0, percent=0.0, fps=0.0, speed=None, frame=0, done=False)
    assert middle.percent == pytest.approx(50.33, abs=0.01)
    assert (middle.fps, middle.speed, middle.frame) == (75.42, 2.51, 151)
    assert end.done and end.percent == 100.0
    assert middle.describe("720p", 10.0) == "720p:  50.3% (5.0/10.0 s) fps=75.4 speed=2.51x"


def test_progress_without_duration_has_no_percent() -> None:
    (report,) = parse_progress(["out_time_us=1000000", "progress=continue"], duration=0)
    assert report.percent is None and report.out_time == 1.0
    assert "?%" in report.describe("audio", 0)


def test_progress_ignores_noise_and_caps_at_100() -> None:
    lines = ["garbage", "", "out_time_us=12000000", "speed=inf", "progress=continue"]
    (report,) = parse_progress(lines, duration=10.0)
    assert report.percent == 100.0 and report.speed is None


@pytest.mark.parametrize(("segment", "gop"), [(6, 2.0), (4, 2.0), (5, 2.5)])
def test_gop_divides_the_segment(segment: int, gop: float) -> None:
    assert gop_seconds(segment) == gop
    assert segment / gop_seconds(segment) == int(segment / gop_seconds(segment))


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def command(
    source: str,
    *rungs: LadderRung,
    audio: AudioPlan | None = None,
    audio_index: int | None = 1,
) -> list[str]:
    return encode_args(
        source,
        videos=[VideoOutput(rung, Path(f"/tmp/{rung.name}.mp4")) for rung in rungs],
        audio=AudioOutput(audio, Path("/out")) if audio else None,
        video_index=0,
        audio_index=audio_index,
        segment_seconds=6,
        preset="veryfast",
        crf=23,
    )


def test_video_command_is_capped_crf_with_forced_aligned_idr_frames() -> None:
    rung = LadderRung("720p", 1280, 720, Fraction(30000, 1001), 4_500_000)
    args = command("https://s3.example/originals/x/source?X-Amz-Signature=abc def", rung)
    assert args[0] == "ffmpeg"
    # The URL is one argument, untouched: no shell, no quoting.
    assert "https://s3.example/originals/x/source?X-Amz-Signature=abc def" in args
    assert option(args, "-vcodec") == "libx264"
    assert option(args, "-profile:v") == "high"
    assert option(args, "-crf") == "23"
    assert option(args, "-maxrate") == "4500000"
    assert option(args, "-bufsize") == "9000000"
    assert option(args, "-sc_threshold") == "0"
    assert option(args, "-forced-idr") == "1"
    assert option(args, "-force_key_frames") == "expr:gte(t,n_forced*2.000000)"
    assert "scenecut=0" in option(args, "-x264-params")
    assert "fps=fps=30000/1001:start_time=0" in option(args, "-filter_complex")
    assert "scale=1280:720" in option(args, "-filter_complex")
    assert "+frag_keyframe" in option(args, "-movflags")
    assert option(args, "-progress") == "pipe:1"
    assert int(option(args, "-g")) > 2 * 29.97  # x264's own keyint never fires first
    assert option(args, "-map_metadata") == "-1"
    assert "tonemap" not in option(args, "-filter_complex")
    for flag in ("-color_primaries", "-color_trc", "-colorspace"):
        assert option(args, flag) == "bt709"


def test_hdr_rungs_are_tone_mapped_after_scaling() -> None:
    rung = LadderRung("360p", 640, 360, Fraction(30), 365_000, tone_map_from="smpte2084")
    args = command("/tmp/in.mp4", rung)
    graph = option(args, "-filter_complex")
    assert "zscale=npl=100:t=linear:tin=smpte2084" in graph
    assert graph.index("scale=640:360") < graph.index("tonemap=desat=0:tonemap=hable")
    assert graph.index("tonemap") < graph.index("zscale=m=bt709:r=tv:t=bt709")
    assert graph.index("zscale=m=bt709") < graph.index("format=yuv420p")
    assert LadderRung.from_dict(rung.to_dict()) == rung


def test_audio_command_encodes_or_copies() -> None:
    encoded = command("/src", audio=AudioPlan(copy=False))
    assert option(encoded, "-acodec") == "aac"
    assert option(encoded, "-b:a") == "128000"
    assert option(encoded, "-ar") == "48000"
    assert option(encoded, "-ac") == "2"
    assert option(encoded, "-hls_time") == "6"
    assert option(encoded, "-hls_segment_type") == "fmp4"
    assert option(encoded, "-hls_segment_filename") == "/out/seg_%05d.m4s"
    copied = command("/src", audio=AudioPlan(copy=True))
    assert option(copied, "-acodec") == "copy"
    assert "-filter_complex" not in copied
    assert option(copied, "-map") == "0:1"


def test_one_command_decodes_once_and_splits_into_every_rung() -> None:
    rungs = [
        LadderRung("720p", 1280, 720, Fraction(30), 4_500_000),
        LadderRung("360p", 640, 360, Fraction(30), 365_000),
    ]
    args = command("/src.mp4", *rungs, audio=AudioPlan(copy=False))
    assert args.count("-i") == 1
    graph = option(args, "-filter_complex")
    assert "split=2" in graph
    assert "scale=1280:720" in graph and "scale=640:360" in graph
    # Each output has its own codec options, in the order of the renditions.
    assert [args[i + 1] for i, a in enumerate(args) if a == "-maxrate"] == ["4500000", "365000"]
    outputs = [a for a in args if a.startswith(("/tmp/", "/out/"))]
    assert outputs[:2] == ["/tmp/720p.mp4", "/tmp/360p.mp4"]
    assert option(args, "-acodec") == "aac" and "/out/ffmpeg.m3u8" in args
    assert args.count("-progress") == 1


def test_a_single_rung_needs_no_split() -> None:
    args = command("/src.mp4", LadderRung("360p", 640, 360, Fraction(30), 365_000))
    assert "split" not in option(args, "-filter_complex")


def test_an_encode_without_renditions_or_audio_index_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one rendition"):
        command("/src.mp4")
    with pytest.raises(ValueError, match="audio stream index"):
        command("/src.mp4", audio=AudioPlan(copy=True), audio_index=None)


def test_a_killed_encoder_is_retried_not_blamed_on_the_source() -> None:
    with pytest.raises(ToolKilled, match="killed by signal 9"):
        run_ffmpeg(["sh", "-c", "kill -KILL $$"], label="720p", duration=1.0)
    garbage = ["sh", "-c", "echo 'Invalid data found when processing input' >&2; exit 1"]
    with pytest.raises(EncodeError) as caught:
        run_ffmpeg(garbage, label="720p", duration=1.0)
    assert caught.value.source_at_fault
    full_disk = ["sh", "-c", "echo 'No space left on device' >&2; exit 1"]
    with pytest.raises(EncodeError) as caught:
        run_ffmpeg(full_disk, label="x", duration=1)
    assert not caught.value.source_at_fault
