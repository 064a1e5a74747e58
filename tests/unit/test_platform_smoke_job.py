"""Transforms of jobs/platform_smoke.py on small hand-built frames."""

from __future__ import annotations

from datetime import date
from typing import Any

from chispa import assert_df_equality

from jobs.platform_smoke import REGIONS, extract, views_by_region


def test_views_by_region_counts_and_sums(spark: Any) -> None:
    day = date(2026, 11, 24)
    events = spark.createDataFrame(
        [(day, "eu", 1, 10.0), (day, "eu", 2, 5.0), (day, "us", 1, 7.5)],
        "event_date date, region string, video_seq long, watch_seconds double",
    )
    expected = spark.createDataFrame(
        [(day, "eu", 2, 15.0), (day, "us", 1, 7.5)],
        "event_date date, region string, views long, watch_seconds double",
    )
    assert_df_equality(
        views_by_region(events), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_extract_spreads_rows_over_every_region(spark: Any) -> None:
    events = extract(spark, date(2026, 11, 24), rows=30)
    regions = {row.region for row in events.select("region").distinct().collect()}
    assert regions == set(REGIONS)
    assert events.count() == 30
