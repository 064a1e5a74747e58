"""
### Video processing

Turns uploaded originals into adaptive-bitrate streams: **probe** and validate every
source of the run (and check it against the upload's SHA-256), plan its **ladder** (Apple
HLS authoring table, never upscaled), **transcode** in mapped tasks in the `transcode`
pool (x264 capped CRF, identical closed GOPs, CMAF segments; the encodes also make the
posters, from frames their decode keeps, and the storyboard), then **publish**: write the
HLS master (+ I-frame playlists) and the DASH MPD over the shared segments and flip the
catalog in one transaction.

**Triggers.** Messages on the processing queue (SQS `AssetWatcher`); a run takes every
video of every message it was given. From the UI: *Trigger DAG w/ config* with
`video_id` (and `force` to re-transcode a video that is already processed or failed).

**Fan-out.** Each video's renditions are split into `VIDFLOW_ENCODES_PER_VIDEO` encodes of
about equal cost: each mapped task is one ffmpeg that decodes the source once and encodes
its share of the ladder, and its map index names its renditions (e.g.
`1080p+720p+540p+432p+360p+234p+audio`). One encode per video is the default, the fastest
on one machine; with 0 (one per slot of the `transcode` pool, as on a Celery pool of
several machines) the ladder is split, e.g. `1080p+audio` and `720p+540p+432p+360p+234p`,
at the cost of one more decode per encode.

**Outcomes.** An invalid source (not media, empty, truncated, no video, > 8K, too long,
undecodable) ends `failed` with a readable `failure_reason` and the run stays green.
Every task has an `execution_timeout` (`VIDFLOW_PROCESSING_TASK_TIMEOUT_MINUTES`,
`VIDFLOW_TRANSCODE_TASK_TIMEOUT_MINUTES` for transcode) and every ffprobe/ffmpeg call a
timeout of its own. Unexpected task failures are retried; the last failure is recorded
on the video by the failure callback and fails the run's `report` task. Duplicate
messages are harmless: a video already processed, or claimed by another active run, is
skipped.

Output: `media/videos/{video_id}/{version}/` in the media bucket; see the README,
section "Video processing".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task

from vidflow.config import get_settings
from vidflow.orchestration import video_processing as steps
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
        "execution_timeout": timedelta(minutes=settings.processing_task_timeout_minutes),
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
    def probe(**context: Any) -> list[dict[str, Any]]:
        """Every video of the run probed and planned; returns the encodes to run (the
        videos themselves go to the XCom ``jobs``)."""
        return steps.probe(context)

    @task(
        pool="transcode",
        queue="transcode",
        executor=steps.transcode_executor(settings),
        map_index_template="{{ task.op_kwargs['encode']['label'] }}",
        execution_timeout=timedelta(minutes=settings.transcode_task_timeout_minutes),
    )
    def transcode(encode: dict[str, Any], **context: Any) -> list[dict[str, Any]]:
        return steps.transcode(encode, context)

    @task(trigger_rule="all_done")
    def publish(
        jobs: list[dict[str, Any]],
        transcoded: list[list[dict[str, Any]]],
        **context: Any,
    ) -> list[dict[str, Any]]:
        return steps.publish(jobs, transcoded, context)

    @task(trigger_rule="all_done", retries=0, on_failure_callback=None)
    def report(outcomes: list[dict[str, Any]], **context: Any) -> dict[str, list[str]]:
        return steps.report(outcomes, context)

    encodes = probe()
    jobs = encodes["jobs"]
    encoded = transcode.expand(encode=encodes)
    report(publish(jobs, encoded))


video_processing()
