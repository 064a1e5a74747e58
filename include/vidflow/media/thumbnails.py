"""Posters and a scrubbing storyboard.

* Posters, 320x180 and 1280x720 (letterboxed to 16:9), come from a representative frame:
  a handful of candidate instants inside the video are sampled as 64x36 greyscale, black
  or flat frames (fades, title cards) are rejected, and the most detailed of the rest
  wins. The first frame is never a candidate. The transcode takes the candidates from the
  decode it already does (``vidflow.media.encode.PosterOutput``, then
  :func:`choose_poster`); :func:`make_posters` seeks a finished file for them instead.
* The storyboard is a set of JPEG sprite sheets of 160x90 tiles (10x10 per sheet), one
  tile every ``interval`` seconds, indexed by a WebVTT file whose cues point at a tile
  with a ``#xywh=`` media fragment, the format web players use for preview thumbnails.
  It is made from the smallest rendition, decoding only its keyframes: they sit exactly
  every GOP, so tiles at whole multiples of the GOP cost almost nothing to extract.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import ffmpeg

from vidflow.media.tools import run_bytes
from vidflow.media.untrusted import input_options, redact

#: Default timeout of one ffmpeg call here (the DAG passes ``tool_timeout_seconds``).
TOOL_TIMEOUT_SECONDS: Final = 300
POSTER_SIZES: Final = ((320, 180), (1280, 720))
#: Where candidates are sampled, as fractions of the duration.
CANDIDATE_POSITIONS: Final = (0.5, 0.33, 0.66, 0.2, 0.8, 0.1)
SAMPLE_W, SAMPLE_H = 64, 36
#: Mean luma below this is a black frame; a standard deviation below FLAT is a flat one.
BLACK_LUMA: Final = 24.0
WHITE_LUMA: Final = 235.0
FLAT_STDDEV: Final = 8.0
TILE_W, TILE_H = 160, 90
SHEET_COLUMNS, SHEET_ROWS = 10, 10
STORYBOARD_VTT: Final = "storyboard.vtt"
#: The files of the encode's poster branch: both sizes per candidate, and the samples.
LARGE_CANDIDATES: Final = "large_%02d.jpg"
SMALL_CANDIDATES: Final = "small_%02d.jpg"
SAMPLES: Final = "samples.gray"


@dataclass(frozen=True)
class FrameSample:
    time: float
    mean: float
    stddev: float

    @property
    def usable(self) -> bool:
        return BLACK_LUMA <= self.mean <= WHITE_LUMA and self.stddev >= FLAT_STDDEV


def frame_sample(time: float, luma: bytes) -> FrameSample:
    values = list(luma)
    if not values:
        return FrameSample(time, 0.0, 0.0)
    return FrameSample(time, statistics.fmean(values), statistics.pstdev(values))


def pick_representative(samples: Sequence[FrameSample]) -> FrameSample:
    """The most detailed usable sample; when none is usable, the brightest one."""
    if not samples:
        raise ValueError("no frames were sampled")
    usable = [s for s in samples if s.usable]
    if usable:
        return max(usable, key=lambda s: s.stddev)
    return max(samples, key=lambda s: (s.mean if s.mean <= WHITE_LUMA else 0.0, s.stddev))


def candidate_times(duration: float) -> list[float]:
    """Instants to sample: spread over the video, never its first frame."""
    if duration <= 0:
        return [0.0]
    return sorted({round(duration * p, 3) for p in CANDIDATE_POSITIONS})


def square_pixels(stream: Any) -> Any:
    # Stretch non-square pixels first, so aspect-preserving scales below are right.
    return stream.filter("scale", "trunc(iw*sar/2)*2", "ih").filter("setsar", "1")


def fit(stream: Any, width: int, height: int) -> Any:
    return (
        stream.filter("scale", width, height, force_original_aspect_ratio="decrease")
        .filter("pad", width, height, "(ow-iw)/2", "(oh-ih)/2")
        .filter("setsar", "1")
    )


def _seek(source: str, time: float, keyframe: bool) -> Any:
    """The video stream of ``source`` from ``time``. With ``keyframe``, the keyframe at or
    before ``time`` is the first frame: nothing else is decoded (a seek that must land
    exactly decodes a whole source GOP, seconds of 1080p, per candidate)."""
    options: dict[str, Any] = {"ss": f"{time:.3f}", **input_options(source)}
    if keyframe:
        options.update(noaccurate_seek=None, skip_frame="nokey")
    return square_pixels(ffmpeg.input(source, **options)["v:0"])


def sample_args(source: str, time: float, *, keyframe: bool = True) -> list[str]:
    stream = _seek(source, time, keyframe)
    stream = stream.filter("scale", SAMPLE_W, SAMPLE_H).filter("format", "gray")
    out = stream.output("pipe:", f="rawvideo", **{"frames:v": 1})
    args: list[str] = out.global_args("-v", "error", "-nostdin").compile()
    return args


class ThumbnailError(RuntimeError):
    """ffmpeg could not make a poster or the storyboard (the message is redacted)."""


def _run(args: list[str], timeout: float) -> None:
    result = run_bytes(args, timeout=timeout)
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace").strip()[-500:]
        raise ThumbnailError(f"ffmpeg exited with {result.returncode}: {redact(tail)}")


def sample_frames(
    source: str, duration: float, *, keyframe: bool = True, timeout: float = TOOL_TIMEOUT_SECONDS
) -> list[FrameSample]:
    samples = []
    for time in candidate_times(duration):
        args = sample_args(source, time, keyframe=keyframe)
        result = run_bytes(args, timeout=timeout)
        if result.returncode == 0 and result.stdout:
            samples.append(frame_sample(time, result.stdout[: SAMPLE_W * SAMPLE_H]))
    return samples


def poster_args(
    source: str, time: float, outputs: Sequence[Path], *, keyframe: bool = True
) -> list[str]:
    branches = _seek(source, time, keyframe).split()
    targets = [
        fit(branches[i], w, h).output(str(path), **{"frames:v": 1, "q:v": 3})
        for i, ((w, h), path) in enumerate(zip(POSTER_SIZES, outputs, strict=True))
    ]
    args: list[str] = (
        ffmpeg.merge_outputs(*targets).global_args("-v", "error", "-nostdin", "-y").compile()
    )
    return args


def make_posters(
    source: str, duration: float, directory: Path, *, timeout: float = TOOL_TIMEOUT_SECONDS
) -> dict[str, Path]:
    """Write ``poster_320x180.jpg`` and ``poster_1280x720.jpg``; returns them by size name.

    Candidates are the source's keyframes near each candidate instant (cheap); only when
    none of those is usable (sources with very rare keyframes may offer just the first,
    black one) are exact instants decoded.
    """
    keyframe = True
    samples = sample_frames(source, duration, keyframe=True, timeout=timeout)
    if not any(s.usable for s in samples):
        keyframe = False
        samples = sample_frames(source, duration, keyframe=False, timeout=timeout) or samples
    chosen = pick_representative(samples or [FrameSample(0, 0, 0)])
    directory.mkdir(parents=True, exist_ok=True)
    posters = poster_paths(directory)
    args = poster_args(source, chosen.time, [posters["small"], posters["large"]], keyframe=keyframe)
    _run(args, timeout)
    return posters


def poster_paths(directory: Path) -> dict[str, Path]:
    """Where the posters of ``directory`` go, by size name."""
    small, large = (directory / f"poster_{w}x{h}.jpg" for w, h in POSTER_SIZES)
    return {"small": small, "large": large}


def choose_poster(directory: Path) -> dict[str, Path] | None:
    """Keep the most representative of the candidates the encode's poster branch wrote to
    ``directory`` as ``poster_320x180.jpg`` and ``poster_1280x720.jpg`` (the others are
    removed); None when the branch kept no complete candidate (a source shorter than its
    first candidate instant)."""
    raw = (directory / SAMPLES).read_bytes() if (directory / SAMPLES).exists() else b""
    size = SAMPLE_W * SAMPLE_H
    samples = [
        frame_sample(float(index), raw[index * size : (index + 1) * size])
        for index in range(len(raw) // size)
        if (directory / (LARGE_CANDIDATES % (index + 1))).exists()
        and (directory / (SMALL_CANDIDATES % (index + 1))).exists()
    ]
    posters = poster_paths(directory)
    if samples:
        number = int(pick_representative(samples).time) + 1
        (directory / (LARGE_CANDIDATES % number)).rename(posters["large"])
        (directory / (SMALL_CANDIDATES % number)).rename(posters["small"])
    for leftover in [*directory.glob("large_*.jpg"), *directory.glob("small_*.jpg")]:
        leftover.unlink()
    (directory / SAMPLES).unlink(missing_ok=True)
    return posters if samples else None


def storyboard_interval(duration: float, preferred: float, keyframe_interval: float) -> float:
    """Seconds between tiles: about ``preferred`` (shorter for short videos, so they get
    ~10 tiles), rounded up to a whole number of keyframe intervals."""
    wanted = min(preferred, max(1.0, duration / 10))
    return max(1, math.ceil(wanted / keyframe_interval - 1e-9)) * keyframe_interval


def storyboard_tile_args(
    source: str, interval: float, pattern: Path, *, keyframes_only: bool = False
) -> list[str]:
    # From a rendition whose keyframes sit every GOP, decoding keyframes alone is enough
    # (and far cheaper than decoding every frame of the source).
    options = {"skip_frame": "nokey"} if keyframes_only else {}
    options |= input_options(source)
    stream = ffmpeg.input(source, **options)["v:0"].filter(
        "fps", fps=f"1/{interval:g}", eof_action="pass"
    )
    stream = square_pixels(stream)
    stream = fit(stream, TILE_W, TILE_H)
    out = stream.output(str(pattern), start_number=0, **{"q:v": 5})
    args: list[str] = out.global_args("-v", "error", "-nostdin", "-y").compile()
    return args


def sheet_args(tiles: Path, first: int, count: int, output: Path) -> list[str]:
    # The last sheet has only the rows it needs; unused cells are black.
    columns = min(SHEET_COLUMNS, count)
    rows = math.ceil(count / columns)
    stream = ffmpeg.input(str(tiles), start_number=first, f="image2")
    stream = stream.filter("tile", f"{columns}x{rows}", nb_frames=count, color="black")
    out = stream.output(str(output), **{"frames:v": 1, "q:v": 5})
    args: list[str] = out.global_args("-v", "error", "-nostdin", "-y").compile()
    return args


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def storyboard_vtt(tiles: int, interval: float, duration: float, sheet_names: Sequence[str]) -> str:
    """WebVTT cues mapping each interval to its tile in a sprite sheet."""
    per_sheet = SHEET_COLUMNS * SHEET_ROWS
    lines = ["WEBVTT", ""]
    for index in range(tiles):
        start = index * interval
        if start >= duration:
            break
        end = min(duration, start + interval)
        sheet, position = divmod(index, per_sheet)
        row, column = divmod(position, SHEET_COLUMNS)
        lines += [
            f"{_vtt_time(start)} --> {_vtt_time(end)}",
            f"{sheet_names[sheet]}#xywh={column * TILE_W},{row * TILE_H},{TILE_W},{TILE_H}",
            "",
        ]
    return "\n".join(lines)


def make_storyboard(
    source: str,
    duration: float,
    directory: Path,
    interval: float,
    *,
    keyframes_only: bool = False,
    timeout: float = TOOL_TIMEOUT_SECONDS,
) -> Path:
    """Write ``storyboard_NNN.jpg`` sheets and ``storyboard.vtt`` (a tile every
    ``interval`` seconds); returns the VTT."""
    directory.mkdir(parents=True, exist_ok=True)
    tiles_dir = directory / "tiles"
    tiles_dir.mkdir(exist_ok=True)
    pattern = tiles_dir / "tile_%05d.jpg"
    _run(storyboard_tile_args(source, interval, pattern, keyframes_only=keyframes_only), timeout)
    tiles = len(list(tiles_dir.glob("tile_*.jpg")))
    if tiles == 0:
        raise ThumbnailError("ffmpeg produced no storyboard tiles")
    per_sheet = SHEET_COLUMNS * SHEET_ROWS
    names = []
    for sheet in range(math.ceil(tiles / per_sheet)):
        name = f"storyboard_{sheet + 1:03d}.jpg"
        first = sheet * per_sheet
        count = min(per_sheet, tiles - first)
        _run(sheet_args(pattern, first, count, directory / name), timeout)
        names.append(name)
    for tile in tiles_dir.iterdir():
        tile.unlink()
    tiles_dir.rmdir()
    vtt = directory / STORYBOARD_VTT
    vtt.write_text(storyboard_vtt(tiles, interval, duration, names))
    return vtt
