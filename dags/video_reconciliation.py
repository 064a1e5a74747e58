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
  no run can still be writing them.

Both steps are idempotent. The logic lives in `vidflow.processing.steps`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from vidflow.config import get_settings

settings = get_settings()


@dag(
    schedule=timedelta(minutes=settings.reconcile_interval_minutes),
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
        from vidflow.orchestration.video_processing import run_activity_probe
        from vidflow.outbox import enqueue, relay_once
        from vidflow.processing.steps import reconcile

        current = get_settings()
        outbox_ids: list[int] = []

        def add_message(conn: Any, payload: dict[str, Any]) -> None:
            outbox_ids.append(enqueue(conn, topic=current.processing_queue, payload=payload))

        result = reconcile(
            settings=current, is_run_active=run_activity_probe(context), enqueue=add_message
        )
        if outbox_ids:
            # Publish now; the relays of the upload service would pick them up anyway.
            relay_once(settings=current, ids=outbox_ids)
        return result

    @task
    def sweep_orphaned_versions(**context: Any) -> dict[str, list[str]]:
        from vidflow.orchestration.video_processing import run_activity_probe
        from vidflow.processing.steps import sweep_orphaned_versions

        return sweep_orphaned_versions(
            settings=get_settings(), is_run_active=run_activity_probe(context)
        )

    reenqueue_stuck_videos() >> sweep_orphaned_versions()


video_reconciliation()
