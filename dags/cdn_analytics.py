"""
### CDN analytics and warming

Turns the edges' CloudFront-format access logs (gzip objects in the cdn-logs bucket,
named by the hour their requests happened) into Delta tables, measures each edge's
caching, and warms each edge for the next hour.

Every hour, for the hour that just ended (its data interval):

1. **plan**: the window and Params, written to the run's folder.
2. **bronze** (Spark, `jobs/cdn_bronze.py`): the hour's log objects and those of the
   3 hours before (late objects) into `cdn/cdn_requests` (MERGE on x-edge-request-id,
   partitioned by date and region); malformed lines to `cdn/cdn_requests_quarantine`
   with their reason; a Great Expectations gate on the same rules.
3. **gate**: fails the run, without retry, above `VIDFLOW_CDN_MAX_BAD_RATIO` bad lines;
   the log names the reasons and the Data Docs page.
4. **warm_plan** (Spark, `jobs/cdn_plan.py`): per hour/region/object requests, bytes,
   hit ratio per tier and origin egress (`cdn_object_hourly`), plays and bytes per video
   (`cdn_video_hourly`), decayed popularity (`cdn_popularity`, half-life a Param) and
   each edge's warm plan under the byte budget (`cdn_warm_plan`).
5. **prefetch**: GETs each plan through its edge (4 at a time) and records what the edge
   answered.
6. **replay** (Spark, `jobs/cdn_replay.py`): this hour's requests per edge against LRU,
   LRU warmed by the plan made for this hour, and Belady (`cdn_replay`, MLflow
   experiment `cdn_warming`, one run per edge, one step per hour).

**Trigger w/ config:** `half_life_hours`, `byte_budget` (bytes or `64m`), `region`.
Airflow backfills (`airflow backfill create --dag-id cdn_analytics ...`) read each run's
own interval; every table write is a MERGE or a replaceWhere of the run's hour, so
re-running an hour leaves the same tables.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from vidflow.orchestration.schedules import timed
from vidflow.orchestration.spark import VidflowSparkSubmitOperator, job_path
from vidflow.regions import REGION_NAMES

RUN_DIR = "{{ ti.xcom_pull(task_ids='plan', key='run_dir') }}"


@dag(
    schedule=timed(CronDataIntervalTimetable("0 * * * *", timezone="UTC")),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vidflow", "cdn", "analytics"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "half_life_hours": Param(
            1.0,
            type="number",
            exclusiveMinimum=0,
            description="Half-life of the popularity decay, in hours.",
        ),
        "byte_budget": Param(
            None,
            type=["null", "string", "integer"],
            description="Warming budget per edge (bytes or 64m); default "
            "VIDFLOW_CDN_WARM_BYTE_BUDGET.",
        ),
        "region": Param(
            None,
            type=["null", "string"],
            enum=[None, *REGION_NAMES],
            description="Only this region's edge and partitions.",
        ),
    },
    doc_md=__doc__,
)
def cdn_analytics() -> None:
    @task
    def plan(**context: Any) -> dict[str, Any]:
        """The hour, region and Params of this run."""
        from vidflow.config import get_settings
        from vidflow.orchestration.cdn_analytics import run_dir, window_of_run

        settings = get_settings()
        window = window_of_run(context, settings)
        folder = run_dir(settings, context["run_id"])
        window.write(folder / "window.json")
        context["ti"].xcom_push(key="run_dir", value=str(folder))
        return window.to_xcom()

    bronze = VidflowSparkSubmitOperator(
        task_id="bronze",
        application=job_path("cdn_bronze.py"),
        application_args=[
            "--window", RUN_DIR + "/window.json",
            "--summary", RUN_DIR + "/bronze.json",
            "--gate", "report",
        ],
    )  # fmt: skip

    @task(retries=0)
    def gate(window: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Fails the run when the data-quality gate rejected the hour's lines."""
        from pathlib import Path

        from vidflow.cdn.payloads import CdnWindow
        from vidflow.orchestration.cdn_analytics import check_gate

        folder = Path(context["ti"].xcom_pull(task_ids="plan", key="run_dir"))
        return check_gate(CdnWindow.from_xcom(window), folder / "bronze.json").to_xcom()

    warm_plan = VidflowSparkSubmitOperator(
        task_id="warm_plan",
        application=job_path("cdn_plan.py"),
        application_args=["--window", RUN_DIR + "/window.json", "--plans", RUN_DIR + "/plans.json"],
    )

    @task
    def prefetch(**context: Any) -> dict[str, Any]:
        """Pushes each edge's plan through the edge; records every push."""
        from pathlib import Path

        from vidflow.config import get_settings
        from vidflow.orchestration.cdn_analytics import prefetch as push

        folder = Path(context["ti"].xcom_pull(task_ids="plan", key="run_dir"))
        return push(get_settings(), folder / "plans.json", folder / "prefetch.json")

    replay = VidflowSparkSubmitOperator(
        task_id="replay",
        application=job_path("cdn_replay.py"),
        application_args=[
            "--window", RUN_DIR + "/window.json",
            "--summary", RUN_DIR + "/replay.json",
        ],
    )  # fmt: skip

    window = plan()
    checked = gate(window)
    window >> bronze >> checked >> warm_plan >> prefetch()
    checked >> replay


cdn_analytics()
