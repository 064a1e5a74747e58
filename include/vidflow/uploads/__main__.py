"""``python -m vidflow.uploads``: run the upload service under uvicorn.

Host and port come from the settings (``VIDFLOW_BIND_HOST``, ``VIDFLOW_UPLOAD_PORT``).
"""

from __future__ import annotations

import logging

import uvicorn

from vidflow.config import get_settings


def main() -> None:
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uvicorn.run(
        "vidflow.uploads.app:create_app",
        factory=True,
        host=settings.bind_host,
        port=settings.upload_port,
        # In-flight PATCHes get this long to finish on SIGTERM; the rest resume later.
        timeout_graceful_shutdown=20,
        log_level="info",
    )


if __name__ == "__main__":
    main()
