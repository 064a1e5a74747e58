"""The local stack's persistent object store: SeaweedFS behind its S3 gateway.

moto keeps objects in memory, so ``make down`` used to forget every stream while the
catalog still listed it. With ``VIDFLOW_OBJECT_STORE=seaweedfs`` one supervised
``weed server`` (master, volume server, filer and S3 gateway in one process) keeps them
under ``state_dir/seaweedfs`` instead; moto stays the local SQS endpoint.

``python -m vidflow.stack.seaweedfs weed server ...`` is the supervised program: it writes
the S3 gateway's identities (the platform's access key, from the environment) into a file
only its owner can read, then execs the weed command it was given. Every listener binds
``bind_host``; telemetry and the gateway's extra catalogs (Iceberg, Lance) are off.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from vidflow.config import Settings, get_settings
from vidflow.stack.secrets import write_private


def weed_binary(settings: Settings) -> str:
    """The ``weed`` executable: the one `make setup` builds into ``state_dir/bin``, else
    PATH's, else (not installed) the path setup would build it at."""
    built = settings.state_dir / "bin" / "weed"
    if built.exists():
        return str(built)
    return shutil.which("weed") or str(built)


def data_dir(settings: Settings) -> Path:
    return settings.state_dir / "seaweedfs"


def s3_config_path(settings: Settings) -> Path:
    return data_dir(settings) / "s3.json"


def s3_identities(settings: Settings) -> dict[str, object]:
    """The S3 gateway's identity file: one identity, the platform's key pair, may do
    everything; nobody else may do anything. Unsigned GETs of the media bucket are the
    bucket policy's business (``ensure_public_read``), as on AWS."""
    key = settings.aws_access_key_id.get_secret_value()
    secret = settings.aws_secret_access_key.get_secret_value()
    if not key or not secret:
        raise ValueError(
            "the local SeaweedFS needs VIDFLOW_AWS_ACCESS_KEY_ID and "
            "VIDFLOW_AWS_SECRET_ACCESS_KEY (`make up` generates them)"
        )
    return {
        "identities": [
            {
                "name": "vidflow",
                "credentials": [{"accessKey": key, "secretKey": secret}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def weed_command(settings: Settings) -> list[str]:
    """``weed server`` with master, volume server, filer and S3 gateway, all on loopback,
    data (volumes, the master's and the filer's metadata) under :func:`data_dir`."""
    root = data_dir(settings)
    host = settings.bind_host
    return [
        weed_binary(settings),
        "server",
        f"-ip={host}",
        f"-ip.bind={host}",
        f"-dir={root / 'volumes'}",
        f"-master.dir={root / 'meta'}",
        f"-master.port={settings.seaweedfs_master_port}",
        f"-master.volumeSizeLimitMB={settings.seaweedfs_volume_size_mb}",
        "-master.telemetry=false",
        # One copy of each volume: a single local server has no peer to replicate to.
        "-master.defaultReplication=000",
        f"-volume.port={settings.seaweedfs_volume_port}",
        # 0: as many volumes as the free disk holds (the default 8 would cap the store at
        # 8 x volumeSizeLimitMB, less than one long upload).
        "-volume.max=0",
        # Stop at once on `make down` (no load balancer to drain).
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={settings.seaweedfs_filer_port}",
        "-s3",
        f"-s3.port={settings.seaweedfs_s3_port}",
        f"-s3.config={s3_config_path(settings)}",
        # A write to a bucket that does not exist fails (NoSuchBucket), as on S3; weed
        # would create it for an admin identity.
        "-s3.autoCreateBucket=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]


def prepare(settings: Settings) -> None:
    """Create the data directories and (re)write the identity file, mode 0600 throughout."""
    root = data_dir(settings)
    for sub in ("volumes", "meta"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    write_private(s3_config_path(settings), json.dumps(s3_identities(settings), indent=2))


def main(argv: list[str]) -> int:
    """``python -m vidflow.stack.seaweedfs WEED_COMMAND...``: prepare, then exec the
    command (the supervisord program line shows the real weed command, bind address
    included, and a changed command restarts exactly this program)."""
    if not argv:
        raise SystemExit("usage: python -m vidflow.stack.seaweedfs /path/to/weed server ...")
    if not Path(argv[0]).exists():
        raise SystemExit(
            f"SeaweedFS (weed) not found at {argv[0]}: run `make setup` (it needs Go), or set "
            "VIDFLOW_OBJECT_STORE=moto"
        )
    settings = get_settings()
    prepare(settings)
    env = dict(os.environ)
    if settings.seaweedfs_memory_limit_mb:
        env["GOMEMLIMIT"] = f"{settings.seaweedfs_memory_limit_mb}MiB"
    sys.stdout.flush()
    os.execve(argv[0], argv, env)  # noqa: S606 - argument list, no shell


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
