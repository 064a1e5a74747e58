"""CMAF cutting and manifest writing: fMP4 parsing on hand-built boxes, segment grouping,
peak bandwidth (RFC 8216), HLS media/I-frame/master playlists and the DASH MPD, checked
with the m3u8 and mpegdash parsers."""

from __future__ import annotations

import struct
from pathlib import Path

import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser

from vidflow.media.fmp4 import (
    Fragment,
    copy_range,
    init_segment,
    parse_fragments,
    parse_init,
    scan_file,
)
from vidflow.media.package import (
    IFrame,
    RenditionMedia,
    Segment,
    compact_timeline,
    cut_video,
    dash_manifest,
    fold_tail,
    group_fragments,
    iframe_playlist,
    master_playlist,
    media_playlist,
    peak_bitrate,
    tail_fits,
    target_duration,
)

# --- a tiny fragmented-MP4 writer, just for these tests -------------------------------


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def init_bytes(timescale: int = 15360, profile: int = 0x64, level: int = 0x1F) -> bytes:
    avcc = box(b"avcC", bytes([1, profile, 0, level, 0xFF, 0xE0]))
    avc1 = box(b"avc1", bytes(78) + avcc)
    stsd = full_box(b"stsd", 0, 0, struct.pack(">I", 1) + avc1)
    stbl = box(b"stbl", stsd)
    minf = box(b"minf", stbl)
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, timescale, 0) + bytes(4))
    hdlr = full_box(b"hdlr", 0, 0, bytes(4) + b"vide" + bytes(12) + b"\0")
    mdia = box(b"mdia", mdhd + hdlr + minf)
    trak = box(b"trak", mdia)
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", 1, 1, 512, 0, 0))
    moov = box(b"moov", trak + box(b"mvex", trex))
    return box(b"ftyp", b"cmfc\0\0\0\0") + moov


def fragment_bytes(base: int, sizes: list[int], cts: list[int]) -> bytes:
    """moof (tfhd default-base-is-moof, tfdt v1, trun v1 with size+cts) + mdat."""
    tfhd = full_box(b"tfhd", 0, 0x020000, struct.pack(">I", 1))
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base))
    entries = b"".join(struct.pack(">Ii", s, c) for s, c in zip(sizes, cts, strict=True))
    # trun: data-offset present (patched below), sample size + composition offset.
    trun_payload = struct.pack(">Ii", len(sizes), 0) + entries
    trun = full_box(b"trun", 1, 0x000001 | 0x000200 | 0x000800, trun_payload)
    traf = box(b"traf", tfhd + tfdt + trun)
    moof = box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", 1)) + traf)
    data_offset = len(moof) + 8
    offset_at = moof.index(b"trun") + 4 + 4 + 4  # after type, version/flags, count
    moof = moof[:offset_at] + struct.pack(">i", data_offset) + moof[offset_at + 4 :]
    return moof + box(b"mdat", bytes(sum(sizes)))


def test_init_segment_describes_the_track() -> None:
    track = parse_init(init_bytes())
    assert track.handler == "vide"
    assert track.timescale == 15360
    assert track.codec == "avc1.64001f"
    assert track.default_sample_duration == 512
    assert track.media_time == 0


def test_fragments_are_parsed_with_timing_and_first_sample() -> None:
    data = init_bytes() + fragment_bytes(0, [1000, 50, 60], [0, 1024, -512])
    data += fragment_bytes(3 * 512, [900, 40], [0, 512])
    track = parse_init(init_segment(data))
    first, second = parse_fragments(data, track)
    assert (first.base_decode_time, first.duration, first.sample_count) == (0, 1536, 3)
    assert second.base_decode_time == 1536 and second.duration == 1024
    assert first.offset == len(init_segment(data))
    assert second.offset == first.offset + first.size
    moof_size = first.size - 8 - 1110
    assert first.first_sample_end == moof_size + 8 + 1000


