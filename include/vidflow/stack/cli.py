"""``python -m vidflow.stack up|down|status|demo``: the local stack's commands.

``up`` is idempotent: it initialises what is missing (PostgreSQL cluster, databases,
catalog migrations, buckets and queue, Airflow metadata, the `transcode` pool), starts
what is not running and waits until every service really answers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from vidflow.airflow_api import AirflowClient
from vidflow.config import Settings, get_settings
from vidflow.stack import supervisor
from vidflow.stack.secrets import ensure_secrets
from vidflow.stack.services import (
    Service,
    airflow_home,
    pg_data_dir,
    pg_socket_dir,
    postgres_binary,
    run_as_user,
    services,
    stack_env,
    venv_bin,
)


class StackError(RuntimeError):
    pass


def _say(message: str) -> None:
    print(f"[vidflow] {message}", flush=True)


# --- PostgreSQL bootstrap -------------------------------------------------------------


def _make_traversable(path: Path, user: str) -> None:
    """Let ``user`` reach ``path``: PostgreSQL runs as that user, and the checkout may sit
    below a directory only root can enter (``mktemp -d`` makes mode 0700 ones). Only the
    search (x) bit is added, never read."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _init_postgres(settings: Settings) -> None:
    data = pg_data_dir(settings)
    user = run_as_user()
    pg_socket_dir(settings).mkdir(parents=True, exist_ok=True)
    if user:
        _make_traversable(settings.state_dir, user)
        shutil.chown(data.parent, user)
        shutil.chown(pg_socket_dir(settings), user)
    if (data / "PG_VERSION").exists():
        return
    _say(f"initialising PostgreSQL cluster in {data}")
    data.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=data.parent, delete=False) as pwfile:
        pwfile.write(settings.pg_password.get_secret_value())
    try:
        prefix: list[str] = []
        if user:
            shutil.chown(data, user)
            shutil.chown(pwfile.name, user)
            prefix = ["runuser", "-u", user, "--"]
        subprocess.run(
            [
                *prefix,
                postgres_binary("initdb"),
                "-D",
                str(data),
                "--username",
                settings.pg_user,
                "--pwfile",
                pwfile.name,
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C.UTF-8",
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(data, ignore_errors=True)
        raise StackError(f"initdb failed: {exc.stderr}") from exc
    finally:
        Path(pwfile.name).unlink(missing_ok=True)


def _create_databases(settings: Settings) -> None:
    conninfo = settings.pg_url("postgres").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in (settings.pg_catalog_db, settings.pg_airflow_db, settings.pg_mlflow_db):
            if name not in existing:
                _say(f"creating database {name}")
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# --- health ------------------------------------------------------------------------------


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _airflow_components_healthy(health: dict[str, dict[str, object]]) -> bool:
    wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return all(health.get(name, {}).get("status") == "healthy" for name in wanted)


def service_healthy(settings: Settings, svc: Service) -> bool:
    """Does ``svc`` really answer (not merely run)?"""
    if svc.health_command:
        try:
            return (
                subprocess.run(
                    svc.health_command,
                    env={**os.environ, **stack_env(settings)},
                    capture_output=True,
                    timeout=60,
                    check=False,
                ).returncode
                == 0
            )
        except subprocess.TimeoutExpired:
            return False
    if svc.name.startswith("airflow-"):
        try:
            response = httpx.get(f"{settings.airflow_api_url}/api/v2/monitor/health", timeout=3)
            return response.status_code == 200 and _airflow_components_healthy(response.json())
        except httpx.HTTPError:
            return False
    if svc.health_url:
        try:
            return httpx.get(svc.health_url, timeout=3).status_code < 300
        except httpx.HTTPError:
            return False
    return _tcp_open(settings.bind_host, svc.port)


def _log_tail(settings: Settings, name: str, lines: int = 30) -> str:
    path = settings.log_dir / f"{name}.log"
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_healthy(settings: Settings, group: list[Service], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = {svc.name: svc for svc in group}
    while pending:
        states = supervisor.program_states(settings)
        for name, svc in list(pending.items()):
            if states.get(name) in {"FATAL", "EXITED"}:
                raise StackError(f"{name} failed to start:\n{_log_tail(settings, name)}")
            if states.get(name) == "RUNNING" and service_healthy(settings, svc):
                _say(f"{name} is up")
                del pending[name]
        if pending and time.monotonic() > deadline:
            names = ", ".join(pending)
            tails = "\n".join(f"--- {n}\n{_log_tail(settings, n)}" for n in pending)
            raise StackError(f"not healthy after {timeout:.0f}s: {names}\n{tails}")
        if pending:
            time.sleep(1)


# --- commands --------------------------------------------------------------------------


def _airflow_client(settings: Settings) -> AirflowClient:
    return AirflowClient.from_settings(settings)


def _bootstrap_after_storage(settings: Settings, env: dict[str, str]) -> None:
    from vidflow.catalog.db import upgrade
    from vidflow.processing.objects import ensure_public_read
    from vidflow.storage import ensure_buckets, ensure_queue

    _create_databases(settings)
    upgrade("heads", settings)
    _say("catalog migrated to head")
    created = ensure_buckets(settings)
    if created:
        _say(f"created buckets: {', '.join(created)}")
    ensure_queue(settings)
    # The media bucket is the CDN's origin from the start, not from the first publish:
    # the edges and shield fetch without signatures.
    ensure_public_read(settings)
    home = airflow_home(settings)
    (home / "plugins").mkdir(parents=True, exist_ok=True)
    passwords = home / "passwords.json"
    passwords.write_text(
        json.dumps(
            {settings.airflow_admin_user: settings.airflow_admin_password.get_secret_value()}
        )
    )
    passwords.chmod(0o600)
    _say("migrating the Airflow metadata database")
    with (settings.log_dir / "airflow-db-migrate.log").open("a") as log:
        subprocess.run(
            [str(venv_bin() / "airflow"), "db", "migrate"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )


def up(settings: Settings) -> None:
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    supervisor.run_dir(settings).mkdir(parents=True, exist_ok=True)
    (settings.state_dir / "redis").mkdir(parents=True, exist_ok=True)  # the broker's data
    all_services = services(settings)
    env = {**os.environ, **stack_env(settings)}
    _init_postgres(settings)
    fingerprint = supervisor.env_fingerprint(stack_env(settings))
    conf = supervisor.render_conf(settings, all_services, fingerprint)
    supervisor.conf_path(settings).write_text(conf)
    if not supervisor.is_running(settings):
        _say("starting supervisord")
        supervisor.start_daemon(settings)
    else:
        # Restarts exactly the programs whose command or configuration changed, and
        # registers programs added since the daemon started.
        supervisor.ctl(settings, "update", check=False)
    for stage in sorted({svc.stage for svc in all_services}):
        group = [svc for svc in all_services if svc.stage == stage]
        supervisor.ctl(settings, "start", *[svc.name for svc in group], check=False)
        _wait_healthy(settings, group, timeout=240)
        if stage == 0:
            _bootstrap_after_storage(settings, env)
    client = _airflow_client(settings)
    client.set_pool(
        "transcode", settings.transcode_pool_slots, "One ffmpeg encode per slot (vidflow)"
    )
    _say("stack is up")
    print_urls(settings)


def print_urls(settings: Settings) -> None:
    password = settings.airflow_admin_password.get_secret_value()
    print(
        f"""
  Airflow UI   {settings.airflow_api_url}   login: {settings.airflow_admin_user} / {password}
  MLflow UI    {settings.tracking_uri}
  S3           {settings.endpoint_url or "AWS"}   (credentials in .local/secrets.env)
  SQS          {settings.queue_endpoint_url or "AWS"}
  PostgreSQL   {settings.pg_host}:{settings.pg_port}   user {settings.pg_user}, dbs \
{settings.pg_catalog_db} / {settings.pg_airflow_db} / {settings.pg_mlflow_db}
  Logs         {settings.log_dir}
""",
        flush=True,
    )


def down(settings: Settings) -> None:
    if not supervisor.is_running(settings):
        _say("stack is not running")
        return
    pid = supervisor.daemon_pid(settings)
    supervisor.ctl(settings, "stop", "all", check=False)
    supervisor.ctl(settings, "shutdown", check=False)
    deadline = time.monotonic() + 60
    while pid and _pid_alive(pid):
        if time.monotonic() > deadline:
            raise StackError(f"supervisord (pid {pid}) did not exit")
        time.sleep(0.2)
    _say("stack is down")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status(settings: Settings) -> int:
    if not supervisor.is_running(settings):
        _say("stack is not running (make up)")
        return 1
    states = supervisor.program_states(settings)
    failing = 0
    for svc in services(settings):
        state = states.get(svc.name, "UNKNOWN")
        healthy = state == "RUNNING" and service_healthy(settings, svc)
        failing += not healthy
        where = svc.health_url or (f"{settings.bind_host}:{svc.port}" if svc.port else "")
        print(f"  {svc.name:24} {state:9} {'healthy' if healthy else 'NOT HEALTHY':12} {where}")
    return 1 if failing else 0


def demo(settings: Settings) -> None:
    """The whole platform: vidflow.platform.demo runs the steps, this prints the result."""
    from vidflow.platform.demo import DemoFailed, run_demo
    from vidflow.platform.demo_summary import format_summary

    try:
        report = run_demo(settings, lambda m: _say(f"demo: {m}"), up=lambda: up(settings))
    except DemoFailed as exc:
        raise StackError(str(exc)) from exc
    assert report.summary is not None
    print(
        format_summary(
            report.summary,
            settings,
            clips=report.plan.clips,
            first_day=report.plan.first_day,
            today=report.plan.today,
            timings=report.timings,
        ),
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidflow.stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "demo", "urls", "secrets"])
    args = parser.parse_args(argv)
    if args.command in {"up", "demo", "secrets"}:
        created = ensure_secrets(get_settings().state_dir / "secrets.env")
        if created:
            _say(f"generated development secrets: {', '.join(created)}")
            get_settings.cache_clear()
    settings = get_settings()
    try:
        if args.command == "up":
            up(settings)
        elif args.command == "down":
            down(settings)
        elif args.command == "status":
            return status(settings)
        elif args.command == "demo":
            demo(settings)
        elif args.command == "urls":
            print_urls(settings)
    except StackError as exc:
        print(f"[vidflow] ERROR: {exc}", file=sys.stderr)
        return 1
    return 0
