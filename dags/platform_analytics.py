"""
### Platform analytics

Turns the watch events viewers post (NDJSON objects in the events bucket, in folders of
the hour they were **received**) into Delta tables partitioned by the hour they
**happened**, and once a day into daily statistics and catalog counters.

Every hour, for the hour that just ended (its data interval):

1. **plan**: the receive hours to read and, at the last hour of a UTC day, the daily part.
2. **silver** (Spark, `jobs/watch_events_silver.py`): parses every line against the event
   contract, gives every bad line a reason (not JSON, wrong type, missing field, unknown
   event type/region/device, position out of range, malformed UUID, from the future,
   more than `VIDFLOW_EVENTS_MAX_LATENESS_HOURS` late, unknown video) and writes it to
   `analytics/watch_events_quarantine`; runs the Great Expectations suite of the same
   rules on the batch; only if it passes, MERGEs the good events into
   `analytics/watch_events` (one row per `event_id`; a late event lands in its own day).
3. **gate**: fails the run, without retrying, when more than
   `VIDFLOW_ANALYTICS_MAX_BAD_RATIO` of the batch was rejected; the log names the failed
   expectations, the ratio and the Data Docs page (`.local/gx/data_docs/index.html`).
4. **daily** (last hour of a UTC day, or when asked): the day just ended plus every
   earlier day that late events received during it touched, then **gold_daily**
   (`video_daily_stats`, `user_video_daily`) and **catalog_sync** (watch history, view
   and like counts). Otherwise these two are skipped.

**Trigger w/ config.**
- *Backfill* a date range: `start_date` and `end_date` (UTC days, inclusive): every
  receive hour of those days, then gold and the catalog sync for every day in it.
- *Re-run one region*: `region` restricts every job to that region's partitions.
- `daily`: `auto` (default), `always` or `never`.

Airflow's own backfill (`airflow backfill create --dag-id platform_analytics ...`) works
too: each run reads its own data interval. Every step is idempotent, so clearing or
re-running any run leaves the same tables.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from vidflow.analytics.payloads import DAILY_MODES
from vidflow.orchestration.schedules import timed
from vidflow.orchestration.spark import VidflowSparkSubmitOperator, job_path
from vidflow.regions import REGION_NAMES


def pulled(task_id: str, field: str) -> str:
    """Template of one field of a task's XCom payload ('' when it is None)."""
    return "{{ ti.xcom_pull(task_ids='" + task_id + "')['" + field + "'] or '' }}"


@dag(
    schedule=timed(CronDataIntervalTimetable("0 * * * *", timezone="UTC")),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vidflow", "analytics"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "start_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Backfill from this UTC day (inclusive) instead of the data interval.",
        ),
        "end_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Backfill up to this UTC day (inclusive); default: start_date.",
        ),
        "region": Param(
            None,
            type=["null", "string"],
            enum=[None, *REGION_NAMES],
            description="Re-run only this region's partitions.",
        ),
        "daily": Param(
            "auto",
            type="string",
            enum=list(DAILY_MODES),
            description="Gold + catalog sync: auto (last hour of a day, or a date range), "
            "always, never.",
        ),
    },
    doc_md=__doc__,
)
def platform_analytics() -> None:
    @task
    def plan(**context: Any) -> dict[str, Any]:
        """The receive hours, region and daily part of this run."""
        from vidflow.config import get_settings
        from vidflow.orchestration.platform_analytics import summary_path, window_of_run

        window = window_of_run(context)
        path = summary_path(get_settings(), context["dag"].dag_id, context["run_id"])
        context["ti"].xcom_push(key="summary", value=str(path))
        return window.to_xcom()

    silver = VidflowSparkSubmitOperator(
        task_id="silver",
        application=job_path("watch_events_silver.py"),
        application_args=[
            "--start",
            pulled("plan", "start"),
            "--end",
            pulled("plan", "end"),
            "--region=" + pulled("plan", "region"),
            "--touched-since=" + pulled("plan", "touched_since"),
            "--summary",
            "{{ ti.xcom_pull(task_ids='plan', key='summary') }}",
            "--gate",
            "report",
        ],
    )

    @task(retries=0)
    def gate(window: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Fails the run when the data-quality gate rejected the batch."""
        from pathlib import Path

        from vidflow.analytics.payloads import AnalyticsWindow
        from vidflow.orchestration.platform_analytics import check_gate, read_summary

        path = Path(context["ti"].xcom_pull(task_ids="plan", key="summary"))
        return check_gate(AnalyticsWindow.from_xcom(window), read_summary(path)).to_xcom()

    @task.short_circuit
    def daily(window: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any] | None:
        """The days to recompute, or skip gold and the catalog sync."""
        from vidflow.analytics.payloads import AnalyticsWindow, SilverSummary
        from vidflow.orchestration.platform_analytics import daily_of_run

        plan = daily_of_run(AnalyticsWindow.from_xcom(window), SilverSummary.from_xcom(summary))
        return plan.to_xcom() if plan else None

    daily_args = [
        "--dates",
        "{{ ti.xcom_pull(task_ids='daily')['dates'] | join(',') }}",
        "--region=" + pulled("daily", "region"),
    ]
    gold = VidflowSparkSubmitOperator(
        task_id="gold_daily",
        application=job_path("watch_gold_daily.py"),
        application_args=daily_args,
    )
    catalog_sync = VidflowSparkSubmitOperator(
        task_id="catalog_sync",
        application=job_path("watch_catalog_sync.py"),
        application_args=daily_args,
    )

    window = plan()
    checked = gate(window)
    window >> silver >> checked
    daily(window, checked) >> gold >> catalog_sync


platform_analytics()
