"""The smoke checks behind the ``platform_smoke`` DAG: catalog, object storage, MLflow.

Each check is idempotent and keyed by the run, so a retried task does the same thing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import httpx
from sqlalchemy import text

from vidflow.catalog.db import current_revision, get_engine
from vidflow.catalog.models import PARTITIONED_TABLES
from vidflow.catalog.partitions import list_partitions
from vidflow.config import Settings
from vidflow.storage import s3_client


@dataclass(frozen=True)
class CatalogReport:
    revision: str | None
    videos: int
    partitions: dict[str, int]


def check_catalog(settings: Settings) -> CatalogReport:
    """The catalog is migrated and every sharded table has its partitions."""
    engine = get_engine(settings)
    with engine.connect() as conn:
        videos = conn.execute(text("SELECT count(*) FROM videos")).scalar_one()
        partitions = {t: len(list_partitions(conn, t)) for t in PARTITIONED_TABLES}
    revision = current_revision(settings)
    if revision is None:
        raise RuntimeError("the catalog has no Alembic revision: run `make up`")
    missing = [t for t, n in partitions.items() if n != settings.catalog_partitions]
    if missing:
        raise RuntimeError(f"tables without {settings.catalog_partitions} partitions: {missing}")
    return CatalogReport(revision=revision, videos=videos, partitions=partitions)


def check_object_store(settings: Settings, run_id: str) -> dict[str, str]:
    """Write a small object keyed by the run, read it back and compare digests."""
    body = json.dumps({"run_id": run_id}).encode()
    key = f"smoke/{hashlib.sha256(run_id.encode()).hexdigest()[:16]}.json"
    client = s3_client(settings)
    client.put_object(Bucket=settings.bucket_lake, Key=key, Body=body)
    read = client.get_object(Bucket=settings.bucket_lake, Key=key)["Body"].read()
    if hashlib.sha256(read).digest() != hashlib.sha256(body).digest():
        raise RuntimeError(f"s3://{settings.bucket_lake}/{key} came back different")
    return {"bucket": settings.bucket_lake, "key": key, "bytes": str(len(read))}


def check_mlflow(settings: Settings) -> str:
    """The MLflow tracking server answers."""
    response = httpx.get(f"{settings.tracking_uri}/health", timeout=10)
    response.raise_for_status()
    return response.text.strip()


def as_dict(report: CatalogReport) -> dict[str, object]:
    return asdict(report)
