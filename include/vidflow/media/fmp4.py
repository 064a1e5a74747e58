"""Just enough ISO BMFF (fragmented MP4) parsing to cut CMAF segments and describe them.

From an init segment: the track's timescale, its RFC 6381 codec string (``avc1.64001f``,
``mp4a.40.2``), the edit-list offset and the ``trex`` sample defaults. From media data:
each fragment's byte range, decode time, duration, the composition offset of its first
sample and where that first sample ends (the byte range of an I-frame for HLS I-frame
playlists). Only single-track files are expected: the encoder writes one per rendition.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final

#: Boxes that may precede a ``moof`` and belong to the same fragment.
FRAGMENT_PREFIX_BOXES: Final = frozenset({b"styp", b"sidx", b"prft", b"emsg"})
CONTAINERS: Final = frozenset(
    {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"mvex", b"moof", b"traf"}
)


class Fmp4Error(ValueError):
    """The bytes are not the fragmented MP4 this module expects."""


@dataclass(frozen=True)
class Box:
    type: bytes
    offset: int
    size: int
    header: int

    @property
    def body(self) -> int:
        return self.offset + self.header

    @property
    def end(self) -> int:
        return self.offset + self.size


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    end = len(data) if end is None else end
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise Fmp4Error(f"box {kind!r} at {offset} overruns its container")
        yield Box(kind, offset, size, header)
        offset += size


def find_box(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> Box:
    """The first box at ``path`` (e.g. ``[b"moov", b"trak", b"mdia", b"mdhd"]``)."""
    box = None
    for kind in path:
        box = next((b for b in iter_boxes(data, start, end) if b.type == kind), None)
        if box is None:
            raise Fmp4Error(f"no {b'/'.join(path)!r} box")
        start, end = box.body, box.end
    assert box is not None
    return box


@dataclass(frozen=True)
class TrackInfo:
    handler: str
    timescale: int
    codec: str
    #: Edit-list media time: presentation starts this many ticks into the media.
    media_time: int
    default_sample_duration: int
    default_sample_size: int


def _codec_string(data: bytes, stsd: Box) -> str:
    # stsd: version/flags (4), entry count (4), then sample entries.
    entry = next(iter_boxes(data, stsd.body + 8, stsd.end))
    kind = entry.type.decode("latin1")
    if kind in ("avc1", "avc3"):
        # VisualSampleEntry header is 78 bytes after the box header.
        avcc = find_box(data, [b"avcC"], entry.body + 78, entry.end)
        profile, compat, level = data[avcc.body + 1], data[avcc.body + 2], data[avcc.body + 3]
        return f"{kind}.{profile:02x}{compat:02x}{level:02x}"
    if kind == "mp4a":
        return "mp4a.40." + str(_aac_object_type(data, entry))
    return kind


def _aac_object_type(data: bytes, entry: Box) -> int:
    """Audio object type from the esds DecoderSpecificInfo (2 = AAC-LC)."""
    try:
        esds = find_box(data, [b"esds"], entry.body + 28, entry.end)
    except Fmp4Error:
        return 2
    payload = data[esds.body + 4 : esds.end]
    # Walk descriptors: tag 0x05 is DecoderSpecificInfo; its first 5 bits are the type.
    i = 0
    while i < len(payload):
        tag = payload[i]
        i += 1
        length = 0
        for _ in range(4):
            byte = payload[i]
            i += 1
            length = (length << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        if tag == 0x03:
            i += 3  # ES_ID, flags (no optional fields written by ffmpeg)
            continue
        if tag == 0x04:
            i += 13  # DecoderConfigDescriptor fixed part
            continue
        if tag == 0x05 and length:
            return payload[i] >> 3
        i += length
    return 2


def parse_init(data: bytes) -> TrackInfo:
    """Describe the single track of an init segment (``ftyp`` + ``moov``)."""
    mdhd = find_box(data, [b"moov", b"trak", b"mdia", b"mdhd"])
    version = data[mdhd.body]
    timescale_at = mdhd.body + (20 if version == 1 else 12)
    (timescale,) = struct.unpack_from(">I", data, timescale_at)
    hdlr = find_box(data, [b"moov", b"trak", b"mdia", b"hdlr"])
    handler = data[hdlr.body + 8 : hdlr.body + 12].decode("latin1")
    stsd = find_box(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])

    media_time = 0
    try:
        elst = find_box(data, [b"moov", b"trak", b"edts", b"elst"])
    except Fmp4Error:
        pass
    else:
        version = data[elst.body]
        # Skip empty edits (media_time -1); the first real edit says where media starts.
        (count,) = struct.unpack_from(">I", data, elst.body + 4)
        at = elst.body + 8
        for _ in range(count):
            if version == 1:
                _, mt = struct.unpack_from(">Qq", data, at)
                at += 20
            else:
                _, mt = struct.unpack_from(">Ii", data, at)
                at += 12
            if mt >= 0:
                media_time = mt
                break

    default_duration = default_size = 0
    try:
        trex = find_box(data, [b"moov", b"mvex", b"trex"])
    except Fmp4Error:
        pass
    else:
        # version/flags, track_ID, default_sample_description_index, duration, size, flags
        default_duration, default_size = struct.unpack_from(">II", data, trex.body + 12)

    return TrackInfo(
        handler=handler,
        timescale=timescale,
        codec=_codec_string(data, stsd),
        media_time=media_time,
        default_sample_duration=default_duration,
        default_sample_size=default_size,
    )


@dataclass(frozen=True)
class Fragment:
    """One ``moof`` + ``mdat`` pair (with any styp/sidx before it), in media-file bytes."""

    offset: int
    size: int
    base_decode_time: int
    duration: int
    sample_count: int
    #: Composition offset of the first sample (signed, trun version 1).
    first_composition_offset: int
    #: Bytes from the fragment's start to the end of its first sample: with the moof, the
    #: part a player needs to decode the fragment's leading keyframe.
    first_sample_end: int

    @property
    def presentation_time(self) -> int:
        return self.base_decode_time + self.first_composition_offset


def _parse_traf(
    data: bytes, traf: Box, moof: Box, track: TrackInfo
) -> tuple[int, int, int, int, int]:
    """(base decode time, duration, samples, first cts offset, first sample end in moof)."""
    tfhd = find_box(data, [b"tfhd"], traf.body, traf.end)
    (flags,) = struct.unpack_from(">I", data, tfhd.body)
    flags &= 0xFFFFFF
    at = tfhd.body + 8  # version/flags + track_ID
    default_duration, default_size = track.default_sample_duration, track.default_sample_size
    if flags & 0x1:
        at += 8
    if flags & 0x2:
        at += 4
    if flags & 0x8:
        (default_duration,) = struct.unpack_from(">I", data, at)
        at += 4
    if flags & 0x10:
        (default_size,) = struct.unpack_from(">I", data, at)
        at += 4

    tfdt = find_box(data, [b"tfdt"], traf.body, traf.end)
    if data[tfdt.body] == 1:
        (base_time,) = struct.unpack_from(">Q", data, tfdt.body + 4)
    else:
        (base_time,) = struct.unpack_from(">I", data, tfdt.body + 4)

    duration = samples = 0
    first_cts = 0
    first_end: int | None = None
    for trun in (b for b in iter_boxes(data, traf.body, traf.end) if b.type == b"trun"):
        (version_flags,) = struct.unpack_from(">I", data, trun.body)
        version, tflags = version_flags >> 24, version_flags & 0xFFFFFF
        (count,) = struct.unpack_from(">I", data, trun.body + 4)
        at = trun.body + 8
        data_offset = 0
        if tflags & 0x1:
            (data_offset,) = struct.unpack_from(">i", data, at)
            at += 4
        if tflags & 0x4:
            at += 4
        for index in range(count):
            sample_duration, sample_size, cts = default_duration, default_size, 0
            if tflags & 0x100:
                (sample_duration,) = struct.unpack_from(">I", data, at)
                at += 4
            if tflags & 0x200:
                (sample_size,) = struct.unpack_from(">I", data, at)
                at += 4
            if tflags & 0x400:
                at += 4
            if tflags & 0x800:
                (cts,) = struct.unpack_from(">i" if version else ">I", data, at)
                at += 4
            if first_end is None and index == 0:
                first_cts = cts
                # default-base-is-moof: data_offset counts from the moof's first byte.
                first_end = moof.offset + data_offset + sample_size
            duration += sample_duration
        samples += count
    if first_end is None:
        raise Fmp4Error(f"fragment at {moof.offset} has no samples")
    return base_time, duration, samples, first_cts, first_end


def _fragment(
    data: bytes, moof: Box, data_offset: int, track: TrackInfo, start: int, end: int
) -> Fragment:
    """The fragment from ``start`` to ``end`` (file offsets) whose ``moof`` box lies in
    ``data``; ``data`` begins at file offset ``data_offset`` (0 for a whole file, the
    moof's own offset when only the moof was read)."""
    traf = find_box(data, [b"traf"], moof.body, moof.end)
    base, duration, samples, cts, first_end = _parse_traf(data, traf, moof, track)
    return Fragment(
        offset=start,
        size=end - start,
        base_decode_time=base,
        duration=duration,
        sample_count=samples,
        first_composition_offset=cts,
        first_sample_end=data_offset + first_end - start,
    )


def parse_fragments(data: bytes, track: TrackInfo) -> list[Fragment]:
    """Every fragment of a media file (a whole fMP4 file, or one segment's bytes)."""
    fragments: list[Fragment] = []
    pending_start: int | None = None
    moof: Box | None = None
    for box in iter_boxes(data):
        if box.type in FRAGMENT_PREFIX_BOXES:
            if pending_start is None:
                pending_start = box.offset
        elif box.type == b"moof":
            moof = box
            if pending_start is None:
                pending_start = box.offset
        elif box.type == b"mdat" and moof is not None and pending_start is not None:
            fragments.append(_fragment(data, moof, 0, track, pending_start, box.end))
            pending_start, moof = None, None
        elif box.type in (b"ftyp", b"moov", b"free", b"skip", b"mfra", b"udta", b"meta"):
            continue
    return fragments


def init_segment(data: bytes) -> bytes:
    """The init segment (everything before the first fragment) of a whole fMP4 file."""
    for box in iter_boxes(data):
        if box.type in FRAGMENT_PREFIX_BOXES or box.type == b"moof":
            return data[: box.offset]
    raise Fmp4Error("no fragments found")


# --- streaming: a whole encoder output, read box by box ---------------------------------

#: Bytes read at once when a box header is looked at (a large-size header is 16 bytes).
_HEADER = 16


def _read_box_header(handle: BinaryIO, offset: int, end: int) -> Box | None:
    """The box at ``offset`` of an open file, or None at the end."""
    if offset + 8 > end:
        return None
    handle.seek(offset)
    head = handle.read(_HEADER)
    if len(head) < 8:
        return None
    size, kind = struct.unpack_from(">I4s", head)
    header = 8
    if size == 1:
        if len(head) < 16:
            raise Fmp4Error(f"box {kind!r} at {offset} has a truncated large size")
        (size,) = struct.unpack_from(">Q", head, 8)
        header = 16
    elif size == 0:
        size = end - offset
    if size < header or offset + size > end:
        raise Fmp4Error(f"box {kind!r} at {offset} overruns the file")
    return Box(kind, offset, size, header)


def iter_file_boxes(handle: BinaryIO) -> Iterator[Box]:
    """The top-level boxes of an open file, reading only their headers."""
    end = handle.seek(0, 2)
    offset = 0
    while (box := _read_box_header(handle, offset, end)) is not None:
        yield box
        offset = box.end


def scan_file(handle: BinaryIO) -> tuple[bytes, TrackInfo, list[Fragment]]:
    """The init segment, the track and every fragment of an fMP4 file, holding at most
    one ``moof`` box in memory (never the media data): memory stays flat however long
    the rendition is."""
    init: bytes | None = None
    track: TrackInfo | None = None
    fragments: list[Fragment] = []
    pending_start: int | None = None
    moof: Box | None = None
    moof_bytes = b""
    for box in iter_file_boxes(handle):
        if box.type in FRAGMENT_PREFIX_BOXES or box.type == b"moof":
            if init is None:
                handle.seek(0)
                init = handle.read(box.offset)
                track = parse_init(init)
            if pending_start is None:
                pending_start = box.offset
            if box.type == b"moof":
                moof = box
                handle.seek(box.offset)
                moof_bytes = handle.read(box.size)
        elif box.type == b"mdat" and moof is not None and pending_start is not None:
            assert track is not None
            local = Box(moof.type, 0, moof.size, moof.header)
            fragments.append(
                _fragment(moof_bytes, local, moof.offset, track, pending_start, box.end)
            )
            pending_start, moof, moof_bytes = None, None, b""
    if init is None or track is None:
        raise Fmp4Error("no fragments found")
    return init, track, fragments


def copy_range(source: BinaryIO, target: BinaryIO, start: int, length: int) -> None:
    """Copy ``length`` bytes from ``start`` of ``source`` in chunks of 1 MiB."""
    source.seek(start)
    remaining = length
    while remaining > 0:
        chunk = source.read(min(remaining, 1 << 20))
        if not chunk:
            raise Fmp4Error(f"the file ends {remaining} bytes before the range it holds")
        target.write(chunk)
        remaining -= len(chunk)
