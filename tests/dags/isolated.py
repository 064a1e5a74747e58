"""Run a DAG-parsing script in a fresh interpreter, as Airflow's dag-processor would, with
the metadata database out of reach, and return the JSON it prints last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

UNREACHABLE_DB = "nobody@127.0.0.1:9/none"


def parse_in_fresh_interpreter(
    argv: list[str], airflow_home: Path, env_overrides: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """``python ARGV...`` with an unreachable metadata DB; ``None`` in ``env_overrides``
    removes a variable."""
    env: dict[str, str] = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://{UNREACHABLE_DB}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"postgresql+psycopg_async://{UNREACHABLE_DB}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    # The DAG files as deployed: `make test` switches the schedules of its own stack off,
    # which a test of the files' schedules asks for explicitly.
    env.pop("VIDFLOW_DAG_SCHEDULES", None)
    for name, value in (env_overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    result = subprocess.run(
        [sys.executable, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed
