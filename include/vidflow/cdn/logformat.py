"""The CloudFront standard log format (legacy "access logs"), defined once.

Every producer and consumer of CDN logs uses this module: the nginx edges (their
``log_format`` is generated from :data:`RAW_FIELDS`), the shipper (which turns nginx's
raw line into the exact CloudFront line), the traffic model's history writer and the
analytics parser.

The format, as AWS documents it: W3C extended log format, tab-separated, two header
lines (``#Version: 1.0`` and ``#Fields: ...`` naming the 33 fields below in order),
date and time in UTC, ``-`` for an empty value, and URL-encoding (``%XX``) of the bytes
0x00-0x20 and 0x7F-0xFF and of the characters ``< > " # % { } | \\ ^ ~ [ ] ` '`` in
field values. Objects are named ``{prefix}{distribution}.YYYY-MM-DD-HH.{unique}.gz``,
by the UTC hour in which their requests happened (:class:`LogObjectName`).

Why nginx does not write the final line itself: nginx's ``log_format`` can escape only
as ``default`` (``\\xHH``) or ``json``; it cannot %-encode, and it cannot compute the
result types. So each edge writes one JSON object per request (``escape=json``, one
``write()`` per line) and :func:`record_from_raw` turns it into a :class:`LogRecord`.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Final
from urllib.parse import unquote_to_bytes

FIELDS: Final[tuple[str, ...]] = (
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
)
VERSION_HEADER: Final = "#Version: 1.0"
FIELDS_HEADER: Final = "#Fields: " + " ".join(FIELDS)

#: x-edge-result-type values (CloudFront also has LimitExceeded, CapacityExceeded and
#: Redirect, which these edges never produce).
HIT: Final = "Hit"
REFRESH_HIT: Final = "RefreshHit"
MISS: Final = "Miss"
ERROR: Final = "Error"
#: x-edge-detailed-result-type of an edge miss that the shield answered from its cache.
ORIGIN_SHIELD_HIT: Final = "OriginShieldHit"

_ENCODED: Final = (
    frozenset(b"<>\"#%{}|\\^~[]`'") | frozenset(range(0x21)) | frozenset(range(0x7F, 0x100))
)


class MalformedLine(ValueError):
    """A log line that is not a valid CloudFront (or raw nginx) line; says why."""


# --- values ---------------------------------------------------------------------------


def encode_value(value: str | None) -> str:
    """One field value as CloudFront writes it: ``-`` when empty, else %-encoded.

    Text is encoded as UTF-8 (lone surrogates from undecodable input bytes go back to
    those bytes). A value that is literally ``-`` is written ``%2D`` so that it stays
    distinguishable from an empty one (CloudFront itself would write ``-``)."""
    if value is None or value == "":
        return "-"
    if value == "-":
        return "%2D"
    raw = value.encode("utf-8", "surrogateescape")
    return "".join(f"%{b:02X}" if b in _ENCODED else chr(b) for b in raw)


def decode_value(text: str) -> str | None:
    """Inverse of :func:`encode_value` (bytes that are not UTF-8 become lone surrogates)."""
    if text == "-":
        return None
    return unquote_to_bytes(text).decode("utf-8", "surrogateescape")


# --- the record -----------------------------------------------------------------------


@dataclass(frozen=True)
class LogRecord:
    """One request as a CloudFront standard log line; attributes follow :data:`FIELDS`
    (``date`` and ``time`` are one UTC ``timestamp``, whole seconds). ``None`` is ``-``."""

    timestamp: datetime
    edge_location: str
    sc_bytes: int
    c_ip: str
    cs_method: str
    cs_host: str
    cs_uri_stem: str
    sc_status: int
    cs_referer: str | None
    cs_user_agent: str | None
    cs_uri_query: str | None
    cs_cookie: str | None
    x_edge_result_type: str
    x_edge_request_id: str
    x_host_header: str | None
    cs_protocol: str
    cs_bytes: int
    time_taken: float
    x_forwarded_for: str | None
    ssl_protocol: str | None
    ssl_cipher: str | None
    x_edge_response_result_type: str
    cs_protocol_version: str
    fle_status: str | None
    fle_encrypted_fields: int | None
    c_port: int
    time_to_first_byte: float
    x_edge_detailed_result_type: str
    sc_content_type: str | None
    sc_content_len: int | None
    sc_range_start: int | None
    sc_range_end: int | None

    @property
    def hour(self) -> datetime:
        """The UTC hour the request happened in (what names its log object)."""
        return self.timestamp.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


_ATTRS: Final = tuple(f.name for f in fields(LogRecord))[1:]  # the 31 after date, time
_INTS: Final = frozenset({"sc_bytes", "sc_status", "cs_bytes", "c_port"})
_OPT_INTS: Final = frozenset(
    {"fle_encrypted_fields", "sc_content_len", "sc_range_start", "sc_range_end"}
)
_SECONDS: Final = frozenset({"time_taken", "time_to_first_byte"})
_REQUIRED_TEXT: Final = frozenset(
    {
        "edge_location",
        "c_ip",
        "cs_method",
        "cs_host",
        "cs_uri_stem",
        "x_edge_result_type",
        "x_edge_request_id",
        "cs_protocol",
        "x_edge_response_result_type",
        "cs_protocol_version",
        "x_edge_detailed_result_type",
    }
)
assert len(_ATTRS) + 2 == len(FIELDS)


def format_line(record: LogRecord) -> str:
    """The tab-separated CloudFront line of ``record`` (no newline)."""
    if record.timestamp.tzinfo is None:
        raise ValueError("LogRecord.timestamp must be timezone-aware")
    ts = record.timestamp.astimezone(UTC)
    out = [ts.strftime("%Y-%m-%d"), ts.strftime("%H:%M:%S")]
    for attr in _ATTRS:
        value = getattr(record, attr)
        if attr == "sc_status":
            out.append(f"{value:03d}")
        elif attr in _SECONDS:
            out.append(f"{value:.3f}")
        elif attr in _INTS or attr in _OPT_INTS:
            out.append("-" if value is None else str(int(value)))
        else:
            out.append(encode_value(value))
    return "\t".join(out)


def parse_line(line: str) -> LogRecord:
    """The record of one CloudFront line; :class:`MalformedLine` names the bad field."""
    parts = line.rstrip("\r\n").split("\t")
    if len(parts) != len(FIELDS):
        raise MalformedLine(f"expected {len(FIELDS)} tab-separated fields, got {len(parts)}")
    try:
        ts = datetime.strptime(f"{parts[0]} {parts[1]}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise MalformedLine(f"bad date/time {parts[0]!r} {parts[1]!r}") from None
    values: dict[str, object] = {"timestamp": ts}
    for attr, name, text in zip(_ATTRS, FIELDS[2:], parts[2:], strict=True):
        try:
            values[attr] = _parse_field(attr, text)
        except ValueError as exc:
            raise MalformedLine(f"field {name}: {exc}") from None
    return LogRecord(**values)  # type: ignore[arg-type]


def _parse_field(attr: str, text: str) -> object:
    if attr in _INTS:
        if not text.isdigit():
            raise ValueError(f"{text!r} is not a non-negative integer")
        return int(text)
    if attr in _OPT_INTS:
        if text == "-":
            return None
        if not text.isdigit():
            raise ValueError(f"{text!r} is not a non-negative integer or -")
        return int(text)
    if attr in _SECONDS:
        seconds = float(text)
        if not seconds >= 0:
            raise ValueError(f"{text!r} is not a non-negative number of seconds")
        return seconds
    value = decode_value(text)
    if value is None and attr in _REQUIRED_TEXT:
        raise ValueError("empty (-) but required")
    return value


def iter_lines(text: str) -> Iterator[tuple[int, LogRecord | MalformedLine]]:
    """(line number, record or the reason it is malformed) for each data line of a log
    file's text; ``#`` header lines and blank lines are skipped."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            yield number, parse_line(line)
        except MalformedLine as exc:
            yield number, exc


