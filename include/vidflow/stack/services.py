"""What the local stack runs: one :class:`Service` per supervised process.

Everything here is derived from :class:`~vidflow.config.Settings`, so it can be unit
tested without starting anything. The same values feed ``docker-compose.yaml`` at scale.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vidflow.config import REPO_ROOT, Settings
from vidflow.stack.seaweedfs import weed_command


@dataclass(frozen=True)
class Service:
    """One long-running process of the local stack."""

    name: str
    command: list[str]
    #: URL answering 2xx when the service is ready, or None for a TCP check on `port`.
    health_url: str | None
    port: int
    #: Start order: services of a lower stage must be healthy before the next stage starts.
    stage: int
    #: OS user to run as (PostgreSQL refuses to run as root).
    user: str | None = None
    #: Whether the process gets the platform's environment (settings, secrets,
    #: connections). Storage services do not, so a configuration change restarts the
    #: Airflow/MLflow/API processes but never PostgreSQL or the in-memory S3 endpoint.
    needs_env: bool = True
    env: dict[str, str] = field(default_factory=dict)
    #: A command whose exit status 0 means healthy (instead of health_url or port).
    health_command: list[str] | None = None
    #: How long a stop waits for the process to exit before it is killed.
    stop_wait_seconds: int = 30
    #: Whether a stop signals the whole process group (False: the main process only, so
    #: that it can finish its children's work, as Celery's warm shutdown does).
    stop_as_group: bool = True


def venv_bin() -> Path:
    """The bin/ directory of the Python environment running this code."""
    return Path(sys.executable).parent


def pg_data_dir(settings: Settings) -> Path:
    return settings.state_dir / "pg" / "data"


def pg_socket_dir(settings: Settings) -> Path:
    return settings.state_dir / "pg" / "run"


def airflow_home(settings: Settings) -> Path:
    return settings.state_dir / "airflow"


def postgres_binary(name: str) -> str:
    """Path of a PostgreSQL server binary (initdb, postgres, pg_ctl)."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise FileNotFoundError(f"PostgreSQL binary {name!r} not found; run `make setup`")


def run_as_user() -> str | None:
    """PostgreSQL must not run as root: when we are root, run it as `postgres`."""
    return "postgres" if os.geteuid() == 0 else None


def _aws_extra(settings: Settings) -> dict[str, object]:
    extra: dict[str, object] = {"region_name": settings.aws_region}
    if settings.endpoint_url:
        extra["endpoint_url"] = settings.endpoint_url
    if settings.queue_endpoint_url != settings.endpoint_url:
        extra["service_config"] = {"sqs": {"endpoint_url": settings.queue_endpoint_url}}
    return extra


