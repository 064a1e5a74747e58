"""What one ``platform_analytics`` run processes, and what its tasks hand each other.

Plain frozen dataclasses with one serialisation each (``to_xcom``/``from_xcom``); no Spark
and no Airflow, so the DAG file may import this module at parse time and the Spark job
writes the very :class:`SilverSummary` the DAG's gate reads.

Time model: event objects sit in folders of their *receive* hour
(:func:`vidflow.events.hour_prefix`), so a run reads the receive hours of its window; the
tables are partitioned by *event* time, so a late event lands in its own day. A day's gold
is computed once the day is over (the run whose window ends at 00:00 UTC) and for every
earlier day that events received during that day touched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final, Literal, get_args

from vidflow.events import hours_between
from vidflow.regions import region as known_region

#: ``daily`` Param: ``auto`` runs the daily part when the window closes a UTC day or a
#: date range was asked for; ``always`` and ``never`` force it.
DailyMode = Literal["auto", "always", "never"]
DAILY_MODES: Final[tuple[str, ...]] = get_args(DailyMode)


class WindowError(ValueError):
    """A run's Params do not describe a window (shown as the task's failure message)."""


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise WindowError(f"{moment} has no time zone")
    return moment.astimezone(UTC)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def days_between(first: date, last: date) -> tuple[date, ...]:
    """Every day from ``first`` to ``last``, both included."""
    return tuple(first + timedelta(days=n) for n in range((last - first).days + 1))


@dataclass(frozen=True)
class AnalyticsWindow:
    """The receive hours ``[start, end)`` one run reads, the region it is restricted to
    (None: all), and the daily part: the days whose gold it recomputes and the time since
    which silver rows count as touching their day."""

    start: datetime
    end: datetime
    region: str | None = None
    daily: bool = False
    days: tuple[date, ...] = ()
    touched_since: datetime | None = None

    @property
    def hours(self) -> list[datetime]:
        return hours_between(self.start, self.end)

    @property
    def label(self) -> str:
        span = f"{self.start:%Y-%m-%dT%H}..{self.end:%Y-%m-%dT%H}Z"
        return f"{span} {self.region}" if self.region else span

    def to_xcom(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "region": self.region,
            "daily": self.daily,
            "days": [d.isoformat() for d in self.days],
            "touched_since": self.touched_since.isoformat() if self.touched_since else None,
        }

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> AnalyticsWindow:
        touched = value.get("touched_since")
        return cls(
            start=datetime.fromisoformat(value["start"]),
            end=datetime.fromisoformat(value["end"]),
            region=value.get("region"),
            daily=bool(value.get("daily")),
            days=tuple(date.fromisoformat(d) for d in value.get("days", ())),
            touched_since=datetime.fromisoformat(touched) if touched else None,
        )


def plan_window(
    interval_start: datetime,
    interval_end: datetime,
    *,
    start_date: date | None = None,
    end_date: date | None = None,
    region: str | None = None,
    daily: str = "auto",
) -> AnalyticsWindow:
    """The window of a run: its data interval, or the Params' date range (a backfill: every
    receive hour of those days, then the daily part for every one of them)."""
    if daily not in DAILY_MODES:
        raise WindowError(f"daily must be one of {', '.join(DAILY_MODES)}, not {daily!r}")
    if region:
        try:
            known_region(region)
        except ValueError as exc:
            raise WindowError(str(exc)) from None
    region = region or None
    if start_date or end_date:
        first = start_date or end_date
        last = end_date or start_date
        assert first is not None and last is not None
        if last < first:
            raise WindowError(f"end_date {last} is before start_date {first}")
        start, end = _midnight(first), _midnight(last + timedelta(days=1))
        return AnalyticsWindow(
            start=start,
            end=end,
            region=region,
            daily=daily != "never",
            days=days_between(first, last),
            touched_since=start,
        )
    start, end = _utc(interval_start), _utc(interval_end)
    if end <= start:
        raise WindowError(f"empty data interval [{start}, {end})")
    closes_day = end == _midnight(end.date())
    last_day = (end - timedelta(microseconds=1)).date()
    run_daily = daily == "always" or (daily == "auto" and closes_day)
    return AnalyticsWindow(
        start=start,
        end=end,
        region=region,
        daily=run_daily,
        days=(last_day,) if run_daily else (),
        touched_since=min(start, _midnight(last_day)) if run_daily else None,
    )


@dataclass(frozen=True)
class GateOutcome:
    """The data-quality gate's verdict on one batch."""

    passed: bool
    rows: int
    bad_rows: int
    max_bad_ratio: float
    #: One readable line per failed expectation.
    failures: tuple[str, ...] = ()
    data_docs: str | None = None

    @property
    def bad_ratio(self) -> float:
        return self.bad_rows / self.rows if self.rows else 0.0

    def message(self, window_label: str) -> str:
        verdict = "passed" if self.passed else "FAILED"
        text = (
            f"data-quality gate {verdict} for {window_label}: {self.bad_rows} of {self.rows} "
            f"rows quarantined ({self.bad_ratio:.1%}; limit {self.max_bad_ratio:.1%})"
        )
        if self.failures:
            text += "; failed expectations: " + "; ".join(self.failures)
        return text

    def to_xcom(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows": self.rows,
            "bad_rows": self.bad_rows,
            "max_bad_ratio": self.max_bad_ratio,
            "failures": list(self.failures),
            "data_docs": self.data_docs,
        }

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> GateOutcome:
        return cls(
            passed=bool(value["passed"]),
            rows=int(value["rows"]),
            bad_rows=int(value["bad_rows"]),
            max_bad_ratio=float(value["max_bad_ratio"]),
            failures=tuple(value.get("failures", ())),
            data_docs=value.get("data_docs"),
        )