def render_file(records: Iterable[LogRecord]) -> str:
    """A whole log file: the two header lines, then one line per record."""
    lines = [VERSION_HEADER, FIELDS_HEADER, *(format_line(r) for r in records)]
    return "\n".join(lines) + "\n"


def gzip_file(records: Iterable[LogRecord]) -> bytes:
    """:func:`render_file` gzip-compressed, as CloudFront stores it (mtime 0: the same
    records always give the same bytes)."""
    return gzip.compress(render_file(records).encode("ascii"), mtime=0)


# --- result types -----------------------------------------------------------------------


def result_types(
    *,
    cache_status: str,
    status: int,
    method: str,
    completed: bool,
    shield_cache_status: str = "",
) -> tuple[str, str, str]:
    """(x-edge-result-type, x-edge-response-result-type, x-edge-detailed-result-type) of a
    request, from nginx's ``$upstream_cache_status`` at the edge and the shield.

    HIT is a Hit; an object served from cache after it expired (STALE: the upstream
    failed; UPDATING: another request is refreshing it; REVALIDATED: the upstream said
    304) is a RefreshHit; MISS, EXPIRED (refetched), BYPASS and no cache involvement are
    a Miss. A 4xx/5xx response is an Error in all three fields, the detailed one naming
    the cause where nginx's status tells it. A response the viewer did not receive
    completely (or status 000) is an Error whose response result type keeps the cache
    classification, as CloudFront documents. A Miss that the shield answered from its
    cache is detailed as OriginShieldHit."""
    cache = cache_status.upper()
    if cache == "HIT":
        base = HIT
    elif cache in {"STALE", "UPDATING", "REVALIDATED"}:
        base = REFRESH_HIT
    else:
        base = MISS
    if status == 0:
        return ERROR, ERROR, "ClientCommError"
    if status >= 400:
        if method not in {"GET", "HEAD"} and status in {403, 405}:
            detailed = "InvalidRequestMethod"
        elif status == 502:
            detailed = "OriginConnectError"
        elif status == 504:
            detailed = "OriginReadError"
        elif status >= 500 and base == MISS:
            detailed = "OriginError"
        else:
            detailed = ERROR
        return ERROR, ERROR, detailed
    if not completed:
        return ERROR, base, "ClientCommError"
    if base == MISS and shield_cache_status.upper() == "HIT":
        return MISS, MISS, ORIGIN_SHIELD_HIT
    return base, base, base


