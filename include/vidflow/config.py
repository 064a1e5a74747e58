"""One typed settings object for the whole platform.

Every component (DAG tasks, Spark jobs, services, the local stack) reads its
configuration from :func:`get_settings`. Values come from ``VIDFLOW_*`` environment
variables; for local development, ``.env`` in the repository root and the generated
``.local/secrets.env`` are read too. Pointing the platform at AWS, MinIO, a remote
PostgreSQL or a Spark cluster changes environment variables only.

``.env.example`` documents every field below; a test keeps the two in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vidflow.regions import REGION_NAMES, RegionName

#: The repository checkout this module lives in (include/vidflow/config.py -> repo).
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".local"


class Settings(BaseSettings):
    """Platform configuration. Field ``foo_bar`` is read from ``VIDFLOW_FOO_BAR``."""

    model_config = SettingsConfigDict(
        env_prefix="VIDFLOW_",
        env_file=(REPO_ROOT / ".env", DEFAULT_STATE_DIR / "secrets.env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # --- local stack -------------------------------------------------------------
    state_dir: Path = Field(
        DEFAULT_STATE_DIR, description="Where the local stack keeps data, logs and config."
    )
    bind_host: str = Field("127.0.0.1", description="Interface every local service binds to.")

    # --- PostgreSQL (catalog, Airflow metadata, MLflow tracking) -----------------
    pg_host: str = Field("127.0.0.1", description="PostgreSQL host.")
    pg_port: int = Field(5433, description="PostgreSQL port (the local server listens here).")
    pg_user: str = Field("vidflow", description="PostgreSQL role used by every component.")
    pg_password: SecretStr = Field(
        SecretStr(""), description="Password of pg_user. Generated locally on first `make up`."
    )
    pg_catalog_db: str = Field("vidflow", description="Database of the catalog.")
    pg_airflow_db: str = Field("airflow", description="Database of the Airflow metadata.")
    pg_mlflow_db: str = Field("mlflow", description="Database of the MLflow tracking store.")
    catalog_partitions: int = Field(
        8, ge=1, le=1024, description="Hash partitions per sharded catalog table."
    )

    # --- S3 and SQS ----------------------------------------------------------------
    aws_endpoint_url: str | None = Field(
        None,
        description="S3/SQS endpoint URL. Unset: the local stack's (S3 from the server "
        "object_store names, SQS from moto on s3_moto_port). Empty: real AWS (the SDK's "
        "default endpoints).",
    )
    sqs_endpoint_url: str | None = Field(
        None,
        description="SQS endpoint URL when the queue lives elsewhere than S3 (e.g. ElasticMQ "
        "next to MinIO). Unset: the S3/SQS endpoint above (locally: moto).",
    )
    aws_region: str = Field("us-east-1", description="AWS region for S3 and SQS.")
    aws_access_key_id: SecretStr = Field(
        SecretStr(""), description="Access key. Empty means the SDK's default credential chain."
    )
    aws_secret_access_key: SecretStr = Field(SecretStr(""), description="Secret key.")
    s3_moto_port: int = Field(4566, description="Port of the local S3+SQS endpoint (moto).")
    object_store: Literal["seaweedfs", "moto"] = Field(
        "seaweedfs",
        description="Local S3 server when aws_endpoint_url is unset: seaweedfs (persistent, "
        "data under state_dir/seaweedfs, built by `make setup`) or moto (in memory: `make "
        "down` forgets every object). The local queue stays on moto either way.",
    )
    seaweedfs_s3_port: int = Field(
        8333, description="Port of the local SeaweedFS S3 gateway (object_store=seaweedfs)."
    )
    seaweedfs_master_port: int = Field(
        9333, description="Port of the SeaweedFS master (its gRPC port is this + 10000)."
    )
    seaweedfs_volume_port: int = Field(
        8380, description="Port of the SeaweedFS volume server (its gRPC port is this + 10000)."
    )
    seaweedfs_filer_port: int = Field(
        8888, description="Port of the SeaweedFS filer (its gRPC port is this + 10000)."
    )
    seaweedfs_volume_size_mb: int = Field(
        64,
        ge=8,
        le=30_000,
        description="Size at which SeaweedFS closes a volume file and starts another (small "
        "volumes keep a local store's disk and memory small).",
    )
    seaweedfs_memory_limit_mb: int = Field(
        512,
        ge=0,
        description="Soft memory limit of the local SeaweedFS process (Go's GOMEMLIMIT): its "
        "garbage collector works harder above it instead of growing. 0 means no limit.",
    )
    bucket_originals: str = Field("vidflow-originals", description="Bucket of uploaded sources.")
    bucket_media: str = Field("vidflow-media", description="Bucket of packaged streams.")
    bucket_cdn_logs: str = Field("vidflow-cdn-logs", description="Bucket of CDN access logs.")
    bucket_events: str = Field("vidflow-events", description="Bucket of watch-event batches.")
    bucket_mlflow: str = Field("vidflow-mlflow", description="Bucket of MLflow artifacts.")
    bucket_lake: str = Field("vidflow-lake", description="Bucket for an s3a:// Delta lake.")
    processing_queue: str = Field(
        "vidflow-processing", description="SQS queue with one message per uploaded video."
    )

    # --- Spark + Delta ---------------------------------------------------------------
    spark_master: str = Field(
        "local[2]", description="Spark master URL: local[N] or spark://host:7077."
    )
    spark_driver_memory: str = Field("2g", description="Spark driver memory.")
    spark_shuffle_partitions: int = Field(4, ge=1, description="spark.sql.shuffle.partitions.")
    spark_jars_file: Path = Field(
        DEFAULT_STATE_DIR / "spark-jars.txt",
        description="Classpath file written by `make setup` (Delta, hadoop-aws jars in ~/.m2).",
    )
    lake_uri: str = Field(
        str(DEFAULT_STATE_DIR / "lake"),
        description="Root of the Delta lake: a local directory or s3a://bucket/prefix.",
    )

    # --- MLflow --------------------------------------------------------------------------
    mlflow_port: int = Field(5000, description="Port of the local MLflow tracking server.")
    mlflow_tracking_uri: str = Field(
        "", description="Tracking URI. Empty means the local server on mlflow_port."
    )

    # --- Airflow -------------------------------------------------------------------------
    airflow_port: int = Field(8080, description="Port of the Airflow api-server (UI + REST).")
    airflow_parallelism: int = Field(
        4, ge=1, description="Task instances running at once (sized for 2 cores)."
    )
    airflow_admin_user: str = Field("admin", description="Airflow UI login.")
    airflow_admin_password: SecretStr = Field(
        SecretStr(""), description="Airflow UI password. Generated locally on first `make up`."
    )
    airflow_jwt_secret: SecretStr = Field(
        SecretStr(""), description="Secret signing Airflow's API tokens. Generated locally."
    )
    airflow_fernet_key: SecretStr = Field(
        SecretStr(""), description="Fernet key encrypting Airflow connections. Generated locally."
    )
    transcode_pool_slots: int = Field(
        2, ge=1, description="Slots of the Airflow pool `transcode` (one ffmpeg per slot)."
    )
    encodes_per_video: int = Field(
        0,
        ge=0,
        description="Mapped transcode tasks (ffmpeg processes) one video's renditions are "
        "split into; each decodes the source once and encodes its share of the ladder. 0 "
        "means one per slot of the `transcode` pool; 10 or more gives one task per "
        "rendition (a ladder has at most 9 rungs, plus audio).",
    )
    transcode_executor: Literal["local", "celery"] = Field(
        "celery",
        description="Executor of the transcode tasks: celery (the CeleryExecutor next to the "
        "LocalExecutor of every other task: a Celery worker of the local stack consumes the "
        "`transcode` queue, Redis is the broker, as at scale) or local (the LocalExecutor; "
        "the stack then runs no Redis and no worker).",
    )
    redis_port: int = Field(
        6380, description="Port of the local Redis, the Celery broker (transcode_executor=celery)."
    )
    celery_broker_url: str = Field(
        "",
        description="Celery broker URL (transcode_executor=celery). Empty means the local Redis "
        "on redis_port; set it to use a shared Redis instead.",
    )
    transcode_worker_concurrency: int = Field(
        0,
        ge=0,
        description="Encodes the local transcode Celery worker runs at once. 0 means one per "
        "slot of the `transcode` pool.",
    )
    transcode_worker_stop_seconds: int = Field(
        300,
        ge=10,
        description="How long stopping the transcode worker waits for its running encodes to "
        "finish (Celery warm shutdown) before it is killed (the encodes are then retried).",
    )

    @field_validator("state_dir", "spark_jars_file")
    @classmethod
    def _anchor_relative_paths(cls, value: Path) -> Path:
        # Tasks and services run from any working directory: relative means the checkout.
        return value if value.is_absolute() else REPO_ROOT / value

    # --- upload service ---------------------------------------------------------------
    # The tus 1.0 upload API (include/vidflow/uploads), its accounts and JWT auth, and the
    # outbox relay that hands finished uploads to the processing queue.
    upload_port: int = Field(8090, description="Port of the upload (tus) API.")
    upload_max_size: int = Field(
        20 * 1024**3, ge=1, description="Largest accepted Upload-Length in bytes (413 above)."
    )
    upload_expiry_seconds: int = Field(
        24 * 3600,
        ge=1,
        description="An unfinished upload expires after this many seconds without a PATCH.",
    )
    upload_part_size: int = Field(
        8 * 1024**2,
        ge=5 * 1024**2,
        le=5 * 1024**3,
        description="Bytes buffered per S3 multipart part (the fixed per-request buffer).",
    )
    upload_part_concurrency: int = Field(
        2, ge=1, le=16, description="S3 part uploads in flight per PATCH while it streams."
    )
    upload_max_parallel_writes: int = Field(
        32,
        ge=1,
        description="PATCH requests one upload process streams at once (503 beyond). Memory "
        "bound: this x (part_concurrency + 1) x part_size.",
    )
    upload_cors_origins: str = Field(
        "*", description="Comma-separated browser origins allowed to upload (CORS)."
    )
    jwt_secret: SecretStr = Field(
        SecretStr(""),
        description="Secret signing the upload API's bearer tokens. Generated locally.",
    )
    jwt_ttl_seconds: int = Field(900, ge=1, description="Lifetime of a login token in seconds.")
    demo_password: SecretStr = Field(
        SecretStr(""),
        description="Password of the `demo` creator account `make demo` uploads with. "
        "Generated locally.",
    )
    outbox_relay_interval_seconds: float = Field(
        2.0, gt=0, description="Pause between two sweeps of the outbox relay."
    )
    outbox_batch_size: int = Field(
        100, ge=1, description="Outbox rows the relay publishes per transaction."
    )
    outbox_retention_seconds: int = Field(
        7 * 24 * 3600,
        ge=0,
        description="Sent outbox rows are deleted this many seconds after they were sent.",
    )
    outbox_claim_seconds: float = Field(
        60.0,
        gt=0,
        description="A relay's claim on an outbox row lasts this long; a row a crashed relay "
        "claimed is published by another once the claim runs out.",
    )
    auth_window_seconds: int = Field(
        900,
        ge=1,
        description="Sign-in rate limits count within this window; a key that reaches its "
        "limit is refused (429, Retry-After) until the window ends.",
    )
    auth_account_max_failures: int = Field(
        5, ge=1, description="Failed logins per account within the window before 429."
    )
    auth_client_max_failures: int = Field(
        50, ge=1, description="Failed logins per client address within the window before 429."
    )
    auth_client_max_registrations: int = Field(
        100,
        ge=1,
        description="Registration attempts per client address within the window before 429.",
    )
    upload_body_idle_seconds: float = Field(
        30.0,
        gt=0,
        description="A PATCH body that sends nothing for this long is cut off; the bytes "
        "that arrived are kept (resume from the offset HEAD reports).",
    )
    upload_body_total_seconds: float = Field(
        3600.0,
        gt=0,
        description="Longest time one PATCH body may take; what arrived by then is kept.",
    )

    # --- video processing -----------------------------------------------------------------
    # The video_processing DAG (include/vidflow/media, include/vidflow/processing): probe,
    # ABR ladder, CMAF packaging for HLS and DASH, thumbnails, publish, reconciliation.
    cdn_base_url: str = Field(
        "",
        description="Public base URL of the media bucket (manifest_url, thumbnails). Empty "
        "means the media bucket on the S3 endpoint itself: {aws_endpoint_url}/{bucket_media}.",
    )
    media_public_read: bool = Field(
        True,
        description="Put a public-read bucket policy on the media bucket, so players (and "
        "the CDN origin) fetch playlists and segments without signatures.",
    )
    sqs_account_id: str = Field(
        "123456789012",
        description="AWS account owning the processing queue; with the endpoint and queue "
        "name it makes the queue URL the DAG watches (built without network at parse time).",
    )
    processing_queue_wait_seconds: int = Field(
        10, ge=0, le=20, description="SQS long-poll wait of the processing-queue watcher."
    )
    processing_max_active_runs: int = Field(
        4, ge=1, description="video_processing runs at once (each may carry several videos)."
    )
    max_source_duration_seconds: float = Field(
        12 * 3600, gt=0, description="Longest accepted source; longer uploads end failed."
    )
    segment_seconds: int = Field(
        6, ge=4, le=6, description="Target CMAF segment duration (keyframes on every boundary)."
    )
    x264_preset: str = Field(
        "veryfast",
        description="x264 preset of every rendition (speed against compression). veryfast "
        "keeps processing near realtime on small machines; medium (x264's default) costs "
        "about 2x the CPU for ~1 dB SSIM at equal CRF.",
    )
    x264_crf: int = Field(
        23, ge=0, le=51, description="x264 CRF; capped by each rung's -maxrate (bufsize 2x)."
    )
    storyboard_interval_seconds: float = Field(
        5.0, gt=0, description="Seconds between two storyboard tiles (scrubbing previews)."
    )
    verify_source_sha256: bool = Field(
        True,
        description="Check each original's SHA-256 against its queue message before "
        "processing (one extra read of the original, concurrent with probing).",
    )
    presigned_url_seconds: int = Field(
        24 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description="Lifetime of the presigned source URL that ffprobe/ffmpeg stream from.",
    )
    scratch_dir: str = Field(
        "", description="Directory for encoder scratch files. Empty means the system temp dir."
    )
    stuck_processing_minutes: int = Field(
        60,
        ge=1,
        description="A video in `processing` this long without an active run is re-enqueued.",
    )
    reconcile_interval_minutes: int = Field(
        15, ge=1, description="How often the reconciliation DAG looks for stuck videos."
    )
    superseded_grace_hours: float = Field(
        24.0,
        ge=0,
        description="How long a superseded media version stays readable after a newer one "
        "is published (players mid-stream, CDN caches); the orphan sweep removes it later.",
    )
    tool_timeout_seconds: int = Field(
        300,
        ge=10,
        description="Timeout of each short ffprobe/ffmpeg call (probe, decode checks, "
        "posters, storyboard); a call that runs longer is stopped and the task retried.",
    )
    encode_timeout_factor: float = Field(
        6.0,
        gt=0,
        description="An encode's ffmpeg is stopped after this many times the source "
        "duration (at least VIDFLOW_ENCODE_TIMEOUT_MIN_SECONDS).",
    )
    encode_timeout_min_seconds: int = Field(
        900, ge=60, description="Shortest timeout of an encode's ffmpeg."
    )
    processing_task_timeout_minutes: int = Field(
        60,
        ge=1,
        description="Airflow execution_timeout of the probe, thumbnails, publish and report "
        "tasks of video_processing and of the video_reconciliation tasks.",
    )
    transcode_task_timeout_minutes: int = Field(
        12 * 60, ge=1, description="Airflow execution_timeout of one mapped transcode task."
    )
    max_reenqueues: int = Field(
        3, ge=0, description="Re-enqueues of one stuck video before it is marked failed."
    )

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
    cdn_edge_urls: str = Field(
        "",
        description="Per-region CDN edges as region=url pairs, comma-separated (e.g. "
        "us-east=http://127.0.0.1:8101). The viewer API hands each viewer the manifest URLs "
        "of their region's edge; a region without one gets cdn_base_url.",
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

    # --- CDN -----------------------------------------------------------------------------------
    # The nginx tiers (include/vidflow/cdn): one edge per region in front of one shield in
    # front of the media bucket, and the shipper of the edges' CloudFront-format logs.
    cdn_local_edges: bool = Field(
        True,
        description="Run the nginx shield and one edge per region with the local stack. With "
        "cdn_edge_urls empty, viewers are then handed their region's local edge.",
    )
    cdn_shield_port: int = Field(8100, description="Port of the local shield (regional cache).")
    cdn_edge_base_port: int = Field(
        8101,
        description="Port of the first region's edge; the others follow in region order "
        "(us-east 8101, eu-west 8102, ap-south 8103, sa-east 8104).",
    )
    cdn_origin_url: str = Field(
        "",
        description="What the shield fetches from. Empty means the media bucket on the S3 "
        "endpoint: {aws_endpoint_url}/{bucket_media} (the bucket is public-read).",
    )
    cdn_edge_cache_max_size: str = Field(
        "256m", description="proxy_cache max_size of each edge (nginx size: 256m, 2g)."
    )
    cdn_shield_cache_max_size: str = Field("1g", description="proxy_cache max_size of the shield.")
    cdn_slice_size: str = Field(
        "1m", description="Slice (nginx slice module) in which ranges are fetched and cached."
    )
    cdn_playlist_max_age_seconds: int = Field(
        2, ge=1, description="How long a tier caches a playlist (.m3u8/.mpd) and tells players to."
    )
    cdn_segment_max_age_seconds: int = Field(
        365 * 24 * 3600,
        ge=1,
        description="How long a tier caches a segment (.m4s) or init segment (.mp4); they are "
        "immutable (a new version of a video gets new keys).",
    )
    cdn_nginx_binary: str = Field("/usr/sbin/nginx", description="The nginx executable.")
    cdn_log_prefix: str = Field(
        "cdn-logs/", description="Key prefix of the edges' access-log objects in bucket_cdn_logs."
    )
    cdn_log_ship_seconds: float = Field(
        10.0,
        gt=0,
        description="The log shipper rotates each edge's log and uploads it this often.",
    )
    cdn_shipper_port: int = Field(
        8109,
        description="Port of the log shipper's health and flush endpoint (GET /healthz, "
        "POST /v1/flush ships every edge's log now).",
    )
    cdn_max_bad_ratio: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Share of an hour's CDN log lines that may be quarantined before the "
        "cdn_analytics gate fails the run.",
    )
    cdn_warm_byte_budget: str = Field(
        "64m",
        description="Default warming budget per edge and hour (nginx size; the DAG's "
        "byte_budget Param overrides it).",
    )
    cdn_edge_admit_threshold: float = Field(
        0.0,
        ge=0,
        description="Admission list of each edge: after the plan of the current hour, an edge "
        "stores only the media segments expected at least this many requests next hour (and "
        "the plan's); others are served through uncached. 0 (the default) stores everything "
        "(plain LRU). 2 is the value fitted for the 256m edge cache (benchmarks/cdn.py).",
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

    # --- derived values --------------------------------------------------------------------
    def pg_url(self, database: str, driver: str = "psycopg") -> str:
        """SQLAlchemy URL of one database on the configured server."""
        password = quote(self.pg_password.get_secret_value(), safe="")
        return (
            f"postgresql+{driver}://{quote(self.pg_user, safe='')}:{password}"
            f"@{self.pg_host}:{self.pg_port}/{database}"
        )

    @property
    def catalog_url(self) -> str:
        return self.pg_url(self.pg_catalog_db)

    @property
    def endpoint_url(self) -> str | None:
        """The S3 endpoint for SDK clients, or None for AWS itself. Unset means the local
        object store that ``object_store`` names."""
        if self.aws_endpoint_url is None:
            return self.local_s3_url
        return self.aws_endpoint_url or None

    @property
    def local_s3_url(self) -> str:
        """The local object store's S3 endpoint (SeaweedFS or moto, per ``object_store``)."""
        port = self.seaweedfs_s3_port if self.object_store == "seaweedfs" else self.s3_moto_port
        return f"http://{self.bind_host}:{port}"

    @property
    def local_sqs_url(self) -> str:
        """The local SQS endpoint (moto), whatever serves S3."""
        return f"http://{self.bind_host}:{self.s3_moto_port}"

    @property
    def queue_endpoint_url(self) -> str | None:
        """The SQS endpoint for SDK clients, or None for AWS itself. Unset means the S3
        endpoint, except for a local stack whose objects live in SeaweedFS: its queue is
        moto's."""
        if self.sqs_endpoint_url is None:
            return self.local_sqs_url if self.aws_endpoint_url is None else self.endpoint_url
        return self.sqs_endpoint_url or None

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"http://{self.bind_host}:{self.mlflow_port}"

    @property
    def airflow_api_url(self) -> str:
        return f"http://{self.bind_host}:{self.airflow_port}"

    @property
    def encode_groups(self) -> int:
        """Encodes per video (see ``encodes_per_video``)."""
        return self.encodes_per_video or self.transcode_pool_slots

    def cdn_edge_port(self, region: str) -> int:
        """Port of the local edge of ``region`` (regions in their fixed order)."""
        return self.cdn_edge_base_port + REGION_NAMES.index(region)

    def edge_urls(self) -> dict[str, str]:
        """``cdn_edge_urls`` as region -> base URL (no trailing slash); when it is empty and
        the local stack runs the CDN (``cdn_local_edges``), every region's local edge."""
        pairs = [p.strip() for p in self.cdn_edge_urls.split(",") if p.strip()]
        if not pairs and self.cdn_local_edges:
            return {r: f"http://{self.bind_host}:{self.cdn_edge_port(r)}" for r in REGION_NAMES}
        edges: dict[str, str] = {}
        for pair in pairs:
            name, sep, url = pair.partition("=")
            if not sep or not name.strip() or not url.strip():
                raise ValueError(f"VIDFLOW_CDN_EDGE_URLS: {pair!r} is not region=url")
            edges[name.strip()] = url.strip().rstrip("/")
        return edges

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def env_example() -> str:
    """The text of ``.env.example``: every variable, its default and what it is for.

    ``python -m vidflow.config > .env.example`` regenerates the file; a test checks that
    the committed file is current.
    """
    lines = [
        "# vidflow configuration. Every variable is optional: the defaults run the local",
        "# stack. Copy to .env to override locally; in deployments set real environment",
        "# variables. Secrets left empty are generated into .local/secrets.env by `make up`.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        if isinstance(default, Path):
            default = (
                default.relative_to(REPO_ROOT) if default.is_relative_to(REPO_ROOT) else default
            )
        if name == "lake_uri":
            default = ".local/lake"
        lines.append(f"# {field.description}")
        # A None default means "derived" (see the description): leave it unset.
        prefix = "# " if default is None else ""
        lines.append(f"{prefix}VIDFLOW_{name.upper()}={'' if default is None else default}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(env_example(), end="")
