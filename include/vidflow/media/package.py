"""CMAF packaging: one set of fMP4 segments per rendition, shared by HLS and DASH.

:func:`cut_video` splits an encoder's fragmented MP4 (one fragment per GOP) into segments
on the fragment boundaries nearest to every multiple of the segment length;
:func:`collect_segments` describes segments another muxer already wrote (the audio).
Both return a :class:`RenditionMedia`, whose :meth:`~RenditionMedia.summary` holds every
number the manifests need, measured from the bytes actually written:

* HLS: the master playlist (BANDWIDTH = peak segment bit rate per RFC 8216 of video plus
  audio, AVERAGE-BANDWIDTH, CODECS, RESOLUTION, FRAME-RATE, EXT-X-INDEPENDENT-SEGMENTS,
  an alternate audio group and I-frame streams), media playlists (EXT-X-MAP, a target
  duration no shorter than any segment) and I-frame playlists (byte ranges of each GOP's
  leading IDR frame).
* DASH: a static MPD with a SegmentTemplate/SegmentTimeline per representation pointing
  at the same ``init.mp4`` and ``seg_NNNNN.m4s`` files.

Everything here is pure apart from reading and writing the local files handed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final
from xml.etree import ElementTree as ET

from vidflow.media.fmp4 import Fragment, copy_range, parse_fragments, parse_init, scan_file

INIT_NAME: Final = "init.mp4"
MEDIA_PLAYLIST: Final = "index.m3u8"
IFRAME_PLAYLIST: Final = "iframes.m3u8"
MASTER_PLAYLIST: Final = "master.m3u8"
DASH_MANIFEST: Final = "manifest.mpd"
AUDIO_GROUP: Final = "audio"
HLS_VERSION: Final = 7


def segment_name(number: int) -> str:
    return f"seg_{number:05d}.m4s"


@dataclass(frozen=True)
class IFrame:
    offset: int
    length: int
    duration: float


@dataclass(frozen=True)
class Segment:
    number: int
    #: Decode time of the first sample, in track timescale ticks.
    start: int
    ticks: int
    size: int
    duration: float
    iframes: tuple[IFrame, ...] = ()

    @property
    def uri(self) -> str:
        return segment_name(self.number)


def peak_bitrate(durations: Sequence[float], sizes: Sequence[int], target: float) -> int:
    """Peak segment bit rate as RFC 8216 defines it: the largest bit rate of any run of
    contiguous segments lasting between 0.5 and 1.5 times the target duration (the
    whole playlist when it is shorter than that)."""
    if not durations:
        return 0
    total = sum(durations)
    if total < 0.5 * target:
        return math.ceil(8 * sum(sizes) / total) if total > 0 else 0
    peak = 0.0
    for i in range(len(durations)):
        seconds, bits = 0.0, 0
        for j in range(i, len(durations)):
            seconds += durations[j]
            bits += 8 * sizes[j]
            if seconds > 1.5 * target + 1e-9:
                break
            if seconds >= 0.5 * target - 1e-9:
                peak = max(peak, bits / seconds)
    return math.ceil(peak)


def rounded_seconds(duration: float) -> int:
    """A segment duration rounded to the nearest integer, as RFC 8216 (4.3.3.1) compares
    it with the target duration (halves round up)."""
    return math.floor(round(duration, 6) + 0.5)


def target_duration(durations: Sequence[float]) -> int:
    """EXT-X-TARGETDURATION (RFC 8216, 4.3.3.1): the smallest whole number that every
    segment duration, rounded to the nearest integer, does not exceed."""
    longest = max(durations, default=1.0)
    return max(1, rounded_seconds(longest))


def tail_fits(previous: float, last: float, segment_seconds: float) -> bool:
    """Whether a short last segment can join the one before it and the result still stays
    within the target duration (``segment_seconds``, rounded as RFC 8216 rounds)."""
    return rounded_seconds(previous + last) <= segment_seconds


def compact_timeline(segments: Sequence[Segment]) -> list[tuple[int, int, int]]:
    """DASH SegmentTimeline entries ``(t, d, r)``: runs of equal durations folded."""
    timeline: list[tuple[int, int, int]] = []
    expected = None
    for segment in segments:
        if timeline and segment.ticks == timeline[-1][1] and segment.start == expected:
            t, d, r = timeline[-1]
            timeline[-1] = (t, d, r + 1)
        else:
            timeline.append((segment.start, segment.ticks, 0))
        expected = segment.start + segment.ticks
    return timeline


@dataclass(frozen=True)
class RenditionSummary:
    """Everything the master playlist, the MPD and the catalog need about a rendition.

    Small and JSON-safe (an Airflow XCom): the segment list itself stays in the media
    playlist; the MPD gets the folded timeline.
    """

    name: str
    kind: str  # "video" | "audio"
    codecs: str
    width: int
    height: int
    frame_rate: float | None
    timescale: int
    presentation_time_offset: int
    duration: float
    segment_count: int
    target_duration: int
    peak_bitrate: int
    average_bitrate: int
    iframe_peak_bitrate: int
    timeline: list[tuple[int, int, int]] = field(default_factory=list)
    sample_rate: int | None = None
    channels: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["timeline"] = [list(entry) for entry in self.timeline]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenditionSummary:
        values = dict(data)
        values["timeline"] = [tuple(entry) for entry in values.get("timeline", [])]
        return cls(**values)


@dataclass(frozen=True)
class RenditionMedia:
    """A rendition's segments on local disk, with the measurements taken from them."""

    name: str
    kind: str
    directory: Path
    codecs: str
    timescale: int
    media_time: int
    segments: tuple[Segment, ...]
    width: int = 0
    height: int = 0
    frame_rate: float | None = None
    sample_rate: int | None = None
    channels: int | None = None

    @property
    def durations(self) -> list[float]:
        return [s.duration for s in self.segments]

    @property
    def target_duration(self) -> int:
        return target_duration(self.durations)

    @property
    def duration(self) -> float:
        return sum(self.durations)

    def summary(self) -> RenditionSummary:
        durations, sizes = self.durations, [s.size for s in self.segments]
        target = self.target_duration
        frames = [f for s in self.segments for f in s.iframes]
        iframe_peak = max(
            (math.ceil(8 * f.length / f.duration) for f in frames if f.duration > 0), default=0
        )
        total = sum(durations)
        return RenditionSummary(
            name=self.name,
            kind=self.kind,
            codecs=self.codecs,
            width=self.width,
            height=self.height,
            frame_rate=self.frame_rate,
            timescale=self.timescale,
            presentation_time_offset=self.media_time,
            duration=round(total, 6),
            segment_count=len(self.segments),
            target_duration=target,
            peak_bitrate=peak_bitrate(durations, sizes, target),
            average_bitrate=math.ceil(8 * sum(sizes) / total) if total > 0 else 0,
            iframe_peak_bitrate=iframe_peak,
            timeline=compact_timeline(self.segments),
            sample_rate=self.sample_rate,
            channels=self.channels,
        )

    def write_playlists(self) -> None:
        (self.directory / MEDIA_PLAYLIST).write_text(media_playlist(self))
        if self.kind == "video":
            (self.directory / IFRAME_PLAYLIST).write_text(iframe_playlist(self))


