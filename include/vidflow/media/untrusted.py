"""How untrusted originals are opened, and how what tools say about them is logged.

An uploaded file is hostile until proven otherwise. ffmpeg's demuxers can open other
inputs (an HLS playlist fetches the segments it names, ``concat``/``ffconcat`` the files
it lists, ``image2`` a pattern of paths), so every ffprobe/ffmpeg that reads an original
gets:

* ``-format_whitelist``: only the demuxers of single-file containers
  (:data:`ALLOWED_DEMUXERS`); ffmpeg refuses any other after detecting it and before its
  ``read_header`` opens anything;
* ``-protocol_whitelist``: the protocols of the source itself (``http,https,tcp,tls`` for
  a presigned URL, ``file`` for a local path); nested inputs inherit it;

and :func:`check_container` checks the probed ``format_name`` against the same list
before anything is decoded (defence in depth).

Presigned URLs are credentials (valid for a day): :func:`redact` strips query strings,
signature parameters and access keys from every command line, stderr tail and error
message before it is logged or raised. What uploaders read is a fixed sentence, never
tool output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Final

#: Demuxers (ffmpeg names) of single-file containers and elementary streams that never
#: open another input. Still images and audio-only containers are accepted so that the
#: uploader learns *why* the file is not a video ("a still image", "only audio").
ALLOWED_DEMUXERS: Final = frozenset(
    {
        # video containers
        "mov",
        "mp4",
        "m4a",
        "3gp",
        "3g2",
        "mj2",
        "matroska",
        "webm",
        "avi",
        "mpegts",
        "mpeg",
        "flv",
        "asf",
        "ogg",
        "mxf",
        "dv",
        "gif",
        "nut",
        # raw video elementary streams
        "h264",
        "hevc",
        "m4v",
        "mpegvideo",
        "yuv4mpegpipe",
        # audio only (rejected later with "no video stream")
        "mp3",
        "wav",
        "flac",
        "aac",
        # single still images (rejected later as "a still image")
        "png_pipe",
        "jpeg_pipe",
        "bmp_pipe",
        "webp_pipe",
        "tiff_pipe",
    }
)
FORMAT_WHITELIST: Final = ",".join(sorted(ALLOWED_DEMUXERS))
NETWORK_PROTOCOLS: Final = "http,https,tcp,tls"
LOCAL_PROTOCOLS: Final = "file"
#: Fail instead of hanging on a dead connection (microseconds).
RW_TIMEOUT_MICROSECONDS: Final = "30000000"

NOT_ACCEPTED: Final = (
    "The file's format ({name}) is not accepted: upload the video file itself (MP4, MOV, "
    "MKV, WebM, AVI, MPEG-TS...). Playlists (HLS .m3u8), lists of other files (ffconcat) "
    "and image sequences are refused."
)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def input_options(source: str) -> dict[str, str]:
    """ffmpeg/ffprobe input options for an original at ``source`` (URL or path)."""
    options = {
        "format_whitelist": FORMAT_WHITELIST,
        "protocol_whitelist": NETWORK_PROTOCOLS if is_url(source) else LOCAL_PROTOCOLS,
    }
    if is_url(source):
        options["rw_timeout"] = RW_TIMEOUT_MICROSECONDS
    return options


def input_args(source: str) -> list[str]:
    """The same options as command-line arguments (they go before ``-i``/the input)."""
    return [arg for key, value in input_options(source).items() for arg in (f"-{key}", value)]


def demuxer_names(format_name: str) -> list[str]:
    """``"mov,mp4,m4a,3gp,3g2,mj2"`` -> its names (one demuxer may have several)."""
    return [name.strip() for name in format_name.split(",") if name.strip()]


def is_allowed_container(format_name: str) -> bool:
    """Whether a probed ``format_name`` is a demuxer of the allow-list."""
    return any(name in ALLOWED_DEMUXERS for name in demuxer_names(format_name))


_REFUSED = re.compile(r"\[([A-Za-z0-9_,]{1,60}) @ 0x[0-9a-fA-F]+\] Format not on whitelist")


def refused_demuxer(stderr: str) -> str | None:
    """The demuxer ffmpeg refused because of the format whitelist, if it did."""
    match = _REFUSED.search(stderr)
    if match:
        return match.group(1)
    if "format not on whitelist" in stderr.lower():
        return "unknown"
    return None


def not_accepted_reason(name: str) -> str:
    """The uploader-facing reason of a refused container (``name`` is ffmpeg's)."""
    short = demuxer_names(name)[0] if demuxer_names(name) else "unknown"
    return NOT_ACCEPTED.format(name=short)


# --- redaction -----------------------------------------------------------------------------

REDACTED: Final = "[redacted]"
_URL_QUERY = re.compile(r"((?:https?|s3|s3a)://[^\s?#'\"<>]+)\?[^\s'\"<>]*", re.IGNORECASE)
_CREDENTIAL_PARAM = re.compile(
    r"\b(X-Amz-[A-Za-z-]+|AWSAccessKeyId|Signature|x-amz-security-token|Expires"
    r"|aws_secret_access_key|aws_access_key_id|aws_session_token)=[^\s&'\"<>]+",
    re.IGNORECASE,
)
_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with credentials removed: URL query strings (presigned URLs are keys to
    the original), signature/credential parameters, AWS access key ids, and any of
    ``secrets`` (values of at least 4 characters) verbatim."""
    text = _URL_QUERY.sub(rf"\1?{REDACTED}", text)
    text = _CREDENTIAL_PARAM.sub(rf"\1={REDACTED}", text)
    text = _ACCESS_KEY.sub(REDACTED, text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def redact_command(args: Sequence[str]) -> str:
    """A command line for the log, credentials removed."""
    return redact(" ".join(args))
