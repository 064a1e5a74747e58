"""Representative-frame choice and the storyboard's WebVTT index."""

from __future__ import annotations

import pytest

from vidflow.media.thumbnails import (
    FrameSample,
    candidate_times,
    frame_sample,
    pick_representative,
    storyboard_interval,
    storyboard_vtt,
)


def test_black_and_flat_frames_are_not_representative() -> None:
    black = FrameSample(1.0, mean=3.0, stddev=1.0)
    flat_grey = FrameSample(2.0, mean=128.0, stddev=2.0)
    detailed = FrameSample(3.0, mean=110.0, stddev=40.0)
    busy_but_dark = FrameSample(4.0, mean=20.0, stddev=60.0)
    assert pick_representative([black, flat_grey, detailed, busy_but_dark]) == detailed


def test_when_everything_is_dark_the_brightest_wins() -> None:
    samples = [FrameSample(1.0, 2.0, 0.5), FrameSample(2.0, 10.0, 3.0), FrameSample(3.0, 5.0, 9.0)]
    assert pick_representative(samples).time == 2.0
    with pytest.raises(ValueError, match="no frames"):
        pick_representative([])


def test_frame_statistics() -> None:
    sample = frame_sample(1.5, bytes([0, 255] * 8))
    assert sample.mean == 127.5 and sample.stddev == 127.5
    assert frame_sample(0, b"").mean == 0


def test_candidates_avoid_the_first_frame() -> None:
    times = candidate_times(100.0)
    assert 0.0 not in times and times == sorted(times)
    assert min(times) >= 10.0 and max(times) <= 80.0
    assert candidate_times(0) == [0.0]


def test_storyboard_vtt_points_at_tiles_across_sheets() -> None:
    text = storyboard_vtt(tiles=102, interval=5.0, duration=508.0, sheet_names=["a.jpg", "b.jpg"])
    lines = text.splitlines()
    assert lines[0] == "WEBVTT"
    cues = [line for line in lines if "#xywh=" in line]
    assert len(cues) == 102
    assert cues[0] == "a.jpg#xywh=0,0,160,90"
    assert cues[11] == "a.jpg#xywh=160,90,160,90"
    assert cues[99] == "a.jpg#xywh=1440,810,160,90"
    assert cues[100] == "b.jpg#xywh=0,0,160,90"
    assert "00:08:25.000 --> 00:08:28.000" in text  # the last cue ends at the duration


def test_storyboard_vtt_stops_at_the_duration() -> None:
    text = storyboard_vtt(tiles=5, interval=1.0, duration=3.5, sheet_names=["s.jpg"])
    assert text.count("#xywh=") == 4
    assert "00:00:03.000 --> 00:00:03.500" in text


def test_storyboard_interval_is_whole_gops() -> None:
    assert storyboard_interval(600.0, 5.0, 2.0) == 6.0
    assert storyboard_interval(600.0, 4.0, 2.0) == 4.0
    assert storyboard_interval(7.0, 5.0, 2.0) == 2.0  # short video: ~10 tiles, >= one GOP
    assert storyboard_interval(1.0, 5.0, 2.0) == 2.0
    assert storyboard_interval(3600.0, 10.0, 2.5) == 10.0


def test_candidates_are_sampled_at_keyframes_unless_asked_otherwise() -> None:
    from vidflow.media.thumbnails import sample_args

    cheap = sample_args("/src.mp4", 12.5)
    assert cheap[cheap.index("-skip_frame") + 1] == "nokey" and "-noaccurate_seek" in cheap
    assert cheap[cheap.index("-ss") + 1] == "12.500"
    exact = sample_args("/src.mp4", 12.5, keyframe=False)
    assert "-skip_frame" not in exact and "-noaccurate_seek" not in exact