def group_fragments(
    fragments: Sequence[Fragment], *, timescale: int, media_time: int, segment_seconds: float
) -> list[list[Fragment]]:
    """Fragments grouped into segments: a fragment opens a new segment when it starts at
    or after the next multiple of ``segment_seconds`` (50 ms tolerance)."""
    span = segment_seconds * timescale
    tolerance = timescale / 20
    groups: list[list[Fragment]] = []
    next_boundary = 0.0
    for fragment in fragments:
        start = fragment.presentation_time - media_time
        if not groups or start >= next_boundary - tolerance:
            groups.append([fragment])
            next_boundary = (math.floor((start + tolerance) / span) + 1) * span
        else:
            groups[-1].append(fragment)
    return groups


def fold_tail(
    groups: list[list[Fragment]], *, timescale: int, segment_seconds: float
) -> list[list[Fragment]]:
    """The groups with a short last one joined to the one before it when the joined
    segment stays within the target duration: a source whose length is not a whole number
    of segments would otherwise end on a segment of a few milliseconds."""
    if len(groups) < 2:
        return groups
    previous, last = (sum(f.duration for f in g) / timescale for g in groups[-2:])
    if not tail_fits(previous, last, segment_seconds):
        return groups
    return [*groups[:-2], groups[-2] + groups[-1]]


def _segment_from(number: int, fragments: Sequence[Fragment], timescale: int) -> Segment:
    start = fragments[0].offset
    ticks = sum(f.duration for f in fragments)
    iframes = tuple(
        IFrame(
            offset=f.offset - start,
            length=f.first_sample_end,
            duration=f.duration / timescale,
        )
        for f in fragments
    )
    return Segment(
        number=number,
        start=fragments[0].base_decode_time,
        ticks=ticks,
        size=sum(f.size for f in fragments),
        duration=ticks / timescale,
        iframes=iframes,
    )


