"""What one ``cdn_analytics`` run processes and what its tasks hand each other: frozen
dataclasses with one serialisation each, no Spark and no Airflow (the DAG file may import
this module; the Spark jobs write these summaries for the DAG's tasks to read)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from vidflow.analytics.payloads import GateOutcome
from vidflow.regions import REGION_NAMES

#: Log objects of the last hours are listed again: late objects of earlier hours.
DEFAULT_LATE_HOURS: Final = 3
#: Hours of requests the popularity and the replay's history look back.
DEFAULT_LOOKBACK_HOURS: Final = 6


class CdnWindowError(ValueError):
    """A run's Params do not describe a window."""


@dataclass(frozen=True)
class CdnWindow:
    """One hour ``[start, end)`` of edge requests, the Params of its run."""

    start: datetime
    end: datetime
    region: str | None = None
    half_life_hours: float = 1.0
    byte_budget: int = 64 * 1024**2
    late_hours: int = DEFAULT_LATE_HOURS
    lookback_hours: int = DEFAULT_LOOKBACK_HOURS

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise CdnWindowError("window times need a time zone")
        if self.end <= self.start:
            raise CdnWindowError(f"empty window [{self.start}, {self.end})")
        if self.region is not None and self.region not in REGION_NAMES:
            raise CdnWindowError(f"unknown region {self.region!r}; known: {REGION_NAMES}")
        if self.half_life_hours <= 0 or self.byte_budget < 0:
            raise CdnWindowError("half_life_hours must be > 0 and byte_budget >= 0")

    @property
    def regions(self) -> tuple[str, ...]:
        return (self.region,) if self.region else REGION_NAMES

    @property
    def file_hours(self) -> list[datetime]:
        """Hours whose log objects this run lists: the window and the late hours before."""
        first = self.start.astimezone(UTC) - timedelta(hours=self.late_hours)
        hours = []
        at = first
        while at < self.end:
            hours.append(at)
            at += timedelta(hours=1)
        return hours

    @property
    def label(self) -> str:
        span = f"{self.start:%Y-%m-%dT%H}..{self.end:%Y-%m-%dT%H}Z"
        return f"{span} {self.region}" if self.region else span

    def to_xcom(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "region": self.region,
            "half_life_hours": self.half_life_hours,
            "byte_budget": self.byte_budget,
            "late_hours": self.late_hours,
            "lookback_hours": self.lookback_hours,
        }

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> CdnWindow:
        return cls(
            start=datetime.fromisoformat(value["start"]),
            end=datetime.fromisoformat(value["end"]),
            region=value.get("region") or None,
            half_life_hours=float(value.get("half_life_hours", 1.0)),
            byte_budget=int(value.get("byte_budget", 64 * 1024**2)),
            late_hours=int(value.get("late_hours", DEFAULT_LATE_HOURS)),
            lookback_hours=int(value.get("lookback_hours", DEFAULT_LOOKBACK_HOURS)),
        )

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_xcom(), indent=2))

    @classmethod
    def read(cls, path: Path) -> CdnWindow:
        return cls.from_xcom(json.loads(path.read_text()))


@dataclass(frozen=True)
class BronzeSummary:
    """What ``jobs/cdn_bronze.py`` did for one window."""

    objects: int
    lines: int
    accepted: int
    quarantined: dict[str, int]
    gate: GateOutcome
    published: bool = True
    seconds: dict[str, float] = field(default_factory=dict)

    def to_xcom(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "lines": self.lines,
            "accepted": self.accepted,
            "quarantined": dict(sorted(self.quarantined.items())),
            "gate": self.gate.to_xcom(),
            "published": self.published,
            "seconds": self.seconds,
        }

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> BronzeSummary:
        return cls(
            objects=int(value["objects"]),
            lines=int(value["lines"]),
            accepted=int(value["accepted"]),
            quarantined={str(k): int(v) for k, v in value["quarantined"].items()},
            gate=GateOutcome.from_xcom(value["gate"]),
            published=bool(value.get("published", True)),
            seconds={str(k): float(v) for k, v in value.get("seconds", {}).items()},
        )


@dataclass(frozen=True)
class PushResult:
    """One object pushed through an edge (a plain GET) and what the edge said."""

    edge: str
    key: str
    status: int
    cache: str
    bytes: int

    def to_xcom(self) -> dict[str, Any]:
        return {
            "edge": self.edge,
            "key": self.key,
            "status": self.status,
            "cache": self.cache,
            "bytes": self.bytes,
        }

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> PushResult:
        return cls(
            str(value["edge"]),
            str(value["key"]),
            int(value["status"]),
            str(value["cache"]),
            int(value["bytes"]),
        )
