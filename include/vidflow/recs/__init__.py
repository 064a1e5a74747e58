"""Recommendations on the platform: dataset from the lake, MLflow training and registry
gate, batch scoring into the catalog (issue #12). The models themselves live in
``models/``; this package only feeds them platform data and ships their output."""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def ensure_models_importable() -> None:
    """``models/`` sits at the repository root, which Airflow's workers (cwd .local/)
    do not have on sys.path."""
    if not (REPO_ROOT / "models" / "pipeline.py").exists():
        raise RuntimeError(f"models/ not found under {REPO_ROOT}")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


ensure_models_importable()
