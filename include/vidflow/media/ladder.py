"""Plan the adaptive-bitrate ladder of a source: which renditions to encode, how big, at
what frame rate and bitrate cap.

The rungs follow Apple's HLS Authoring Specification (H.264 High profile, 16:9 table),
extended upwards with 1440p and 2160p. One rung is kept per resolution; where Apple lists
two bitrates for a size, the higher one is the cap, because encodes use capped CRF (the
cap bounds the peak, CRF decides the average).

Rules:

* Never upscale: rungs taller (short side) than the source are dropped. A source between
  two rungs gets its own size as the top rung, rounded down to even dimensions. A source
  within 5 % above a rung replaces that rung instead of adding a near-duplicate.
* Portrait and square videos are laddered by their short side, so a 720x1280 phone video
  gets the 720p rung's pixel budget.
* Sizes use display dimensions: non-square pixels are stretched to square ones (the
  output has SAR 1:1) and a rotated source is laddered as it is shown.
* The bitrate cap of a rung comes from its pixel count, interpolated over the table, so
  4:3 and other aspect ratios get a proportionate budget. Rungs below 540p get 1.5x above
  30 fps (Apple lists them for <= 30 fps; every rung keeps the source's rate so keyframes
  stay aligned across the ladder).
* Frame rate: a constant rate up to 60 fps is kept; above 60 it is divided by the smallest
  integer that brings it to <= 60 (120 -> 60, 100 -> 50). Variable frame rate is made
  constant at the nearest common rate.
* HDR (PQ or HLG transfer): every rung is tone-mapped to SDR BT.709 (Hable curve), since
  the ladder is 8-bit H.264 that SDR screens show as is.
* Audio: AAC-LC stereo 128 kbps 48 kHz. A source track that already is AAC-LC, stereo,
  48 kHz and at most ~128 kbps is copied. No audio track in, no audio track out.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Final

from vidflow.media.probe import AudioStream, ProbeResult, VideoStream

#: (short side, long side at 16:9, bitrate cap in bits/s), smallest first.
APPLE_LADDER: Final[tuple[tuple[int, int, int], ...]] = (
    (234, 416, 145_000),
    (360, 640, 365_000),
    (432, 768, 1_100_000),
    (540, 960, 2_000_000),
    (720, 1280, 4_500_000),
    (1080, 1920, 7_800_000),
    # Beyond Apple's H.264 table:
    (1440, 2560, 12_000_000),
    (2160, 3840, 20_000_000),
)

#: A source less than this much taller than a rung replaces the rung.
MERGE_MARGIN: Final = 1.05
MAX_FRAME_RATE: Final = Fraction(60)
LOW_RUNG_SHORT_SIDE: Final = 540
HIGH_FPS_FACTOR: Final = 1.5

#: Rates a variable-frame-rate source is normalised to.
COMMON_RATES: Final[tuple[Fraction, ...]] = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(48),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)

AUDIO_CODEC: Final = "aac"
AUDIO_BITRATE: Final = 128_000
AUDIO_SAMPLE_RATE: Final = 48_000
AUDIO_CHANNELS: Final = 2
#: AAC-LC in HLS/DASH CODECS notation.
AUDIO_CODECS_TAG: Final = "mp4a.40.2"
#: Copy a compliant track up to this bitrate (encoders overshoot a nominal 128k a little).
AUDIO_COPY_MAX_BITRATE: Final = 140_000


@dataclass(frozen=True)
class LadderRung:
    """One video rendition to encode: H.264 High profile, capped CRF."""

    name: str
    width: int
    height: int
    frame_rate: Fraction
    #: -maxrate, bits per second.
    max_bitrate: int
    #: The source's HDR transfer (PQ or HLG) to tone-map to SDR BT.709; None for SDR.
    tone_map_from: str | None = None

    @property
    def buffer_size(self) -> int:
        """-bufsize: twice the cap, so short peaks are allowed and averaged out."""
        return 2 * self.max_bitrate

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "frame_rate": str(self.frame_rate),
            "max_bitrate": self.max_bitrate,
            "tone_map_from": self.tone_map_from,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LadderRung:
        return cls(
            name=data["name"],
            width=int(data["width"]),
            height=int(data["height"]),
            frame_rate=Fraction(data["frame_rate"]),
            max_bitrate=int(data["max_bitrate"]),
            tone_map_from=data.get("tone_map_from"),
        )


@dataclass(frozen=True)
class AudioPlan:
    """How the audio track is produced: ``copy`` or encoded to AAC-LC."""

    copy: bool
    bitrate: int = AUDIO_BITRATE
    sample_rate: int = AUDIO_SAMPLE_RATE
    channels: int = AUDIO_CHANNELS

    def to_dict(self) -> dict[str, Any]:
        return {
            "copy": self.copy,
            "bitrate": self.bitrate,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioPlan:
        return cls(**data)


def even_floor(value: float) -> int:
    """The largest even integer <= value (at least 2)."""
    return max(2, math.floor(value + 1e-6) // 2 * 2)


def even_round(value: float) -> int:
    """The even integer nearest to value (at least 2)."""
    return max(2, round(value / 2.0) * 2)


def output_frame_rate(video: VideoStream) -> Fraction:
    """The constant frame rate every rung is encoded at."""
    if video.is_variable_frame_rate:
        # r_frame_rate is the rate timestamps fit on: the densest stretch of the stream.
        nominal = video.frame_rate if video.frame_rate <= MAX_FRAME_RATE else None
        base = nominal or video.average_frame_rate
        nearest = min(COMMON_RATES, key=lambda rate: abs(rate - base))
        if abs(nearest - base) / base <= Fraction(5, 100):
            return nearest
        return min(MAX_FRAME_RATE, max(Fraction(1), Fraction(round(base))))
    rate = video.frame_rate
    divisor = 1
    while rate / divisor > MAX_FRAME_RATE:
        divisor += 1
    return rate / divisor


def bitrate_for_pixels(pixels: int) -> int:
    """Bitrate cap for a frame of ``pixels``, piecewise linear over APPLE_LADDER."""
    points = [(short * long, bitrate) for short, long, bitrate in APPLE_LADDER]
    if pixels <= points[0][0]:
        return max(64_000, int(points[0][1] * pixels / points[0][0]))
    for (p0, b0), (p1, b1) in itertools.pairwise(points):
        if pixels <= p1:
            return int(b0 + (b1 - b0) * (pixels - p0) / (p1 - p0))
    return points[-1][1]


def _rung(short: int, aspect: float, portrait: bool, frame_rate: Fraction) -> LadderRung:
    """A rung of the given short side; ``aspect`` is long/short of the display."""
    long = even_round(short * aspect)
    width, height = (short, long) if portrait else (long, short)
    bitrate = bitrate_for_pixels(width * height)
    if short < LOW_RUNG_SHORT_SIDE and frame_rate > 31:
        bitrate = int(bitrate * HIGH_FPS_FACTOR)
    return LadderRung(
        name=f"{short}p", width=width, height=height, frame_rate=frame_rate, max_bitrate=bitrate
    )


def plan_ladder(source: ProbeResult) -> list[LadderRung]:
    """The video renditions of ``source``, largest first."""
    video = source.video
    display_w, display_h = video.display_width, video.display_height
    portrait = display_h > display_w
    short_side, long_side = min(display_w, display_h), max(display_w, display_h)
    aspect = long_side / short_side
    frame_rate = output_frame_rate(video)

    top_short = even_floor(short_side)
    rungs = [
        _rung(short, aspect, portrait, frame_rate)
        for short, _, _ in APPLE_LADDER
        if short * MERGE_MARGIN <= top_short
    ]
    # The source's own size is the top rung (it equals a table rung when the source
    # matches one). Its long side is capped too: rounding must never upscale.
    top = _rung(top_short, aspect, portrait, frame_rate)
    top_long = min(max(top.width, top.height), even_floor(long_side))
    width, height = (top_short, top_long) if portrait else (top_long, top_short)
    rungs.append(
        LadderRung(
            name=top.name,
            width=width,
            height=height,
            frame_rate=frame_rate,
            max_bitrate=top.max_bitrate,
        )
    )
    if video.is_hdr:
        rungs = [replace(rung, tone_map_from=video.color_transfer) for rung in rungs]
    return sorted(rungs, key=lambda rung: rung.width * rung.height, reverse=True)


def audio_is_compliant(audio: AudioStream) -> bool:
    return (
        audio.codec == AUDIO_CODEC
        and (audio.profile or "").upper() == "LC"
        and audio.sample_rate == AUDIO_SAMPLE_RATE
        and audio.channels == AUDIO_CHANNELS
        and audio.bit_rate is not None
        and audio.bit_rate <= AUDIO_COPY_MAX_BITRATE
    )


def plan_audio(source: ProbeResult) -> AudioPlan | None:
    """The audio rendition of ``source``, or None when it has no audio track."""
    if source.audio is None:
        return None
    return AudioPlan(copy=audio_is_compliant(source.audio))
