"""DAG runs of ``make demo``, through the Airflow REST API, made idempotent by their ids.

Every run the demo needs has a name of its own (``demo__...``). :func:`ensure_run` reuses
the run of that name when it exists (a successful one as it is, a failed one cleared so
that the scheduler retries its failed tasks) and only triggers a new one otherwise, so a
second ``make demo`` waits for nothing it already has.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vidflow.airflow_api import AirflowApiError, AirflowClient

Say = Callable[[str], None]


class RunFailed(RuntimeError):
    """A DAG run the demo waited for failed or timed out; the message names it."""


@dataclass(frozen=True)
class RunRef:
    dag_id: str
    run_id: str
    #: "reused" (it had succeeded before), "resumed" (cleared or still running) or "new".
    origin: str


def get_run(client: AirflowClient, dag_id: str, run_id: str) -> dict[str, Any] | None:
    try:
        run: dict[str, Any] = client.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
    except AirflowApiError as exc:
        if "404" in str(exc):
            return None
        raise
    return run


def _run_at(client: AirflowClient, dag_id: str, logical_date: datetime) -> dict[str, Any] | None:
    """The run that holds ``logical_date`` (a DAG has at most one)."""
    stamp = logical_date.isoformat()
    runs = client.request(
        "GET",
        f"/dags/{dag_id}/dagRuns",
        params={"logical_date_gte": stamp, "logical_date_lte": stamp, "limit": 1},
    )["dag_runs"]
    return runs[0] if runs else None


def _resume(client: AirflowClient, dag_id: str, run: dict[str, Any]) -> RunRef:
    run_id = str(run["dag_run_id"])
    if run["state"] == "success":
        return RunRef(dag_id, run_id, "reused")
    if run["state"] == "failed":
        client.request(
            "POST",
            f"/dags/{dag_id}/dagRuns/{run_id}/clear",
            json={"dry_run": False, "only_failed": True},
        )
    return RunRef(dag_id, run_id, "resumed")


def ensure_run(
    client: AirflowClient,
    dag_id: str,
    run_id: str,
    *,
    conf: dict[str, Any] | None = None,
    interval: tuple[datetime, datetime] | None = None,
) -> RunRef:
    """The run ``run_id`` of ``dag_id``: reused, resumed or triggered now. With
    ``interval`` the run gets that data interval (and its start as logical date); a run
    another client made for the same logical date is taken over the same way."""
    existing = get_run(client, dag_id, run_id)
    if existing is not None:
        return _resume(client, dag_id, existing)
    body: dict[str, Any] = {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}}
    if interval is not None:
        start, end = interval
        body.update(
            logical_date=start.isoformat(),
            data_interval_start=start.isoformat(),
            data_interval_end=end.isoformat(),
        )
    try:
        client.request("POST", f"/dags/{dag_id}/dagRuns", json=body)
    except AirflowApiError as exc:
        if "409" not in str(exc) or interval is None:
            raise
        other = _run_at(client, dag_id, interval[0])
        if other is None:
            raise
        return _resume(client, dag_id, other)
    return RunRef(dag_id, run_id, "new")


def run_output(client: AirflowClient, run: RunRef, key: str, task_id: str = "plan") -> str:
    """A path a task of the run published as XCom ``key`` (where the run keeps an output)."""
    entry = client.request(
        "GET",
        f"/dags/{run.dag_id}/dagRuns/{run.run_id}/taskInstances/{task_id}/xcomEntries/{key}",
        params={"map_index": -1, "deserialize": "true"},
    )
    value = entry.get("value")
    if not isinstance(value, str) or not value:
        raise RunFailed(f"{run.dag_id} run {run.run_id}: {task_id} published no {key!r}")
    return value.strip('"')


def failed_tasks(client: AirflowClient, ref: RunRef) -> list[str]:
    return sorted(
        ti["task_id"]
        for ti in client.task_instances(ref.dag_id, ref.run_id)
        if ti["state"] in ("failed", "upstream_failed")
    )


def wait_for_runs(
    client: AirflowClient,
    refs: Sequence[RunRef],
    say: Say,
    *,
    timeout: float,
    poll: float = 3.0,
) -> None:
    """Wait until every run succeeded, saying how many are done as they finish;
    RunFailed naming the first failed run and its failed tasks."""
    deadline = time.monotonic() + timeout
    pending = {(r.dag_id, r.run_id): r for r in refs}
    done = 0
    last_states: dict[tuple[str, str], str] = {}
    while pending:
        for key, ref in list(pending.items()):
            run = client.request("GET", f"/dags/{ref.dag_id}/dagRuns/{ref.run_id}")
            state = str(run["state"])
            if state != last_states.get(key):
                last_states[key] = state
                if state not in ("success", "failed"):
                    say(f"{ref.dag_id} {ref.run_id}: {state}")
            if state == "success":
                done += 1
                del pending[key]
                say(f"{ref.dag_id} {ref.run_id}: success ({done}/{len(refs)})")
            elif state == "failed":
                tasks = ", ".join(failed_tasks(client, ref)) or "no task failed (run timeout?)"
                raise RunFailed(
                    f"{ref.dag_id} run {ref.run_id} failed (tasks: {tasks}); see "
                    f"{client.base_url}/dags/{ref.dag_id}/runs/{ref.run_id}"
                )
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(f"{d}/{r} ({last_states.get((d, r))})" for d, r in pending)
            raise RunFailed(f"still not finished after {timeout:.0f} s: {names}")
        time.sleep(poll)


def asset_run_after(
    client: AirflowClient, dag_id: str, since: datetime, *, timeout: float
) -> RunRef | None:
    """The asset-triggered run of ``dag_id`` queued at or after ``since``, waiting up to
    ``timeout`` seconds for the scheduler to create it; None when none appears."""
    deadline = time.monotonic() + timeout
    while True:
        runs = client.request(
            "GET",
            f"/dags/{dag_id}/dagRuns",
            params={"order_by": "-run_after", "limit": 10, "run_type": "asset_triggered"},
        )["dag_runs"]
        for run in runs:
            queued = run.get("queued_at") or run.get("run_after")
            if queued and datetime.fromisoformat(queued.replace("Z", "+00:00")) >= since:
                return RunRef(dag_id, str(run["dag_run_id"]), "new")
        if time.monotonic() > deadline:
            return None
        time.sleep(2)
