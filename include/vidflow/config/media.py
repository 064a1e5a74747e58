"""Settings of the upload service (tus API, accounts, outbox relay) and of video
processing (the video_processing DAG: probe, ladder, packaging, publish, maintenance)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from vidflow.config.stack import StackSettings


class MediaSettings(StackSettings):
    """Uploads and processing."""

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
