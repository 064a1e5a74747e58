"""The tus 1.0.0 protocol as pure functions: header parsing and validation, metadata,
checksums. Nothing here does I/O, so all of it is unit tested directly.

Spec: https://tus.io/protocols/resumable-upload (core, creation, creation-with-upload,
expiration, checksum, termination).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Final, Protocol

from vidflow.catalog.fields import (
    DESCRIPTION_MAX,
    TITLE_MAX,
    InvalidField,
    clean_text,
    normalize_tags,
)
from vidflow.problems import Problem

TUS_VERSION: Final = "1.0.0"
TUS_EXTENSIONS: Final = (
    "creation",
    "creation-with-upload",
    "expiration",
    "checksum",
    "termination",
)
OFFSET_CONTENT_TYPE: Final = "application/offset+octet-stream"

#: S3's smallest part, except the last one. Shorter tails are parked between PATCHes.
MIN_PART_SIZE: Final = 5 * 1024**2
#: S3's largest part number.
MAX_PARTS: Final = 10_000

METADATA_HEADER_MAX: Final = 16 * 1024
METADATA_KEYS_MAX: Final = 32
FILENAME_MAX: Final = 255
#: The metadata a video keeps; other keys (Uppy sends `name`, `type`, `relativePath`)
#: are accepted and ignored.
KNOWN_METADATA: Final = ("filename", "filetype", "title", "description", "tags")

_DIGITS = re.compile(r"^[0-9]{1,20}$")
_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_MIME = re.compile(r"^[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,127}$")


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def copy(self) -> Hasher: ...


def _md5() -> Hasher:
    # tus offers MD5 for integrity, not security.
    return hashlib.md5(usedforsecurity=False)


#: tus name -> constructor. sha1 is the one the spec requires every server to offer.
CHECKSUM_ALGORITHMS: Final[Mapping[str, Callable[[], Hasher]]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "md5": _md5,
}


# --- errors ---------------------------------------------------------------------------


class BadRequest(Problem):
    status = 400
    title = "Bad request"


class VersionMismatch(Problem):
    status = 412
    title = "Unsupported tus version"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Tus-Version": TUS_VERSION})


class UnsupportedMediaType(Problem):
    status = 415
    title = "Unsupported media type"


class UploadTooLarge(Problem):
    status = 413
    title = "Upload too large"


class ChecksumMismatch(Problem):
    status = 460
    title = "Checksum mismatch"


# --- headers ----------------------------------------------------------------------------


def check_tus_resumable(value: str | None) -> None:
    """Every request but OPTIONS must say which protocol version it speaks (412 if not)."""
    if value is None:
        raise VersionMismatch(
            f"the Tus-Resumable header is required (this server speaks {TUS_VERSION})"
        )
    if value.strip() != TUS_VERSION:
        raise VersionMismatch(
            f"Tus-Resumable {value.strip()!r} is not supported; this server speaks {TUS_VERSION}"
        )


def _non_negative(name: str, value: str | None) -> int:
    if value is None:
        raise BadRequest(f"the {name} header is required")
    value = value.strip()
    if not _DIGITS.fullmatch(value):
        raise BadRequest(f"{name} must be a non-negative integer, got {value[:40]!r}")
    return int(value)


def parse_upload_length(value: str | None, *, max_size: int, deferred: str | None = None) -> int:
    """The ``Upload-Length`` of a creation request: 400 when missing or malformed, 413
    above ``max_size``. Deferred lengths are not offered."""
    if deferred is not None and value is None:
        raise BadRequest("Upload-Defer-Length is not supported: send Upload-Length")
    length = _non_negative("Upload-Length", value)
    if length == 0:
        raise BadRequest("Upload-Length is 0: an empty file is not a video")
    if length > max_size:
        raise UploadTooLarge(
            f"Upload-Length {length} exceeds the maximum upload size of {max_size} bytes",
            headers={"Tus-Max-Size": str(max_size)},
        )
    return length


def parse_upload_offset(value: str | None) -> int:
    return _non_negative("Upload-Offset", value)


def parse_content_length(value: str | None) -> int | None:
    """``Content-Length`` if present (a chunked body has none)."""
    return None if value is None else _non_negative("Content-Length", value)


def is_offset_stream(content_type: str | None) -> bool:
    """Is this the media type a tus body must have (parameters ignored)?"""
    return (content_type or "").split(";")[0].strip().lower() == OFFSET_CONTENT_TYPE


def require_offset_stream(content_type: str | None) -> None:
    if not is_offset_stream(content_type):
        raise UnsupportedMediaType(
            f"a PATCH body must be sent as Content-Type: {OFFSET_CONTENT_TYPE}, "
            f"got {(content_type or 'none')[:80]!r}"
        )


@dataclass(frozen=True)
class ExpectedChecksum:
    """The ``Upload-Checksum`` of one request body."""

    algorithm: str
    digest: bytes

    def hasher(self) -> Hasher:
        return CHECKSUM_ALGORITHMS[self.algorithm]()

    def matches(self, hasher: Hasher) -> bool:
        return hasher.digest() == self.digest


def parse_checksum(value: str | None) -> ExpectedChecksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``; 400 for an unknown algorithm or a
    digest that is not base64 of the right length."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        supported = ", ".join(CHECKSUM_ALGORITHMS)
        raise BadRequest(
            f"checksum algorithm {algorithm[:20]!r} is not supported; use one of: {supported}"
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("Upload-Checksum: the digest is not valid base64") from None
    expected = CHECKSUM_ALGORITHMS[algorithm]().digest()
    if len(digest) != len(expected):
        raise BadRequest(
            f"Upload-Checksum: a {algorithm} digest has {len(expected)} bytes, got {len(digest)}"
        )
    return ExpectedChecksum(algorithm, digest)


@dataclass(frozen=True)
class ChunkRequest:
    """What a PATCH (or a creation-with-upload POST) says about its body."""

    offset: int
    content_length: int | None
    checksum: ExpectedChecksum | None


def parse_patch(
    *,
    content_type: str | None,
    upload_offset: str | None,
    content_length: str | None,
    upload_checksum: str | None,
) -> ChunkRequest:
    require_offset_stream(content_type)
    return ChunkRequest(
        offset=parse_upload_offset(upload_offset),
        content_length=parse_content_length(content_length),
        checksum=parse_checksum(upload_checksum),
    )


def parse_creation_body(
    *,
    content_type: str | None,
    content_length: str | None,
    upload_checksum: str | None,
    transfer_encoding: str | None = None,
) -> ChunkRequest | None:
    """The first chunk of a creation-with-upload POST, or None for a plain creation."""
    length = parse_content_length(content_length)
    has_body = bool(length) or "chunked" in (transfer_encoding or "").lower()
    if not has_body:
        return None
    require_offset_stream(content_type)
    return ChunkRequest(offset=0, content_length=length, checksum=parse_checksum(upload_checksum))


# --- metadata ---------------------------------------------------------------------------


def parse_metadata(value: str | None) -> dict[str, str]:
    """Decode ``Upload-Metadata``: comma-separated ``key base64(value)`` pairs (a key alone
    means an empty value). Values must be UTF-8. 400 with the reason otherwise."""
    if value is None or not value.strip():
        return {}
    if len(value) > METADATA_HEADER_MAX:
        raise BadRequest(f"Upload-Metadata is longer than {METADATA_HEADER_MAX} characters")
    pairs = [p.strip() for p in value.split(",")]
    if len(pairs) > METADATA_KEYS_MAX:
        raise BadRequest(f"Upload-Metadata has more than {METADATA_KEYS_MAX} keys")
    result: dict[str, str] = {}
    for pair in pairs:
        key, _, encoded = pair.partition(" ")
        encoded = encoded.strip()
        if not _METADATA_KEY.fullmatch(key):
            raise BadRequest(f"Upload-Metadata key {key[:40]!r} is not a valid key")
        if key in result:
            raise BadRequest(f"Upload-Metadata key {key!r} appears twice")
        try:
            raw = base64.b64decode(encoded, validate=True) if encoded else b""
        except (binascii.Error, ValueError):
            raise BadRequest(f"Upload-Metadata value of {key!r} is not valid base64") from None
        try:
            result[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"Upload-Metadata value of {key!r} is not UTF-8 text") from None
    return result


def encode_metadata(values: Mapping[str, str]) -> str:
    """The ``Upload-Metadata`` header for ``values`` (the inverse of parse_metadata)."""
    return ",".join(
        f"{key} {base64.b64encode(val.encode()).decode('ascii')}" if val else key
        for key, val in values.items()
    )


@dataclass(frozen=True)
class VideoMetadata:
    """The validated metadata of an upload, as the catalog stores it."""

    title: str
    description: str = ""
    tags: tuple[str, ...] = ()
    filename: str | None = None
    filetype: str | None = None

    def as_upload_metadata(self) -> dict[str, str]:
        """What HEAD echoes back as Upload-Metadata (and ``uploads.upload_metadata``)."""
        values = {"title": self.title}
        if self.description:
            values["description"] = self.description
        if self.tags:
            values["tags"] = ",".join(self.tags)
        if self.filename is not None:
            values["filename"] = self.filename
        if self.filetype is not None:
            values["filetype"] = self.filetype
        return values


# Title, description and tag rules are shared with the viewer API (vidflow.catalog.fields).
def _text(key: str, value: str, limit: int, *, multiline: bool = False) -> str:
    try:
        return clean_text(key, value, limit, multiline=multiline)
    except InvalidField as exc:
        raise BadRequest(f"metadata {exc}") from None


def _tags(value: str) -> tuple[str, ...]:
    """A comma-separated tag list (the tus ``tags`` metadata value)."""
    try:
        return normalize_tags(value.split(","))
    except InvalidField as exc:
        raise BadRequest(str(exc)) from None


def _title_from_filename(filename: str) -> str:
    stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem[1:] else stem
    return stem.strip()[:TITLE_MAX]


def validate_metadata(values: Mapping[str, str]) -> VideoMetadata:
    """Check the decoded metadata of a creation request; 400 with the reason.

    ``title`` falls back to the file name without its extension, then to "Untitled".
    ``tags`` is a comma-separated list. ``filetype``, when given, must be a video type (or
    application/octet-stream, which some browsers send for unknown extensions).
    """
    filename = values.get("filename")
    if filename is not None:
        filename = _text("filename", filename, FILENAME_MAX) or None
    filetype = values.get("filetype")
    if filetype is not None:
        filetype = filetype.strip().lower() or None
        if filetype is not None:
            if not _MIME.fullmatch(filetype):
                raise BadRequest(f"metadata 'filetype' {filetype[:80]!r} is not a media type")
            if not (filetype.startswith("video/") or filetype == "application/octet-stream"):
                raise BadRequest(f"metadata 'filetype' {filetype!r} is not a video type")
    title = _text("title", values.get("title", ""), TITLE_MAX)
    if not title:
        title = (_title_from_filename(filename) if filename else "") or "Untitled"
    description = _text(
        "description", values.get("description", ""), DESCRIPTION_MAX, multiline=True
    )
    return VideoMetadata(
        title=title,
        description=description,
        tags=_tags(values.get("tags", "")),
        filename=filename,
        filetype=filetype,
    )


# --- responses ---------------------------------------------------------------------------


def http_date(moment: datetime) -> str:
    """RFC 9110 date, as Upload-Expires wants it: ``Wed, 25 Jun 2026 12:00:00 GMT``."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def capability_headers(*, max_size: int) -> dict[str, str]:
    """What OPTIONS advertises."""
    return {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": ",".join(TUS_EXTENSIONS),
        "Tus-Max-Size": str(max_size),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
    }
