"""Engines, sessions and migrations of the catalog database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from vidflow.config import Settings, get_settings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


@lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def get_engine(settings: Settings | None = None) -> Engine:
    """The process-wide engine of the catalog database."""
    return _engine_for((settings or get_settings()).catalog_url)


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    factory = sessionmaker(get_engine(settings), expire_on_commit=False)
    with factory.begin() as session:
        yield session


def alembic_config(settings: Settings | None = None) -> Config:
    """Alembic configuration pointing at the catalog database of ``settings``.

    Alembic is imported here, not at module level: every task and API process that only
    reads the catalog would otherwise load it (about 0.27 s)."""
    from alembic.config import Config

    settings = settings or get_settings()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's config is an INI parser: a literal % must be doubled.
    cfg.set_main_option("sqlalchemy.url", settings.catalog_url.replace("%", "%%"))
    cfg.attributes["settings"] = settings
    return cfg


def upgrade(revision: str = "heads", settings: Settings | None = None) -> None:
    from alembic import command

    command.upgrade(alembic_config(settings), revision)


def downgrade(revision: str, settings: Settings | None = None) -> None:
    from alembic import command

    command.downgrade(alembic_config(settings), revision)


def current_revision(settings: Settings | None = None) -> str | None:
    """The catalog's Alembic revision(s), comma-separated if branches are unmerged."""
    from alembic.runtime.migration import MigrationContext

    with get_engine(settings).connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads)) or None
