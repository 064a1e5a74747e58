"""Shared fixtures. Tests under tests/integration/ talk to the real local stack
(`make up`); they are marked `integration` automatically and fail, loudly, when the stack
is not running instead of being skipped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from vidflow.airflow_api import AirflowClient
from vidflow.config import Settings, get_settings

TESTS_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Settings:
    """The running local stack; fails with a hint when it is down."""
    from vidflow.stack import supervisor

    if not supervisor.is_running(settings):
        pytest.fail("the local stack is not running: run `make up` (make test does)")
    return settings


@pytest.fixture(scope="session")
def airflow(stack: Settings) -> AirflowClient:
    return AirflowClient.from_settings(stack)


@pytest.fixture
def unique() -> str:
    """A short random token to keep test data of different tests apart."""
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def spark(settings: Settings) -> Iterator[object]:
    """One local Spark session (with Delta) for the whole test run."""
    from vidflow.spark import get_spark

    session = get_spark("vidflow-tests", settings)
    yield session
    session.stop()