def airflow_connections(settings: Settings) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables (JSON form) for the connections tasks use by conn_id."""
    aws = {
        "conn_type": "aws",
        "login": settings.aws_access_key_id.get_secret_value() or None,
        "password": settings.aws_secret_access_key.get_secret_value() or None,
        "extra": _aws_extra(settings),
    }
    master = settings.spark_master
    spark: dict[str, object] = {"conn_type": "spark", "host": master}
    if master.startswith("spark://") and master.count(":") == 2:
        host, _, port = master.rpartition(":")
        spark = {"conn_type": "spark", "host": host, "port": int(port)}
    spark["extra"] = {"deploy-mode": "client", "spark-binary": "spark-submit"}
    catalog = {
        "conn_type": "postgres",
        "host": settings.pg_host,
        "port": settings.pg_port,
        "login": settings.pg_user,
        "password": settings.pg_password.get_secret_value(),
        "schema": settings.pg_catalog_db,
    }
    return {
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws),
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(spark),
        "AIRFLOW_CONN_VIDFLOW_CATALOG": json.dumps(catalog),
    }


def airflow_env(settings: Settings) -> dict[str, str]:
    """Airflow configuration for every Airflow component, as environment variables."""
    home = airflow_home(settings)
    api = settings.airflow_api_url
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": str(settings.airflow_parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(settings.airflow_parallelism),
        "AIRFLOW__CORE__FERNET_KEY": settings.airflow_fernet_key.get_secret_value(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{settings.airflow_admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": settings.pg_url(settings.pg_airflow_db),
        # One driver (psycopg 3) for sync and async access; Airflow would pick asyncpg.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": settings.pg_url(
            settings.pg_airflow_db, driver="psycopg_async"
        ),
        "AIRFLOW__API__HOST": settings.bind_host,
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": settings.airflow_jwt_secret.get_secret_value(),
        "AIRFLOW__API_AUTH__JWT_ISSUER": "vidflow",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(settings.log_dir / "airflow"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # A file is parsed again when it changes (the processor's default modified_time
        # order re-queues a file whose mtime passed its last parse) or every 5 min. At
        # Airflow's 30 s, re-parsing the DAG files cost about 13% of a core on an idle
        # stack (stopping the dag-processor saved that much; 8% was its own processes),
        # CPU the encoders and Spark jobs then did not have.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
        "AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE": "modified_time",
        # The api-server's /api/v2/monitor/health reports the scheduler; its own health
        # server would listen on all interfaces.
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": settings.bind_host,
        "AIRFLOW__TRIGGERER__CAPACITY": "100",
        "AIRFLOW__WEBSERVER__EXPOSE_CONFIG": "False",
    }
    env.update(airflow_connections(settings))
    env.update(celery_env(settings))
    return env


def celery_broker_url(settings: Settings) -> str:
    """The Celery broker: a configured one, or the local Redis."""
    return settings.celery_broker_url or f"redis://{settings.bind_host}:{settings.redis_port}/0"


def celery_env(settings: Settings) -> dict[str, str]:
    """With ``transcode_executor=celery``: Airflow runs the LocalExecutor (the default, for
    every other task) and the CeleryExecutor side by side; transcode tasks name the latter
    and the `transcode` queue (see vidflow.orchestration.video_processing)."""
    if settings.transcode_executor != "celery":
        return {}
    return {
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor,CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": celery_broker_url(settings),
        # Task states go to the Airflow metadata database (Celery's SQLAlchemy backend).
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + settings.pg_url(settings.pg_airflow_db),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(transcode_worker_concurrency(settings)),
        # One message reserved per free process: a queued encode stays in Redis, where a
        # worker that is stopping leaves it for the next one.
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
    }


def transcode_worker_concurrency(settings: Settings) -> int:
    return settings.transcode_worker_concurrency or settings.transcode_pool_slots


#: Celery node name of the local transcode worker (``%h``: this machine's host name).
TRANSCODE_WORKER_NODE = "transcode@%h"
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"


def stack_env(settings: Settings) -> dict[str, str]:
    """Environment shared by every supervised process (secrets included, never on argv)."""
    bin_dir = venv_bin()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYSPARK_PYTHON": str(bin_dir / "python"),
        "PYTHONUNBUFFERED": "1",
        "AWS_DEFAULT_REGION": settings.aws_region,
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MLFLOW_BACKEND_STORE_URI": settings.pg_url(settings.pg_mlflow_db),
        "GIT_PYTHON_REFRESH": "quiet",
        # MLflow's server-side jobs (GenAI scorers, prompt optimisation) are not used here;
        # their seven huey consumers polled the database about 1.5% of a core at idle.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    if settings.endpoint_url:
        env["MLFLOW_S3_ENDPOINT_URL"] = settings.endpoint_url
        env["AWS_ENDPOINT_URL"] = settings.endpoint_url
    if settings.queue_endpoint_url and settings.queue_endpoint_url != settings.endpoint_url:
        # botocore's per-service variable wins over AWS_ENDPOINT_URL for SQS clients.
        env["AWS_ENDPOINT_URL_SQS"] = settings.queue_endpoint_url
    if settings.aws_access_key_id.get_secret_value():
        env["AWS_ACCESS_KEY_ID"] = settings.aws_access_key_id.get_secret_value()
        env["AWS_SECRET_ACCESS_KEY"] = settings.aws_secret_access_key.get_secret_value()
    env.update(airflow_env(settings))
    return env


def runs_locally(settings: Settings, name: str) -> bool:
    """Is this store served by the local stack, or does the configuration point at a
    remote one (AWS, MinIO, a managed PostgreSQL, a shared MLflow)?"""
    loopback = (settings.bind_host, "127.0.0.1", "localhost")
    if name == "postgres":
        return settings.pg_host in loopback
    if name == "s3":  # moto: the local SQS endpoint, and S3 when object_store is moto
        moto = settings.local_sqs_url
        return moto in (settings.endpoint_url, settings.queue_endpoint_url)
    if name == "seaweedfs":
        return (
            settings.object_store == "seaweedfs" and settings.endpoint_url == settings.local_s3_url
        )
    if name == "mlflow":
        return not settings.mlflow_tracking_uri
    if name == "redis":
        return settings.transcode_executor == "celery" and not settings.celery_broker_url
    if name == "airflow-worker-transcode":
        return settings.transcode_executor == "celery"
    if name.startswith("cdn-"):
        return settings.cdn_local_edges
    return True


def services(settings: Settings) -> list[Service]:
    """The processes of the local stack, in start order: only what the configuration
    does not point elsewhere."""
    return [svc for svc in _all_services(settings) if runs_locally(settings, svc.name)]


def _all_services(settings: Settings) -> list[Service]:
    bin_dir = venv_bin()
    host = settings.bind_host
    airflow = str(bin_dir / "airflow")
    api = settings.airflow_api_url
    return [
        Service(
            name="postgres",
            command=[
                postgres_binary("postgres"),
                "-D",
                str(pg_data_dir(settings)),
                "-p",
                str(settings.pg_port),
                "-c",
                f"listen_addresses={host}",
                "-c",
                f"unix_socket_directories={pg_socket_dir(settings)}",
                "-c",
                "max_connections=200",
            ],
            health_url=None,
            port=settings.pg_port,
            stage=0,
            user=run_as_user(),
            needs_env=False,
        ),
        Service(
            name="s3",
            command=[str(bin_dir / "moto_server"), "-H", host, "-p", str(settings.s3_moto_port)],
            # ListBuckets: cheap, unlike /moto-api/data.json which dumps all state.
            health_url=f"http://{host}:{settings.s3_moto_port}/",
            port=settings.s3_moto_port,
            stage=0,
            needs_env=False,
        ),
        # The persistent object store (object_store=seaweedfs): `weed server` with its S3
        # gateway; the wrapper writes the gateway's identities (0600), then execs weed.
        Service(
            name="seaweedfs",
            command=[
                str(bin_dir / "python"),
                "-m",
                "vidflow.stack.seaweedfs",
                *weed_command(settings),
            ],
            health_url=f"{settings.local_s3_url}/healthz",
            port=settings.seaweedfs_s3_port,
            stage=0,
            needs_env=False,
        ),
        Service(
            name="mlflow",
            command=[
                str(bin_dir / "mlflow"),
                "server",
                "--host",
                host,
                "--port",
                str(settings.mlflow_port),
                "--workers",
                "1",
                "--artifacts-destination",
                f"s3://{settings.bucket_mlflow}/mlflow",
            ],
            health_url=f"{settings.tracking_uri}/health",
            port=settings.mlflow_port,
            stage=1,
        ),
        Service(
            name="airflow-api-server",
            command=[airflow, "api-server", "--host", host, "--port", str(settings.airflow_port)],
            health_url=f"{api}/api/v2/monitor/health",
            port=settings.airflow_port,
            stage=1,
        ),
        # --skip-serve-logs: with LocalExecutor the api-server reads task logs from disk,
        # and Airflow's log server cannot bind anywhere but all interfaces.
        Service(
            "airflow-scheduler", [*airflow_forking(), "scheduler", "--skip-serve-logs"], None, 0, 1
        ),
        Service("airflow-dag-processor", [airflow, "dag-processor"], None, 0, 1),
        Service("airflow-triggerer", [airflow, "triggerer", "--skip-serve-logs"], None, 0, 1),
        # The tus upload API; it also runs the outbox relay in a background thread.
        Service(
            name="upload-api",
            command=[
                str(bin_dir / "python"),
                "-m",
                "vidflow.uploads",
                "--host",
                host,
                "--port",
                str(settings.upload_port),
            ],
            health_url=f"http://{host}:{settings.upload_port}/healthz",
            port=settings.upload_port,
            stage=1,
        ),
        # The viewer API (metadata, own videos, watch events), viewer_workers processes.
        Service(
            name="viewer-api",
            command=[
                str(bin_dir / "python"),
                "-m",
                "vidflow.viewer",
                "--host",
                host,
                "--port",
                str(settings.viewer_port),
                "--workers",
                str(settings.viewer_workers),
            ],
            health_url=f"http://{host}:{settings.viewer_port}/healthz",
            port=settings.viewer_port,
            stage=1,
        ),
        *_cdn_services(settings),
        *_celery_services(settings),
    ]


def airflow_forking() -> list[str]:
    """The ``airflow`` command of a component whose tasks are forks of itself (the
    scheduler, whose LocalExecutor workers fork every task, and the Celery worker): it
    imports the task modules before Airflow starts, so no task imports them again (see
    vidflow.orchestration.launcher)."""
    return [str(venv_bin() / "python"), "-m", "vidflow.orchestration.launcher"]


def _celery_services(settings: Settings) -> list[Service]:
    """Redis (the broker) and the Celery worker of the `transcode` queue
    (``transcode_executor=celery``)."""
    bin_dir = venv_bin()
    host = settings.bind_host
    redis_dir = settings.state_dir / "redis"
    node = TRANSCODE_WORKER_NODE.replace("%h", socket.gethostname())
    return [
        Service(
            name="redis",
            # A small append-only file under state_dir: queued encodes survive a restart.
            command=[
                shutil.which("redis-server") or "/usr/bin/redis-server",
                "--bind",
                host,
                "--port",
                str(settings.redis_port),
                "--protected-mode",
                "yes",
                "--dir",
                str(redis_dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            health_url=None,
            port=settings.redis_port,
            stage=0,
            needs_env=False,
        ),
        # After the scheduler (stage 1). --skip-serve-logs: Airflow's log server binds all
        # interfaces; the api-server reads the task logs from the shared log folder. A stop
        # sends SIGTERM to the main process only: Celery's warm shutdown lets running
        # encodes finish and leaves queued ones in Redis.
        Service(
            name="airflow-worker-transcode",
            command=[
                *airflow_forking(),
                "celery",
                "worker",
                "--queues",
                "transcode",
                "--concurrency",
                str(transcode_worker_concurrency(settings)),
                "--celery-hostname",
                TRANSCODE_WORKER_NODE,
                "--skip-serve-logs",
                "--without-mingle",
                "--without-gossip",
            ],
            health_url=None,
            port=0,
            stage=2,
            health_command=[
                str(bin_dir / "celery"),
                "--app",
                CELERY_APP,
                "inspect",
                "ping",
                "--destination",
                node,
                "--timeout",
                "5",
            ],
            stop_wait_seconds=settings.transcode_worker_stop_seconds,
            stop_as_group=False,
        ),
    ]


def _cdn_services(settings: Settings) -> list[Service]:
    """The nginx tiers (shield, one edge per region) and the edges' log shipper. Each
    nginx is started through ``python -m vidflow.cdn nginx TIER``, which writes its
    configuration from settings and then execs the nginx master in the foreground."""
    from vidflow.cdn.config import tiers

    python = str(venv_bin() / "python")
    host = settings.bind_host
    cdn = [
        Service(
            name=tier.service,
            command=[python, "-m", "vidflow.cdn", "nginx", tier.name, "--listen", listen],
            health_url=f"http://{host}:{tier.port}/healthz",
            port=tier.port,
            stage=1,
        )
        for tier in tiers(settings)
        for listen in [f"{host}:{tier.port}"]
    ]
    shipper_listen = f"{host}:{settings.cdn_shipper_port}"
    cdn.append(
        Service(
            name="cdn-log-shipper",
            command=[python, "-m", "vidflow.cdn", "ship", "--listen", shipper_listen],
            health_url=f"http://{host}:{settings.cdn_shipper_port}/healthz",
            port=settings.cdn_shipper_port,
            stage=1,
        )
    )
    return cdn


def find_service(settings: Settings, name: str) -> Service:
    for svc in services(settings):
        if svc.name == name:
            return svc
    raise KeyError(f"no service {name!r} in the local stack")
