"""ffmpeg commands of the renditions, and ffmpeg progress streamed into a log.

Commands are argument lists built with ffmpeg-python, never shell strings.

One command encodes one or several renditions of a source (see :func:`encode_args`):
the source is decoded once and split into every rung's filter chain.

Video: x264 High profile with capped CRF (``-crf`` plus
``-maxrate`` and ``-bufsize`` at twice the cap). Every rendition gets the same constant
frame rate and the same closed GOP: IDR frames are forced at exact multiples of the GOP
length (:func:`gop_seconds`, which divides the segment length) and x264's scene-cut
detection is off, so keyframes sit at identical timestamps in every rendition and on every
segment boundary. The output is one fragmented MP4 with one fragment per GOP (CMAF
flavour); ``vidflow.media.package`` cuts it into segments on those fragment boundaries.

Audio: AAC-LC (or a copy of a compliant track) through ffmpeg's HLS muxer in fMP4 mode,
which cuts a fragment at the first packet past every multiple of the segment length.
"""

from __future__ import annotations

import logging
import math
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import ffmpeg

from vidflow.media import thumbnails
from vidflow.media.ladder import AudioPlan, LadderRung
from vidflow.media.tools import raise_if_killed, timed_out
from vidflow.media.untrusted import input_options, is_url, redact, redact_command

log = logging.getLogger(__name__)

#: Target GOP length; the real one divides the segment length evenly (see gop_seconds).
TARGET_GOP_SECONDS: Final = 2.0

#: Nominal peak of SDR white when HDR is linearised (nits).
HDR_NOMINAL_PEAK_NITS: Final = 100

VIDEO_MOVFLAGS: Final = "+frag_keyframe+empty_moov+default_base_moof+cmaf+skip_trailer"

#: ffmpeg stderr phrases that blame the source rather than the machine.
SOURCE_ERROR_MARKERS: Final = (
    "invalid data found when processing input",
    "error while decoding",
    "moov atom not found",
    "invalid nal unit",
    "corrupt",
    "decoding error",
    "could not find codec parameters",
    "decoder (codec",
)


def gop_seconds(segment_seconds: float) -> float:
    """GOP length: the segment length split into whole GOPs of about 2 s.

    Apple asks for an IDR every ~2 s (seeking, trick play); segment boundaries then fall
    on every few GOPs, so they are keyframes too.
    """
    per_segment = max(1, round(segment_seconds / TARGET_GOP_SECONDS))
    return segment_seconds / per_segment


def _input(source: str) -> Any:
    # The original is untrusted: only single-file containers, only its own protocol.
    kwargs = input_options(source)
    if is_url(source):
        # Survive dropped connections on long reads of a presigned URL.
        kwargs |= {
            "reconnect": "1",
            "reconnect_on_network_error": "1",
            "reconnect_delay_max": "10",
        }
    return ffmpeg.input(source, **kwargs)


def scale_for(stream: Any, rung: LadderRung) -> Any:
    """The filter chain of a rung: constant frame rate, size, square pixels, 8-bit 4:2:0
    (HDR tone-mapped to SDR BT.709 after scaling, where it costs the fewest pixels)."""
    # start_time=0 pins the first frame to t=0 on ffmpeg's input timeline (the same
    # zero the audio uses), padding or trimming a few frames at the start.
    chain = stream.filter("fps", fps=str(rung.frame_rate), start_time=0).filter(
        "scale", rung.width, rung.height, flags="bicubic"
    )
    if rung.tone_map_from:
        chain = tone_map(chain, rung.tone_map_from)
    return chain.filter("setsar", "1").filter("format", "yuv420p")


def tone_map(stream: Any, transfer: str) -> Any:
    """HDR (PQ or HLG, BT.2020) to SDR BT.709: linear light, Hable curve, BT.709."""
    return (
        stream.filter("zscale", t="linear", npl=HDR_NOMINAL_PEAK_NITS, tin=transfer)
        .filter("format", "gbrpf32le")
        .filter("zscale", p="bt709")
        .filter("tonemap", tonemap="hable", desat=0)
        .filter("zscale", t="bt709", m="bt709", r="tv")
    )


