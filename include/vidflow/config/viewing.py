"""Settings of the viewer side: the viewer API and its answer cache, watch events, the
traffic model, platform analytics and `make demo`."""

from __future__ import annotations

from pydantic import Field

from vidflow.config.stack import StackSettings
from vidflow.regions import RegionName


class ViewerSettings(StackSettings):
    """Viewers, analytics and the demo."""

    # --- viewer API, events and the traffic model ------------------------------------------
    # The viewer-facing API (include/vidflow/viewer): video metadata, the creator's own
    # videos, watch events into the events bucket; the traffic model (include/vidflow/traffic).
    viewer_port: int = Field(8091, description="Port of the viewer API.")
    viewer_workers: int = Field(
        2, ge=1, description="uvicorn worker processes of the viewer API (one per core)."
    )
    events_max_batch: int = Field(
        500, ge=1, le=10000, description="Most events one POST /v1/events may carry (413 above)."
    )
    events_flush_bytes: int = Field(
        1024**2,
        ge=1024,
        description="An API process writes its pending events to one object once they reach "
        "this many bytes...",
    )
    events_flush_seconds: float = Field(
        0.2,
        gt=0,
        le=10,
        description="...or once the oldest has waited this long. A request is answered only "
        "after its events are written (group commit), so this bounds the added latency.",
    )
    events_max_clock_skew_seconds: int = Field(
        300, ge=0, description="Events stamped further in the future than this are refused."
    )
    events_max_lateness_hours: int = Field(
        72,
        ge=1,
        description="Events older than this on arrival are refused by the API and "
        "quarantined by the analytics jobs; younger late events land in their own day.",
    )
    viewer_default_region: RegionName = Field(
        "us-east",
        description="Region of a recommendations, related or trending request that names none.",
    )
    recs_session_window_seconds: int = Field(
        1800,
        ge=10,
        description="A viewer's session: videos they posted events for in this many seconds "
        "are dropped from their recommendations and their related videos move up; older "
        "session_activity rows are pruned.",
    )
    recs_session_videos: int = Field(
        5,
        ge=1,
        le=50,
        description="Most recent session videos whose related lists re-rank recommendations.",
    )
    recs_cache_seconds: float = Field(
        30.0,
        ge=0,
        description="How long a process keeps a viewer's last answer to serve it (header "
        "X-Vidflow-Degraded: cache) while the catalog is unavailable.",
    )
    recs_catalog_timeout_ms: int = Field(
        1000,
        ge=50,
        description="Connect and statement timeout of the serving reads; past it the answer "
        "is degraded (cache or trending) instead of late.",
    )
    recs_answer_ttl_seconds: float = Field(
        3600.0,
        ge=0,
        description="Longest an API process serves a recommendations answer from its memory "
        "(each answer lives 50 to 100 percent of it, at random). Catalog writes (session "
        "events, new lists, history) invalidate answers at once through PostgreSQL "
        "LISTEN/NOTIFY, a lost listener invalidates everything, and an answer with session "
        "items expires when the oldest leaves the session window: this is a safety net only. "
        "0 turns the answer cache off.",
    )
    recs_unsynced_ttl_seconds: float = Field(
        1.0,
        ge=0,
        description="While a process's LISTEN connection is down (it may miss invalidations), "
        "its cached answers are served for at most this many seconds "
        "(header X-Vidflow-Cache: ttl).",
    )
    viewer_token_cache_seconds: float = Field(
        60.0,
        ge=0,
        description="How long an API process reuses a bearer token's verification (never past "
        "the token's expiry). 0 verifies every request.",
    )
    webapp_upload_url: str = Field(
        "",
        description="Base URL of the upload (tus) API as the web app's browsers reach it "
        "(e.g. https://upload.example.com). Empty means http://{bind_host}:{upload_port}.",
    )

    # --- platform analytics ---------------------------------------------------------------
    # The platform_analytics DAG (jobs/watch_*.py, include/vidflow/analytics).
    analytics_max_bad_ratio: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Share of an hour's events that may be quarantined before the data-"
        "quality gate fails the run.",
    )

    # --- make demo -------------------------------------------------------------------------
    # The whole platform in one command (include/vidflow/platform/demo*.py): sizes chosen so
    # that a fresh 2-core machine finishes in about 10 minutes.
    demo_seed: int = Field(7, description="Seed of the demo's clips, viewers and traffic.")
    demo_clips: int = Field(
        6, ge=1, le=50, description="Generated clips uploaded with tus and processed."
    )
    demo_clip_seconds: int = Field(4, ge=1, le=60, description="Length of each demo clip.")
    demo_history_days: int = Field(
        2,
        ge=2,
        le=14,
        description="Days of traffic-model history before today (recs_training holds the "
        "last one out, so at least 2).",
    )
    demo_history_viewers: int = Field(
        150, ge=1, description="Viewers of the history (registered as catalog users)."
    )
    demo_history_videos: int = Field(
        60, ge=1, description="Synthetic videos of the history's catalog (registered)."
    )
    demo_live_seconds: float = Field(
        90.0, gt=0, le=3600, description="Wall-clock seconds of live viewers through the edges."
    )
    demo_live_viewers: int = Field(3, ge=1, le=50, description="Live viewers (one thread each).")
    demo_cdn_hours: int = Field(
        2,
        ge=1,
        le=48,
        description="Hours of the last history day that cdn_analytics backfills (one run "
        "each; the warming gap share needs at least 2 consecutive hours).",
    )
