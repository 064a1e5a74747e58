"""``python -m vidflow.stack.exec NAME``: exec one service of the local stack with the
platform's environment (settings, secrets, Airflow connections) built at start time.

supervisord runs the programs this way so that its config file holds no secret and a
restarted program always sees the current configuration.
"""

from __future__ import annotations

import os
import sys

from vidflow.config import get_settings
from vidflow.stack.services import find_service, stack_env


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m vidflow.stack.exec SERVICE")
    settings = get_settings()
    svc = find_service(settings, argv[0])
    env = {**os.environ, **stack_env(settings), **svc.env}
    env.pop("VIDFLOW_STACK_FINGERPRINT", None)
    os.execvpe(svc.command[0], svc.command, env)  # noqa: S606 - argument list, no shell


if __name__ == "__main__":
    main(sys.argv[1:])
