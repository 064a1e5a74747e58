"""Probe and validate a source video with ffprobe/ffmpeg.

:func:`probe_source` runs ffprobe on a local path or an HTTP(S) URL (a presigned S3 URL:
ffprobe then reads only the container header and ffmpeg only the two short windows it
decodes, not the whole file), turns the JSON into a :class:`ProbeResult` and checks that
the video stream decodes at its start and at its end. Every way a source can be unusable
ends in :class:`InvalidSource`, whose ``reason`` is a sentence meant for the uploader:
it is stored in ``videos.failure_reason``.

The parsing and validation (:func:`parse_probe`, :func:`explain_ffprobe_error`) are pure
and unit-tested against recorded ffprobe output.

Originals are untrusted: every ffprobe/ffmpeg here opens them with the demuxer and
protocol allow-lists of :mod:`vidflow.media.untrusted`, and a reason never quotes tool
output (which starts with the presigned URL); the raw detail, redacted, goes to the task
log through :attr:`InvalidSource.detail`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import partial
from typing import Any, Final

import ffmpeg

from vidflow.media.tools import ToolKilled, ToolTimeout, raise_if_killed, run_text
from vidflow.media.untrusted import (
    input_args,
    input_options,
    is_allowed_container,
    not_accepted_reason,
    redact,
    refused_demuxer,
)

__all__ = [
    "InvalidSource",
    "ProbeResult",
    "ToolKilled",
    "ToolTimeout",
    "probe_source",
    "raise_if_killed",
]

log = logging.getLogger(__name__)

#: 8K UHD: the largest accepted display size, long side x short side.
MAX_LONG_SIDE: Final = 7680
MAX_SHORT_SIDE: Final = 4320

#: Codecs and demuxers of still images: a single picture is not a video.
STILL_IMAGE_CODECS: Final = frozenset(
    {"mjpeg", "png", "bmp", "tiff", "webp", "jpeg2000", "jpegls", "qoi", "pam", "pgm", "ppm"}
)

#: Relative gap between the nominal and the average frame rate above which a stream is
#: treated as variable frame rate.
VFR_TOLERANCE: Final = 0.01
#: Transfer functions of HDR video (PQ and HLG), tone-mapped to SDR when encoding.
HDR_TRANSFERS: Final = frozenset({"smpte2084", "arib-std-b67"})

#: Default timeout of one ffprobe/ffmpeg call (the DAG passes ``tool_timeout_seconds``).
PROBE_TIMEOUT_SECONDS: Final = 300
DECODE_CHECK_SECONDS: Final = 2.0


class InvalidSource(ValueError):
    """The source cannot become a stream; ``reason`` says why, for the uploader."""

    def __init__(self, reason: str, *, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        #: What the tool said (redacted), for the task log only.
        self.detail = detail


def _fraction(text: str | None) -> Fraction | None:
    """``"30000/1001"`` -> Fraction; None for missing or degenerate values like ``0/0``."""
    if not text:
        return None
    num, _, den = text.partition("/") if "/" in text else text.partition(":")
    try:
        n, d = int(num), int(den or "1")
    except ValueError:
        return None
    if n <= 0 or d <= 0:
        return None
    return Fraction(n, d)


def _sar(text: str | None) -> Fraction:
    return _fraction(text.replace(":", "/") if text else None) or Fraction(1)


def _bit_depth(pix_fmt: str, raw: str | None) -> int:
    match = re.search(r"p(\d{2})(le|be)?$", pix_fmt)
    if match:
        return int(match.group(1))
    try:
        return int(raw) if raw else 8
    except ValueError:
        return 8


def _rotation(stream: Mapping[str, Any]) -> int:
    """Display rotation in degrees, normalised to 0, 90, 180 or 270."""
    degrees: float = 0
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            degrees = float(side["rotation"])
            break
    else:
        rotate = (stream.get("tags") or {}).get("rotate")
        if rotate:
            try:
                degrees = float(rotate)
            except ValueError:
                degrees = 0
    return round(degrees / 90.0) * 90 % 360


@dataclass(frozen=True)
class VideoStream:
    index: int
    codec: str
    profile: str | None
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    #: Sample (pixel) aspect ratio; 1 for square pixels.
    sample_aspect_ratio: Fraction
    #: Clockwise display rotation: 0, 90, 180 or 270.
    rotation: int
    #: ffprobe's r_frame_rate: the base rate all timestamps fit on.
    frame_rate: Fraction
    #: Frames divided by duration.
    average_frame_rate: Fraction
    #: ffprobe's color_transfer (``smpte2084`` is HDR10/PQ, ``arib-std-b67`` HLG).
    color_transfer: str | None = None

    @property
    def is_hdr(self) -> bool:
        return self.color_transfer in HDR_TRANSFERS

    @property
    def display_width(self) -> float:
        """Width as shown (non-square pixels stretched, rotation applied)."""
        w = self.width * float(self.sample_aspect_ratio)
        return float(self.height) if self.rotation in (90, 270) else w

    @property
    def display_height(self) -> float:
        w = self.width * float(self.sample_aspect_ratio)
        return w if self.rotation in (90, 270) else float(self.height)

    @property
    def is_variable_frame_rate(self) -> bool:
        gap = abs(self.frame_rate - self.average_frame_rate) / self.frame_rate
        return float(gap) > VFR_TOLERANCE


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    profile: str | None
    sample_rate: int
    channels: int
    bit_rate: int | None


@dataclass(frozen=True)
class ProbeResult:
    """What the pipeline needs to know about a valid source."""

    format_name: str
    size: int
    duration: float
    bit_rate: int | None
    video: VideoStream
    audio: AudioStream | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (fractions as ``"n/d"``), e.g. for an Airflow XCom."""
        data = asdict(self)
        for key in ("sample_aspect_ratio", "frame_rate", "average_frame_rate"):
            data["video"][key] = str(getattr(self.video, key))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProbeResult:
        video = dict(data["video"])
        for key in ("sample_aspect_ratio", "frame_rate", "average_frame_rate"):
            video[key] = Fraction(video[key])
        audio = data.get("audio")
        return cls(
            format_name=data["format_name"],
            size=int(data["size"]),
            duration=float(data["duration"]),
            bit_rate=data.get("bit_rate"),
            video=VideoStream(**video),
            audio=AudioStream(**audio) if audio else None,
        )


def _hms(seconds: float) -> str:
    total = round(seconds)
    return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _float(value: object) -> float | None:
    try:
        result = float(str(value))
    except (TypeError, ValueError):
        return None
    return result if result == result else None  # NaN -> None


def _is_default(stream: Mapping[str, Any]) -> bool:
    return bool((stream.get("disposition") or {}).get("default"))


def _pick(streams: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The default stream of a kind, else the first."""
    for stream in streams:
        if _is_default(stream):
            return stream
    return streams[0] if streams else None


def parse_probe(data: Mapping[str, Any], *, size: int, max_duration: float) -> ProbeResult:
    """Validate ffprobe's JSON (``-show_format -show_streams``) and extract a ProbeResult.

    Raises :class:`InvalidSource` with an uploader-facing reason.
    """
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    if not fmt or not streams:
        raise InvalidSource("The file is not a video: no audio or video streams were found.")
    format_name = str(fmt.get("format_name", ""))
    if not is_allowed_container(format_name):
        raise InvalidSource(not_accepted_reason(format_name))

    videos = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    chosen = _pick(videos)
    if chosen is None:
        kinds = sorted(
            {
                "cover art"
                if (s.get("disposition") or {}).get("attached_pic")
                else str(s.get("codec_type"))
                for s in streams
            }
        )
        raise InvalidSource(f"The file has no video stream (it contains only: {', '.join(kinds)}).")
    codec = str(chosen.get("codec_name") or "unknown")
    if codec in STILL_IMAGE_CODECS or format_name.endswith("_pipe") or format_name == "image2":
        raise InvalidSource(f"The file is a still image ({codec}), not a video.")

    width, height = _int(chosen.get("width")) or 0, _int(chosen.get("height")) or 0
    if width <= 0 or height <= 0:
        raise InvalidSource("The video stream has no picture size; the file is corrupt.")

    nominal = _fraction(chosen.get("r_frame_rate"))
    average = _fraction(chosen.get("avg_frame_rate"))
    if nominal is None and average is None:
        raise InvalidSource("The video stream has no frame rate; the file is corrupt.")
    pix_fmt = str(chosen.get("pix_fmt") or "")
    video = VideoStream(
        index=int(chosen.get("index", 0)),
        codec=codec,
        profile=chosen.get("profile"),
        width=width,
        height=height,
        pix_fmt=pix_fmt,
        bit_depth=_bit_depth(pix_fmt, chosen.get("bits_per_raw_sample")),
        sample_aspect_ratio=_sar(chosen.get("sample_aspect_ratio")),
        rotation=_rotation(chosen),
        frame_rate=nominal or average or Fraction(30),
        average_frame_rate=average or nominal or Fraction(30),
        color_transfer=chosen.get("color_transfer"),
    )

    long_side = max(video.display_width, video.display_height)
    short_side = min(video.display_width, video.display_height)
    if long_side > MAX_LONG_SIDE or short_side > MAX_SHORT_SIDE:
        raise InvalidSource(
            f"The video is {round(video.display_width)}x{round(video.display_height)}; the "
            f"largest accepted size is 8K ({MAX_LONG_SIDE}x{MAX_SHORT_SIDE})."
        )

    duration = _float(fmt.get("duration"))
    if duration is None:
        duration = _float(chosen.get("duration"))
    if duration is None:
        raise InvalidSource(
            "The video's duration cannot be determined; the file is truncated or not indexed."
        )
    if duration <= 0:
        raise InvalidSource("The video has no frames (its duration is zero).")
    if duration > max_duration:
        raise InvalidSource(
            f"The video is {_hms(duration)} long; the longest accepted is {_hms(max_duration)}."
        )

    audio_stream = _pick([s for s in streams if s.get("codec_type") == "audio"])
    audio = None
    if audio_stream is not None:
        audio = AudioStream(
            index=int(audio_stream.get("index", 0)),
            codec=str(audio_stream.get("codec_name") or "unknown"),
            profile=audio_stream.get("profile"),
            sample_rate=_int(audio_stream.get("sample_rate")) or 0,
            channels=_int(audio_stream.get("channels")) or 0,
            bit_rate=_int(audio_stream.get("bit_rate")),
        )

    return ProbeResult(
        format_name=format_name,
        size=size,
        duration=duration,
        bit_rate=_int(fmt.get("bit_rate")),
        video=video,
        audio=audio,
    )


def explain_ffprobe_error(stderr: str) -> str:
    """An uploader-facing reason for a source ffprobe could not open."""
    text = stderr.lower()
    refused = refused_demuxer(stderr)
    if refused is not None:
        return not_accepted_reason(refused)
    if "moov atom not found" in text:
        return (
            "The file looks like an MP4/MOV video but is truncated or corrupt (its index, "
            "the moov atom, is missing); the upload may be incomplete."
        )
    if "invalid data found when processing input" in text:
        return "The file is not a video in any format we recognise."
    if "end of file" in text or "truncat" in text:
        return "The file is truncated: it ends before its container says it should."
    # Never the tool's own words: they start with the (presigned) input URL.
    return (
        "The file could not be read as a video; it may be corrupt or in a format we do not support."
    )


def _tail(stderr: str, limit: int = 500) -> str:
    return redact(stderr.strip()[-limit:]) or "no error output"


def run_ffprobe(source: str, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> dict[str, Any]:
    """ffprobe's JSON of ``source``; InvalidSource when ffprobe cannot open it (or when
    it is a container outside the allow-list: a playlist is refused before it fetches
    anything)."""
    args = [
        "ffprobe",
        "-v",
        "error",
        *input_args(source),
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        source,
    ]
    result = run_text(args, timeout=timeout)
    if result.returncode != 0:
        detail = _tail(result.stderr)
        log.warning("ffprobe could not open the source: %s", detail)
        raise InvalidSource(explain_ffprobe_error(result.stderr), detail=detail)
    data: dict[str, Any] = json.loads(result.stdout or "{}")
    return data


def decode_window_args(source: str, *, start: float, video_index: int, frames: int) -> list[str]:
    """ffmpeg arguments decoding up to ``frames`` video frames from ``start`` seconds,
    one line per frame on stdout (framecrc)."""
    stream = ffmpeg.input(source, ss=f"{start:.3f}", **input_options(source))
    out = stream.output("-", f="framecrc", map=f"0:{video_index}", **{"frames:v": frames})
    args: list[str] = out.global_args("-v", "error", "-nostdin").compile()
    return args


def _decoded_frames(args: list[str], timeout: float) -> tuple[int, str]:
    result = run_text(args, timeout=timeout)
    frames = sum(1 for line in result.stdout.splitlines() if line and not line.startswith("#"))
    return frames, result.stderr


def check_decodable(
    source: str, result: ProbeResult, *, timeout: float = PROBE_TIMEOUT_SECONDS
) -> None:
    """Decode a short window at the start and at the end of the video stream.

    A stream whose codec ffmpeg cannot decode yields no frames at the start; a file cut
    short (header intact, media data missing) yields none at the end.
    """
    fps = float(result.video.average_frame_rate)
    frames = max(2, int(DECODE_CHECK_SECONDS * fps))
    tail_start = max(0.0, result.duration - DECODE_CHECK_SECONDS - 1.0)
    starts = [0.0, tail_start] if tail_start > 0 else [0.0]
    windows = [
        decode_window_args(source, start=start, video_index=result.video.index, frames=frames)
        for start in starts
    ]
    # Both windows at once: each is a short read of the source, mostly waiting on storage.
    with ThreadPoolExecutor(len(windows), thread_name_prefix="decode-check") as pool:
        decoded = list(pool.map(partial(_decoded_frames, timeout=timeout), windows))
    head, head_err = decoded[0]
    if head == 0:
        detail = _tail(head_err)
        log.warning("no frame of the video stream decodes: %s", detail)
        raise InvalidSource(
            f"The video stream ({result.video.codec}) cannot be decoded; the file is corrupt "
            "or uses a codec we do not support.",
            detail=detail,
        )
    if len(decoded) > 1 and decoded[1][0] == 0:
        raise InvalidSource(
            f"The file is truncated or corrupt: its header promises {_hms(result.duration)} "
            f"of video, but nothing after {_hms(tail_start)} can be decoded."
        )


def probe_source(
    source: str, *, size: int, max_duration: float, timeout: float = PROBE_TIMEOUT_SECONDS
) -> ProbeResult:
    """Probe and validate ``source`` (a path or an HTTP(S) URL) of ``size`` bytes; each
    ffprobe/ffmpeg call is stopped after ``timeout`` seconds (ToolTimeout)."""
    if size == 0:
        raise InvalidSource("The uploaded file is empty (0 bytes).")
    result = parse_probe(run_ffprobe(source, timeout=timeout), size=size, max_duration=max_duration)
    check_decodable(source, result, timeout=timeout)
    return result
