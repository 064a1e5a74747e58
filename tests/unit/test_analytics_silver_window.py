"""What a platform_analytics run processes (vidflow.analytics.payloads): receive hours
from the data interval or a backfill range, the daily part, and the typed payloads."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from vidflow.analytics.payloads import (
    AnalyticsWindow,
    DailyPlan,
    GateOutcome,
    SilverSummary,
    WindowError,
    plan_daily,
    plan_window,
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_an_hourly_run_reads_its_data_interval_without_the_daily_part() -> None:
    window = plan_window(utc(2026, 3, 10, 14), utc(2026, 3, 10, 15))
    assert window == AnalyticsWindow(start=utc(2026, 3, 10, 14), end=utc(2026, 3, 10, 15))
    assert window.hours == [utc(2026, 3, 10, 14)]


def test_the_last_hour_of_a_utc_day_runs_the_daily_part_for_that_day() -> None:
    window = plan_window(utc(2026, 3, 10, 23), utc(2026, 3, 11, 0))
    assert window.daily and window.days == (date(2026, 3, 10),)
    assert window.touched_since == utc(2026, 3, 10, 0)


def test_daily_always_and_never_override_the_clock() -> None:
    forced = plan_window(utc(2026, 3, 10, 14), utc(2026, 3, 10, 15), daily="always")
    assert forced.days == (date(2026, 3, 10),) and forced.touched_since == utc(2026, 3, 10)
    skipped = plan_window(utc(2026, 3, 10, 23), utc(2026, 3, 11, 0), daily="never")
    assert not skipped.daily and skipped.days == ()


def test_a_date_range_backfills_every_hour_and_day_of_it() -> None:
    window = plan_window(
        utc(2026, 3, 10, 14),
        utc(2026, 3, 10, 15),
        start_date=date(2026, 3, 1),
        end_date=date(2026, 3, 3),
        region="ap-south",
    )
    assert (window.start, window.end) == (utc(2026, 3, 1), utc(2026, 3, 4))
    assert len(window.hours) == 72
    assert window.days == (date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3))
    assert window.region == "ap-south" and window.daily
    one_day = plan_window(utc(2026, 3, 10), utc(2026, 3, 10, 1), end_date=date(2026, 3, 5))
    assert (one_day.start, one_day.end) == (utc(2026, 3, 5), utc(2026, 3, 6))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_date": date(2026, 3, 5), "end_date": date(2026, 3, 4)}, "before start_date"),
        ({"region": "mars"}, "unknown region 'mars'"),
        ({"daily": "sometimes"}, "daily must be one of auto, always, never"),
    ],
)
def test_bad_params_are_refused_with_a_reason(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(WindowError, match=message):
        plan_window(utc(2026, 3, 10, 14), utc(2026, 3, 10, 15), **kwargs)  # type: ignore[arg-type]


def summary(days_touched: tuple[date, ...]) -> SilverSummary:
    return SilverSummary(
        start=utc(2026, 3, 10, 23),
        end=utc(2026, 3, 11),
        region=None,
        objects=2,
        rows_read=10,
        accepted=8,
        duplicates=1,
        quarantined={"not_json": 2},
        event_dates=(date(2026, 3, 10),),
        days_touched=days_touched,
        gate=GateOutcome(False, 10, 2, 0.05, ("batch [quarantine_reason]: 2 of 10 rows",), "/x"),
        published=False,
        seconds={"gate": 1.5},
    )


def test_the_daily_part_adds_the_days_late_events_touched() -> None:
    window = plan_window(utc(2026, 3, 10, 23), utc(2026, 3, 11, 0), region="us-east")
    plan = plan_daily(window, summary((date(2026, 3, 8), date(2026, 3, 10))))
    assert plan == DailyPlan(dates=(date(2026, 3, 8), date(2026, 3, 10)), region="us-east")
    assert plan_daily(plan_window(utc(2026, 3, 10, 9), utc(2026, 3, 10, 10)), summary(())) is None


def test_payloads_round_trip_through_xcom() -> None:
    window = plan_window(utc(2026, 3, 10, 23), utc(2026, 3, 11, 0), region="sa-east")
    assert AnalyticsWindow.from_xcom(window.to_xcom()) == window
    done = summary((date(2026, 3, 9),))
    assert SilverSummary.from_xcom(done.to_xcom()) == done
    plan = DailyPlan((date(2026, 3, 9), date(2026, 3, 10)), None)
    assert DailyPlan.from_xcom(plan.to_xcom()) == plan
    assert plan.to_xcom() == {"dates": ["2026-03-09", "2026-03-10"], "region": None}


def test_gate_message_states_the_ratio_and_the_limit() -> None:
    gate = summary(()).gate
    assert gate.bad_ratio == 0.2
    assert gate.message("w") == (
        "data-quality gate FAILED for w: 2 of 10 rows quarantined (20.0%; limit 5.0%); "
        "failed expectations: batch [quarantine_reason]: 2 of 10 rows"
    )
