"""
### Video processing

Turns uploaded originals into adaptive-bitrate streams: **probe** and validate the source,
plan the **ladder** (Apple HLS authoring table, never upscaled), **transcode** one mapped
task per rendition in the `transcode` pool (x264 capped CRF, identical closed GOPs),
**package** CMAF segments shared by an HLS master (+ I-frame playlists) and a DASH MPD,
make **thumbnails** and a storyboard, and **publish** in one catalog transaction.

**Triggers.** Messages on the processing queue (SQS `AssetWatcher`); a run takes every
video of every message it was given. From the UI: *Trigger DAG w/ config* with
`video_id` (and `force` to re-transcode a video that is already processed or failed).

**Outcomes.** An invalid source (not media, empty, truncated, no video, > 8K, too long,
undecodable) ends `failed` with a readable `failure_reason` and the run stays green.
Unexpected task failures are retried; the last failure is recorded on the video by the
failure callback and fails the run's `report` task. Duplicate messages are harmless: a
video already processed, or claimed by another active run, is skipped.

Output: `media/videos/{video_id}/{version}/` in the media bucket; see the README,
section "Video processing".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task

from vidflow.config import get_settings
from vidflow.orchestration.video_processing import on_task_failure, processing_queue_asset

settings = get_settings()


@dag(
    schedule=[processing_queue_asset(settings)],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=settings.processing_max_active_runs,
    tags=["vidflow", "media"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=20),
        "on_failure_callback": on_task_failure,
    },
    params={
        "video_id": Param(
            None,
            type=["null", "string"],
            description="Process this video (its id in the catalog).",
            pattern="^[0-9a-fA-F-]{36}$",
        ),
        "force": Param(
            False,
            type="boolean",
            description="Re-transcode even if the video is already processed or failed.",
        ),
    },
    doc_md=__doc__,
)
def video_processing() -> None:
    @task
    def videos_of_run(**context: Any) -> list[dict[str, Any]]:
        from vidflow.orchestration.video_processing import asset_event_extras
        from vidflow.processing.steps import collect_requests

        params = context["params"]
        return collect_requests(
            asset_event_extras(context), video_id=params["video_id"], force=params["force"]
        )

    @task(map_index_template="{{ task.op_kwargs['request']['video_id'] }}")
    def probe(request: dict[str, Any], **context: Any) -> dict[str, Any]:
        from vidflow.orchestration.video_processing import run_activity_probe
        from vidflow.processing.steps import probe_video

        return probe_video(
            request,
            settings=get_settings(),
            run_id=context["run_id"],
            attempt=context["ti"].try_number,
            is_run_active=run_activity_probe(context),
        )

    @task
    def plan_ladder(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from vidflow.processing.steps import plan_renditions

        return plan_renditions(list(jobs))

    @task(
        pool="transcode",
        queue="transcode",
        map_index_template="{{ task.op_kwargs['rendition']['label'] }}",
        execution_timeout=timedelta(hours=12),
    )
    def transcode(rendition: dict[str, Any], **context: Any) -> dict[str, Any]:
        from vidflow.processing.steps import transcode_rendition

        return transcode_rendition(rendition, settings=get_settings(), run_id=context["run_id"])

    @task(map_index_template="{{ task.op_kwargs['job']['video_id'] }}")
    def thumbnails(job: dict[str, Any]) -> dict[str, Any]:
        from vidflow.processing.steps import make_thumbnails

        return make_thumbnails(job, settings=get_settings())

    @task(trigger_rule="all_done", map_index_template="{{ task.op_kwargs['job']['video_id'] }}")
    def package(
        job: dict[str, Any], transcoded: list[dict[str, Any]], **context: Any
    ) -> dict[str, Any]:
        from vidflow.processing.steps import package_video

        return package_video(
            job, list(transcoded), settings=get_settings(), run_id=context["run_id"]
        )

    @task(
        trigger_rule="all_done",
        map_index_template="{{ task.op_kwargs['packaged']['video_id'] }}",
    )
    def publish(
        packaged: dict[str, Any], thumbnails: list[dict[str, Any]], **context: Any
    ) -> dict[str, Any]:
        from vidflow.processing.steps import publish_video

        return publish_video(
            packaged, list(thumbnails), settings=get_settings(), run_id=context["run_id"]
        )

    @task(trigger_rule="all_done", retries=0, on_failure_callback=None)
    def report(outcomes: list[dict[str, Any]], **context: Any) -> dict[str, list[str]]:
        from airflow.sdk.exceptions import AirflowFailException

        from vidflow.orchestration.video_processing import failed_tasks
        from vidflow.processing.steps import ERROR, summarize

        table = summarize(list(outcomes))
        broken = failed_tasks(context)
        if broken or table.get(ERROR):
            raise AirflowFailException(
                f"unexpected failures (recorded on the videos): tasks {broken}, "
                f"videos {table.get(ERROR, [])}"
            )
        return table

    jobs = probe.expand(request=videos_of_run())
    encoded = transcode.expand(rendition=plan_ladder(jobs))
    posters = thumbnails.expand(job=jobs)
    packaged = package.partial(transcoded=encoded).expand(job=jobs)
    report(publish.partial(thumbnails=posters).expand(packaged=packaged))


video_processing()
