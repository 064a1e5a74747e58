"""Spark session factory: Delta Lake, s3a and the jars fetched by `make setup`.

``get_spark()`` runs ``local[2]`` by default and a cluster when ``VIDFLOW_SPARK_MASTER``
says so. Jars come from the classpath file written by Maven during set-up
(``.local/spark-jars.txt``), so a session never resolves packages over the network.
pyspark is imported inside functions: DAG files may import this module at parse time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlparse

from vidflow.config import Settings, get_settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from delta.tables import DeltaTable
    from pyspark.sql import DataFrame, SparkSession

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


class SparkSetupError(RuntimeError):
    pass


class LakeTableMissing(RuntimeError):
    """A job read a lake table that no job has written yet (a fresh lake has none)."""


def spark_jars(settings: Settings) -> list[str]:
    """Paths of the extra jars (Delta, hadoop-aws, AWS SDK) in the local Maven cache."""
    path = settings.spark_jars_file
    if not path.exists():
        raise SparkSetupError(f"{path} is missing: run `make setup` to fetch the Spark jars")
    return [p for p in path.read_text().strip().split(":") if p]


def s3a_conf(settings: Settings) -> dict[str, str]:
    """Hadoop s3a settings for the configured S3 endpoint and credentials."""
    conf = {
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.endpoint.region": settings.aws_region,
        "spark.hadoop.fs.s3a.path.style.access": "true",
    }
    if settings.endpoint_url:
        conf["spark.hadoop.fs.s3a.endpoint"] = settings.endpoint_url
        secure = urlparse(settings.endpoint_url).scheme == "https"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(secure).lower()
    if settings.aws_access_key_id.get_secret_value():
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        )
        conf["spark.hadoop.fs.s3a.access.key"] = settings.aws_access_key_id.get_secret_value()
        conf["spark.hadoop.fs.s3a.secret.key"] = settings.aws_secret_access_key.get_secret_value()
    return conf


def spark_conf(settings: Settings) -> dict[str, str]:
    """Every Spark setting the platform needs, for a builder or ``spark-submit --conf``."""
    conf = {
        **DELTA_CONF,
        "spark.jars": ",".join(spark_jars(settings)),
        # Never fetch packages: point Ivy at a private, empty cache.
        "spark.jars.ivy": str(settings.state_dir / "ivy"),
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.driver.host": settings.bind_host,
        "spark.driver.bindAddress": settings.bind_host,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.default.parallelism": str(settings.spark_shuffle_partitions),
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # Shuffle and spill blocks keep Spark's lz4 compression, in local mode too: on
        # silver's clustered files (vidflow.analytics.silver.clustered) a session's rows
        # travel together and gold's shuffle of 9.7M events shrinks from 2.6 GB to 557 MB.
    }
    if settings.spark_driver_java_options:
        conf["spark.driver.extraJavaOptions"] = settings.spark_driver_java_options
    if settings.lake_uri.startswith("s3a://") or settings.endpoint_url:
        conf.update(s3a_conf(settings))
    return conf


def public_submit_conf(settings: Settings) -> dict[str, str]:
    """``spark_conf`` without secrets, for command lines (the job sets credentials itself)."""
    return {k: v for k, v in spark_conf(settings).items() if not k.endswith((".key", ".jars"))}


def get_spark(app_name: str, settings: Settings | None = None) -> SparkSession:
    """The Spark session of this process, configured from settings."""
    from pyspark.sql import SparkSession

    settings = settings or get_settings()
    builder = SparkSession.builder.appName(app_name).master(settings.spark_master)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def lake_path(settings: Settings, *parts: str) -> str:
    """Location of a table under the lake root (local directory or s3a://)."""
    return "/".join([settings.lake_uri.rstrip("/"), *parts])


def ensure_delta_table(
    spark: SparkSession, path: str, schema: str, partition_columns: Sequence[str]
) -> DeltaTable:
    """The Delta table at ``path``, created empty with ``schema`` (a DDL string) and
    partitioned by ``partition_columns`` if it does not exist yet, so a first MERGE or
    replaceWhere has a table to work on."""
    from delta.tables import DeltaTable

    return (
        DeltaTable.createIfNotExists(spark)
        .location(path)
        .addColumns(spark.createDataFrame([], schema).schema)
        .partitionedBy(*partition_columns)
        .execute()
    )


def read_delta(spark: SparkSession, path: str, *, written_by: str) -> DataFrame:
    """The Delta table at ``path``; :class:`LakeTableMissing` naming ``written_by`` (the
    job or DAG that writes it) when there is none, instead of Spark's PATH_NOT_FOUND."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        raise LakeTableMissing(
            f"{path} is not a Delta table yet: {written_by} writes it, and has not run on "
            "any data so far (a fresh lake has no tables)."
        )
    return spark.read.format("delta").load(path)


def submit_command(
    application: str, args: list[str], settings: Settings | None = None
) -> list[str]:
    """``spark-submit`` command line for a job in ``jobs/`` (no secrets on it)."""
    settings = settings or get_settings()
    cmd = [
        "spark-submit",
        "--master",
        settings.spark_master,
        "--jars",
        ",".join(spark_jars(settings)),
    ]
    for key, value in public_submit_conf(settings).items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, application, *args]


def main(argv: list[str] | None = None) -> int:
    """``python -m vidflow.spark jobs/x.py [args]``: spark-submit a job with the platform's
    jars and settings."""
    import subprocess
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m vidflow.spark JOB.py [ARGS...]", file=sys.stderr)
        return 2
    return subprocess.run(submit_command(argv[0], argv[1:]), check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
