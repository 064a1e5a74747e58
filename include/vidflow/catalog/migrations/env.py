"""Alembic environment of the catalog: online migrations only."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from vidflow.catalog.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "alembic_config() sets sqlalchemy.url"

engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
