"""Airflow-aware steps of the ``cdn_analytics`` DAG: the run's window from its data
interval and Params, the bronze gate, and the prefetch of the warm plans."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vidflow.cdn.payloads import BronzeSummary, CdnWindow, CdnWindowError
from vidflow.config import Settings

log = logging.getLogger(__name__)


def run_dir(settings: Settings, run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return settings.state_dir / "cdn" / "runs" / safe


def _bytes(value: Any) -> int:
    from vidflow.cdn.config import parse_nginx_size

    try:
        return parse_nginx_size(str(value))
    except ValueError:
        raise CdnWindowError(f"byte_budget must be bytes or an nginx size, not {value!r}") from None


def window_of_run(context: Any, settings: Settings) -> CdnWindow:
    """The data interval (a manual run without one: the last complete hour) and Params."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None or end <= start:
        run_after = context["dag_run"].run_after.astimezone(UTC)
        end = run_after.replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(hours=1)
    params = context["params"]
    budget = params.get("byte_budget") or settings.cdn_warm_byte_budget
    return CdnWindow(
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        region=params.get("region") or None,
        half_life_hours=float(params.get("half_life_hours") or 1.0),
        byte_budget=_bytes(budget),
    )


def check_gate(window: CdnWindow, path: Path) -> BronzeSummary:
    """Log what bronze did; fail without retry when the gate rejected the hour."""
    from airflow.sdk.exceptions import AirflowFailException

    if not path.exists():
        raise FileNotFoundError(f"the bronze job wrote no summary at {path}")
    summary = BronzeSummary.from_xcom(json.loads(path.read_text()))
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.quarantined.items())) or "none"
    log.info(
        "bronze %s: %d objects, %d lines, %d requests; quarantined: %s",
        window.label,
        summary.objects,
        summary.lines,
        summary.accepted,
        reasons,
    )
    if summary.gate.data_docs:
        log.info("Great Expectations Data Docs: file://%s", summary.gate.data_docs)
    message = summary.gate.message(window.label)
    if not summary.gate.passed:
        raise AirflowFailException(
            message + ". cdn_requests was not updated; the lines are in "
            "cdn_requests_quarantine with their reasons."
        )
    log.info(message)
    return summary


def prefetch(settings: Settings, plans_path: Path, out: Path) -> dict[str, dict[str, int]]:
    """Push every edge's plan through its edge; write what each push did to ``out``."""
    from vidflow.cdn.prefetch import install_admission, push_plan, summarise
    from vidflow.cdn.warm import WarmPlan

    plans = [WarmPlan.from_xcom(p) for p in json.loads(plans_path.read_text())]
    edges = settings.edge_urls()
    report: dict[str, dict[str, int]] = {}
    rows = []
    for plan in plans:
        url = edges.get(plan.edge)
        if url is None:
            log.warning("no edge URL for %s: its plan was not pushed", plan.edge)
            continue
        # The admission list first: the pushes are then stored under it.
        if install_admission(settings, plan.edge, plan.admit):
            log.info("admission list of %s: %d segments", plan.edge, len(plan.admit or ()))
        results = push_plan(plan, url, concurrency=4)
        report[plan.edge] = summarise(results)
        rows += [r.to_xcom() for r in results]
        log.info("prefetch %s via %s: %s", plan.edge, url, report[plan.edge])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"at": datetime.now(UTC).isoformat(), "pushes": rows}))
    return report
