"""Alembic migrations: the only way the schema is ever created or changed."""