def test_negative_composition_offsets_are_signed() -> None:
    data = init_bytes() + fragment_bytes(0, [10], [-1024])
    (fragment,) = parse_fragments(data, parse_init(init_segment(data)))
    assert fragment.first_composition_offset == -1024
    assert fragment.presentation_time == -1024


def frag(start: float, duration: float, timescale: int = 1000) -> Fragment:
    return Fragment(
        offset=0,
        size=100,
        base_decode_time=round(start * timescale),
        duration=round(duration * timescale),
        sample_count=1,
        first_composition_offset=0,
        first_sample_end=50,
    )


def test_fragments_group_into_segments_on_boundaries() -> None:
    # 2 s GOPs, 6 s segments, 15 s of video.
    fragments = [frag(t, 2) for t in range(0, 14, 2)] + [frag(14, 1)]
    groups = group_fragments(fragments, timescale=1000, media_time=0, segment_seconds=6)
    assert [len(g) for g in groups] == [3, 3, 2]
    # Audio-like fragments a little past each boundary still start new segments.
    audio = [frag(0, 6.016), frag(6.016, 6.016), frag(12.032, 1)]
    assert [
        len(g) for g in group_fragments(audio, timescale=1000, media_time=0, segment_seconds=6)
    ] == [1, 1, 1]


def test_peak_bitrate_follows_rfc_8216_windows() -> None:
    assert peak_bitrate([6, 6, 6], [750_000, 1_500_000, 750_000], 6) == 2_000_000
    # A short last segment alone is not a window (< 0.5 x target): it is averaged in.
    durations, sizes = [6, 6, 1], [750_000, 750_000, 250_000]
    assert peak_bitrate(durations, sizes, 6) < 8 * 250_000
    assert peak_bitrate(durations, sizes, 6) == pytest.approx(8 * 1_000_000 / 7, rel=1e-6)
    # A video shorter than half the target: the whole thing.
    assert peak_bitrate([1.0], [125_000], 6) == 1_000_000
    assert peak_bitrate([], [], 6) == 0


def test_target_duration_covers_every_segment_rounded_as_rfc_8216_says() -> None:
    # RFC 8216 4.3.3.1: each EXTINF, rounded to the nearest integer, <= the target.
    assert target_duration([6.0, 6.0, 2.5]) == 6
    assert target_duration([6.016, 5.995]) == 6
    assert target_duration([6.0, 6.4999]) == 6
    assert target_duration([6.0, 6.5]) == 7  # halves round up
    assert target_duration([0.4]) == 1


def test_a_short_tail_folds_into_the_previous_segment() -> None:
    # 12.067 s at 15 fps with 2 s GOPs: the last fragment is one frame long.
    fragments = [frag(t, 2) for t in range(0, 12, 2)] + [frag(12, 0.067)]
    groups = group_fragments(fragments, timescale=1000, media_time=0, segment_seconds=6)
    assert [len(g) for g in groups] == [3, 3, 1]
    folded = fold_tail(groups, timescale=1000, segment_seconds=6)
    assert [len(g) for g in folded] == [3, 4]
    assert sum(f.duration for f in folded[-1]) == 6067
    # A tail that would push the last segment past the target stays its own segment.
    longer = [frag(t, 2) for t in range(0, 12, 2)] + [frag(12, 0.5)]
    grouped = group_fragments(longer, timescale=1000, media_time=0, segment_seconds=6)
    assert [len(g) for g in fold_tail(grouped, timescale=1000, segment_seconds=6)] == [3, 3, 1]
    assert tail_fits(6.0, 0.499, 6) and not tail_fits(6.0, 0.5, 6)
    assert tail_fits(3.0, 2.0, 6)
    # One segment alone has nothing to fold into.
    single = [[frag(0, 0.01)]]
    assert fold_tail(single, timescale=1000, segment_seconds=6) == single


def segments() -> tuple[Segment, ...]:
    frames = (IFrame(0, 5000, 2.0), IFrame(9000, 4000, 2.0), IFrame(17000, 4500, 2.0))
    return (
        Segment(1, 0, 92160, 750_000, 6.0, frames),
        Segment(2, 92160, 92160, 700_000, 6.0, frames),
        Segment(3, 184320, 30720, 200_000, 2.0, frames[:1]),
    )


