"""Imports every DAG file with the network and the metadata DB out of reach and prints a
JSON report of what it found. Run in a fresh interpreter by test_dag_integrity.py, so
the modules it sees loaded are the ones the DAG files themselves pulled in."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
from pathlib import Path
from typing import Any

HEAVY = ("pyspark", "pandas", "lightfm", "mlflow", "great_expectations", "ffmpeg", "boto3")


class NetworkAtParseTime(RuntimeError):
    pass


def _refuse(*args: object, **kwargs: object) -> None:
    raise NetworkAtParseTime(f"network access at DAG parse time: {args}")


def main(dags_dir: Path) -> dict[str, Any]:
    socket.socket.connect = _refuse  # type: ignore[method-assign]
    socket.create_connection = _refuse  # type: ignore[assignment]
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    baseline = set(sys.modules)
    report: dict[str, Any] = {"errors": {}, "dags": {}, "heavy_modules": {}}
    for path in sorted(dags_dir.glob("*.py")):
        before = set(sys.modules)
        try:
            spec = importlib.util.spec_from_file_location(f"dagfile_{path.stem}", path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            DagContext.current_autoregister_module_name = spec.name
            spec.loader.exec_module(module)
        except Exception as exc:
            report["errors"][path.name] = f"{type(exc).__name__}: {exc}"
            continue
        loaded = set(sys.modules) - before - baseline
        report["heavy_modules"][path.name] = sorted(
            {m.split(".")[0] for m in loaded if m.split(".")[0] in HEAVY}
        )
        # `@dag`-decorated functions called at module level register themselves here,
        # which is also how Airflow's own DagBag finds them.
        found = [dag for dag, mod in DagContext.autoregistered_dags if mod is module]
        for dag in found:
            report["dags"][dag.dag_id] = {
                "file": path.name,
                "tags": sorted(dag.tags),
                "doc_md": dag.doc_md or "",
                "retries": (dag.default_args or {}).get("retries"),
                "max_active_runs": dag.max_active_runs,
                "catchup": dag.catchup,
                "timetable": type(dag.timetable).__name__,
                "start_date_tz": str(dag.start_date.tzinfo) if dag.start_date else None,
                "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
            }
    return report


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
