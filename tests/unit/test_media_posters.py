"""Posters from the encode's own decode: a real ffmpeg encodes a rendition and keeps the
poster candidates on the way; :func:`choose_poster` keeps the best of them."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from vidflow.media.encode import PosterOutput, VideoOutput, encode_args
from vidflow.media.ladder import LadderRung
from vidflow.media.thumbnails import (
    LARGE_CANDIDATES,
    SAMPLE_H,
    SAMPLE_W,
    SAMPLES,
    SMALL_CANDIDATES,
    candidate_times,
    choose_poster,
    make_posters,
)

RUNG = LadderRung("360p", 640, 360, Fraction(25), 365_000)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *args], check=True)


def _luma(path: Path) -> float:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vf", "format=gray", "-f", "rawvideo", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return sum(raw) / len(raw)


def _size(path: Path) -> tuple[int, int]:
    probe = ["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0"]
    out = subprocess.run(
        [*probe, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    width, height = out.strip().split(",")
    return int(width), int(height)


@pytest.fixture(scope="module")
def half_black(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s at 25 fps, 4:3: black for the first 3 s, a detailed test pattern after."""
    path = tmp_path_factory.mktemp("src") / "half_black.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "color=black:size=640x480:rate=25:duration=3",
        "-f", "lavfi", "-i", "testsrc2=size=640x480:rate=25:duration=3",
        "-filter_complex", "[0:v][1:v]concat=n=2:v=1",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    )  # fmt: skip
    return path


def _encode(source: Path, work: Path, times: tuple[float, ...]) -> list[str]:
    posters = PosterOutput(times, work / "posters")
    posters.directory.mkdir(parents=True)
    args = encode_args(
        str(source),
        videos=[VideoOutput(RUNG, work / "360p.mp4")],
        audio=None,
        video_index=0,
        audio_index=None,
        segment_seconds=6,
        preset="ultrafast",
        crf=30,
        posters=posters,
    )
    subprocess.run(args, check=True, capture_output=True)
    return args


def test_the_encode_keeps_one_frame_per_candidate_from_its_only_decode(
    half_black: Path, tmp_path: Path
) -> None:
    times = tuple(candidate_times(6.0))
    args = _encode(half_black, tmp_path, times)
    assert args.count("-i") == 1  # one decode feeds the rendition and the candidates
    assert (tmp_path / "360p.mp4").stat().st_size > 0
    folder = tmp_path / "posters"
    assert (folder / SAMPLES).stat().st_size == len(times) * SAMPLE_W * SAMPLE_H
    for number in range(1, len(times) + 1):
        assert _size(folder / (LARGE_CANDIDATES % number)) == (1280, 720)
        assert _size(folder / (SMALL_CANDIDATES % number)) == (320, 180)
    assert not (folder / (LARGE_CANDIDATES % (len(times) + 1))).exists()
    # The candidates are the frames at those instants: black before 3 s, the pattern after.
    lumas = [_luma(folder / (SMALL_CANDIDATES % n)) for n in range(1, len(times) + 1)]
    assert [luma > 30 for luma in lumas] == [t >= 3.0 for t in times]


def test_the_most_detailed_candidate_becomes_the_posters(half_black: Path, tmp_path: Path) -> None:
    _encode(half_black, tmp_path, tuple(candidate_times(6.0)))
    posters = choose_poster(tmp_path / "posters")
    assert posters is not None
    assert _size(posters["large"]) == (1280, 720) and _size(posters["small"]) == (320, 180)
    assert _luma(posters["large"]) > 30  # not one of the black candidates
    assert sorted(p.name for p in (tmp_path / "posters").iterdir()) == [
        "poster_1280x720.jpg",
        "poster_320x180.jpg",
    ]


def test_a_source_shorter_than_its_candidates_leaves_none_to_choose(
    half_black: Path, tmp_path: Path
) -> None:
    _encode(half_black, tmp_path, (30.0, 40.0))  # past the end of the 6 s source
    assert choose_poster(tmp_path / "posters") is None
    assert list((tmp_path / "posters").iterdir()) == []


def test_without_candidates_the_posters_come_from_the_encoded_rendition(
    half_black: Path, tmp_path: Path
) -> None:
    """The transcode's fallback: seek the rendition it just wrote (a fragmented MP4 with
    no index at its end) for keyframes near the candidate instants."""
    _encode(half_black, tmp_path, (30.0, 40.0))
    assert choose_poster(tmp_path / "posters") is None
    posters = make_posters(str(tmp_path / "360p.mp4"), 6.0, tmp_path / "posters")
    assert _size(posters["large"]) == (1280, 720) and _size(posters["small"]) == (320, 180)
    assert _luma(posters["large"]) > 30  # a keyframe of the pattern, not the black start
