"""Settings of the local stack and the services every component shares: PostgreSQL,
the S3/SQS endpoint and its buckets, Spark and Delta, MLflow, Airflow and the transcode
executor."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository checkout this module lives in (include/vidflow/config/stack.py -> repo).
REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_STATE_DIR = REPO_ROOT / ".local"


class StackSettings(BaseSettings):
    """The shared services. Field ``foo_bar`` is read from ``VIDFLOW_FOO_BAR``; the area
    settings (uploads and processing, viewers, CDN) build on these."""

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
    spark_driver_java_options: str = Field(
        "-XX:+UseParallelGC",
        description="Extra JVM options of every Spark driver (spark.driver.extraJavaOptions; "
        "in local mode the driver is the whole of Spark). The default, the throughput "
        "collector, made the daily gold job on 9.7M events about 20% faster than the JVM's "
        "default G1. `make test` sets -XX:TieredStopAtLevel=1 -XX:+UseSerialGC: on the tests' "
        "jobs of a few thousand rows a driver spends its time in cold code, and these made a "
        "small Delta job about 22% faster; on millions of rows they made one 65% slower.",
    )
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
    dag_schedules: bool = Field(
        True,
        description="Run the time-scheduled DAGs (platform_analytics and cdn_analytics hourly, "
        "recs_training daily, upload_maintenance, video_reconciliation) on their schedules. "
        "false: they run only when triggered (UI, API, make demo); asset-triggered DAGs "
        "(video_processing, recs_scoring) are unaffected. `make test` sets false: scheduled "
        "runs competed with the tests' own runs for the two cores and wrote the same tables.",
    )
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
        1,
        ge=0,
        description="Mapped transcode tasks (ffmpeg processes) one video's renditions are "
        "split into; each decodes the source once and encodes its share of the ladder. 1 "
        "suits one machine: x264 already uses every core, so a second encode only decodes "
        "the source again. 0 means one per slot of the `transcode` pool (workers on several "
        "machines); 10 or more gives one task per rendition (a ladder has at most 9 rungs, "
        "plus audio).",
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

    # --- derived values ---------------------------------------------------------
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

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"
