"""Airflow glue of the video_processing and video_reconciliation DAGs.

* :func:`processing_queue_asset`: the Asset the DAG is scheduled on, watched by the
  common-messaging ``MessageQueueTrigger`` (SQS scheme) on the processing queue. The queue
  URL is built from settings, without network, because DAG files are parsed often.
* :func:`on_task_failure`: the ``on_failure_callback`` that records an unexpected
  failure (after the last retry) as the ``failure_reason`` of every video the task was
  working on, read from its typed arguments (:func:`video_ids_of_task`).
* The task bodies (:func:`probe`, :func:`transcode`, :func:`publish`,
  :func:`report`): XComs in, typed steps of ``vidflow.processing``, XComs out.
* Small readers of the task context (asset events, whether a run is still active).

Imports stay light: this module is imported when the DAG file is parsed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from airflow.sdk import Asset, AssetWatcher
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from vidflow.config import Settings

log = logging.getLogger(__name__)

DAG_ID: Final = "video_processing"
ASSET_NAME: Final = "vidflow_processing_queue"
ACTIVE_RUN_STATES: Final = frozenset({"queued", "running"})
#: SQS returns at most 10 messages per receive.
MAX_MESSAGES_PER_POLL: Final = 10


def processing_queue_url(settings: Settings) -> str:
    """URL of the processing queue, from settings alone (no network).

    A custom endpoint (moto, ElasticMQ) serves ``{endpoint}/{account}/{queue}``; AWS
    serves ``https://sqs.{region}.amazonaws.com/{account}/{queue}``.
    """
    endpoint = settings.queue_endpoint_url
    if endpoint:
        return f"{endpoint.rstrip('/')}/{settings.sqs_account_id}/{settings.processing_queue}"
    return (
        f"https://sqs.{settings.aws_region}.amazonaws.com/"
        f"{settings.sqs_account_id}/{settings.processing_queue}"
    )


class ProcessingQueueTrigger(BaseEventTrigger):
    """The common-messaging ``MessageQueueTrigger(scheme="sqs", ...)``, built on use.

    Importing the messaging trigger initialises every message-queue provider, which
    imports boto3; doing that in ``serialize()``/``run()`` instead of at import keeps the
    DAG file cheap to import. What gets stored and run is exactly the message-queue
    trigger's serialised form (the Amazon provider's SQS trigger with these kwargs).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.trigger_kwargs = kwargs

    def _message_queue_trigger(self) -> BaseEventTrigger:
        from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

        return MessageQueueTrigger(scheme="sqs", **self.trigger_kwargs)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return self._message_queue_trigger().serialize()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in self._message_queue_trigger().run():
            yield event


def processing_queue_asset(settings: Settings) -> Asset:
    """The Asset whose watcher turns processing-queue messages into asset events."""
    trigger = ProcessingQueueTrigger(
        sqs_queue=processing_queue_url(settings),
        aws_conn_id="aws_default",
        max_messages=MAX_MESSAGES_PER_POLL,
        # Long polling: a message starts a run within moments, at one request per wait.
        wait_time_seconds=settings.processing_queue_wait_seconds,
        waiter_delay=1,
    )
    return Asset(
        name=ASSET_NAME,
        watchers=[AssetWatcher(name="processing_queue_watcher", trigger=trigger)],
    )


