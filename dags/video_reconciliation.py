"""
### Video reconciliation

The safety net of `video_processing`. Delivery of processing messages is at least once,
but a message can still be lost with its run (a worker killed mid-run, a scheduler
restart before the run was created). Every few minutes:

- **reenqueue_stuck_videos**: videos in `processing` for longer than
  `VIDFLOW_STUCK_PROCESSING_MINUTES` whose claiming run is no longer active get their
  processing message again (through the outbox, in the same transaction that counts the
  attempt). After `VIDFLOW_MAX_REENQUEUES` attempts the video is marked `failed` with a
  reason instead of looping forever.
- **sweep_orphaned_versions**: media versions nothing points at (staging of dead runs,
  a previous version a crashed publish left) are deleted once they are old enough that
  no run can still be writing them; a version a publish superseded stays readable for
  `VIDFLOW_SUPERSEDED_GRACE_HOURS` first (players mid-stream, caches).

Both steps are idempotent. The logic lives in `vidflow.processing.maintenance`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from vidflow.config import get_settings
from vidflow.orchestration import video_processing as steps
from vidflow.orchestration.schedules import timed

settings = get_settings()


@dag(
    schedule=timed(timedelta(minutes=settings.reconcile_interval_minutes)),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vidflow", "media", "maintenance"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "execution_timeout": timedelta(minutes=settings.processing_task_timeout_minutes),
    },
    doc_md=__doc__,
)
def video_reconciliation() -> None:
    @task
    def reenqueue_stuck_videos(**context: Any) -> dict[str, list[str]]:
        return steps.reenqueue_stuck_videos(context)

    @task
    def sweep_orphaned_versions(**context: Any) -> dict[str, list[str]]:
        return steps.sweep_orphaned_versions(context)

    reenqueue_stuck_videos() >> sweep_orphaned_versions()


video_reconciliation()