def rendition(tmp_path: Path, name: str = "720p") -> RenditionMedia:
    return RenditionMedia(
        name=name,
        kind="video",
        directory=tmp_path,
        codecs="avc1.64001f",
        timescale=15360,
        media_time=0,
        segments=segments(),
        width=1280,
        height=720,
        frame_rate=30.0,
    )


def audio(tmp_path: Path) -> RenditionMedia:
    return RenditionMedia(
        name="audio",
        kind="audio",
        directory=tmp_path,
        codecs="mp4a.40.2",
        timescale=48000,
        media_time=1024,
        segments=(
            Segment(1, 0, 288768, 96_000, 6.016),
            Segment(2, 288768, 287744, 96_000, 5.995),
            Segment(3, 576512, 95232, 30_000, 1.984),
        ),
        sample_rate=48000,
        channels=2,
    )


def test_media_playlist(tmp_path: Path) -> None:
    playlist = m3u8.loads(media_playlist(rendition(tmp_path)))
    assert playlist.is_endlist and playlist.playlist_type == "vod"
    assert playlist.is_independent_segments
    assert playlist.segment_map[0].uri == "init.mp4"
    assert [s.uri for s in playlist.segments] == ["seg_00001.m4s", "seg_00002.m4s", "seg_00003.m4s"]
    assert [s.duration for s in playlist.segments] == [6.0, 6.0, 2.0]
    assert all(playlist.target_duration >= s.duration for s in playlist.segments)
    audio_playlist = m3u8.loads(media_playlist(audio(tmp_path)))
    # RFC 8216 4.3.3.1: every EXTINF, rounded to the nearest integer, <= the target (6.016 -> 6).
    assert audio_playlist.target_duration == 6
    assert all(audio_playlist.target_duration >= round(s.duration) for s in audio_playlist.segments)


def test_iframe_playlist(tmp_path: Path) -> None:
    text = iframe_playlist(rendition(tmp_path))
    playlist = m3u8.loads(text)
    assert playlist.is_i_frames_only
    assert len(playlist.segments) == 7
    first, second = playlist.segments[0], playlist.segments[1]
    assert (first.uri, first.byterange, first.duration) == ("seg_00001.m4s", "5000@0", 2.0)
    assert second.byterange == "4000@9000"
    assert '#EXT-X-MAP:URI="init.mp4"' in text


def test_master_playlist_attributes(tmp_path: Path) -> None:
    video = rendition(tmp_path).summary()
    small = rendition(tmp_path, "360p").summary()
    sound = audio(tmp_path).summary()
    playlist = m3u8.loads(master_playlist([video, small], sound))
    assert playlist.is_variant
    assert playlist.is_independent_segments
    (media,) = playlist.media
    assert (media.type, media.group_id, media.uri, media.default) == (
        "AUDIO",
        "audio",
        "audio/index.m3u8",
        "YES",
    )
    variant = next(p for p in playlist.playlists if p.uri == "720p/index.m3u8")
    info = variant.stream_info
    assert info.bandwidth == video.peak_bitrate + sound.peak_bitrate
    assert info.average_bandwidth == video.average_bitrate + sound.average_bitrate
    assert info.codecs == "avc1.64001f,mp4a.40.2"
    assert info.resolution == (1280, 720)
    assert info.frame_rate == 30.0
    assert info.audio == "audio"
    assert {p.uri for p in playlist.iframe_playlists} == {"720p/iframes.m3u8", "360p/iframes.m3u8"}
    # The measured peak (RFC 8216) of 750 kB in 6 s plus audio's 96 kB in 5.995 s.
    assert video.peak_bitrate == 1_000_000
    assert sound.peak_bitrate == pytest.approx(8 * 96_000 / 5.995, abs=1)


def test_master_without_audio(tmp_path: Path) -> None:
    text = master_playlist([rendition(tmp_path).summary()], None)
    assert "EXT-X-MEDIA" not in text and "mp4a" not in text and "AUDIO=" not in text


