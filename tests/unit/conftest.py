"""Unit tests see the settings' defaults: no VIDFLOW_* variable from the environment,
.env or the generated secrets file leaks into them."""

from __future__ import annotations

import os

import pytest

from vidflow.config import Settings


@pytest.fixture(autouse=True)
def default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("VIDFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setitem(Settings.model_config, "env_file", None)
