#!/usr/bin/env bash
# airflow-init (docker-compose.yaml): the one-shot set-up that runs before any Airflow
# component starts. Every step is idempotent, so it runs on every `docker compose up`.
set -euo pipefail
say() { printf '[airflow-init] %s\n' "$*"; }

say "migrating the Airflow metadata database"
airflow db migrate

say "migrating the catalog database"
python -c 'from vidflow.catalog.db import upgrade; upgrade("heads")'

say "creating missing buckets"
python -c 'from vidflow.storage import ensure_buckets; print("created:", ensure_buckets() or "none")'

# The processing queue is declared in infra/compose/elasticmq/elasticmq.conf.
slots=$(python -c 'from vidflow.config import get_settings; print(get_settings().transcode_pool_slots)')
say "pool transcode: ${slots} slots"
airflow pools set transcode "${slots}" "One ffmpeg encode per slot (vidflow)"
say "done"
