"""``python -m vidflow.uploads [--host H] [--port P]``: run the upload service under uvicorn.

Host and port default to the settings (``VIDFLOW_BIND_HOST``, ``VIDFLOW_UPLOAD_PORT``).
"""

from __future__ import annotations

import argparse
import logging

import uvicorn

from vidflow.config import get_settings


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m vidflow.uploads", description=__doc__)
    parser.add_argument("--host", default=settings.bind_host)
    parser.add_argument("--port", type=int, default=settings.upload_port)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uvicorn.run(
        "vidflow.uploads.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        # In-flight PATCHes get this long to finish on SIGTERM; the rest resume later.
        timeout_graceful_shutdown=20,
        log_level="info",
    )


if __name__ == "__main__":
    main()