def x264_options(
    rung: LadderRung, *, segment_seconds: int, preset: str, crf: int
) -> dict[str, Any]:
    """x264 output options of a rung: capped CRF and forced, aligned IDR frames."""
    gop = gop_seconds(segment_seconds)
    gop_frames = math.ceil(gop * rung.frame_rate)
    return {
        "vcodec": "libx264",
        "preset": preset,
        "crf": crf,
        "maxrate": rung.max_bitrate,
        "bufsize": rung.buffer_size,
        "profile:v": "high",
        # x264 would add keyframes only at keyint; twice the GOP never triggers first.
        "g": 2 * gop_frames,
        "keyint_min": gop_frames,
        "sc_threshold": 0,
        "force_key_frames": f"expr:gte(t,n_forced*{gop:.6f})",
        "forced-idr": 1,
        "flags": "+cgop",
        "x264-params": "scenecut=0:open-gop=0",
        "fps_mode": "cfr",
        # Every rendition is SDR BT.709 (HDR sources are tone-mapped): say so.
        "color_primaries": "bt709",
        "color_trc": "bt709",
        "colorspace": "bt709",
    }


@dataclass(frozen=True)
class VideoOutput:
    """A video rendition of an encode: its rung and the fragmented MP4 it goes to."""

    rung: LadderRung
    path: Path


@dataclass(frozen=True)
class PosterOutput:
    """Poster candidates taken from the encode's own decode: the first frame at or past
    each of ``times`` (seconds from the first frame), written to ``directory`` (see
    :func:`_poster_candidates`; :func:`vidflow.media.thumbnails.choose_poster` keeps the
    best)."""

    times: tuple[float, ...]
    directory: Path
    #: The HDR transfer to tone-map from, as the rendition that makes the posters does.
    tone_map_from: str | None = None


@dataclass(frozen=True)
class AudioOutput:
    """The audio rendition of an encode: its plan and the folder of its CMAF segments."""

    plan: AudioPlan
    directory: Path


def encode_args(
    source: str,
    *,
    videos: Sequence[VideoOutput],
    audio: AudioOutput | None,
    video_index: int,
    audio_index: int | None,
    segment_seconds: int,
    preset: str,
    crf: int,
    posters: PosterOutput | None = None,
) -> list[str]:
    """ffmpeg arguments encoding several renditions of ``source`` in one process.

    The source is read and decoded once; its video is ``split`` into every rung's chain.
    Each video rendition goes to one fragmented MP4 (see the module docstring); the audio
    rendition to CMAF segments in its folder (``init.mp4``, ``seg_00001.m4s``...;
    ffmpeg's own ``ffmpeg.m3u8`` is not used). With ``posters``, one more branch of the
    same decode keeps a few frames as poster candidates (no second decode of the source).
    """
    if not videos and audio is None:
        raise ValueError("an encode needs at least one rendition")
    if posters is not None and not videos:
        raise ValueError("posters come from the video of an encode that has some")
    source_input = _input(source)
    outputs = []
    branches = None
    if videos:
        picture = source_input[str(video_index)]
        count = len(videos) + (posters is not None)
        branches = picture.split() if count > 1 else None
        for number, video in enumerate(videos):
            stream = branches[number] if branches is not None else picture
            outputs.append(
                scale_for(stream, video.rung).output(
                    str(video.path),
                    f="mp4",
                    movflags=VIDEO_MOVFLAGS,
                    map_metadata=-1,
                    map_chapters=-1,
                    **x264_options(
                        video.rung, segment_seconds=segment_seconds, preset=preset, crf=crf
                    ),
                )
            )
    if audio is not None:
        if audio_index is None:
            raise ValueError("an audio rendition needs the source's audio stream index")
        sound, codec = audio_chain(source_input[str(audio_index)], audio.plan)
        outputs.append(
            sound.output(
                str(audio.directory / "ffmpeg.m3u8"),
                map_metadata=-1,
                map_chapters=-1,
                **hls_fmp4_options(audio.directory, segment_seconds),
                **codec,
            )
        )
    if posters is not None and branches is not None:
        # Last, so that ffmpeg's progress (frames, fps) reports the first rendition.
        outputs += _poster_candidates(branches[len(videos)], posters)
    return _with_progress(ffmpeg.merge_outputs(*outputs))


