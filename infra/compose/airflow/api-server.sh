#!/usr/bin/env bash
# airflow-api-server (docker-compose.yaml). The simple auth manager reads the UI login's
# password from a JSON file; write it from the environment at every start, so it is never
# baked into the image nor kept on a volume shared between machines.
set -euo pipefail
python - <<'PY'
import json
import os
from pathlib import Path

from vidflow.config import get_settings

settings = get_settings()
path = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
path.parent.mkdir(parents=True, exist_ok=True)
path.touch(mode=0o600)
path.write_text(
    json.dumps({settings.airflow_admin_user: settings.airflow_admin_password.get_secret_value()})
)
PY
exec airflow api-server --host 0.0.0.0 --port 8080
