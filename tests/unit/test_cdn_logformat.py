"""The CloudFront standard log format: fields, %-encoding, line round trip, AWS's own
example line, malformed lines, result types, nginx's raw line and object names."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta, timezone

import pytest

from vidflow.cdn.logformat import (
    FIELDS,
    FIELDS_HEADER,
    RAW_FIELDS,
    LogObjectName,
    LogRecord,
    MalformedLine,
    decode_value,
    encode_value,
    format_line,
    gzip_file,
    hour_prefix,
    iter_lines,
    nginx_log_format,
    parse_line,
    parse_raw_line,
    record_from_raw,
    result_types,
)

# The #Fields line of the example log file in AWS's CloudFront developer guide.
AWS_FIELDS_LINE = (
    "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem "
    "sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type "
    "x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for "
    "ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status "
    "fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type "
    "sc-content-type sc-content-len sc-range-start sc-range-end"
)
# A line of that example (a 502 from an origin whose name did not resolve).
AWS_EXAMPLE_LINE = "\t".join(
    [
        "2019-12-13",
        "22:36:27",
        "SEA19-C1",
        "900",
        "192.0.2.200",
        "GET",
        "d111111abcdef8.cloudfront.net",
        "/favicon.ico",
        "502",
        "http://www.example.com/",
        "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20"
        "(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36",
        "-",
        "-",
        "Error",
        "1pkpNfBQ39sYMnjjUQjmH2w1wdJnbHYTbag21o_3OfcQgPzdL2RSSQ==",
        "www.example.com",
        "http",
        "675",
        "0.102",
        "-",
        "-",
        "-",
        "Error",
        "HTTP/1.1",
        "-",
        "-",
        "25260",
        "0.102",
        "OriginDnsError",
        "text/html",
        "507",
        "-",
        "-",
    ]
)


def test_the_fields_are_the_33_documented_ones_in_order() -> None:
    assert len(FIELDS) == 33
    assert FIELDS_HEADER == AWS_FIELDS_LINE


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (None, "-"),
        ("", "-"),
        ("-", "%2D"),  # a literal hyphen stays distinguishable from "empty"
        ("curl/8.0", "curl/8.0"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
            "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)",
        ),
        # Every character of AWS's table, in its order.
        ("<>\"#%{}|\\^~[]`' ", "%3C%3E%22%23%25%7B%7D%7C%5C%5E%7E%5B%5D%60%27%20"),
        ("a\tb\nc\x00", "a%09b%0Ac%00"),  # codes 0-32
        ("\x7f", "%7F"),
        ("é", "%C3%A9"),  # codes 127 and above: the UTF-8 bytes
        ("a=1&b=/x?y,z;:@!$()*+", "a=1&b=/x?y,z;:@!$()*+"),  # not in the table: as is
        ("/a%20b", "/a%2520b"),  # an already-encoded path is encoded again, as CloudFront
    ],
)
def test_values_are_percent_encoded_as_cloudfront_documents(
    value: str | None, encoded: str
) -> None:
    assert encode_value(value) == encoded
    assert decode_value(encoded) == (value or None)


def test_bytes_that_are_not_utf8_survive_the_round_trip() -> None:
    raw = b"agent\xff\xfe".decode("utf-8", "surrogateescape")
    assert encode_value(raw) == "agent%FF%FE"
    assert decode_value("agent%FF%FE") == raw


FULL = LogRecord(
    timestamp=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
    edge_location="eu-west",
    sc_bytes=1048999,
    c_ip="192.0.2.10",
    cs_method="GET",
    cs_host="127.0.0.1:8102",
    cs_uri_stem="/media/videos/ab c/seg_00001.m4s",
    sc_status=206,
    cs_referer="https://example.com/watch?v=1",
    cs_user_agent='Player/1.0 (TV; "x")\tü',
    cs_uri_query="a=1 b",
    cs_cookie="s=1; t=2",
    x_edge_result_type="Miss",
    x_edge_request_id="0123abcd",
    x_host_header="edge.example",
    cs_protocol="http",
    cs_bytes=231,
    time_taken=0.082,
    x_forwarded_for="198.51.100.7",
    ssl_protocol="TLSv1.3",
    ssl_cipher="TLS_AES_128_GCM_SHA256",
    x_edge_response_result_type="Miss",
    cs_protocol_version="HTTP/1.1",
    fle_status="Processed",
    fle_encrypted_fields=2,
    c_port=50123,
    time_to_first_byte=0.004,
    x_edge_detailed_result_type="OriginShieldHit",
    sc_content_type="video/iso.segment",
    sc_content_len=1048576,
    sc_range_start=1048576,
    sc_range_end=2097151,
)
FULL_LINE = "\t".join(
    [
        "2026-03-04",
        "05:06:07",
        "eu-west",
        "1048999",
        "192.0.2.10",
        "GET",
        "127.0.0.1:8102",
        "/media/videos/ab%20c/seg_00001.m4s",
        "206",
        "https://example.com/watch?v=1",
        "Player/1.0%20(TV;%20%22x%22)%09%C3%BC",
        "a=1%20b",
        "s=1;%20t=2",
        "Miss",
        "0123abcd",
        "edge.example",
        "http",
        "231",
        "0.082",
        "198.51.100.7",
        "TLSv1.3",
        "TLS_AES_128_GCM_SHA256",
        "Miss",
        "HTTP/1.1",
        "Processed",
        "2",
        "50123",
        "0.004",
        "OriginShieldHit",
        "video/iso.segment",
        "1048576",
        "1048576",
        "2097151",
    ]
)


def test_every_field_is_written_and_read_back() -> None:
    assert format_line(FULL) == FULL_LINE
    assert parse_line(FULL_LINE) == FULL
    assert parse_line(FULL_LINE + "\n") == FULL


def test_empty_fields_are_hyphens_and_status_000_keeps_three_digits() -> None:
    sparse = LogRecord(
        **{
            **FULL.__dict__,
            "sc_status": 0,
            "cs_referer": None,
            "cs_user_agent": None,
            "cs_uri_query": None,
            "cs_cookie": None,
            "x_forwarded_for": None,
            "fle_encrypted_fields": None,
            "sc_content_len": None,
            "sc_range_start": None,
            "sc_range_end": None,
        }
    )
    parts = format_line(sparse).split("\t")
    assert parts[FIELDS.index("sc-status")] == "000"
    for name in ("cs(Referer)", "cs(User-Agent)", "cs-uri-query", "sc-range-end"):
        assert parts[FIELDS.index(name)] == "-"
    assert parse_line(format_line(sparse)) == sparse


def test_the_timestamp_is_written_in_utc() -> None:
    local = FULL.timestamp.astimezone(timezone(timedelta(hours=-3)))
    line = format_line(LogRecord(**{**FULL.__dict__, "timestamp": local}))
    assert line.startswith("2026-03-04\t05:06:07\t")


def test_the_aws_example_line_parses() -> None:
    record = parse_line(AWS_EXAMPLE_LINE)
    assert record.timestamp == datetime(2019, 12, 13, 22, 36, 27, tzinfo=UTC)
    assert record.edge_location == "SEA19-C1"
    assert (record.sc_status, record.sc_bytes, record.c_port) == (502, 900, 25260)
    assert record.cs_referer == "http://www.example.com/"
    assert record.cs_user_agent is not None
    assert record.cs_user_agent.startswith("Mozilla/5.0 (Windows NT 10.0; Win64; x64) ")
    assert record.cs_uri_query is None and record.cs_cookie is None
    assert (record.x_edge_result_type, record.x_edge_detailed_result_type) == (
        "Error",
        "OriginDnsError",
    )
    assert (record.time_taken, record.sc_content_len, record.sc_range_start) == (0.102, 507, None)
    assert format_line(record) == AWS_EXAMPLE_LINE


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("2026-03-04\t05:06:07\tus-east", "expected 33 tab-separated fields, got 3"),
        (FULL_LINE.replace("2026-03-04", "2026-13-04"), "bad date/time"),
        (FULL_LINE.replace("\t1048999\t", "\t10x\t"), "field sc-bytes"),
        (FULL_LINE.replace("\t0.082\t", "\t-1\t"), "field time-taken"),
        (FULL_LINE.replace("\t0123abcd\t", "\t-\t"), "field x-edge-request-id: empty"),
        (FULL_LINE.replace("\t2097151", "\tend"), "field sc-range-end"),
    ],
)
def test_malformed_lines_say_why(line: str, reason: str) -> None:
    with pytest.raises(MalformedLine, match=reason.replace("(", r"\(")):
        parse_line(line)


def test_a_file_yields_records_and_numbered_malformed_lines() -> None:
    text = f"#Version: 1.0\n{FIELDS_HEADER}\n{FULL_LINE}\n\nnot a line\n{AWS_EXAMPLE_LINE}\n"
    results = list(iter_lines(text))
    assert [n for n, _ in results] == [3, 5, 6]
    assert results[0][1] == FULL
    assert isinstance(results[1][1], MalformedLine)
    assert isinstance(results[2][1], LogRecord)


def test_a_gzip_file_has_both_headers_and_is_reproducible() -> None:
    data = gzip_file([FULL, FULL])
    assert data == gzip_file([FULL, FULL])
    lines = gzip.decompress(data).decode().splitlines()
    assert lines == ["#Version: 1.0", AWS_FIELDS_LINE, FULL_LINE, FULL_LINE]


@pytest.mark.parametrize(
    ("cache", "status", "method", "completed", "shield", "expected"),
    [
        ("HIT", 200, "GET", True, "", ("Hit", "Hit", "Hit")),
        ("HIT", 206, "GET", True, "MISS", ("Hit", "Hit", "Hit")),
        ("MISS", 200, "GET", True, "MISS", ("Miss", "Miss", "Miss")),
        ("MISS", 200, "GET", True, "HIT", ("Miss", "Miss", "OriginShieldHit")),
        ("EXPIRED", 200, "GET", True, "", ("Miss", "Miss", "Miss")),
        ("", 200, "GET", True, "", ("Miss", "Miss", "Miss")),
        ("STALE", 200, "GET", True, "", ("RefreshHit", "RefreshHit", "RefreshHit")),
        ("UPDATING", 200, "GET", True, "", ("RefreshHit", "RefreshHit", "RefreshHit")),
        ("REVALIDATED", 200, "GET", True, "", ("RefreshHit", "RefreshHit", "RefreshHit")),
        ("HIT", 200, "GET", False, "", ("Error", "Hit", "ClientCommError")),
        ("MISS", 0, "GET", False, "", ("Error", "Error", "ClientCommError")),
        ("MISS", 404, "GET", True, "MISS", ("Error", "Error", "Error")),
        ("HIT", 404, "GET", True, "", ("Error", "Error", "Error")),
        ("MISS", 502, "GET", True, "", ("Error", "Error", "OriginConnectError")),
        ("MISS", 504, "GET", True, "", ("Error", "Error", "OriginReadError")),
        ("MISS", 500, "GET", True, "", ("Error", "Error", "OriginError")),
        ("", 403, "POST", True, "", ("Error", "Error", "InvalidRequestMethod")),
    ],
)
def test_result_types_follow_the_cache_status(
    cache: str,
    status: int,
    method: str,
    completed: bool,
    shield: str,
    expected: tuple[str, str, str],
) -> None:
    got = result_types(
        cache_status=cache,
        status=status,
        method=method,
        completed=completed,
        shield_cache_status=shield,
    )
    assert got == expected


RAW = {
    "loc": "us-east",
    "dist_host": "127.0.0.1:8101",
    "msec": "1796059179.686",
    "bytes_sent": "1767",
    "remote_addr": "127.0.0.1",
    "method": "GET",
    "request_uri": "/media/x/seg1.m4s?v=2&t=a%20b",
    "status": "206",
    "referer": "",
    "user_agent": "curl/7.88.1",
    "cache": "MISS",
    "shield_cache": "HIT",
    "request_id": "ad9f68e049236a8963b90d6669c56563",
    "host": "127.0.0.1:8101",
    "scheme": "http",
    "request_length": "131",
    "request_time": "0.0124",
    "forwarded_for": "",
    "ssl_protocol": "",
    "ssl_cipher": "",
    "protocol": "HTTP/1.1",
    "remote_port": "51890",
    "upstream_header_time": "0.004, 0.010",
    "completion": "OK",
    "content_type": "video/iso.segment",
    "content_length": "1101",
    "content_range": "bytes 1048000-1049100/2500000",
}


def test_a_raw_nginx_line_becomes_the_cloudfront_record() -> None:
    record = record_from_raw(RAW)
    # 1796059179 s after the epoch is 2026-11-30 17:19:39 UTC.
    assert record.timestamp == datetime(2026, 11, 30, 17, 19, 39, tzinfo=UTC)
    assert (record.cs_uri_stem, record.cs_uri_query) == ("/media/x/seg1.m4s", "v=2&t=a%20b")
    assert (record.sc_status, record.sc_bytes, record.cs_bytes) == (206, 1767, 131)
    assert record.cs_referer is None and record.x_forwarded_for is None
    assert (record.sc_range_start, record.sc_range_end, record.sc_content_len) == (
        1048000,
        1049100,
        1101,
    )
    assert (record.time_taken, record.time_to_first_byte) == (0.012, 0.004)
    assert (record.x_edge_result_type, record.x_edge_detailed_result_type) == (
        "Miss",
        "OriginShieldHit",
    )
    assert record.edge_location == "us-east" and record.cs_host == "127.0.0.1:8101"
    # The query's own %20 is encoded again in the CloudFront line, like the stem's.
    assert "\tv=2&t=a%2520b\t" in format_line(record)


def test_a_hit_and_an_aborted_request_from_raw_lines() -> None:
    hit = record_from_raw({**RAW, "cache": "HIT", "upstream_header_time": "", "content_range": ""})
    assert hit.time_to_first_byte == 0.012  # no upstream: the request time
    assert (hit.sc_range_start, hit.x_edge_detailed_result_type) == (None, "Hit")
    aborted = record_from_raw({**RAW, "status": "499", "completion": ""})
    assert (aborted.sc_status, aborted.x_edge_result_type) == (0, "Error")


def test_raw_lines_that_are_not_nginx_lines_are_malformed() -> None:
    with pytest.raises(MalformedLine, match="not JSON"):
        parse_raw_line('{"loc": ')
    with pytest.raises(MalformedLine, match="lacks 'status'"):
        parse_raw_line('{"loc": "us-east"}'.replace("}", ', "msec": "1"}'))
    with pytest.raises(MalformedLine, match="bad value"):
        record_from_raw({**RAW, "bytes_sent": "many"})


def test_the_nginx_log_format_carries_every_raw_field() -> None:
    directive = nginx_log_format(edge_location="us-east", dist_host="127.0.0.1:8101")
    assert directive.startswith("log_format vidflow_cloudfront_raw escape=json '{")
    for key, variable in RAW_FIELDS.items():
        assert f'"{key}":"{variable}"' in directive
    assert '"loc":"us-east"' in directive
    with pytest.raises(ValueError, match="cannot be written"):
        nginx_log_format(edge_location="us'east", dist_host="x")


def test_object_names_follow_cloudfronts_pattern() -> None:
    name = LogObjectName("vidflow-us-east", datetime(2026, 11, 30, 17, tzinfo=UTC), "Ab1-x")
    assert name.key("cdn-logs") == "cdn-logs/vidflow-us-east.2026-11-30-17.Ab1-x.gz"
    assert name.key("cdn-logs/") == "cdn-logs/vidflow-us-east.2026-11-30-17.Ab1-x.gz"
    assert LogObjectName.parse("cdn-logs/vidflow-us-east.2026-11-30-17.Ab1-x.gz") == name
    # The hour is UTC whatever zone it is given in: 14:00 at UTC-3 is 17:00 UTC.
    minus_3 = timezone(timedelta(hours=-3))
    local = LogObjectName("d", datetime(2026, 11, 30, 14, tzinfo=minus_3), "u")
    assert local.name == "d.2026-11-30-17.u.gz"
    assert hour_prefix("cdn-logs", "d", name.hour) == "cdn-logs/d.2026-11-30-17."
    for bad in ("d.2026-11-30.u.gz", "d.2026-11-30-17.u.log", "a.b.2026-11-30-17.u.gz"):
        with pytest.raises(ValueError):
            LogObjectName.parse(bad)
    with pytest.raises(ValueError):
        LogObjectName("vidflow.us", name.hour, "u")