def _poster_candidates(stream: Any, posters: PosterOutput) -> list[Any]:
    """Outputs of the poster branch: the first frame at or past each candidate instant, as
    both poster sizes (``large_NN.jpg``, ``small_NN.jpg``) and as a 64x36 greyscale sample
    (``samples.gray``, one raw frame after another) to choose by. Only those few frames are
    scaled; :func:`vidflow.media.thumbnails.choose_poster` picks one afterwards."""
    crossings = "+".join(
        f"gte(t-start_t,{time:.3f})*lt(prev_pts*TB-start_t,{time:.3f})" for time in posters.times
    )
    picked = thumbnails.square_pixels(stream.filter("select", crossings))
    if posters.tone_map_from:
        picked = tone_map(picked, posters.tone_map_from)
    branches = picked.split()
    large, small, sample = branches[0], branches[1], branches[2]
    every_frame = {"fps_mode": "passthrough"}
    directory = posters.directory
    return [
        thumbnails.fit(large, *thumbnails.POSTER_SIZES[1]).output(
            str(directory / thumbnails.LARGE_CANDIDATES), **every_frame, **{"q:v": 3}
        ),
        thumbnails.fit(small, *thumbnails.POSTER_SIZES[0]).output(
            str(directory / thumbnails.SMALL_CANDIDATES), **every_frame, **{"q:v": 3}
        ),
        sample.filter("scale", thumbnails.SAMPLE_W, thumbnails.SAMPLE_H)
        .filter("format", "gray")
        .output(str(directory / thumbnails.SAMPLES), f="rawvideo", **every_frame),
    ]


def _with_progress(out: Any) -> list[str]:
    """Compile an ffmpeg output that reports ``-progress`` on stdout (see run_ffmpeg)."""
    args: list[str] = out.global_args(
        "-hide_banner", "-nostdin", "-y", "-nostats", "-progress", "pipe:1"
    ).compile()
    return args


def hls_fmp4_options(output_dir: Path, segment_seconds: int) -> dict[str, Any]:
    """Output options of ffmpeg's HLS muxer writing CMAF segments into ``output_dir``:
    ``init.mp4`` and ``seg_00001.m4s``..., a new segment at the first packet past every
    multiple of ``segment_seconds``."""
    return {
        "f": "hls",
        "hls_time": segment_seconds,
        "hls_segment_type": "fmp4",
        "hls_playlist_type": "vod",
        "hls_fmp4_init_filename": "init.mp4",
        "hls_segment_filename": str(output_dir / "seg_%05d.m4s"),
        "start_number": 1,
    }


def audio_chain(stream: Any, plan: AudioPlan) -> tuple[Any, dict[str, Any]]:
    """The audio stream to encode and its codec options: a copy, or AAC-LC resampled onto
    the video's zero."""
    if plan.copy:
        return stream, {"acodec": "copy"}
    # first_pts=0 keeps the audio on the same zero as the video; async fills gaps.
    resampled = stream.filter("aresample", plan.sample_rate, first_pts=0, **{"async": 1})
    codec = {
        "acodec": "aac",
        "audio_bitrate": plan.bitrate,
        "ar": plan.sample_rate,
        "ac": plan.channels,
    }
    return resampled, codec


