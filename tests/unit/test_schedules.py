"""``timed`` keeps a DAG's schedule unless VIDFLOW_DAG_SCHEDULES switches it off."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from vidflow.config import get_settings
from vidflow.orchestration.schedules import timed


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("value", ["true", "1"])
def test_schedules_on_keep_the_schedule(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("VIDFLOW_DAG_SCHEDULES", value)
    assert timed("@hourly") == "@hourly"
    assert timed(timedelta(minutes=15)) == timedelta(minutes=15)


def test_schedules_off_leave_the_dag_to_its_triggers(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDFLOW_DAG_SCHEDULES", "false")
    assert timed("@hourly") is None


def test_a_bad_value_is_refused(fresh_settings: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDFLOW_DAG_SCHEDULES", "sometimes")
    with pytest.raises(ValueError, match="dag_schedules"):
        timed("@hourly")
