"""A small client of the Airflow 3 REST API (v2), used by `make demo`, tests and benchmarks.

It logs in through the simple auth manager's ``/auth/token`` endpoint and then uses the
bearer token on ``/api/v2``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from vidflow.config import Settings

TERMINAL_STATES = frozenset({"success", "failed"})


class AirflowApiError(RuntimeError):
    pass


@dataclass
class AirflowClient:
    base_url: str
    username: str
    password: str
    timeout: float = 30.0
    _token: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AirflowClient:
        """The stack's api-server, signed in as its admin user."""
        return cls(
            settings.airflow_api_url,
            settings.airflow_admin_user,
            settings.airflow_admin_password.get_secret_value(),
        )

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            response = httpx.post(
                f"{self.base_url}/auth/token",
                json={"username": self.username, "password": self.password},
                timeout=self.timeout,
            )
            if response.status_code != 201:
                raise AirflowApiError(
                    f"Airflow login failed ({response.status_code}): {response.text}"
                )
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.base_url}/api/v2{path}",
            headers=self._headers(),
            timeout=self.timeout,
            **kwargs,
        )
        if response.status_code >= 400:
            raise AirflowApiError(
                f"{method} {path} -> {response.status_code}: {response.text[:500]}"
            )
        return response.json() if response.content else None

    def health(self) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=self.timeout)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def wait_for_dag(self, dag_id: str, timeout: float = 180.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; returns the DAG."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                dag: dict[str, Any] = self.request("GET", f"/dags/{dag_id}")
                return dag
            except AirflowApiError as exc:
                if "404" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(2)

    def time_scheduled_dags(self) -> list[str]:
        """DAGs that run on a clock (not only on assets or triggers) and are not paused."""
        dags = self.request("GET", "/dags?limit=1000&paused=false")["dags"]
        return sorted(d["dag_id"] for d in dags if d.get("next_dagrun_run_after"))

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def unfinished_runs(self, dag_id: str) -> list[str]:
        """Runs of ``dag_id`` that are queued or running."""
        runs = self.request("GET", f"/dags/{dag_id}/dagRuns?state=queued&state=running")
        return [str(run["dag_run_id"]) for run in runs["dag_runs"]]

    @contextmanager
    def schedules_paused(self, timeout: float = 900.0) -> Iterator[list[str]]:
        """Pause the time-scheduled DAGs and wait (up to ``timeout``) for their runs in
        flight; yields the DAGs it paused and unpauses them on exit. A benchmark inside
        measures the platform alone, not beside an hourly Spark job."""
        paused = self.time_scheduled_dags()
        for dag_id in paused:
            self.set_paused(dag_id, True)
        try:
            deadline = time.monotonic() + timeout
            while any(self.unfinished_runs(dag_id) for dag_id in paused):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"runs of {paused} still in flight after {timeout}s")
                time.sleep(5)
            yield paused
        finally:
            for dag_id in paused:
                self.set_paused(dag_id, False)

    def import_errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.request("GET", "/importErrors")["import_errors"]
        return errors

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run now; returns its dag_run_id."""
        run = self.request(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        return str(run["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600.0) -> dict[str, Any]:
        """Poll a run until it succeeds or fails; returns the final run."""
        deadline = time.monotonic() + timeout
        while True:
            run: dict[str, Any] = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in TERMINAL_STATES:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id}/{run_id} still {run['state']} after {timeout}s")
            time.sleep(2)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run, mapped ones included (the API pages them)."""
        instances: list[dict[str, Any]] = []
        while True:
            page = self.request(
                "GET",
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                params={"limit": 100, "offset": len(instances)},
            )
            instances += page["task_instances"]
            if not page["task_instances"] or len(instances) >= page["total_entries"]:
                return instances

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """An XCom value of a task instance (deserialized), or None when it has none."""
        try:
            entry = self.request(
                "GET",
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
                params={"map_index": map_index, "deserialize": "true"},
            )
        except AirflowApiError as exc:
            if "404" in str(exc):
                return None
            raise
        value = entry.get("value")
        return json.loads(value) if isinstance(value, str) else value

    def videos_of_run(self, run_id: str, dag_id: str = "video_processing") -> set[str]:
        """Video ids a video_processing run was given (its probe step's ``jobs``)."""
        jobs = self.xcom(dag_id, run_id, "probe", key="jobs") or []
        return {job["video_id"] for job in jobs if isinstance(job, dict)}

    def set_pool(self, name: str, slots: int, description: str) -> None:
        body = {"name": name, "slots": slots, "description": description, "include_deferred": False}
        try:
            self.request("PATCH", f"/pools/{name}", json=body)
        except AirflowApiError as exc:
            if "404" not in str(exc):
                raise
            self.request("POST", "/pools", json=body)
