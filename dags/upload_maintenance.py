"""
### Upload maintenance

Keeps the tus upload service (`vidflow.uploads`) tidy. Every hour:

- **expire_uploads**: unfinished uploads past their `Upload-Expires` are cleaned up. The
  S3 multipart upload is aborted, parked tail pieces are deleted, and the video is marked
  `failed` with the reason "upload expired". Nothing of the upload stays in the bucket.
  An upload that a request is writing right now is skipped until the next run.
- **complete_stalled_uploads**: an upload whose last byte was committed, but whose
  completion never ran (the service died in between), is completed. Its video moves to
  `processing` and its processing message goes into the outbox.
- **relay_outbox**: publishes outbox messages still pending to their queues. This is a
  safety net behind the relay that runs inside the upload service.

Every step is idempotent, so a rerun or a retry does no harm. The logic lives in
`vidflow.uploads.service` and `vidflow.outbox`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, task

from vidflow.orchestration.schedules import timed


@dag(
    schedule=timed("@hourly"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["vidflow", "uploads", "maintenance"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    doc_md=__doc__,
)
def upload_maintenance() -> None:
    @task
    def expire_uploads() -> dict[str, object]:
        from vidflow.config import get_settings
        from vidflow.uploads.service import UploadBackend, expire_uploads

        backend = UploadBackend.from_settings(get_settings(), lock_pool_size=1)
        try:
            expired = expire_uploads(backend=backend)
        finally:
            backend.close()
        return {"expired": len(expired), "upload_ids": [str(u) for u in expired[:100]]}

    @task
    def complete_stalled_uploads() -> dict[str, object]:
        from vidflow.config import get_settings
        from vidflow.uploads.service import UploadBackend, complete_stalled_uploads

        backend = UploadBackend.from_settings(get_settings(), lock_pool_size=1)
        try:
            completed = complete_stalled_uploads(backend=backend)
        finally:
            backend.close()
        return {"completed": len(completed), "upload_ids": [str(u) for u in completed[:100]]}

    @task
    def relay_outbox() -> int:
        from vidflow.config import get_settings
        from vidflow.outbox import drain

        return drain(settings=get_settings())

    [expire_uploads(), complete_stalled_uploads()] >> relay_outbox()


upload_maintenance()
