"""``make demo``: the whole platform in one command.

Steps, each a small function with a typed result, run in order by :func:`run_demo`:

1. **stack**: every service up (``make up``), the demo's DAGs parsed;
2. **history**: days of traffic-model history (events, CloudFront logs, its viewers and
   videos registered in the catalog); then one ``cdn_analytics`` run per hour of the last
   history day (its data interval), which the scheduler works through beside the next
   steps;
3. **catalog**: a handful of generated clips (titles and tags from the traffic model's
   topics) uploaded with tus and processed by the scheduler's ``video_processing``;
4. **live**: the demo viewer watches two clips, then live viewers play streams through
   the edges for ``VIDFLOW_DEMO_LIVE_SECONDS``;
5. **analytics**: ``platform_analytics`` over the history days and today (backfill
   Params), through the Airflow API and the real scheduler;
6. **recs**: ``recs_training``, then ``recs_scoring`` (the run the champion asset
   triggers, or one of the demo's own when the alias did not move);
7. **cdn**: waits for the ``cdn_analytics`` runs;
8. **summary**: figures read back from the catalog, the runs' outputs and MLflow.

Every run has a name of its own (``demo__...``), so a second ``make demo`` on the same day
reuses what the first one made and still prints the summary. A step that breaks stops
the demo with :class:`DemoFailed`, whose message names the step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from vidflow.airflow_api import AirflowClient
from vidflow.config import Settings
from vidflow.platform.demo_baseline import ensure_popularity_metric
from vidflow.platform.demo_runs import (
    RunRef,
    asset_run_after,
    ensure_run,
    get_run,
    run_output,
    wait_for_runs,
)
from vidflow.platform.demo_summary import (
    Champion,
    DemoSummary,
    catalog_figures,
    champion_of,
    warming_of,
)
from vidflow.platform.demo_traffic import (
    DEMO_VIEWER,
    HistoryWritten,
    LiveTraffic,
    SeededCatalog,
    ViewerSession,
    demo_viewer_watches,
    history_start,
    live_traffic,
    seed_catalog,
    viewer_login,
    write_history,
)

Say = Callable[[str], None]
T = TypeVar("T")

STEPS: Final = ("stack", "history", "catalog", "live", "analytics", "recs", "cdn", "summary")
DAGS: Final = (
    "video_processing",
    "platform_analytics",
    "cdn_analytics",
    "recs_training",
    "recs_scoring",
)
#: cdn_analytics replays the hours ending here on the last history day (UTC): the
#: evening peak of the Americas and the late evening of Europe.
CDN_LAST_HOUR: Final = 21
RUN_TIMEOUT_SECONDS: Final = 1800.0


class DemoFailed(RuntimeError):
    """A step of the demo broke; ``step`` names it, the message says why."""

    def __init__(self, step: str, message: str) -> None:
        number = STEPS.index(step) + 1 if step in STEPS else 0
        super().__init__(f"step {number}/{len(STEPS)} '{step}' failed: {message}")
        self.step = step


@dataclass(frozen=True)
class DemoPlan:
    """What the demo makes: sizes from the settings, dates from ``today``."""

    today: date
    seed: int
    clips: int
    clip_seconds: int
    history_days: int
    history_viewers: int
    history_videos: int
    live_seconds: float
    live_viewers: int
    cdn_hours: int

    @classmethod
    def from_settings(cls, settings: Settings, today: date | None = None) -> DemoPlan:
        return cls(
            today=today or datetime.now(UTC).date(),
            seed=settings.demo_seed,
            clips=settings.demo_clips,
            clip_seconds=settings.demo_clip_seconds,
            history_days=settings.demo_history_days,
            history_viewers=settings.demo_history_viewers,
            history_videos=settings.demo_history_videos,
            live_seconds=settings.demo_live_seconds,
            live_viewers=settings.demo_live_viewers,
            cdn_hours=settings.demo_cdn_hours,
        )

    @property
    def first_day(self) -> date:
        return history_start(self.today, self.history_days)

    @property
    def tag(self) -> str:
        """Names the demo's runs: one set per day, seed and size."""
        return (
            f"{self.today:%Y%m%d}_s{self.seed}_d{self.history_days}"
            f"_v{self.history_viewers}x{self.history_videos}"
        )

    def cdn_hours_utc(self) -> list[datetime]:
        last_day = self.today - timedelta(days=1)
        end = datetime(last_day.year, last_day.month, last_day.day, CDN_LAST_HOUR, tzinfo=UTC)
        return [end - timedelta(hours=n) for n in range(self.cdn_hours, 0, -1)]


@dataclass(frozen=True)
class AnalyticsRuns:
    platform: RunRef
    cdn: tuple[RunRef, ...]
    accepted: int
    quarantined: int


@dataclass(frozen=True)
class RecsRuns:
    training: RunRef
    scoring: RunRef
    model_name: str


