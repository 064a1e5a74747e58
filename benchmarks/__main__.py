"""``python -m benchmarks [NAME ...]`` (``make bench``): run the benchmark scripts.

Every module in this package with a ``main()`` is a benchmark. Each one measures the
platform against a baseline in the same run and writes ``benchmarks/results/NAME.json``
plus a short ``NAME.md`` summary. Pass names to run a subset, e.g. ``make bench
BENCH=upload``. While they run, the stack's time-scheduled DAGs are paused (and their runs
in flight awaited): an hourly Spark job beside a baseline or a timed run skews both.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

PACKAGE_DIR = Path(__file__).parent


def discover() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(PACKAGE_DIR)])
        if not m.name.startswith("_") and m.name != "common"
    )


@contextlib.contextmanager
def quiet_stack() -> Iterator[None]:
    """The stack's time-scheduled DAGs paused for the benchmarks' duration."""
    from vidflow.airflow_api import AirflowClient
    from vidflow.config import get_settings

    settings = get_settings()
    client = AirflowClient.from_settings(settings)
    with contextlib.ExitStack() as stack:
        try:
            paused = stack.enter_context(client.schedules_paused())
        except Exception as exc:  # no stack: the benchmarks that need one say so themselves
            print(f"could not pause the scheduled DAGs ({type(exc).__name__}: {exc})", flush=True)
        else:
            print(f"paused while benchmarking: {', '.join(paused) or 'nothing'}", flush=True)
        yield


def main(argv: list[str]) -> int:
    names = argv or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(discover())}")
        return 2
    # A benchmark stopped with SIGTERM (kill, a timeout) still unpauses the DAGs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with quiet_stack():
        return run(names)


def run(names: list[str]) -> int:
    failed = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        if not hasattr(module, "main"):
            continue
        print(f"=== benchmark {name}", flush=True)
        started = time.monotonic()
        sys.argv = [f"benchmarks.{name}"]  # each main() parses its own (empty) arguments
        try:
            module.main()
        except Exception as exc:  # one failing benchmark must not hide the others
            print(f"benchmark {name} failed: {type(exc).__name__}: {exc}", flush=True)
            failed.append(name)
        print(f"=== {name} took {time.monotonic() - started:.0f}s", flush=True)
    for summary in sorted((PACKAGE_DIR / "results").glob("*.md")):
        print(f"\n--- {summary.name}\n{summary.read_text()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
