"""The catalog database: SQLAlchemy models, sessions and Alembic migrations."""
