"""Airflow-aware steps of the ``platform_analytics`` DAG: the run's window from its data
interval and Params, the silver summary's hand-over and the data-quality gate."""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from vidflow.analytics.payloads import (
    AnalyticsWindow,
    DailyPlan,
    SilverSummary,
    WindowError,
    plan_daily,
    plan_window,
)
from vidflow.config import Settings

log = logging.getLogger(__name__)


def _date_param(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise WindowError(f"{name} must be a date (YYYY-MM-DD), not {value!r}") from None


def data_interval(context: Any) -> tuple[datetime, datetime]:
    """The run's data interval; a manual run without one (Airflow 3 triggers with no
    logical date) gets the last complete hour before it was triggered."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and end > start:
        return start, end
    run_after = context["dag_run"].run_after.astimezone(UTC)
    end = run_after.replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=1), end


def window_of_run(context: Any) -> AnalyticsWindow:
    """The run's window: its data interval, or the ``start_date``/``end_date`` Params."""
    params = context["params"]
    start, end = data_interval(context)
    return plan_window(
        start,
        end,
        start_date=_date_param(params.get("start_date"), "start_date"),
        end_date=_date_param(params.get("end_date"), "end_date"),
        region=params.get("region") or None,
        daily=params.get("daily") or "auto",
    )


def summary_path(settings: Settings, dag_id: str, run_id: str) -> Path:
    """Where the silver job of a run writes its summary (shared by the run's tasks)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return settings.state_dir / "analytics" / "runs" / dag_id / safe / "silver.json"


def read_summary(path: Path) -> SilverSummary:
    import json

    if not path.exists():
        raise FileNotFoundError(f"the silver job wrote no summary at {path}")
    return SilverSummary.from_xcom(json.loads(path.read_text()))


def check_gate(window: AnalyticsWindow, summary: SilverSummary) -> SilverSummary:
    """Log what the silver job did; fail the task (no retry: the data would not change)
    when the data-quality gate rejected the batch."""
    from airflow.sdk.exceptions import AirflowFailException

    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.quarantined.items())) or "none"
    log.info(
        "silver %s: %d objects, %d lines, %d accepted (%d duplicates), quarantined: %s; "
        "event dates %s",
        window.label,
        summary.objects,
        summary.rows_read,
        summary.accepted,
        summary.duplicates,
        reasons,
        ", ".join(d.isoformat() for d in summary.event_dates) or "none",
    )
    if summary.gate.data_docs:
        log.info("Great Expectations Data Docs: file://%s", summary.gate.data_docs)
    message = summary.gate.message(window.label) + f". Quarantined by reason: {reasons}"
    if not summary.gate.passed:
        raise AirflowFailException(
            message + ". Silver was not updated; the rows are in watch_events_quarantine. "
            "Fix the source (or the catalog) and clear this run to re-run the hour."
        )
    log.info(message)
    return summary


def daily_of_run(window: AnalyticsWindow, summary: SilverSummary) -> DailyPlan | None:
    plan = plan_daily(window, summary)
    if plan is None:
        log.info("no daily part in this run (window %s)", window.label)
    else:
        log.info("daily part for %s", plan.label)
    return plan
