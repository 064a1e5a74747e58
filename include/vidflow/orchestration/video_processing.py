"""Airflow glue of the video_processing and video_reconciliation DAGs.

* :func:`processing_queue_asset`: the Asset the DAG is scheduled on, watched by the
  common-messaging ``MessageQueueTrigger`` (SQS scheme) on the processing queue. The queue
  URL is built from settings, without network, because DAG files are parsed often.
* :func:`on_task_failure`: the ``on_failure_callback`` that records an unexpected
  failure (after the last retry) as the ``failure_reason`` of every video the task was
  working on.
* Small readers of the task context (asset events, whether a run is still active).

Imports stay light: this module is imported when the DAG file is parsed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
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


def _video_ids(value: Any, depth: int = 0) -> Iterator[str]:
    # Plain containers only: op_kwargs also hold the task context (lazy mappings of
    # asset events, connections...) that must not be walked.
    if depth > 4:
        return
    if isinstance(value, dict):
        video_id = value.get("video_id")
        if isinstance(video_id, str) and video_id:
            yield video_id
        for item in value.values():
            yield from _video_ids(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _video_ids(item, depth + 1)


def video_ids_of(op_kwargs: Mapping[str, Any]) -> list[str]:
    """Video ids found in a task's (resolved) arguments."""
    return list(dict.fromkeys(_video_ids(dict(op_kwargs))))


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


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Record an unexpected failure on the videos the failed task was working on."""
    from vidflow.config import get_settings
    from vidflow.processing.steps import record_unexpected_failure

    task = context["task"]
    try:
        video_ids = video_ids_of(getattr(task, "op_kwargs", None) or {})
    except Exception:
        log.exception("could not read the failed task's arguments")
        return
    if not video_ids:
        # A task of the whole run (probe): it concerned every video the run was given.
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