def test_dash_manifest_references_the_same_segments(tmp_path: Path) -> None:
    video, sound = rendition(tmp_path).summary(), audio(tmp_path).summary()
    text = dash_manifest([video], sound, duration=14.0)
    mpd = MPEGDASHParser.parse(text)
    assert mpd.type == "static"
    assert mpd.media_presentation_duration == "PT14.000S"
    video_set, audio_set = mpd.periods[0].adaptation_sets
    (rep,) = video_set.representations
    assert (rep.id, rep.width, rep.height, rep.codecs) == ("720p", 1280, 720, "avc1.64001f")
    assert rep.bandwidth == video.peak_bitrate
    template = rep.segment_templates[0]
    assert template.initialization == "720p/init.mp4"
    assert template.media == "720p/seg_$Number%05d$.m4s"
    assert template.timescale == 15360
    timeline = template.segment_timelines[0].Ss
    assert [(s.t, s.d, s.r) for s in timeline] == [(0, 92160, 1), (184320, 30720, None)]
    (audio_rep,) = audio_set.representations
    assert audio_rep.segment_templates[0].presentation_time_offset == 1024
    assert audio_rep.audio_channel_configurations[0].value == "2"


def test_compact_timeline_folds_equal_runs() -> None:
    assert compact_timeline(segments()) == [(0, 92160, 1), (184320, 30720, 0)]


def test_cut_video_writes_segments_and_playlists(tmp_path: Path) -> None:
    # Four 2 s fragments at 15360 ticks/s, 6 s segments -> 6 s + 2 s.
    data = init_bytes()
    for i in range(4):
        data += fragment_bytes(i * 30720, [3000] + [100] * 59, [0] * 60)
    source = tmp_path / "in.mp4"
    source.write_bytes(data)
    media = cut_video(
        source,
        tmp_path / "out",
        name="360p",
        width=640,
        height=360,
        frame_rate=30.0,
        segment_seconds=6,
    )
    # 60 samples x default duration 512 = 30720 ticks = 2 s per fragment.
    assert [s.duration for s in media.segments] == [6.0, 2.0]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["iframes.m3u8", "index.m3u8", "init.mp4", "seg_00001.m4s", "seg_00002.m4s"]
    assert (tmp_path / "out" / "init.mp4").read_bytes() == init_bytes()
    first = (tmp_path / "out" / "seg_00001.m4s").read_bytes()
    assert first[4:8] == b"moof"
    assert len(first) + len((tmp_path / "out" / "seg_00002.m4s").read_bytes()) == len(data) - len(
        init_bytes()
    )
    iframes = media.segments[0].iframes
    fragment_size = len(first) // 3
    assert [f.offset for f in iframes] == [0, fragment_size, 2 * fragment_size]
    moof_size = struct.unpack(">I", first[:4])[0]
    # The I-frame byte range: the moof, the mdat header and the first (3000-byte) sample.
    assert {f.length for f in iframes} == {moof_size + 8 + 3000}
    assert {f.duration for f in iframes} == {2.0}


def test_a_file_is_scanned_box_by_box_like_the_bytes_are_parsed(tmp_path: Path) -> None:
    data = init_bytes() + fragment_bytes(0, [1000, 50, 60], [0, 1024, -512])
    data += box(b"styp", b"msdhmsix") + fragment_bytes(3 * 512, [900, 40], [0, 512])
    path = tmp_path / "in.mp4"
    path.write_bytes(data)
    with path.open("rb") as handle:
        init, track, fragments = scan_file(handle)
        assert init == init_segment(data) == init_bytes()
        assert track == parse_init(init)
        assert fragments == parse_fragments(data, track)
        assert fragments[1].offset == len(init_bytes()) + fragments[0].size
        target = tmp_path / "range.bin"
        with target.open("wb") as out:
            copy_range(handle, out, fragments[1].offset, fragments[1].size)
    assert target.read_bytes() == data[fragments[1].offset :]
