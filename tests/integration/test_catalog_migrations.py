"""Catalog migrations go up and down on a scratch database of the real server, and the
result matches the SQLAlchemy models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from psycopg import sql
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from vidflow.catalog import db
from vidflow.catalog.models import PARTITIONED_TABLES, Base
from vidflow.catalog.partitions import list_partitions
from vidflow.config import Settings

TABLES = {
    "users",
    "usernames",
    "user_emails",
    "videos",
    "renditions",
    "uploads",
    "watch_history",
    "recommendations",
    "outbox",
    "related_videos",
    "trending_videos",
    "session_activity",
    "auth_attempts",
}


@pytest.fixture
def scratch(stack: Settings, unique: str) -> Iterator[Settings]:
    """A throw-away database on the running server, with 4 partitions per table."""
    name = f"vidflow_migrations_{unique}"
    admin = stack.pg_url("postgres").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    settings = stack.model_copy(update={"pg_catalog_db": name, "catalog_partitions": 4})
    yield settings
    db.get_engine(settings).dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _tables(settings: Settings) -> set[str]:
    engine = create_engine(settings.catalog_url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_creates_sharded_schema_and_downgrade_removes_it(scratch: Settings) -> None:
    db.upgrade("heads", scratch)
    created = _tables(scratch)
    assert created >= TABLES
    engine = create_engine(scratch.catalog_url)
    with engine.connect() as conn:
        for table in PARTITIONED_TABLES:
            assert list_partitions(conn, table) == [f"{table}_p{i}" for i in range(4)]
    engine.dispose()

    db.downgrade("base", scratch)
    assert _tables(scratch) == set()

    db.upgrade("heads", scratch)  # and up again, from scratch
    assert _tables(scratch) >= TABLES


def test_migrations_match_the_models(scratch: Settings) -> None:
    db.upgrade("heads", scratch)
    engine = create_engine(scratch.catalog_url)
    partitions = {f"{t}_p{i}" for t in PARTITIONED_TABLES for i in range(4)}

    def include_object(obj: Any, name: str | None, type_: str, *args: object) -> bool:
        if type_ == "table":
            return name not in partitions
        if type_ == "foreign_key_constraint":
            # PostgreSQL adds internal FKs from a partitioned table to each partition of
            # the table it references; they are not part of the declared schema.
            return str(obj.referred_table.name) not in partitions
        return True

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True}
        )
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_rows_land_in_the_partition_of_their_key(scratch: Settings) -> None:
    db.upgrade("heads", scratch)
    engine = create_engine(scratch.catalog_url)
    with engine.begin() as conn:
        for i in range(40):
            conn.execute(
                text(
                    "INSERT INTO users (user_id, username, email, password_hash) "
                    "VALUES (:id, :name, :email, 'x')"
                ),
                {"id": uuid.uuid4(), "name": f"user{i}", "email": f"user{i}@example.com"},
            )
        counts = conn.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM users GROUP BY 1")
        ).all()
    engine.dispose()
    assert sum(n for _, n in counts) == 40
    assert len(counts) > 1, "40 random keys should hash into more than one partition"
    assert {name for name, _ in counts} <= {f"users_p{i}" for i in range(4)}


def test_username_is_globally_unique_through_its_lookup_table(scratch: Settings) -> None:
    db.upgrade("heads", scratch)
    engine = create_engine(scratch.catalog_url)
    insert = text("INSERT INTO usernames (username, user_id) VALUES ('ada', :id)")
    with engine.begin() as conn:
        conn.execute(insert, {"id": uuid.uuid4()})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert, {"id": uuid.uuid4()})
    engine.dispose()


def test_video_status_is_constrained(scratch: Settings) -> None:
    db.upgrade("heads", scratch)
    engine = create_engine(scratch.catalog_url)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO videos (video_id, user_id, title, status) "
                "VALUES (:v, :u, 't', 'exploded')"
            ),
            {"v": uuid.uuid4(), "u": uuid.uuid4()},
        )
    engine.dispose()


def test_live_catalog_is_at_head(stack: Settings) -> None:
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(db.alembic_config(stack)).get_heads())
    engine = create_engine(stack.catalog_url)
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    engine.dispose()
    assert current == heads