def cut_video(
    source: Path,
    directory: Path,
    *,
    name: str,
    width: int,
    height: int,
    frame_rate: float,
    segment_seconds: float,
) -> RenditionMedia:
    """Cut an encoder's fragmented MP4 into ``init.mp4`` and ``seg_NNNNN.m4s`` files in
    ``directory`` and write its media and I-frame playlists there.

    The file is read box by box and copied range by range (:func:`~vidflow.media.fmp4.scan_file`):
    memory stays flat however long the rendition is."""
    directory.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as handle:
        init, track, fragments = scan_file(handle)
        (directory / INIT_NAME).write_bytes(init)
        groups = fold_tail(
            group_fragments(
                fragments,
                timescale=track.timescale,
                media_time=track.media_time,
                segment_seconds=segment_seconds,
            ),
            timescale=track.timescale,
            segment_seconds=segment_seconds,
        )
        segments = []
        for number, group in enumerate(groups, start=1):
            start, end = group[0].offset, group[-1].offset + group[-1].size
            with (directory / segment_name(number)).open("wb") as target:
                copy_range(handle, target, start, end - start)
            segments.append(_segment_from(number, group, track.timescale))
    media = RenditionMedia(
        name=name,
        kind="video",
        directory=directory,
        codecs=track.codec,
        timescale=track.timescale,
        media_time=track.media_time,
        segments=tuple(segments),
        width=width,
        height=height,
        frame_rate=frame_rate,
    )
    media.write_playlists()
    return media


def collect_segments(
    directory: Path,
    *,
    name: str,
    kind: str,
    sample_rate: int | None,
    channels: int | None,
    segment_seconds: float | None = None,
) -> RenditionMedia:
    """Describe ``init.mp4`` + ``seg_NNNNN.m4s`` that a muxer wrote into ``directory`` (one
    segment per file), and write the media playlist. With ``segment_seconds``, a short
    last segment is appended to the one before it when the result stays within the
    target duration (see :func:`tail_fits`)."""
    track = parse_init((directory / INIT_NAME).read_bytes())
    segments = []
    number = 1
    while (path := directory / segment_name(number)).exists():
        data = path.read_bytes()
        fragments = parse_fragments(data, track)
        if not fragments:
            raise ValueError(f"{path} holds no fragments")
        segments.append(_segment_from(number, fragments, track.timescale))
        number += 1
    if not segments:
        raise ValueError(f"no segments in {directory}")
    if (
        segment_seconds is not None
        and len(segments) >= 2
        and tail_fits(segments[-2].duration, segments[-1].duration, segment_seconds)
    ):
        # A CMAF segment may hold several fragments: the two files, one after the other.
        previous, last = directory / segments[-2].uri, directory / segments[-1].uri
        with previous.open("ab") as joined:
            joined.write(last.read_bytes())
        last.unlink()
        fragments = parse_fragments(previous.read_bytes(), track)
        segments[-2:] = [_segment_from(segments[-2].number, fragments, track.timescale)]
    media = RenditionMedia(
        name=name,
        kind=kind,
        directory=directory,
        codecs=track.codec,
        timescale=track.timescale,
        media_time=track.media_time,
        segments=tuple(segments),
        sample_rate=sample_rate,
        channels=channels,
    )
    media.write_playlists()
    return media


# --- HLS ----------------------------------------------------------------------------------


def _header(target: int, *extra: str) -> list[str]:
    return [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        *extra,
        f'#EXT-X-MAP:URI="{INIT_NAME}"',
    ]


