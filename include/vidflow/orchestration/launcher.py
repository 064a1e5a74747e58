"""Start an Airflow component with the modules of vidflow's tasks already imported.

``python -m vidflow.orchestration.launcher scheduler --skip-serve-logs`` is ``airflow
scheduler --skip-serve-logs``, with one difference. The scheduler (its LocalExecutor
workers) and the Celery worker (its pool processes) start every task as a bare
``os.fork()`` of themselves. Whatever they have imported, the task has too. Left to
itself, each task imports boto3, SQLAlchemy, psycopg and the processing modules, and
botocore reads the S3 service model the first time a client is built. That is about
0.9 s of CPU (0.65 s of imports, 0.2 s for the first client, measured on the 2-core
machine). Every task on a run's critical path pays it: probe, transcode and publish.
Imported here once, before Airflow starts, it costs each fork nothing.

Nothing here opens a connection or starts a thread: a fork must not inherit either.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Sequence
from typing import Final

log = logging.getLogger(__name__)

#: What the tasks of vidflow's DAGs import when they run (their DAG files import only
#: vidflow.orchestration; the steps import these lazily).
TASK_MODULES: Final = (
    "vidflow.processing.probing",
    "vidflow.processing.transcoding",
    "vidflow.processing.publishing",
    "vidflow.processing.maintenance",
    "vidflow.outbox",
    "psycopg",
)

#: Components that fork their tasks: the only ones worth preloading.
FORKING_COMPONENTS: Final = (("scheduler",), ("celery", "worker"))


def forks_tasks(argv: Sequence[str]) -> bool:
    """Does ``airflow <argv>`` start a component whose tasks are forks of itself?"""
    return any(tuple(argv[: len(c)]) == c for c in FORKING_COMPONENTS)


def preload(modules: Sequence[str] = TASK_MODULES) -> float:
    """Import ``modules`` and build (then drop) one S3 and one SQS client, so botocore's
    service models are cached in this process. Returns the seconds it took. A module that
    fails to import is logged and skipped: the task will then import it itself, and fail
    there with its own traceback if it must."""
    started = time.perf_counter()
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            log.exception("preloading %s failed; tasks will import it themselves", name)
    try:
        from vidflow.storage import s3_client, sqs_client

        s3_client()
        sqs_client()
    except Exception:
        log.exception("building the storage clients failed; tasks will build their own")
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if forks_tasks(args):
        seconds = preload()
        print(f"[vidflow] preloaded the task modules in {seconds:.2f} s", file=sys.stderr)
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *args]
    airflow_main()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
