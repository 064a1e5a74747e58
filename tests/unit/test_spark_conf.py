from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from vidflow.config import Settings
from vidflow.spark import SparkSetupError, public_submit_conf, spark_conf, submit_command


@pytest.fixture
def jars(tmp_path: Path) -> Path:
    path = tmp_path / "jars.txt"
    path.write_text("/m2/delta-spark.jar:/m2/hadoop-aws.jar\n")
    return path


def test_delta_and_jars_are_configured(jars: Path) -> None:
    conf = spark_conf(Settings(spark_jars_file=jars))
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.jars"] == "/m2/delta-spark.jar,/m2/hadoop-aws.jar"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"


def test_s3a_is_configured_for_an_s3a_lake(jars: Path) -> None:
    settings = Settings(
        spark_jars_file=jars,
        lake_uri="s3a://lake/vidflow",
        aws_endpoint_url="https://minio.internal:9000",
        aws_access_key_id=SecretStr("AK"),
        aws_secret_access_key=SecretStr("SK"),
    )
    conf = spark_conf(settings)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "https://minio.internal:9000"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.secret.key"] == "SK"


def test_no_s3a_for_a_local_lake_on_aws(jars: Path) -> None:
    conf = spark_conf(Settings(spark_jars_file=jars, aws_endpoint_url="", lake_uri="/data"))
    assert not any(key.startswith("spark.hadoop.fs.s3a") for key in conf)


def test_command_lines_carry_no_secrets(jars: Path) -> None:
    settings = Settings(
        spark_jars_file=jars,
        aws_access_key_id=SecretStr("AKID-123"),
        aws_secret_access_key=SecretStr("very-secret"),
    )
    assert "very-secret" not in str(public_submit_conf(settings))
    cmd = submit_command("jobs/platform_smoke.py", ["--date", "2026-01-01"], settings)
    assert "very-secret" not in " ".join(cmd) and "AKID-123" not in " ".join(cmd)
    assert cmd[:3] == ["spark-submit", "--master", "local[2]"]
    assert cmd[-3:] == ["jobs/platform_smoke.py", "--date", "2026-01-01"]


def test_missing_jars_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(SparkSetupError, match="make setup"):
        spark_conf(Settings(spark_jars_file=tmp_path / "absent.txt"))


def test_driver_java_options_reach_the_driver_only_when_set(jars: Path) -> None:
    plain = Settings(spark_jars_file=jars, spark_driver_java_options="")
    assert "spark.driver.extraJavaOptions" not in spark_conf(plain)
    tuned = Settings(spark_jars_file=jars, spark_driver_java_options="-XX:+UseSerialGC")
    cmd = submit_command("jobs/platform_smoke.py", [], tuned)
    at = cmd.index("spark.driver.extraJavaOptions=-XX:+UseSerialGC")
    assert cmd[at - 1] == "--conf"
