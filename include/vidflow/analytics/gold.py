"""Gold: daily per-video and per-user aggregates of the silver watch events.

Pure ``DataFrame -> DataFrame`` transforms (``jobs/watch_gold_daily.py`` wires them,
``jobs/watch_catalog_sync.py`` reads their output). Input is silver
``analytics/watch_events``; output the two gold tables of the analytics contract, both
partitioned by ``(event_date, region)``:

``video_daily_stats`` (one row per day, region and video with any event):

* ``plays``: ``play`` events (playback starts).
* ``unique_viewers``: distinct viewers, a viewer being ``coalesce(user_id, session_id)``:
  a signed-in user counts once across sessions and devices, an anonymous session once.
* ``watch_seconds``: seconds of content played, summed over the events of the day (see
  below).
* ``completion_rate``: of the sessions with a ``play`` that day, the share that also has
  a ``complete`` that day; 0.0 when no session played (so always within [0, 1]).
* ``likes``: distinct viewers with a ``like`` of the video that day (a double-tapped or
  resent like counts once).

``video_likers`` (one row per day, region, video and viewer with a ``like`` that day):
who liked, so that a video's all-time ``like_count`` counts each viewer once. Summing the
per-day ``likes`` would count a viewer who liked on two days (or in two regions) twice;
there is no "unlike" event, so a like is for good and the right total is the number of
distinct viewers who ever liked the video (``video_totals``).

``user_video_daily`` (signed-in viewers only; one row per day, region, user and video with
any event): ``watch_seconds`` as below, ``last_watched_at`` the latest ``event_ts``.

**Watch seconds.** The events of one session and video, ordered by ``event_ts`` (then
``event_id``, so ties are deterministic), are position reports of one player. After a
``play``, ``heartbeat`` or ``seek`` the player is playing; after a ``pause`` or
``complete`` it is not. Each event credits the content played since the previous event:

    advance = position_seconds - previous position_seconds
    gap     = event_ts - previous event_ts (seconds)
    credit  = advance   if the player was playing and 0 <= advance <= gap + 2 s (slack)
              0         otherwise

So an interval ending in a ``seek`` counts 0 (the position is the seek target, not played
content), the time between a ``pause`` and the next ``play`` counts 0, a position that
moves backwards or further than the wall clock allows (lost events, an unreported seek)
counts 0, and the first event of a session counts 0. ``like`` events are not position
reports: they never credit time and never break an interval. The credit belongs to the
day and region of the event that ends the interval; the job reads the day before each
requested day too, so a session playing across midnight UTC loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Final

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

#: A player's clock and the event clock drift a little: this much extra advance counts.
WATCH_SLACK_SECONDS: Final = 2.0
#: Event types after which the player is playing.
PLAYING_EVENTS: Final = ("play", "heartbeat", "seek")

#: The silver columns gold reads (the schema contract at the start of every transform).
SILVER_COLUMNS: Final = (
    "event_id",
    "event_type",
    "video_id",
    "session_id",
    "user_id",
    "event_ts",
    "position_seconds",
    "event_date",
    "region",
)
VIDEO_DAILY_STATS_SCHEMA: Final = (
    "event_date date, region string, video_id string, plays long, unique_viewers long, "
    "watch_seconds double, completion_rate double, likes long"
)
USER_VIDEO_DAILY_SCHEMA: Final = (
    "event_date date, region string, user_id string, video_id string, "
    "watch_seconds double, last_watched_at timestamp"
)
VIDEO_DAILY_STATS_COLUMNS: Final = (
    "event_date",
    "region",
    "video_id",
    "plays",
    "unique_viewers",
    "watch_seconds",
    "completion_rate",
    "likes",
)
USER_VIDEO_DAILY_COLUMNS: Final = (
    "event_date",
    "region",
    "user_id",
    "video_id",
    "watch_seconds",
    "last_watched_at",
)
VIDEO_LIKERS_SCHEMA: Final = "event_date date, region string, video_id string, viewer string"
VIDEO_LIKERS_COLUMNS: Final = ("event_date", "region", "video_id", "viewer")
#: Intermediate grain: one session of one viewer on one video, per day and region.
SESSION_COLUMNS: Final = (
    "event_date",
    "region",
    "video_id",
    "session_id",
    "user_id",
    "plays",
    "completed",
    "liked",
    "watch_seconds",
    "last_event_ts",
)


def _viewer() -> Column:
    return F.coalesce(F.col("user_id"), F.col("session_id"))


def credited_watch_seconds(events: DataFrame) -> DataFrame:
    """Each silver event with the seconds of content played since the previous event of
    its session and video (``watch_seconds``; see the module docstring)."""
    events = events.select(*SILVER_COLUMNS)
    is_like = F.col("event_type") == "like"
    # The previous position report (likes are not reports: they are skipped over). Likes
    # sort after every report of their session, so ``lag`` (a fixed offset, cheaper than
    # a running ``last(ignorenulls)``) gives each report the report before it; the values
    # a like row gets are never used (a like credits nothing). One window partitioned by
    # (session_id, video_id) only, a subset of the per-session grouping keys below, so
    # Spark aggregates without shuffling the events a second time. Silver's files are
    # already in (session_id, video_id, event_ts) order (silver.clustered), so the sort
    # this window needs mostly merges sorted runs.
    player = Window.partitionBy("session_id", "video_id").orderBy(is_like, "event_ts", "event_id")
    reports = events.select(
        *SILVER_COLUMNS,
        F.lag("event_type").over(player).alias("previous_type"),
        F.lag("position_seconds").over(player).alias("previous_position"),
        F.lag("event_ts").over(player).alias("previous_ts"),
    )
    advance = F.col("position_seconds") - F.col("previous_position")
    gap = (F.unix_micros("event_ts") - F.unix_micros("previous_ts")) / 1e6
    was_playing = F.col("previous_type").isin(*PLAYING_EVENTS)
    is_seek = F.col("event_type") == "seek"
    plausible_advance = (advance >= 0) & (advance <= gap + WATCH_SLACK_SECONDS)
    credited = was_playing & ~is_seek & ~is_like & plausible_advance
    return reports.withColumn(
        "watch_seconds", F.when(credited, advance).otherwise(F.lit(0.0))
    ).select(*SILVER_COLUMNS, "watch_seconds")


def session_video_daily(credited: DataFrame, dates: Sequence[date] | None = None) -> DataFrame:
    """One row per (day, region, video, session, user): plays, whether it completed and
    liked, credited seconds and its last event. ``dates`` keeps only those days (the job
    reads the day before each requested day for context only)."""
    credited = credited.select(*SILVER_COLUMNS, "watch_seconds")
    if dates is not None:
        credited = credited.where(F.col("event_date").isin(*dates))
    return (
        credited.groupBy("event_date", "region", "video_id", "session_id", "user_id")
        .agg(
            F.count(F.when(F.col("event_type") == "play", True)).alias("plays"),
            F.max(F.col("event_type") == "complete").alias("completed"),
            F.max(F.col("event_type") == "like").alias("liked"),
            F.sum("watch_seconds").alias("watch_seconds"),
            F.max("event_ts").alias("last_event_ts"),
        )
        .select(*SESSION_COLUMNS)
    )


def video_daily_stats(sessions: DataFrame) -> DataFrame:
    """``video_daily_stats`` from the per-session rows (sessions -> viewers -> videos, so
    distinct counts are plain counts and sums)."""
    played = F.col("plays") > 0
    viewers = (
        sessions.select(*SESSION_COLUMNS)
        .withColumn("viewer", _viewer())
        .groupBy("event_date", "region", "video_id", "viewer")
        .agg(
            F.sum("plays").alias("plays"),
            F.count(F.when(played, True)).alias("sessions_played"),
            F.count(F.when(played & F.col("completed"), True)).alias("sessions_completed"),
            F.max("liked").alias("liked"),
            F.sum("watch_seconds").alias("watch_seconds"),
        )
    )
    sessions_played = F.sum("sessions_played")
    completion_rate = F.when(
        sessions_played > 0, F.sum("sessions_completed") / sessions_played
    ).otherwise(F.lit(0.0))
    return (
        viewers.groupBy("event_date", "region", "video_id")
        .agg(
            F.sum("plays").cast("long").alias("plays"),
            F.count(F.lit(1)).cast("long").alias("unique_viewers"),
            F.sum("watch_seconds").cast("double").alias("watch_seconds"),
            completion_rate.cast("double").alias("completion_rate"),
            F.count(F.when(F.col("liked"), True)).cast("long").alias("likes"),
        )
        .select(*VIDEO_DAILY_STATS_COLUMNS)
    )


def user_video_daily(sessions: DataFrame) -> DataFrame:
    """``user_video_daily``: signed-in viewers' credited seconds and last event per video."""
    signed_in = F.col("user_id").isNotNull()
    return (
        sessions.select(*SESSION_COLUMNS)
        .where(signed_in)
        .groupBy("event_date", "region", "user_id", "video_id")
        .agg(
            F.sum("watch_seconds").cast("double").alias("watch_seconds"),
            F.max("last_event_ts").alias("last_watched_at"),
        )
        .select(*USER_VIDEO_DAILY_COLUMNS)
    )