@dataclass(frozen=True)
class Progress:
    """One ``-progress`` report of ffmpeg."""

    out_time: float
    percent: float | None
    fps: float | None
    speed: float | None
    frame: int | None
    done: bool

    def describe(self, label: str, duration: float) -> str:
        pct = f"{self.percent:5.1f}%" if self.percent is not None else "    ?%"
        fps = f"{self.fps:.1f}" if self.fps is not None else "n/a"
        speed = f"{self.speed:.2f}x" if self.speed is not None else "n/a"
        return f"{label}: {pct} ({self.out_time:.1f}/{duration:.1f} s) fps={fps} speed={speed}"


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    text = text.strip().rstrip("x")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_progress(lines: Iterable[str], duration: float) -> Iterator[Progress]:
    """Turn ffmpeg ``-progress`` output (key=value lines, each block ending in
    ``progress=continue|end``) into Progress reports."""
    block: dict[str, str] = {}
    for raw in lines:
        line = raw.strip()
        if "=" not in line:
            continue
        key, _, value = line.partition("=")
        block[key.strip()] = value.strip()
        if key != "progress":
            continue
        out_us = _number(block.get("out_time_us")) or _number(block.get("out_time_ms"))
        out_time = max(0.0, (out_us or 0.0) / 1_000_000)
        done = value == "end"
        percent = None
        if duration > 0:
            percent = 100.0 if done else min(100.0, 100.0 * out_time / duration)
        frame = _number(block.get("frame"))
        yield Progress(
            out_time=out_time,
            percent=percent,
            fps=_number(block.get("fps")),
            speed=_number(block.get("speed")),
            frame=int(frame) if frame is not None else None,
            done=done,
        )
        block = {}


class EncodeError(RuntimeError):
    """ffmpeg failed; ``source_at_fault`` when its errors point at the input file."""

    def __init__(self, message: str, *, stderr_tail: str, source_at_fault: bool) -> None:
        super().__init__(f"{message}\n{stderr_tail}")
        self.stderr_tail = stderr_tail
        self.source_at_fault = source_at_fault


@dataclass(frozen=True)
class EncodeStats:
    wall_seconds: float
    frames: int | None
    #: Source seconds encoded per wall-clock second.
    realtime_factor: float
    fps: float | None


def _tail(handle: IO[str], limit: int = 4000) -> str:
    handle.seek(0)
    return handle.read()[-limit:]


def run_ffmpeg(
    args: list[str],
    *,
    label: str,
    duration: float,
    report: Callable[[str], None] | None = None,
    every_seconds: float = 5.0,
    timeout: float | None = None,
) -> EncodeStats:
    """Run ffmpeg (with ``-progress pipe:1``), reporting progress every few seconds.

    Raises EncodeError with the (redacted) tail of ffmpeg's stderr when it fails,
    ToolKilled when a signal killed it, ToolTimeout when it ran longer than ``timeout``
    seconds (it is killed then).
    """
    say = report or log.info
    # The command holds a presigned URL to the private original: never log it whole.
    say(f"{label}: {redact_command(args)}")
    started = time.monotonic()
    last_report = 0.0
    last: Progress | None = None
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as stderr:
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=stderr, text=True, encoding="utf-8"
        )
        assert process.stdout is not None
        # A watchdog, because a hung ffmpeg may never write another progress line.
        watchdog = threading.Timer(timeout, process.kill) if timeout is not None else None
        if watchdog is not None:
            watchdog.daemon = True
            watchdog.start()
        try:
            for progress in parse_progress(process.stdout, duration):
                last = progress
                now = time.monotonic()
                if progress.done or now - last_report >= every_seconds:
                    say(progress.describe(label, duration))
                    last_report = now
            returncode = process.wait()
        finally:
            if watchdog is not None:
                watchdog.cancel()
        if timeout is not None and time.monotonic() - started >= timeout and returncode < 0:
            raise timed_out(args, timeout)
        # A signal (OOM killer, a stopped worker) is never the source's fault.
        raise_if_killed(args[0], returncode)
        if returncode != 0:
            tail = redact(_tail(stderr))
            at_fault = any(m in tail.lower() for m in SOURCE_ERROR_MARKERS)
            raise EncodeError(
                f"{label}: ffmpeg exited with {returncode}",
                stderr_tail=tail,
                source_at_fault=at_fault,
            )
    wall = time.monotonic() - started
    frames = last.frame if last else None
    return EncodeStats(
        wall_seconds=wall,
        frames=frames,
        realtime_factor=duration / wall if wall > 0 else 0.0,
        fps=frames / wall if frames and wall > 0 else None,
    )
