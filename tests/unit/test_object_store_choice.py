"""The local object store behind a setting: SeaweedFS (persistent) or moto (in memory), with
the queue on moto either way. No process is started here; the restart itself is proven
by tests/integration/test_persistence.py."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import SecretStr

from vidflow.cdn.config import shield
from vidflow.config import Settings
from vidflow.processing.objects import media_base_url
from vidflow.stack import seaweedfs
from vidflow.stack.services import airflow_connections, services, stack_env
from vidflow.stack.supervisor import render_conf
from vidflow.storage import s3_client


@pytest.fixture
def weed(tmp_path: Path) -> Settings:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "weed").write_text("#!/bin/sh\n")
    return Settings(
        object_store="seaweedfs",
        state_dir=tmp_path,
        aws_access_key_id=SecretStr("localAKID"),
        aws_secret_access_key=SecretStr("s3cr3t/value"),
    )


def test_seaweedfs_serves_s3_and_moto_keeps_the_queue(weed: Settings) -> None:
    assert weed.endpoint_url == "http://127.0.0.1:8333"
    assert weed.queue_endpoint_url == "http://127.0.0.1:4566"
    names = [svc.name for svc in services(weed)]
    assert "seaweedfs" in names and "s3" in names  # "s3" is moto: now only SQS is used
    aws = json.loads(airflow_connections(weed)["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["extra"]["endpoint_url"] == "http://127.0.0.1:8333"
    assert aws["extra"]["service_config"] == {"sqs": {"endpoint_url": "http://127.0.0.1:4566"}}
    env = stack_env(weed)
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:8333"
    assert env["AWS_ENDPOINT_URL_SQS"] == "http://127.0.0.1:4566"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:8333"


def test_the_cdn_origin_and_media_urls_follow_the_object_store(weed: Settings) -> None:
    assert shield(weed).upstream == "http://127.0.0.1:8333/vidflow-media"
    assert media_base_url(weed) == "http://127.0.0.1:8333/vidflow-media"
    from vidflow.orchestration.video_processing import processing_queue_url

    assert processing_queue_url(weed) == "http://127.0.0.1:4566/123456789012/vidflow-processing"


def test_moto_mode_runs_no_seaweedfs_and_remote_stores_run_neither() -> None:
    moto = Settings(object_store="moto")
    assert moto.endpoint_url == moto.queue_endpoint_url == "http://127.0.0.1:4566"
    assert "seaweedfs" not in {svc.name for svc in services(moto)}
    remote = Settings(object_store="seaweedfs", aws_endpoint_url="http://minio:9000")
    assert remote.endpoint_url == remote.queue_endpoint_url == "http://minio:9000"
    assert {svc.name for svc in services(remote)}.isdisjoint({"seaweedfs", "s3"})
    assert "AWS_ENDPOINT_URL_SQS" not in stack_env(remote)


def test_weed_binds_loopback_keeps_data_in_the_state_dir_and_reports_nothing(
    weed: Settings, tmp_path: Path
) -> None:
    command = seaweedfs.weed_command(weed)
    assert command[:2] == [str(tmp_path / "bin" / "weed"), "server"]
    flags = dict(arg.split("=", 1) for arg in command[2:] if "=" in arg)
    assert flags["-ip.bind"] == "127.0.0.1" and flags["-ip"] == "127.0.0.1"
    assert flags["-dir"] == str(tmp_path / "seaweedfs" / "volumes")
    assert flags["-master.dir"] == str(tmp_path / "seaweedfs" / "meta")
    assert flags["-master.telemetry"] == "false"
    assert flags["-s3.port"] == "8333"
    assert flags["-s3.config"] == str(tmp_path / "seaweedfs" / "s3.json")
    # Four HTTP ports of our choosing, none of them another local service's.
    ports = {int(flags[f"-{p}.port"]) for p in ("master", "volume", "filer", "s3")}
    assert ports == {9333, 8380, 8888, 8333}
    others = {svc.port for svc in services(weed) if svc.name != "seaweedfs"}
    assert ports.isdisjoint(others) and {p + 10000 for p in ports}.isdisjoint(others)
    # The Iceberg and Lance listeners (on by default) are off.
    assert flags["-s3.port.iceberg"] == flags["-s3.port.lance"] == "0"
    # A write into a missing bucket is an error, not a new bucket (weed's default).
    assert flags["-s3.autoCreateBucket"] == "false"


def test_the_identity_file_holds_the_platform_key_and_is_private(weed: Settings) -> None:
    seaweedfs.prepare(weed)
    path = seaweedfs.s3_config_path(weed)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    identities = json.loads(path.read_text())["identities"]
    assert [i["name"] for i in identities] == ["vidflow"]  # no anonymous identity
    assert identities[0]["credentials"] == [{"accessKey": "localAKID", "secretKey": "s3cr3t/value"}]


def test_no_secret_reaches_the_supervisord_config(weed: Settings) -> None:
    conf = render_conf(weed, services(weed), "f" * 64)
    program = conf.split("[program:seaweedfs]")[1].split("[program:")[0]
    assert "vidflow.stack.seaweedfs" in program
    assert "s3cr3t" not in conf and "localAKID" not in conf


def test_missing_credentials_or_binary_give_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="VIDFLOW_AWS_ACCESS_KEY_ID"):
        seaweedfs.s3_identities(Settings(object_store="seaweedfs"))
    missing = str(tmp_path / "bin" / "weed")
    with pytest.raises(SystemExit, match="make setup"):
        seaweedfs.main([missing, "server"])


def test_the_program_line_is_the_weed_command_bound_to_loopback(weed: Settings) -> None:
    svc = next(svc for svc in services(weed) if svc.name == "seaweedfs")
    assert svc.command[1:3] == ["-m", "vidflow.stack.seaweedfs"]
    assert svc.command[3:] == seaweedfs.weed_command(weed)
    assert "-ip.bind=127.0.0.1" in svc.command and not svc.needs_env
    assert svc.health_url == "http://127.0.0.1:8333/healthz"


def test_presigned_urls_are_sigv4(weed: Settings) -> None:
    url = s3_client(weed).generate_presigned_url(
        "get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=600
    )
    query = parse_qs(urlparse(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["600"]
    assert query["X-Amz-Credential"][0].startswith("localAKID/")
    assert "Signature" not in query and "AWSAccessKeyId" not in query


def test_the_wrapper_prepares_then_execs_weed_under_a_memory_limit(
    weed: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    execs: list[tuple[str, list[str], dict[str, str]]] = []

    class Exec(Exception):
        pass

    def fake_execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        execs.append((path, argv, env))
        raise Exec

    monkeypatch.setattr(seaweedfs, "get_settings", lambda: weed)
    monkeypatch.setattr(seaweedfs.os, "execve", fake_execve)
    command = seaweedfs.weed_command(weed)
    with pytest.raises(Exec):
        seaweedfs.main(command)
    [(path, argv, env)] = execs
    assert path == str(tmp_path / "bin" / "weed") and argv == command
    assert env["GOMEMLIMIT"] == "512MiB"
    assert seaweedfs.s3_config_path(weed).exists()  # written before weed starts