def video_likers(sessions: DataFrame) -> DataFrame:
    """``video_likers``: the distinct viewers with a like, per day, region and video."""
    return (
        sessions.select(*SESSION_COLUMNS)
        .where(F.col("liked"))
        .select("event_date", "region", "video_id", _viewer().alias("viewer"))
        .distinct()
        .select(*VIDEO_LIKERS_COLUMNS)
    )


# --- gold -> catalog totals (read by jobs/watch_catalog_sync.py) -------------------------


def _touched(dates: Sequence[date], region: str | None) -> Column:
    on_day = F.col("event_date").isin(*dates)
    return on_day & (F.col("region") == region) if region else on_day


def user_video_totals(
    user_video: DataFrame, dates: Sequence[date], region: str | None = None
) -> DataFrame:
    """For each (user, video) with a gold row on ``dates`` (in ``region`` if given): its
    totals over ALL days and regions: watched_at = latest last_watched_at,
    watch_duration_seconds = summed watch_seconds."""
    user_video = user_video.select(*USER_VIDEO_DAILY_COLUMNS)
    touched = (user_video.where(_touched(dates, region)).select("user_id", "video_id")).distinct()
    return (
        user_video.join(touched, on=["user_id", "video_id"], how="left_semi")
        .groupBy("user_id", "video_id")
        .agg(
            F.max("last_watched_at").alias("watched_at"),
            F.sum("watch_seconds").alias("watch_duration_seconds"),
        )
        .select("user_id", "video_id", "watched_at", "watch_duration_seconds")
    )