# --- nginx's raw line ----------------------------------------------------------------------

#: Key of the raw JSON line -> the nginx variable it holds. ``loc`` and ``dist_host`` are
#: constants of each edge, filled in by :func:`nginx_log_format`.
RAW_FIELDS: Final[Mapping[str, str]] = {
    "msec": "$msec",
    "bytes_sent": "$bytes_sent",
    "remote_addr": "$remote_addr",
    "method": "$request_method",
    "request_uri": "$request_uri",
    "status": "$status",
    "referer": "$http_referer",
    "user_agent": "$http_user_agent",
    "cache": "$upstream_cache_status",
    "shield_cache": "$upstream_http_x_cache_shield",
    "request_id": "$request_id",
    "host": "$http_host",
    "scheme": "$scheme",
    "request_length": "$request_length",
    "request_time": "$request_time",
    "forwarded_for": "$http_x_forwarded_for",
    "ssl_protocol": "$ssl_protocol",
    "ssl_cipher": "$ssl_cipher",
    "protocol": "$server_protocol",
    "remote_port": "$remote_port",
    "upstream_header_time": "$upstream_header_time",
    "completion": "$request_completion",
    "content_type": "$sent_http_content_type",
    "content_length": "$sent_http_content_length",
    "content_range": "$sent_http_content_range",
}
RAW_LOG_FORMAT_NAME: Final = "vidflow_cloudfront_raw"
_CONTENT_RANGE: Final = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_NGINX_CONSTANT: Final = re.compile(r"[A-Za-z0-9._:\-]+")


def nginx_log_format(*, edge_location: str, dist_host: str) -> str:
    """The ``log_format`` directive of an edge: one JSON object per request."""
    for constant in (edge_location, dist_host):
        if not _NGINX_CONSTANT.fullmatch(constant):
            raise ValueError(f"{constant!r} cannot be written into an nginx log_format")
    items = [f'"loc":"{edge_location}"', f'"dist_host":"{dist_host}"']
    items += [f'"{key}":"{var}"' for key, var in RAW_FIELDS.items()]
    return f"log_format {RAW_LOG_FORMAT_NAME} escape=json '{{{','.join(items)}}}';"


def _nginx_seconds(text: str) -> float | None:
    """First number of an nginx time list ("0.004, 0.010" for several upstream tries)."""
    head = text.split(",")[0].strip()
    if head in {"", "-"}:
        return None
    return float(head)