@dataclass
class DemoReport:
    plan: DemoPlan
    timings: dict[str, float] = field(default_factory=dict)
    catalog: SeededCatalog | None = None
    history: HistoryWritten | None = None
    viewer: ViewerSession | None = None
    live: LiveTraffic | None = None
    analytics: AnalyticsRuns | None = None
    recs: RecsRuns | None = None
    summary: DemoSummary | None = None


def airflow_client(settings: Settings) -> AirflowClient:
    return AirflowClient.from_settings(settings)


# --- the DAG runs ---------------------------------------------------------------------------


def trigger_cdn(client: AirflowClient, plan: DemoPlan) -> list[RunRef]:
    """One cdn_analytics run per demo hour, with that hour as its data interval."""
    return [
        ensure_run(
            client,
            "cdn_analytics",
            f"demo__{hour:%Y%m%dT%H}__{plan.tag}",
            interval=(hour, hour + timedelta(hours=1)),
        )
        for hour in plan.cdn_hours_utc()
    ]


def trigger_platform(client: AirflowClient, plan: DemoPlan) -> RunRef:
    """platform_analytics over every demo day: the history's and today (live traffic)."""
    conf = {"start_date": plan.first_day.isoformat(), "end_date": plan.today.isoformat()}
    return ensure_run(client, "platform_analytics", platform_run_id(plan), conf=conf)


def analytics_done(client: AirflowClient, plan: DemoPlan) -> bool:
    run = get_run(client, "platform_analytics", platform_run_id(plan))
    return run is not None and run["state"] == "success"


def platform_run_id(plan: DemoPlan) -> str:
    return f"demo__{plan.tag}"


def write_live(path: Path, viewer: ViewerSession, live: LiveTraffic) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"viewer": asdict(viewer), "live": asdict(live)}))


def read_live(path: Path) -> tuple[ViewerSession, LiveTraffic]:
    data = json.loads(path.read_text())
    viewer = {**data["viewer"], "watched": tuple(data["viewer"]["watched"])}
    return ViewerSession(**viewer), LiveTraffic(**data["live"])


def silver_counts(client: AirflowClient, run: RunRef) -> tuple[int, int]:
    """(accepted, quarantined) events of a platform_analytics run, from the silver summary
    whose path its plan task published."""
    summary = json.loads(Path(run_output(client, run, "summary")).read_text())
    return int(summary["accepted"]), sum(int(n) for n in summary["quarantined"].values())


def train_and_score(
    client: AirflowClient, plan: DemoPlan, say: Say, model_name: str | None = None
) -> RecsRuns:
    """recs_training on the demo's days; then the recs_scoring run its champion asset
    triggered, or (alias unchanged, or that run is not found) a run of the demo's own."""
    from vidflow.recs.registry import MODEL_NAME

    name = model_name or MODEL_NAME
    # The holdout starts on the last history day: the model is scored on a day of its
    # viewers it has not seen (and on today's live viewing), like a daily retrain.
    cut = plan.today - timedelta(days=1)
    conf: dict[str, Any] = {
        "since": plan.first_day.isoformat(),
        "until": plan.today.isoformat(),
        "cut_date": cut.isoformat(),
        "tune": False,
        "model_name": name,
    }
    training = ensure_run(client, "recs_training", f"demo__{plan.tag}", conf=conf)
    say(f"recs_training {training.run_id} ({training.origin}); LightFM + ranker, MLflow gate")
    wait_for_runs(client, [training], say, timeout=RUN_TIMEOUT_SECONDS)
    scoring_id = f"demo__{plan.tag}"
    scoring: RunRef | None = None
    if get_run(client, "recs_scoring", scoring_id) is None:  # none of the demo's own yet
        states = {t["task_id"]: t["state"] for t in client.task_instances(*_ids(training))}
        if states.get("announce") == "success":  # the champion moved: its asset ran scoring
            ended = client.request("GET", f"/dags/recs_training/dagRuns/{training.run_id}")
            since = _parse(ended["end_date"]) - timedelta(minutes=1)
            wait = 0.0 if training.origin == "reused" else 60.0
            scoring = asset_run_after(client, "recs_scoring", since, timeout=wait)
            if scoring is not None:
                say(f"the champion moved; following recs_scoring {scoring.run_id} (asset)")
    if scoring is None:
        conf_scoring = {"model_name": name, "until": conf["until"]}
        scoring = ensure_run(client, "recs_scoring", scoring_id, conf=conf_scoring)
        say(f"recs_scoring {scoring.run_id} ({scoring.origin})")
    wait_for_runs(client, [scoring], say, timeout=RUN_TIMEOUT_SECONDS)
    # A reused run keeps the model name it was started with.
    run = client.request("GET", f"/dags/recs_training/dagRuns/{training.run_id}")
    return RecsRuns(training, scoring, str((run.get("conf") or {}).get("model_name") or name))


def _ids(run: RunRef) -> tuple[str, str]:
    return run.dag_id, run.run_id


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def champion_with_baseline(
    settings: Settings, client: AirflowClient, recs: RecsRuns | None
) -> Champion | None:
    """The champion from MLflow, with popularity's NDCG@10 on the same holdout."""
    if recs is None:
        return None
    champion = champion_of(settings, recs.model_name)
    if champion is None or champion.popularity_ndcg_at_10 is not None:
        return champion
    popularity = ensure_popularity_metric(
        client, settings.tracking_uri, recs.training.run_id, champion.run_id
    )
    return replace(champion, popularity_ndcg_at_10=popularity)