def video_totals(
    video_stats: DataFrame,
    likers: DataFrame,
    dates: Sequence[date],
    region: str | None = None,
) -> DataFrame:
    """For each video with a gold row on ``dates`` (in ``region`` if given), over ALL days
    and regions: view_count = plays summed (each play is a view), like_count = distinct
    viewers who ever liked it (from ``video_likers``; a viewer liking on two days or in
    two regions counts once)."""
    video_stats = video_stats.select(*VIDEO_DAILY_STATS_COLUMNS)
    touched = video_stats.where(_touched(dates, region)).select("video_id").distinct()
    views = (
        video_stats.join(touched, on="video_id", how="left_semi")
        .groupBy("video_id")
        .agg(F.sum("plays").cast("long").alias("view_count"))
    )
    likes = (
        likers.select(*VIDEO_LIKERS_COLUMNS)
        .join(touched, on="video_id", how="left_semi")
        .groupBy("video_id")
        .agg(F.countDistinct("viewer").cast("long").alias("like_count"))
    )
    return views.join(likes, on="video_id", how="left").select(
        "video_id",
        "view_count",
        F.coalesce("like_count", F.lit(0)).cast("long").alias("like_count"),
    )


# --- what the job reports ----------------------------------------------------------------


def replace_where(dates: Iterable[date], region: str | None) -> str:
    """The Delta ``replaceWhere`` predicate of a run: exactly its days (and region)."""
    days = ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(set(dates)))
    if not days:
        raise ValueError("a gold run needs at least one date")
    predicate = f"event_date IN ({days})"
    if region:
        if "'" in region:
            raise ValueError(f"invalid region {region!r}")
        predicate += f" AND region = '{region}'"
    return predicate


def context_dates(dates: Iterable[date]) -> list[date]:
    """The silver days a run reads: its days and the day before each (for sessions that
    play across midnight)."""
    from datetime import timedelta

    days = set(dates)
    return sorted(days | {d - timedelta(days=1) for d in days})


@dataclass(frozen=True)
class GoldSummary:
    """What one gold run wrote (the job prints it as JSON, and writes it to --summary)."""

    dates: tuple[str, ...]
    region: str | None
    video_daily_stats_rows: int
    user_video_daily_rows: int
    video_likers_rows: int

    def to_xcom(self) -> dict[str, Any]:
        return {**asdict(self), "dates": list(self.dates)}

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> GoldSummary:
        return cls(**{**value, "dates": tuple(value["dates"])})