def record_from_raw(raw: Mapping[str, str]) -> LogRecord:
    """The CloudFront record of one raw nginx line (already JSON-decoded).

    ``cs-uri-stem`` and ``cs-uri-query`` are the request URI as the viewer sent it, split
    at the first ``?``. ``time-to-first-byte`` is the upstream's header time on a miss
    (nginx has no first-byte timer) and the whole request time on a hit."""
    try:
        when = datetime.fromtimestamp(float(raw["msec"]), UTC).replace(microsecond=0)
        status = int(raw["status"])
        if status == 499:  # nginx: the viewer closed the connection before the response
            status = 0
        stem, sep, query = raw["request_uri"].partition("?")
        request_time = float(raw["request_time"])
        ttfb = _nginx_seconds(raw["upstream_header_time"])
        match = _CONTENT_RANGE.fullmatch(raw["content_range"])
        length = raw["content_length"]
        result, response_result, detailed = result_types(
            cache_status=raw["cache"],
            status=status,
            method=raw["method"],
            completed=raw["completion"] == "OK",
            shield_cache_status=raw["shield_cache"],
        )
        return LogRecord(
            timestamp=when,
            edge_location=raw["loc"],
            sc_bytes=int(raw["bytes_sent"]),
            c_ip=raw["remote_addr"],
            cs_method=raw["method"],
            cs_host=raw["dist_host"],
            cs_uri_stem=stem or "/",
            sc_status=status,
            cs_referer=raw["referer"] or None,
            cs_user_agent=raw["user_agent"] or None,
            cs_uri_query=query if sep and query else None,
            cs_cookie=None,  # cookie logging is off, as CloudFront's default
            x_edge_result_type=result,
            x_edge_request_id=raw["request_id"],
            x_host_header=raw["host"] or None,
            cs_protocol=raw["scheme"],
            cs_bytes=int(raw["request_length"]),
            time_taken=round(request_time, 3),
            x_forwarded_for=raw["forwarded_for"] or None,
            ssl_protocol=raw["ssl_protocol"] or None,
            ssl_cipher=raw["ssl_cipher"] or None,
            x_edge_response_result_type=response_result,
            cs_protocol_version=raw["protocol"],
            fle_status=None,
            fle_encrypted_fields=None,
            c_port=int(raw["remote_port"]),
            time_to_first_byte=round(request_time if ttfb is None else ttfb, 3),
            x_edge_detailed_result_type=detailed,
            sc_content_type=raw["content_type"] or None,
            sc_content_len=int(length) if length.isdigit() else None,
            sc_range_start=int(match.group(1)) if match else None,
            sc_range_end=int(match.group(2)) if match else None,
        )
    except KeyError as exc:
        raise MalformedLine(f"raw line lacks {exc.args[0]!r}") from None
    except (ValueError, OverflowError) as exc:
        raise MalformedLine(f"raw line has a bad value: {exc}") from None


def parse_raw_line(line: str) -> LogRecord:
    """The record of one line of an edge's raw log (JSON written by nginx)."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise MalformedLine(f"raw line is not JSON: {exc}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise MalformedLine("raw line is not a JSON object of strings")
    return record_from_raw(raw)


# --- object names ------------------------------------------------------------------------

_OBJECT_NAME: Final = re.compile(
    r"(?P<dist>[A-Za-z0-9_-]+)\.(?P<hour>\d{4}-\d{2}-\d{2}-\d{2})\.(?P<unique>[A-Za-z0-9_-]+)\.gz"
)


def distribution_name(region: str) -> str:
    """The distribution an edge logs as (one per region): ``vidflow-us-east``."""
    return f"vidflow-{region}"


@dataclass(frozen=True)
class LogObjectName:
    """``{distribution}.YYYY-MM-DD-HH.{unique}.gz``: a log object of one distribution
    holding requests of one UTC hour."""

    distribution: str
    hour: datetime
    unique: str

    def __post_init__(self) -> None:
        name = self.name  # validates the parts
        if not _OBJECT_NAME.fullmatch(name):
            raise ValueError(f"invalid log object name {name!r}")

    @property
    def name(self) -> str:
        return f"{self.distribution}.{self.hour.astimezone(UTC):%Y-%m-%d-%H}.{self.unique}.gz"

    def key(self, prefix: str) -> str:
        """The object key under ``prefix`` (a ``/`` is added when missing, as CloudFront
        does)."""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return prefix + self.name

    @classmethod
    def parse(cls, key: str) -> LogObjectName:
        """The name of an object key (any prefix); ValueError when it is not one."""
        match = _OBJECT_NAME.fullmatch(key.rsplit("/", 1)[-1])
        if not match:
            raise ValueError(f"{key!r} is not a CloudFront log object name")
        hour = datetime.strptime(match["hour"], "%Y-%m-%d-%H").replace(tzinfo=UTC)
        return cls(match["dist"], hour, match["unique"])


def hour_prefix(prefix: str, distribution: str, hour: datetime) -> str:
    """The key prefix listing every object of one distribution and hour."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return f"{prefix}{distribution}.{hour.astimezone(UTC):%Y-%m-%d-%H}."