@dataclass(frozen=True)
class SilverSummary:
    """What ``jobs/watch_events_silver.py`` did for one window (its ``--summary`` file)."""

    start: datetime
    end: datetime
    region: str | None
    objects: int
    rows_read: int
    accepted: int
    #: Accepted rows whose event_id was already in the batch (an earlier copy was kept).
    duplicates: int
    quarantined: dict[str, int]
    #: Event dates of the accepted rows of this window.
    event_dates: tuple[date, ...]
    #: Event dates of silver rows received since ``--touched-since`` (the daily part's days).
    days_touched: tuple[date, ...]
    gate: GateOutcome
    #: False when the gate failed: silver was left as it was (quarantine is still written).
    published: bool = True
    seconds: dict[str, float] = field(default_factory=dict)

    def to_xcom(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "region": self.region,
            "objects": self.objects,
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "quarantined": dict(sorted(self.quarantined.items())),
            "event_dates": [d.isoformat() for d in self.event_dates],
            "days_touched": [d.isoformat() for d in self.days_touched],
            "gate": self.gate.to_xcom(),
            "published": self.published,
            "seconds": self.seconds,
        }

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> SilverSummary:
        return cls(
            start=datetime.fromisoformat(value["start"]),
            end=datetime.fromisoformat(value["end"]),
            region=value.get("region"),
            objects=int(value["objects"]),
            rows_read=int(value["rows_read"]),
            accepted=int(value["accepted"]),
            duplicates=int(value["duplicates"]),
            quarantined={str(k): int(v) for k, v in value["quarantined"].items()},
            event_dates=tuple(date.fromisoformat(d) for d in value["event_dates"]),
            days_touched=tuple(date.fromisoformat(d) for d in value["days_touched"]),
            gate=GateOutcome.from_xcom(value["gate"]),
            published=bool(value.get("published", True)),
            seconds={str(k): float(v) for k, v in value.get("seconds", {}).items()},
        )


@dataclass(frozen=True)
class DailyPlan:
    """The days the daily part recomputes (gold, then the catalog sync), and the region."""

    dates: tuple[date, ...]
    region: str | None = None

    @property
    def label(self) -> str:
        days = ",".join(d.isoformat() for d in self.dates)
        return f"{days} {self.region}" if self.region else days

    def to_xcom(self) -> dict[str, Any]:
        return {"dates": [d.isoformat() for d in self.dates], "region": self.region}

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> DailyPlan:
        return cls(
            dates=tuple(date.fromisoformat(d) for d in value["dates"]),
            region=value.get("region"),
        )


def plan_daily(window: AnalyticsWindow, summary: SilverSummary) -> DailyPlan | None:
    """The daily part of a run, or None when it has none: the window's days plus every
    earlier day that events received during them touched (late events)."""
    if not window.daily:
        return None
    dates = sorted(set(window.days) | set(summary.days_touched))
    return DailyPlan(dates=tuple(dates), region=window.region) if dates else None


#: Exit status of a gated job run by hand (``--gate fail``) whose batch failed the gate.
GATE_FAILED_EXIT: Final = 3


def finish_gated_job(
    job: str,
    summary: dict[str, Any],
    gate: GateOutcome,
    *,
    window_label: str,
    summary_path: Path | None,
    fail_on_gate: bool,
) -> int:
    """The end of a job behind a data-quality gate (silver, CDN bronze): write the summary
    for the next task, print it, the gate's verdict and the Data Docs page; the exit
    status is :data:`GATE_FAILED_EXIT` when the gate failed and the job should fail."""
    if summary_path is not None:
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary_path.write_text(json.dumps(summary, indent=2))
    print(f"{job}: {json.dumps(summary)}")
    print(gate.message(window_label))
    if gate.data_docs:
        print(f"data docs: file://{gate.data_docs}")
    return GATE_FAILED_EXIT if fail_on_gate and not gate.passed else 0


def parse_dates(value: str) -> list[date]:
    """``YYYY-MM-DD[,YYYY-MM-DD...]`` -> sorted distinct dates; ValueError says which."""
    days = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            days.append(date.fromisoformat(part))
        except ValueError:
            raise ValueError(f"--dates: {part!r} is not a YYYY-MM-DD date") from None
    if not days:
        raise ValueError("--dates: no date given")
    return sorted(set(days))


@dataclass(frozen=True)
class DailyJobArgs:
    """The command line of the daily jobs (gold, catalog sync): ``--dates D1[,D2...]
    [--region R] [--lake URI] [--summary PATH]``; an empty ``--region=`` means all."""

    dates: tuple[date, ...]
    region: str | None
    lake: str | None
    summary: Path | None

    @classmethod
    def parse(cls, argv: list[str] | None, description: str | None) -> DailyJobArgs:
        import argparse

        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--dates", required=True, help="YYYY-MM-DD[,YYYY-MM-DD...]")
        parser.add_argument("--region", default=None, help="one region; empty or absent: all")
        parser.add_argument("--lake", default=None, help="lake root; default: VIDFLOW_LAKE_URI")
        parser.add_argument("--summary", type=Path, default=None, help="write the summary here")
        args = parser.parse_args(argv)
        try:
            dates = parse_dates(args.dates)
            if args.region:
                known_region(args.region)
        except ValueError as exc:
            parser.error(str(exc))
        return cls(tuple(dates), args.region or None, args.lake, args.summary)

    def report(self, job: str, summary: dict[str, Any]) -> None:
        """Print the job's summary, and write it where ``--summary`` says."""
        text = json.dumps(summary, sort_keys=True)
        if self.summary is not None:
            self.summary.write_text(text)
        print(f"{job}: {text}")
