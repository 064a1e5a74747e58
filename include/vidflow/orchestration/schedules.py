"""Whether the time-scheduled DAGs run on their schedules (``VIDFLOW_DAG_SCHEDULES``).

A DAG file writes ``schedule=timed("@hourly")``: the schedule when ``dag_schedules`` is on
(the default), else None, so that the DAG runs only when triggered, with the interval or
Params its trigger names. `make test` turns the schedules off: on two cores the hourly
analytics runs and the daily training run competed with the tests' own runs (about 33
minutes of DAG time in one CI run) and wrote the tables the tests read.
"""

from __future__ import annotations

from typing import TypeVar

from vidflow.config import get_settings

Schedule = TypeVar("Schedule")


def timed(schedule: Schedule) -> Schedule | None:
    """``schedule``, or None when the time-scheduled DAGs are switched off."""
    return schedule if get_settings().dag_schedules else None
