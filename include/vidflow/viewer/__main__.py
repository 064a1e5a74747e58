"""``python -m vidflow.viewer [--host H] [--port P] [--workers N]``: run the viewer API
under uvicorn.

Defaults come from the settings (``VIDFLOW_BIND_HOST``, ``VIDFLOW_VIEWER_PORT``,
``VIDFLOW_VIEWER_WORKERS``). Each worker process runs its own app and event log.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn

from vidflow.config import get_settings
from vidflow.viewer.app import LOG_FORMAT


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m vidflow.viewer", description=__doc__)
    parser.add_argument("--host", default=settings.bind_host)
    parser.add_argument("--port", type=int, default=settings.viewer_port)
    parser.add_argument("--workers", type=int, default=settings.viewer_workers)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    uvicorn.run(
        "vidflow.viewer.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # In-flight event posts are answered once their events are written (at once on
        # SIGTERM); this bounds a stop when object storage hangs.
        timeout_graceful_shutdown=20,
        # The supervisor kills a worker that does not answer its ping in time (uvicorn's
        # default: 5 s). A worker saturated by a burst answers late but is not hung;
        # killing it drops every request it holds, so only a long silence counts.
        timeout_worker_healthcheck=30,
        log_level="info",
        # The hot path: the C parser and event loop, and no access log line per request
        # (formatting it cost more than answering from the cache).
        loop="uvloop",
        http="httptools",
        access_log=False,
    )


if __name__ == "__main__":
    main()
