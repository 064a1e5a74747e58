"""tus 1.0.0 header parsing, metadata validation and checksums (pure functions)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from vidflow.uploads import protocol
from vidflow.uploads.protocol import (
    BadRequest,
    ChecksumMismatch,
    UnsupportedMediaType,
    UploadTooLarge,
    VersionMismatch,
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- Tus-Resumable, lengths, offsets, content type ----------------------------------------


def test_tus_resumable_must_be_1_0_0() -> None:
    protocol.check_tus_resumable("1.0.0")
    with pytest.raises(VersionMismatch, match="required") as missing:
        protocol.check_tus_resumable(None)
    assert missing.value.status == 412
    assert missing.value.headers["Tus-Version"] == "1.0.0"
    with pytest.raises(VersionMismatch, match=r"0\.2\.2"):
        protocol.check_tus_resumable("0.2.2")


@pytest.mark.parametrize("value", [None, "", "-1", "12a", "1.5", " ", "9" * 21])
def test_upload_length_must_be_a_non_negative_integer(value: str | None) -> None:
    with pytest.raises(BadRequest):
        protocol.parse_upload_length(value, max_size=100)


def test_upload_length_limits() -> None:
    assert protocol.parse_upload_length(" 100 ", max_size=100) == 100
    with pytest.raises(UploadTooLarge, match="exceeds") as too_big:
        protocol.parse_upload_length("101", max_size=100)
    assert too_big.value.status == 413
    assert too_big.value.headers["Tus-Max-Size"] == "100"
    with pytest.raises(BadRequest, match="empty"):
        protocol.parse_upload_length("0", max_size=100)
    with pytest.raises(BadRequest, match="Defer"):
        protocol.parse_upload_length(None, max_size=100, deferred="1")


def test_upload_offset() -> None:
    assert protocol.parse_upload_offset("0") == 0
    assert protocol.parse_upload_offset("5242880") == 5242880
    for bad in (None, "-3", "x"):
        with pytest.raises(BadRequest):
            protocol.parse_upload_offset(bad)


def test_patch_requires_the_offset_stream_media_type() -> None:
    chunk = protocol.parse_patch(
        content_type="application/offset+octet-stream; charset=binary",
        upload_offset="10",
        content_length="5",
        upload_checksum=None,
    )
    assert chunk == protocol.ChunkRequest(offset=10, content_length=5, checksum=None)
    for wrong in (None, "application/octet-stream", "text/plain"):
        with pytest.raises(UnsupportedMediaType) as exc:
            protocol.parse_patch(
                content_type=wrong, upload_offset="0", content_length="1", upload_checksum=None
            )
        assert exc.value.status == 415


def test_creation_body_is_optional_but_typed() -> None:
    assert (
        protocol.parse_creation_body(content_type=None, content_length=None, upload_checksum=None)
        is None
    )
    assert (
        protocol.parse_creation_body(content_type=None, content_length="0", upload_checksum=None)
        is None
    )
    first = protocol.parse_creation_body(
        content_type=protocol.OFFSET_CONTENT_TYPE, content_length="42", upload_checksum=None
    )
    assert first == protocol.ChunkRequest(offset=0, content_length=42, checksum=None)
    with pytest.raises(UnsupportedMediaType):
        protocol.parse_creation_body(
            content_type="video/mp4", content_length="42", upload_checksum=None
        )
    chunked = protocol.parse_creation_body(
        content_type=protocol.OFFSET_CONTENT_TYPE,
        content_length=None,
        upload_checksum=None,
        transfer_encoding="chunked",
    )
    assert chunked is not None and chunked.content_length is None


# --- checksums ------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "md5"])
def test_checksum_round_trip(algorithm: str) -> None:
    body = b"tus checksum extension"
    digest = hashlib.new(algorithm, body).digest()
    expected = protocol.parse_checksum(f"{algorithm} {base64.b64encode(digest).decode()}")
    assert expected is not None and expected.algorithm == algorithm
    hasher = expected.hasher()
    hasher.update(body)
    assert expected.matches(hasher)
    other = expected.hasher()
    other.update(body + b"!")
    assert not expected.matches(other)


def test_checksum_header_errors() -> None:
    assert protocol.parse_checksum(None) is None
    with pytest.raises(BadRequest, match="not supported; use one of: sha1, sha256, md5"):
        protocol.parse_checksum("crc32 AAAA")
    with pytest.raises(BadRequest, match="base64"):
        protocol.parse_checksum("sha1 !!!notbase64")
    with pytest.raises(BadRequest, match="20 bytes"):
        protocol.parse_checksum("sha1 " + base64.b64encode(b"short").decode())
    # Algorithm names are case-insensitive.
    digest = base64.b64encode(hashlib.sha1(b"").digest()).decode()  # noqa: S324
    parsed = protocol.parse_checksum(f"SHA1 {digest}")
    assert parsed is not None and parsed.algorithm == "sha1"


def test_checksum_mismatch_is_status_460() -> None:
    assert ChecksumMismatch("x").status == 460


# --- metadata ---------------------------------------------------------------------------------


def test_metadata_round_trip_and_empty_values() -> None:
    header = f"filename {b64('clip.mp4')},title {b64('Über cats')},is_draft"
    assert protocol.parse_metadata(header) == {
        "filename": "clip.mp4",
        "title": "Über cats",
        "is_draft": "",
    }
    values = {"title": "A, B", "tags": "x,y", "empty": ""}
    assert protocol.parse_metadata(protocol.encode_metadata(values)) == values
    assert protocol.parse_metadata(None) == {}
    assert protocol.parse_metadata("  ") == {}


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("title not*base64", "not valid base64"),
        ("title " + base64.b64encode(bytes([0xFF, 0xFE])).decode(), "not UTF-8"),
        (f"title {b64('a')},title {b64('b')}", "appears twice"),
        (f"bad/key {b64('a')}", "not a valid key"),
        (",".join(f"k{i} {b64('v')}" for i in range(40)), "more than 32 keys"),
        ("title " + "A" * 20000, "longer than"),
    ],
)
def test_bad_metadata_gets_a_clear_400(header: str, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason) as exc:
        protocol.parse_metadata(header)
    assert exc.value.status == 400


def test_validate_metadata_normalises() -> None:
    meta = protocol.validate_metadata(
        {
            "filename": "holiday.final.mov",
            "filetype": "Video/QuickTime",
            "description": "line one\nline two",
            "tags": "Travel, beach ,travel,,sunset",
            "relativePath": "ignored",
        }
    )
    assert meta.title == "holiday.final"
    assert meta.filetype == "video/quicktime"
    assert meta.tags == ("travel", "beach", "sunset")
    assert meta.description == "line one\nline two"
    assert meta.as_upload_metadata()["tags"] == "travel,beach,sunset"
    assert protocol.validate_metadata({}).title == "Untitled"
    assert protocol.validate_metadata({"title": "  Mine  "}).title == "Mine"
    assert protocol.validate_metadata({"filetype": "application/octet-stream"}).filetype


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"title": "x" * 201}, "title.*201 characters long; the limit is 200"),
        ({"description": "d" * 5001}, "description"),
        ({"title": "bad\x00title"}, "control characters"),
        ({"title": "two\nlines"}, "control characters"),
        ({"tags": ",".join(f"tag{i}" for i in range(21))}, "21 tags given; at most 20"),
        ({"tags": "t" * 41}, "longer than 40"),
        ({"tags": "ok,<script>"}, "may not have"),
        ({"filetype": "image/png"}, "not a video type"),
        ({"filetype": "not a type"}, "not a media type"),
        ({"filename": "f" * 256}, "filename"),
    ],
)
def test_invalid_metadata_is_rejected_with_the_reason(values: dict[str, str], reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        protocol.validate_metadata(values)


# --- responses ----------------------------------------------------------------------------------


def test_http_date_is_rfc_9110_in_gmt() -> None:
    moment = datetime(2026, 6, 25, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert protocol.http_date(moment) == "Thu, 25 Jun 2026 12:00:00 GMT"
    assert protocol.http_date(datetime(2026, 1, 1, tzinfo=UTC)).endswith("00:00:00 GMT")


def test_options_advertises_the_extensions() -> None:
    headers = protocol.capability_headers(max_size=20 * 1024**3)
    assert headers["Tus-Version"] == "1.0.0"
    assert headers["Tus-Max-Size"] == str(20 * 1024**3)
    assert set(headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "expiration",
        "checksum",
        "termination",
    }
    assert headers["Tus-Checksum-Algorithm"].split(",")[0] == "sha1"