# --- the whole demo --------------------------------------------------------------------------


class _Steps:
    """Runs steps in order: says which one starts, times it, names it when it breaks."""

    def __init__(self, report: DemoReport, say: Say) -> None:
        self.report, self.say = report, say

    def run(self, step: str, action: Callable[[], T]) -> T:
        number = STEPS.index(step) + 1
        self.say(f"step {number}/{len(STEPS)}: {step}")
        started = time.monotonic()
        try:
            result = action()
        except DemoFailed:
            raise
        except Exception as exc:  # any failure ends the demo with the step's name
            raise DemoFailed(step, f"{type(exc).__name__}: {exc}") from exc
        seconds = time.monotonic() - started
        self.report.timings[step] = seconds
        self.say(f"step {number}/{len(STEPS)}: {step} done in {seconds:.0f} s")
        return result


def wait_for_dags(client: AirflowClient, say: Say) -> None:
    for dag_id in DAGS:
        client.wait_for_dag(dag_id)
    say(f"DAGs parsed: {', '.join(DAGS)}")


def run_demo(
    settings: Settings,
    say: Say,
    *,
    up: Callable[[], None],
    plan: DemoPlan | None = None,
    model_name: str | None = None,
) -> DemoReport:
    """Every step, in order; the report carries each step's result and wall time."""
    plan = plan or DemoPlan.from_settings(settings)
    report = DemoReport(plan)
    steps = _Steps(report, say)
    client = airflow_client(settings)

    def stack() -> None:
        up()
        wait_for_dags(client, say)

    steps.run("stack", stack)

    def history() -> tuple[HistoryWritten, list[RunRef]]:
        written = write_history(
            settings,
            seed=plan.seed,
            today=plan.today,
            days=plan.history_days,
            viewers=plan.history_viewers,
            videos=plan.history_videos,
            say=say,
        )
        # The CDN logs are all there now: cdn_analytics runs beside the next steps.
        cdn = trigger_cdn(client, plan)
        hours = ", ".join(f"{h:%Y-%m-%d %H}:00" for h in plan.cdn_hours_utc())
        say(f"cdn_analytics for {hours} UTC: {', '.join(r.origin for r in cdn)} runs")
        return written, cdn

    report.history, cdn = steps.run("history", history)
    catalog = report.catalog = steps.run(
        "catalog",
        lambda: seed_catalog(
            settings, seed=plan.seed, count=plan.clips, seconds=plan.clip_seconds, say=say
        ),
    )

    def live() -> None:
        marker = settings.state_dir / "demo" / f"live-{plan.tag}.json"
        if analytics_done(client, plan):
            # Events posted now would miss the analytics run this demo already made.
            if marker.exists():
                report.viewer, report.live = read_live(marker)
            else:
                _, user_id = viewer_login(settings)
                report.viewer = ViewerSession(DEMO_VIEWER, user_id, (), 0)
            say("the analytics of this demo already ran: reusing its live traffic")
            return
        report.viewer = demo_viewer_watches(settings, catalog.video_ids, say)
        report.live = live_traffic(
            settings,
            seed=plan.seed,
            viewers=plan.live_viewers,
            seconds=plan.live_seconds,
            say=say,
        )
        write_live(marker, report.viewer, report.live)

    steps.run("live", live)

    def analytics() -> RunRef:
        platform = trigger_platform(client, plan)
        say(
            f"platform_analytics {platform.run_id} ({platform.origin}) over "
            f"{plan.first_day}..{plan.today}: silver, gate, gold, catalog sync"
        )
        wait_for_runs(client, [platform], say, timeout=RUN_TIMEOUT_SECONDS)
        return platform

    platform = steps.run("analytics", analytics)
    report.recs = steps.run("recs", lambda: train_and_score(client, plan, say, model_name))
    steps.run("cdn", lambda: wait_for_runs(client, cdn, say, timeout=RUN_TIMEOUT_SECONDS))

    def summary() -> DemoSummary:
        assert report.history is not None and report.viewer is not None
        accepted, quarantined = silver_counts(client, platform)
        report.analytics = AnalyticsRuns(platform, tuple(cdn), accepted, quarantined)
        clips, processed, recs = catalog_figures(settings, catalog.video_ids, report.viewer.user_id)
        return DemoSummary(
            clips_processed=clips,
            catalog_processed=processed,
            history_events=report.history.events,
            live_events=report.live.events if report.live else 0,
            viewer_events=report.viewer.events,
            analytics_accepted=accepted,
            analytics_quarantined=quarantined,
            warming=warming_of(client, tuple(cdn)),
            champion=champion_with_baseline(settings, client, report.recs),
            recommendations_for_viewer=recs,
        )

    report.summary = steps.run("summary", summary)
    return report