def media_playlist(media: RenditionMedia) -> str:
    lines = _header(media.target_duration)
    for segment in media.segments:
        lines += [f"#EXTINF:{segment.duration:.6f},", segment.uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def iframe_playlist(media: RenditionMedia) -> str:
    """I-frame playlist: each GOP's IDR frame as a byte range (moof + first sample)."""
    frames = [(s, f) for s in media.segments for f in s.iframes]
    target = target_duration([f.duration for _, f in frames])
    lines = _header(target, "#EXT-X-I-FRAMES-ONLY")
    for segment, frame in frames:
        lines += [
            f"#EXTINF:{frame.duration:.6f},",
            f"#EXT-X-BYTERANGE:{frame.length}@{frame.offset}",
            segment.uri,
        ]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _frame_rate(value: float | None) -> str:
    return f"{value:.3f}" if value else "30.000"


def master_playlist(videos: Sequence[RenditionSummary], audio: RenditionSummary | None) -> str:
    """The HLS master (multivariant) playlist; rendition playlists are ``{name}/...``."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio is not None:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="Main",LANGUAGE="und",'
            f'DEFAULT=YES,AUTOSELECT=YES,CHANNELS="{audio.channels or 2}",'
            f'URI="{audio.name}/{MEDIA_PLAYLIST}"'
        )
    ordered = sorted(videos, key=lambda v: v.peak_bitrate)
    for video in ordered:
        bandwidth = video.peak_bitrate + (audio.peak_bitrate if audio else 0)
        average = video.average_bitrate + (audio.average_bitrate if audio else 0)
        codecs = video.codecs + (f",{audio.codecs}" if audio else "")
        attributes = [
            f"BANDWIDTH={bandwidth}",
            f"AVERAGE-BANDWIDTH={average}",
            f'CODECS="{codecs}"',
            f"RESOLUTION={video.width}x{video.height}",
            f"FRAME-RATE={_frame_rate(video.frame_rate)}",
        ]
        if audio is not None:
            attributes.append(f'AUDIO="{AUDIO_GROUP}"')
        attributes.append("CLOSED-CAPTIONS=NONE")
        lines += [f"#EXT-X-STREAM-INF:{','.join(attributes)}", f"{video.name}/{MEDIA_PLAYLIST}"]
    for video in ordered:
        lines.append(
            f"#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={video.iframe_peak_bitrate},"
            f'CODECS="{video.codecs}",RESOLUTION={video.width}x{video.height},'
            f'URI="{video.name}/{IFRAME_PLAYLIST}"'
        )
    return "\n".join(lines) + "\n"


# --- DASH ---------------------------------------------------------------------------------

MPD_NS: Final = "urn:mpeg:dash:schema:mpd:2011"


def _iso_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def _segment_template(parent: ET.Element, rendition: RenditionSummary) -> None:
    template = ET.SubElement(
        parent,
        "SegmentTemplate",
        timescale=str(rendition.timescale),
        initialization=f"{rendition.name}/{INIT_NAME}",
        media=f"{rendition.name}/seg_$Number%05d$.m4s",
        startNumber="1",
        presentationTimeOffset=str(rendition.presentation_time_offset),
    )
    timeline = ET.SubElement(template, "SegmentTimeline")
    for t, d, r in rendition.timeline:
        attributes = {"t": str(t), "d": str(d)}
        if r:
            attributes["r"] = str(r)
        ET.SubElement(timeline, "S", attributes)


def _fps(value: float | None) -> str:
    if not value:
        return "30"
    for den in (1, 1001):
        num = value * den
        if abs(num - round(num)) < 1e-3 * den:
            return str(round(num)) if den == 1 else f"{round(num)}/{den}"
    return f"{round(value * 1000)}/1000"


def dash_manifest(
    videos: Sequence[RenditionSummary], audio: RenditionSummary | None, *, duration: float
) -> str:
    """A static MPD (ISO BMFF live profile, CMAF) over the same segments as HLS."""
    mpd = ET.Element(
        "MPD",
        xmlns=MPD_NS,
        type="static",
        profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019",
        mediaPresentationDuration=_iso_duration(duration),
        minBufferTime=_iso_duration(max((v.target_duration for v in videos), default=6)),
    )
    period = ET.SubElement(mpd, "Period", id="0", start="PT0S")
    ordered = sorted(videos, key=lambda v: v.peak_bitrate)
    video_set = ET.SubElement(
        period,
        "AdaptationSet",
        id="0",
        contentType="video",
        mimeType="video/mp4",
        segmentAlignment="true",
        startWithSAP="1",
        maxWidth=str(max((v.width for v in videos), default=0)),
        maxHeight=str(max((v.height for v in videos), default=0)),
        par=_par(videos),
    )
    for video in ordered:
        representation = ET.SubElement(
            video_set,
            "Representation",
            id=video.name,
            bandwidth=str(video.peak_bitrate),
            codecs=video.codecs,
            width=str(video.width),
            height=str(video.height),
            frameRate=_fps(video.frame_rate),
            sar="1:1",
        )
        _segment_template(representation, video)
    if audio is not None:
        audio_set = ET.SubElement(
            period,
            "AdaptationSet",
            id="1",
            contentType="audio",
            mimeType="audio/mp4",
            lang="und",
            segmentAlignment="true",
            startWithSAP="1",
        )
        representation = ET.SubElement(
            audio_set,
            "Representation",
            id=audio.name,
            bandwidth=str(audio.peak_bitrate),
            codecs=audio.codecs,
            audioSamplingRate=str(audio.sample_rate or 48000),
        )
        ET.SubElement(
            representation,
            "AudioChannelConfiguration",
            schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011",
            value=str(audio.channels or 2),
        )
        _segment_template(representation, audio)
    ET.indent(mpd)
    body = ET.tostring(mpd, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def _par(videos: Sequence[RenditionSummary]) -> str:
    if not videos:
        return "16:9"
    top = max(videos, key=lambda v: v.width * v.height)
    divisor = math.gcd(top.width, top.height) or 1
    return f"{top.width // divisor}:{top.height // divisor}"
