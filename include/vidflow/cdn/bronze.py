"""CloudFront log lines -> the typed rows of ``cdn_requests``, with a reason for every
line that is not one (Spark transforms, pure: DataFrame in, DataFrame out).

The rules are data (:class:`vidflow.analytics.quality.Rule`, the analytics issue's one
definition of a rule), rendered twice by that module: as the Spark ``quarantine_reason``
of each line and as the Great Expectations suite of the gate. A line breaks at most one
rule (the first), so every line lands in exactly one of the two tables.

Decoding follows :mod:`vidflow.cdn.logformat`: ``-`` is empty, values are %-decoded
(``+`` is a literal plus, as in CloudFront's encoding, not a space).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from vidflow.analytics.quality import REASON_COLUMN, InSet, IsTrue, Rule, reason_column
from vidflow.cdn.logformat import FIELDS
from vidflow.regions import REGION_NAMES
from vidflow.spark import lake_path, read_delta

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from vidflow.config import Settings

REQUESTS_TABLE: Final = "cdn_requests"
QUARANTINE_TABLE: Final = "cdn_requests_quarantine"
PARTITION_COLUMNS: Final = ("request_date", "region")
RESULT_TYPES: Final = ("Hit", "RefreshHit", "Miss", "Error", "LimitExceeded", "CapacityExceeded")
#: The media layout, in Java regex (groups: video, version, rendition, segment).
MEDIA_PATH_JAVA: Final = (
    r"^/media/videos/([0-9a-fA-F-]{36})/([^/]+)/"
    r"(?:master\.m3u8|([^/]+)/(?:index\.m3u8|init\.mp4|seg_(\d+)\.m4s))$"
)
#: A log object's name, in Java regex (groups: region, hour).
OBJECT_NAME_JAVA: Final = r"vidflow-([a-z]+-[a-z]+)\.(\d{4}-\d{2}-\d{2}-\d{2})\.[A-Za-z0-9_-]+\.gz$"

REQUESTS_SCHEMA: Final = (
    "request_id string, request_ts timestamp, request_date date, request_hour timestamp, "
    "region string, uri_stem string, uri_query string, object_kind string, video_id string, "
    "rendition string, segment int, sc_status int, sc_bytes bigint, object_bytes bigint, "
    "result_type string, response_result_type string, detailed_result_type string, "
    "c_ip string, user_agent string, time_taken double, time_to_first_byte double, "
    "content_type string, range_start bigint, range_end bigint, source_key string, "
    "file_hour timestamp"
)
QUARANTINE_SCHEMA: Final = (
    "raw_line string, reason string, source_key string, file_hour timestamp, "
    "request_date date, region string"
)

_INT_FIELDS: Final = ("sc-bytes", "sc-status", "cs-bytes", "c-port")
_OPT_INT_FIELDS: Final = (
    "fle-encrypted-fields",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
)
_SECOND_FIELDS: Final = ("time-taken", "time-to-first-byte")
_REQUIRED: Final = (
    "x-edge-location",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "x-edge-result-type",
    "x-edge-request-id",
    "cs-protocol",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "x-edge-detailed-result-type",
)


def read_requests(spark: SparkSession, settings: Settings) -> DataFrame:
    """The bronze table ``cdn/cdn_requests``, what the jobs after bronze read;
    :class:`~vidflow.spark.LakeTableMissing` naming the bronze job when it was never
    written."""
    return read_delta(
        spark,
        lake_path(settings, "cdn", REQUESTS_TABLE),
        written_by="the bronze job (jobs/cdn_bronze.py)",
    )


def request_rules() -> tuple[Rule, ...]:
    """Every rule of a log line, in order of precedence."""
    return (
        Rule("field_count", f"the line does not have {len(FIELDS)} tab-separated fields",
             IsTrue("field_count_ok")),
        Rule("bad_timestamp", "date/time is not YYYY-MM-DD HH:MM:SS", IsTrue("timestamp_ok")),
        Rule("bad_number", "a byte count, status, port or duration is not a number",
             IsTrue("numbers_ok")),
        Rule("missing_field", "a required field is empty (-)", IsTrue("required_ok")),
        Rule("unknown_edge", f"x-edge-location is not one of {', '.join(REGION_NAMES)}",
             InSet("edge_location", REGION_NAMES)),
        Rule("unknown_result_type", "x-edge-result-type is not a CloudFront result type",
             InSet("result_type", RESULT_TYPES)),
    )  # fmt: skip


def _field(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col("parts").getItem(FIELDS.index(name))


def decoded_of(column: Column) -> Column:
    """%-decoding as CloudFront encodes (a ``+`` is a plus, not a space)."""
    from pyspark.sql import functions as F

    return F.call_function("try_url_decode", F.replace(column, F.lit("+"), F.lit("%2B")))


def _int(name: str) -> Column:
    return _field(name).try_cast("bigint")


def check_lines(lines: DataFrame) -> DataFrame:
    """``raw_line, source_key`` (header and blank lines already dropped) -> every typed
    column plus the helper columns of the rules and ``quarantine_reason``."""
    from pyspark.sql import functions as F

    # The line is split once, in a generator: over a plain projection the optimizer would
    # push the accepted/quarantined filter below the split and, since a filter does not
    # share subexpressions, split the line again for every field each rule reads.
    split_once = F.explode(F.array(F.split(F.col("raw_line"), "\t", -1)))
    parts = lines.select("raw_line", "source_key", split_once.alias("parts"))
    n_ok = F.size("parts") == len(FIELDS)
    ts = F.try_to_timestamp(
        F.concat_ws(" ", _field("date"), _field("time")), F.lit("yyyy-MM-dd HH:mm:ss")
    )
    ints_ok = [_int(f).isNotNull() & (_int(f) >= 0) for f in _INT_FIELDS]
    opt_ok = [(_field(f) == "-") | (_int(f).isNotNull() & (_int(f) >= 0)) for f in _OPT_INT_FIELDS]
    secs_ok = [_field(f).try_cast("double") >= 0 for f in _SECOND_FIELDS]
    numbers_ok = ints_ok[0]
    for condition in [*ints_ok[1:], *opt_ok, *secs_ok]:
        numbers_ok = numbers_ok & condition
    required_ok = F.lit(True)
    for name in _REQUIRED:
        required_ok = required_ok & (_field(name) != "-")
    file_match = F.regexp_extract("source_key", OBJECT_NAME_JAVA, 2)
    checked = parts.select(
        "raw_line",
        "source_key",
        "parts",
        n_ok.alias("field_count_ok"),
        F.when(n_ok, ts.isNotNull()).alias("timestamp_ok"),
        F.when(n_ok, F.coalesce(numbers_ok, F.lit(False))).alias("numbers_ok"),
        F.when(n_ok, required_ok).alias("required_ok"),
        F.when(n_ok, _field("x-edge-location")).alias("edge_location"),
        F.when(n_ok, _field("x-edge-result-type")).alias("result_type"),
        F.when(n_ok, ts).alias("request_ts"),
        F.try_to_timestamp(file_match, F.lit("yyyy-MM-dd-HH")).alias("file_hour"),
        F.regexp_extract("source_key", OBJECT_NAME_JAVA, 1).alias("file_region"),
    )
    return checked.withColumn(REASON_COLUMN, reason_column(request_rules()))


def accepted_requests(checked: DataFrame) -> DataFrame:
    """The good lines as ``cdn_requests`` rows (one per x-edge-request-id: the copy in the
    earliest file, then the first line, wins)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    def text(name: str) -> Column:
        raw = _field(name)
        return F.when(raw == "-", F.lit(None)).otherwise(decoded_of(raw))

    def opt_int(name: str) -> Column:
        return F.when(_field(name) == "-", F.lit(None)).otherwise(_int(name))

    stem = text("cs-uri-stem")
    good = checked.where(F.col(REASON_COLUMN).isNull())
    rows = good.select(
        _field("x-edge-request-id").alias("request_id"),
        F.col("request_ts"),
        F.to_date("request_ts").alias("request_date"),
        F.date_trunc("hour", "request_ts").alias("request_hour"),
        F.col("edge_location").alias("region"),
        stem.alias("uri_stem"),
        text("cs-uri-query").alias("uri_query"),
        F.when(stem.endswith("/master.m3u8"), "master")
        .when(stem.endswith(".m3u8"), "playlist")
        .when(stem.endswith("/init.mp4"), "init")
        .when(stem.endswith(".m4s"), "segment")
        .otherwise("other")
        .alias("object_kind"),
        F.nullif(F.lower(F.regexp_extract(stem, MEDIA_PATH_JAVA, 1)), F.lit("")).alias("video_id"),
        F.nullif(F.regexp_extract(stem, MEDIA_PATH_JAVA, 3), F.lit("")).alias("rendition"),
        F.nullif(F.regexp_extract(stem, MEDIA_PATH_JAVA, 4), F.lit(""))
        .try_cast("int")
        .alias("segment"),
        _int("sc-status").cast("int").alias("sc_status"),
        _int("sc-bytes").alias("sc_bytes"),
        F.coalesce(opt_int("sc-content-len"), _int("sc-bytes")).alias("object_bytes"),
        F.col("result_type"),
        _field("x-edge-response-result-type").alias("response_result_type"),
        _field("x-edge-detailed-result-type").alias("detailed_result_type"),
        _field("c-ip").alias("c_ip"),
        text("cs(User-Agent)").alias("user_agent"),
        _field("time-taken").try_cast("double").alias("time_taken"),
        _field("time-to-first-byte").try_cast("double").alias("time_to_first_byte"),
        text("sc-content-type").alias("content_type"),
        opt_int("sc-range-start").alias("range_start"),
        opt_int("sc-range-end").alias("range_end"),
        F.col("source_key"),
        F.col("file_hour"),
    )
    first = Window.partitionBy("request_id").orderBy("file_hour", "source_key")
    return rows.withColumn("_n", F.row_number().over(first)).where(F.col("_n") == 1).drop("_n")


def quarantined_lines(checked: DataFrame) -> DataFrame:
    """The bad lines with their reason, in the partition of their file's hour and region."""
    from pyspark.sql import functions as F

    return checked.where(F.col(REASON_COLUMN).isNotNull()).select(
        "raw_line",
        F.col(REASON_COLUMN).alias("reason"),
        "source_key",
        "file_hour",
        F.to_date("file_hour").alias("request_date"),
        F.nullif(F.col("file_region"), F.lit("")).alias("region"),
    )
