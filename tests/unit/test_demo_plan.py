"""The demo's plan and its error naming, without the stack."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from vidflow.config import Settings
from vidflow.platform.demo import STEPS, DemoFailed, DemoPlan
from vidflow.platform.demo_summary import DemoSummary, Warming, format_summary
from vidflow.platform.demo_traffic import clip_specs


def test_a_failed_step_is_named_with_its_number() -> None:
    error = DemoFailed("recs", "recs_training run x failed")
    assert str(error) == "step 6/8 'recs' failed: recs_training run x failed"
    assert error.step == "recs" and STEPS[5] == "recs"


def test_cdn_hours_are_consecutive_and_end_at_21h_on_the_last_history_day() -> None:
    plan = replace(DemoPlan.from_settings(Settings(), today=date(2026, 3, 1)), cdn_hours=3)
    assert plan.cdn_hours_utc() == [
        datetime(2026, 2, 28, 18, tzinfo=UTC),
        datetime(2026, 2, 28, 19, tzinfo=UTC),
        datetime(2026, 2, 28, 20, tzinfo=UTC),
    ]
    assert replace(plan, history_days=3).first_day == date(2026, 2, 26)


def test_runs_of_other_days_or_sizes_have_other_names() -> None:
    plan = DemoPlan.from_settings(Settings(), today=date(2026, 3, 1))
    assert plan.tag != replace(plan, today=date(2026, 3, 2)).tag
    assert plan.tag != replace(plan, history_viewers=plan.history_viewers + 1).tag
    assert plan.tag == DemoPlan.from_settings(Settings(), today=date(2026, 3, 1)).tag


def test_clips_have_distinct_titles_looks_and_topic_tags() -> None:
    clips = clip_specs(7, 8)
    assert len({c.title for c in clips}) == 8
    assert len({c.pattern for c in clips}) == 8  # eight looks, one each
    assert all(1 <= len(c.tags) <= 5 for c in clips)
    assert clip_specs(7, 8) == clips  # the same on every run: a re-run finds its clips


def test_summary_names_the_web_app_login_and_figures() -> None:
    settings = Settings(demo_password="Demo-password-123", viewer_port=8091)  # type: ignore[arg-type]
    summary = DemoSummary(
        clips_processed=6,
        catalog_processed=66,
        history_events=1000,
        live_events=50,
        viewer_events=6,
        analytics_accepted=1056,
        analytics_quarantined=0,
        warming=Warming(2, 4, 0.25, 0.5, 0.55, 0.7),
        champion=None,
        recommendations_for_viewer=20,
    )
    text = format_summary(
        summary,
        settings,
        clips=6,
        first_day=date(2026, 2, 27),
        today=date(2026, 3, 1),
        timings={"stack": 3.0, "catalog": 60.0},
    )
    assert "http://127.0.0.1:8091/app/" in text
    assert "sign in as demo-viewer / Demo-password-123" in text
    assert "6/6 demo clips processed" in text
    assert "1000 history (2026-02-27..2026-02-28)" in text
    assert "closes 25.0% of the LRU -> Belady byte-hit gap (2 hours x 4 edges)" in text
    assert "wall time   63 s" in text
