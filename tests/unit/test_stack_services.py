from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from vidflow.config import Settings
from vidflow.stack import secrets as dev_secrets
from vidflow.stack.services import airflow_connections, airflow_env, services, stack_env
from vidflow.stack.supervisor import env_fingerprint, render_conf


@pytest.fixture
def local() -> Settings:
    return Settings(
        pg_password=SecretStr("pg%secret"),
        airflow_port=8181,
        aws_access_key_id=SecretStr("AKIDEXAMPLE"),
        aws_secret_access_key=SecretStr("aws-secret-value"),
    )


def test_execution_api_follows_the_api_server_port(local: Settings) -> None:
    env = airflow_env(local)
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8181/execution/"
    assert env["AIRFLOW__API__PORT"] == "8181"


def test_airflow_is_sized_for_two_cores_and_unpauses_dags(local: Settings) -> None:
    env = airflow_env(local)
    # The default executor (the first): transcodes name the CeleryExecutor next to it.
    assert env["AIRFLOW__CORE__EXECUTOR"].split(",")[0] == "LocalExecutor"
    assert int(env["AIRFLOW__CORE__PARALLELISM"]) <= 4
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"


def test_every_service_binds_to_loopback(local: Settings) -> None:
    for svc in services(local):
        joined = " ".join(svc.command)
        assert "0.0.0.0" not in joined, svc.name
        if svc.port:
            assert "127.0.0.1" in joined, f"{svc.name} does not name its bind address"


def test_connections_carry_the_endpoint_and_spark_master() -> None:
    conns = airflow_connections(Settings(spark_master="spark://spark-master:7077"))
    aws = json.loads(conns["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["extra"]["endpoint_url"] == "http://127.0.0.1:8333"  # the local default
    spark = json.loads(conns["AIRFLOW_CONN_SPARK_DEFAULT"])
    assert (spark["host"], spark["port"]) == ("spark://spark-master", 7077)
    local = json.loads(airflow_connections(Settings())["AIRFLOW_CONN_SPARK_DEFAULT"])
    assert local["host"] == "local[2]" and "port" not in local


def test_aws_connection_has_no_endpoint_for_real_aws() -> None:
    conns = airflow_connections(Settings(aws_endpoint_url=""))
    assert "endpoint_url" not in json.loads(conns["AIRFLOW_CONN_AWS_DEFAULT"])["extra"]


def test_supervisor_conf_has_no_secrets_and_escapes_percent(local: Settings) -> None:
    conf = render_conf(local, services(local), "f1ngerprint")
    for secret in ("pg%secret", "aws-secret-value", "AKIDEXAMPLE"):
        assert secret not in conf
    assert "[inet_http_server]" not in conf  # control socket is a unix socket only
    assert "stopasgroup=true" in conf and "killasgroup=true" in conf
    for line in conf.splitlines():
        if line.startswith("command=") and "%" in line:
            assert "%%" in line


def test_secrets_reach_processes_through_the_environment(local: Settings) -> None:
    env = stack_env(local)
    assert env["AWS_SECRET_ACCESS_KEY"] == "aws-secret-value"
    assert "pg%25secret" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def test_dev_secrets_are_generated_once_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in dev_secrets.GENERATED:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "secrets.env"
    created = dev_secrets.ensure_secrets(path)
    assert set(created) == set(dev_secrets.GENERATED)
    first = dev_secrets.read_env_file(path)
    assert dev_secrets.ensure_secrets(path) == []
    assert dev_secrets.read_env_file(path) == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_secrets_set_in_the_environment_are_not_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDFLOW_PG_PASSWORD", "from-env")
    created = dev_secrets.ensure_secrets(tmp_path / "secrets.env")
    assert "VIDFLOW_PG_PASSWORD" not in created


def _program(conf: str, name: str) -> str:
    return conf.split(f"[program:{name}]")[1].split("[program:")[0]


def test_config_changes_restart_platform_processes_but_not_storage(local: Settings) -> None:
    before = env_fingerprint(stack_env(local))
    changed = local.model_copy(update={"airflow_parallelism": 3})
    after = env_fingerprint(stack_env(changed))
    assert before != after
    old = render_conf(local, services(local), before)
    new = render_conf(changed, services(changed), after)
    for storage in ("postgres", "s3"):
        assert _program(old, storage) == _program(new, storage)
    for platform in ("mlflow", "airflow-scheduler"):
        assert _program(old, platform) != _program(new, platform)
        assert "vidflow.stack.exec" in _program(new, platform)


def test_remote_stores_are_not_started_locally() -> None:
    remote = Settings(
        aws_endpoint_url="",
        pg_host="db.internal",
        mlflow_tracking_uri="https://mlflow.internal",
    )
    names = {svc.name for svc in services(remote)}
    assert names.isdisjoint({"postgres", "s3", "mlflow"})
    assert {"airflow-scheduler", "airflow-api-server"} <= names
    assert {"postgres", "s3", "mlflow"} <= {svc.name for svc in services(Settings())}


def test_endpoint_follows_the_local_port_unless_set() -> None:
    assert Settings(seaweedfs_s3_port=8433).endpoint_url == "http://127.0.0.1:8433"
    assert Settings(object_store="moto", s3_moto_port=4577).endpoint_url == "http://127.0.0.1:4577"
    assert Settings(aws_endpoint_url="").endpoint_url is None
    assert Settings(aws_endpoint_url="http://minio:9000").endpoint_url == "http://minio:9000"


def test_queue_endpoint_defaults_to_the_s3_endpoint_and_can_differ() -> None:
    assert Settings().queue_endpoint_url == "http://127.0.0.1:4566"
    split = Settings(aws_endpoint_url="http://minio:9000", sqs_endpoint_url="http://sqs:9324")
    assert split.queue_endpoint_url == "http://sqs:9324"
    aws = json.loads(airflow_connections(split)["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["extra"]["endpoint_url"] == "http://minio:9000"
    assert aws["extra"]["service_config"] == {"sqs": {"endpoint_url": "http://sqs:9324"}}
    assert (
        "service_config"
        not in json.loads(
            airflow_connections(Settings(object_store="moto"))["AIRFLOW_CONN_AWS_DEFAULT"]
        )["extra"]
    )