def asset_event_extras(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``extra`` of every asset event that triggered the current run."""
    extras: list[dict[str, Any]] = []
    events = context.get("triggering_asset_events") or {}
    for asset in events:
        for event in events[asset]:
            extras.append(dict(event.extra or {}))
    return extras


def run_activity_probe(context: Mapping[str, Any], dag_id: str = DAG_ID) -> Callable[[str], bool]:
    """``is_active(run_id)`` for runs of ``dag_id``, asked through the Task SDK."""
    ti = context["ti"]

    def is_active(run_id: str) -> bool:
        try:
            state = ti.get_dagrun_state(dag_id=dag_id, run_id=run_id)
        except Exception as exc:  # an unknown run id
            log.info("state of run %s unknown (%s): treating it as finished", run_id, exc)
            return False
        return str(getattr(state, "value", state)) in ACTIVE_RUN_STATES

    return is_active


def failed_tasks(context: Mapping[str, Any]) -> list[str]:
    """Task instances of the current run that ended failed or upstream_failed."""
    ti = context["ti"]
    run_id = context["run_id"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[run_id]).get(run_id, {})
    return sorted(
        name
        for name, state in states.items()
        if str(getattr(state, "value", state)) in ("failed", "upstream_failed")
    )


def is_last_attempt(context: Mapping[str, Any]) -> bool:
    """Whether a failure of the running task would be final (no retry left)."""
    return bool(context["ti"].try_number > (context["task"].retries or 0))


def videos_of_run(context: Mapping[str, Any]) -> list[str]:
    """Video ids the current run was given (queue messages and the UI Params)."""
    from vidflow.processing.requests import requests_for_run

    params = context.get("params") or {}
    try:
        requests = requests_for_run(
            asset_event_extras(context),
            video_id=params.get("video_id"),
            force=bool(params.get("force")),
        )
    except Exception:
        log.exception("could not read the videos of the run")
        return []
    return [request.video_id for request in requests]


def video_ids_of_task(op_kwargs: Mapping[str, Any], context: Mapping[str, Any]) -> list[str]:
    """The videos a task was working on, read from its typed arguments: an ``encode``
    (the mapped transcode) names one video, ``jobs`` (publish) the run's
    ready videos; a task of the whole run (probe) concerns every video the run was given.
    """
    from vidflow.processing.contracts import Encode, VideoJob

    encode = op_kwargs.get("encode")
    if isinstance(encode, Mapping):
        return [Encode.from_xcom(encode).video_id]
    jobs = op_kwargs.get("jobs")
    if jobs:
        return list(dict.fromkeys(VideoJob.from_xcom(job).video_id for job in jobs if job))
    return videos_of_run(context)


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Record an unexpected failure on the videos the failed task was working on."""
    from vidflow.config import get_settings
    from vidflow.processing.runs import record_unexpected_failure

    task = context["task"]
    try:
        video_ids = video_ids_of_task(getattr(task, "op_kwargs", None) or {}, context)
    except Exception:
        log.exception("could not read the videos of the failed task; using the run's")
        video_ids = videos_of_run(context)
    if not video_ids:
        log.error("%s failed and names no video; reconciliation will re-enqueue", task.task_id)
        return
    record_unexpected_failure(
        settings=get_settings(),
        video_ids=video_ids,
        run_id=context["run_id"],
        what=f"running {task.task_id}",
        error=context.get("exception"),
    )


# --- the task bodies of video_processing (typed steps, XComs converted here) ---------------


def probe(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every video of the run probed and planned: pushes the ``jobs`` XCom, returns the
    encodes of the mapped transcode task."""
    from vidflow.config import get_settings
    from vidflow.processing.probing import probe_videos

    params, ti = context["params"], context["ti"]
    planned = probe_videos(
        asset_event_extras(context),
        video_id=params["video_id"],
        force=params["force"],
        settings=get_settings(),
        run_id=context["run_id"],
        attempt=ti.try_number,
        last_attempt=is_last_attempt(context),
        is_run_active=run_activity_probe(context),
    )
    ti.xcom_push(key="jobs", value=[job.to_xcom() for job in planned.jobs])
    return [encode.to_xcom() for encode in planned.encodes]


def transcode_executor(settings: Settings) -> str | None:
    """The executor of the transcode tasks: None (Airflow's default, the LocalExecutor
    locally) or the CeleryExecutor, whose worker consumes the `transcode` queue."""
    return "CeleryExecutor" if settings.transcode_executor == "celery" else None


def transcode(encode: Mapping[str, Any], context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One encode: its renditions encoded, cut and staged."""
    from vidflow.config import get_settings
    from vidflow.processing.contracts import Encode
    from vidflow.processing.transcoding import transcode_encode

    results = transcode_encode(
        Encode.from_xcom(encode), settings=get_settings(), run_id=context["run_id"]
    )
    return [result.to_xcom() for result in results]


def _jobs(jobs: Iterable[Mapping[str, Any] | None]) -> list[Any]:
    from vidflow.processing.contracts import VideoJob

    return [VideoJob.from_xcom(job) for job in jobs if job]


def publish(
    jobs: Iterable[Mapping[str, Any] | None],
    transcoded: Iterable[Sequence[Mapping[str, Any] | None] | None],
    context: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Package and publish every video of the run (a transcode task that never ran
    gives None)."""
    from vidflow.config import get_settings
    from vidflow.processing.contracts import RenditionResult
    from vidflow.processing.publishing import publish_videos

    outcomes = publish_videos(
        _jobs(jobs),
        [RenditionResult.from_xcom(r) for result in transcoded if result for r in result if r],
        settings=get_settings(),
        run_id=context["run_id"],
        last_attempt=is_last_attempt(context),
    )
    return [outcome.to_xcom() for outcome in outcomes]


def report(
    outcomes: Iterable[Mapping[str, Any] | None], context: Mapping[str, Any]
) -> dict[str, list[str]]:
    """The run's videos by outcome; fails the run when a task or a video failed
    unexpectedly (it was recorded on the videos already)."""
    from airflow.sdk.exceptions import AirflowFailException

    from vidflow.processing.contracts import ERROR, Outcome
    from vidflow.processing.publishing import summarize

    table = summarize(Outcome.from_xcom(o) for o in outcomes if o)
    broken = failed_tasks(context)
    if broken or table.get(ERROR):
        raise AirflowFailException(
            f"unexpected failures (recorded on the videos): tasks {broken}, "
            f"videos {table.get(ERROR, [])}"
        )
    return table


# --- the task bodies of video_reconciliation ------------------------------------------------


def reenqueue_stuck_videos(context: Mapping[str, Any]) -> dict[str, list[str]]:
    """Re-enqueue videos stuck in ``processing`` through the outbox, then relay the new
    messages at once (the upload service's relays would pick them up anyway)."""
    from vidflow.config import get_settings
    from vidflow.outbox import enqueue, relay_once
    from vidflow.processing.maintenance import reconcile

    current = get_settings()
    outbox_ids: list[int] = []

    def add_message(conn: Any, payload: dict[str, Any]) -> None:
        outbox_ids.append(enqueue(conn, topic=current.processing_queue, payload=payload))

    result = reconcile(
        settings=current, is_run_active=run_activity_probe(context), enqueue=add_message
    )
    if outbox_ids:
        relay_once(settings=current, ids=outbox_ids)
    return result


def sweep_orphaned_versions(context: Mapping[str, Any]) -> dict[str, list[str]]:
    """Delete media versions nothing points at (superseded ones after their grace)."""
    from vidflow.config import get_settings
    from vidflow.processing.maintenance import sweep_orphaned_versions as sweep

    return sweep(settings=get_settings(), is_run_active=run_activity_probe(context))
