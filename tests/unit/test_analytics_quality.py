"""The rules of vidflow.analytics.quality: one list, rendered as Spark conditions and as a
Great Expectations suite that validates pyspark 4.2 DataFrames (GX without its [spark]
extra) and gates a batch by the allowed bad-row ratio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from vidflow.analytics.quality import (
    REASON_COLUMN,
    Between,
    InSet,
    IsTrue,
    Matches,
    NotNull,
    Rule,
    bad_condition,
    event_rules,
    expectation_configs,
    reason_column,
    validate_batch,
)

RULES = event_rules(max_clock_skew_seconds=300, max_lateness_hours=72)


def test_rules_are_ordered_and_take_their_limits_from_the_arguments() -> None:
    assert [r.reason for r in RULES] == [
        "not_json",
        "wrong_type",
        "missing_field",
        "unsupported_schema",
        "malformed_uuid",
        "unknown_event_type",
        "unknown_region",
        "unknown_device",
        "position_out_of_range",
        "future_event",
        "too_late",
        "unknown_video",
    ]
    other = event_rules(max_clock_skew_seconds=60, max_lateness_hours=6)
    limits = {r.reason: r.check for r in other}
    assert limits["future_event"] == Between("skew_seconds", None, 60.0)
    assert limits["too_late"] == Between("lateness_hours", None, 6.0)
    assert limits["unknown_region"] == InSet(
        "region", ("us-east", "eu-west", "ap-south", "sa-east")
    )


def test_the_suite_renders_every_rule_with_mostly() -> None:
    configs = expectation_configs(RULES, mostly=0.95)
    # 10 single-column checks, 10 required fields, 4 UUID columns, 1 batch-wide.
    assert len(configs) == 10 + 10 + 4 + 1
    assert {kwargs["mostly"] for _, kwargs in configs} == {0.95}
    by_rule: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, kwargs in configs:
        by_rule.setdefault(kwargs["meta"]["rule"], []).append((name, kwargs))
    assert set(by_rule) == {r.reason for r in RULES} | {"batch"}
    assert by_rule["unknown_device"] == [
        (
            "ExpectColumnValuesToBeInSet",
            {
                "column": "device",
                "value_set": ["phone", "desktop", "tv"],
                "mostly": 0.95,
                "meta": {"rule": "unknown_device"},
            },
        )
    ]
    assert [k["column"] for _, k in by_rule["malformed_uuid"]] == [
        "event_id",
        "video_id",
        "session_id",
        "user_id",
    ]
    assert by_rule["too_late"][0][0] == "ExpectColumnValuesToBeBetween"
    assert by_rule["too_late"][0][1]["max_value"] == 72.0
    assert by_rule["batch"] == [
        (
            "ExpectColumnValuesToBeNull",
            {"column": REASON_COLUMN, "mostly": 0.95, "meta": {"rule": "batch"}},
        )
    ]


CHECK_CASES = [
    (IsTrue("v"), "v boolean", [(True,), (False,), (None,)], [False, True, False]),
    (
        NotNull(("a", "b")),
        "a string, b string",
        [("x", "y"), ("x", None), (None, None)],
        [False, True, True],
    ),
    (InSet("v", ("a", "b")), "v string", [("a",), ("c",), (None,)], [False, True, False]),
    (
        Between("v", 0.0, 1.0),
        "v double",
        [(0.0,), (1.0,), (1.5,), (-0.1,), (None,)],
        [False, False, True, True, False],
    ),
    (Between("v", None, 5.0), "v double", [(-99.0,), (5.01,)], [False, True]),
    (Matches(("v",), "^[0-9]+$"), "v string", [("12",), ("1a",), (None,)], [False, True, False]),
]


@pytest.mark.parametrize(("check", "schema", "rows", "bad"), CHECK_CASES)
def test_spark_rendering_flags_exactly_the_bad_rows_and_ignores_nulls_like_gx(
    spark: Any, check: Any, schema: str, rows: list[tuple[Any, ...]], bad: list[bool]
) -> None:
    frame = spark.createDataFrame(rows, schema).withColumn("_n", F.monotonically_increasing_id())
    flagged = [
        r["bad"] for r in frame.orderBy("_n").select(bad_condition(check).alias("bad")).collect()
    ]
    assert flagged == bad


def test_reason_column_takes_the_first_broken_rule(spark: Any) -> None:
    rules = (
        Rule("first", "", InSet("a", ("ok",))),
        Rule("second", "", InSet("b", ("ok",))),
    )
    frame = spark.createDataFrame(
        [("ok", "ok"), ("no", "no"), ("ok", "no"), (None, "no")], "a string, b string"
    )
    result = frame.select("a", "b", reason_column(rules))
    expected = spark.createDataFrame(
        [("ok", "ok", None), ("no", "no", "first"), ("ok", "no", "second"), (None, "no", "second")],
        f"a string, b string, {REASON_COLUMN} string",
    )
    assert_df_equality(result, expected, ignore_nullable=True)


GATE_RULES = (
    Rule("unknown_region", "", InSet("region", ("eu-west", "us-east"))),
    Rule("position_out_of_range", "", Between("position_seconds", 0.0, 100.0)),
)


def gate_frame(spark: Any, rows: list[tuple[Any, ...]]) -> Any:
    frame = spark.createDataFrame(rows, "region string, position_seconds double")
    return frame.select("*", reason_column(GATE_RULES))


def test_gx_validates_a_pyspark_dataframe_and_passes_below_the_ratio(
    spark: Any, tmp_path: Path
) -> None:
    import pyspark

    assert pyspark.__version__.startswith("4.2")
    # 1 bad row of 20 = 5%: at the limit, which passes.
    rows = [("eu-west", float(n)) for n in range(19)] + [("mars", 1.0)]
    outcome = validate_batch(
        gate_frame(spark, rows), GATE_RULES, max_bad_ratio=0.05, data_docs_dir=tmp_path / "docs"
    )
    assert outcome.passed, outcome.failures
    assert (outcome.rows, outcome.bad_rows, outcome.failures) == (20, 1, ())
    assert outcome.data_docs == str(tmp_path / "docs" / "index.html")
    assert (tmp_path / "docs" / "index.html").is_file()


def test_gx_gate_fails_above_the_ratio_and_names_the_expectation(spark: Any) -> None:
    # 2 unknown regions of 20 = 10% > 5%; positions are all fine.
    rows = [("us-east", 50.0)] * 18 + [("mars", 1.0), ("venus", 2.0)]
    outcome = validate_batch(gate_frame(spark, rows), GATE_RULES, max_bad_ratio=0.05)
    assert not outcome.passed
    assert (outcome.rows, outcome.bad_rows) == (20, 2)
    assert outcome.failures[0].startswith("batch [quarantine_reason]: 2 of 20 rows")
    assert outcome.failures[1].startswith("unknown_region [region]: 2 of 20 rows, e.g. ")
    assert "'mars'" in outcome.failures[1] and "'venus'" in outcome.failures[1]
    assert len(outcome.failures) == 2  # position_out_of_range passed
    message = outcome.message("2026-03-10T14..2026-03-10T15Z")
    assert "FAILED" in message and "10.0%" in message and "limit 5.0%" in message
