"""What every step of a video_processing run shares: one piece of work per video with
errors isolated per video, the record of an unexpected failure, scratch space, and the
claim check a long step makes before it writes.

Failures that are the source's fault become ``failed`` videos with a reason and the run
goes on; anything else raises, is retried by Airflow, and on the last attempt is recorded
on the video (:func:`record_unexpected_failure`) with a fixed sentence; the detail, with
credentials redacted, goes to the task log only.
"""

from __future__ import annotations

import logging
import tempfile
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from vidflow.config import Settings
from vidflow.media.untrusted import redact
from vidflow.processing import catalog

log = logging.getLogger(__name__)

T = TypeVar("T")
Report = Callable[[str], None]


class StepError(RuntimeError):
    """A step failed for some videos for reasons other than their sources (storage,
    database, a crashed tool); Airflow retries the step."""


def internal_error_reason(what: str) -> str:
    """What an uploader reads when processing failed for a reason not their file's.
    ``what`` names a step ("publishing", "running transcode"), never an error."""
    return f"Internal error while {what}; an operator can find the details in the task log."


def describe_error(error: BaseException) -> str:
    """An exception and its traceback for the task log, credentials redacted (a
    presigned URL can sit in a subprocess command line)."""
    return redact("".join(traceback.format_exception(error)).strip())


def record_unexpected_failure(
    *,
    settings: Settings,
    video_ids: Iterable[str],
    run_id: str,
    what: str,
    error: BaseException | None,
) -> None:
    """Record an unexpected task failure on every video it concerned: the uploader reads
    a fixed sentence; the (redacted) error goes to the task log only."""
    reason = internal_error_reason(what)[: catalog.MAX_REASON]
    detail = describe_error(error) if error else "the task failed"
    for video_id in dict.fromkeys(video_ids):
        if catalog.mark_failed(settings=settings, video_id=video_id, run_id=run_id, reason=reason):
            log.error("video %s marked failed: %s (%s)", video_id, reason, detail)


def per_video(
    work: Mapping[str, Callable[[], T]],
    *,
    what: str,
    settings: Settings,
    run_id: str,
    last_attempt: bool,
    on_error: Callable[[str, str], T],
    workers: int = 1,
) -> dict[str, T]:
    """Run one piece of work per video (``workers`` at a time) and return the results.

    An unexpected error for any video fails the step, so Airflow retries it whole (every
    step is idempotent); on the last attempt the video is recorded as failed instead and
    gets ``on_error(video_id, reason)`` as its result, and the other videos go on.
    """
    results: dict[str, T] = {}
    errors: dict[str, Exception] = {}
    with ThreadPoolExecutor(max(1, min(workers, len(work)))) as pool:
        futures = {video_id: pool.submit(job) for video_id, job in work.items()}
        for video_id, future in futures.items():
            try:
                results[video_id] = future.result()
            except Exception as exc:
                log.error("%s failed for video %s: %s", what, video_id, describe_error(exc))
                errors[video_id] = exc
    if errors and not last_attempt:
        raise StepError(
            f"{what} failed unexpectedly for {len(errors)} of {len(work)} videos "
            f"({', '.join(errors)}); the step will be retried"
        )
    for video_id, error in errors.items():
        record_unexpected_failure(
            settings=settings, video_ids=[video_id], run_id=run_id, what=what, error=error
        )
        results[video_id] = on_error(video_id, internal_error_reason(what))
    return results


def scratch(settings: Settings) -> tempfile.TemporaryDirectory[str]:
    """A scratch directory for one step (``scratch_dir`` or the system temp dir)."""
    return tempfile.TemporaryDirectory(prefix="vidflow-", dir=settings.scratch_dir or None)


def still_ours(settings: Settings, video_id: str, run_id: str) -> bool:
    """Whether ``run_id`` still holds the claim on the video (a forced re-run may have
    taken it over)."""
    state = catalog.video_state(settings=settings, video_id=video_id)
    return bool(state and state["processing_run_id"] == run_id)
