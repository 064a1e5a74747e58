from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from vidflow.config import REPO_ROOT, Settings, env_example


def test_env_example_is_current() -> None:
    committed = (REPO_ROOT / ".env.example").read_text()
    assert committed == env_example(), "run: python -m vidflow.config > .env.example"


def test_env_example_documents_every_field() -> None:
    text = env_example()
    for name in Settings.model_fields:
        var = f"VIDFLOW_{name.upper()}="
        assert f"\n{var}" in text or f"\n# {var}" in text, var


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDFLOW_PG_PORT", "6543")
    monkeypatch.setenv("VIDFLOW_SPARK_MASTER", "spark://spark-master:7077")
    monkeypatch.setenv("VIDFLOW_AWS_ENDPOINT_URL", "")
    settings = Settings()
    assert settings.pg_port == 6543
    assert settings.spark_master == "spark://spark-master:7077"
    assert settings.endpoint_url is None  # empty endpoint means AWS itself


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDFLOW_CATALOG_PARTITIONS", "0")
    with pytest.raises(ValidationError, match="catalog_partitions"):
        Settings()


def test_pg_url_quotes_the_password() -> None:
    settings = Settings(pg_password=SecretStr("p@ss:w/rd%"), pg_user="vid flow")
    url = settings.pg_url("vidflow")
    assert url == "postgresql+psycopg://vid%20flow:p%40ss%3Aw%2Frd%25@127.0.0.1:5433/vidflow"


def test_relative_paths_are_anchored_to_the_checkout() -> None:
    settings = Settings(state_dir=Path("somewhere"))
    assert settings.state_dir == REPO_ROOT / "somewhere"


def test_secrets_do_not_leak_into_repr() -> None:
    settings = Settings(pg_password=SecretStr("hunter2-secret"))
    assert "hunter2-secret" not in repr(settings)
