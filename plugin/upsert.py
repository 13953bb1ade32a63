"""``INSERT … ON CONFLICT`` statements that SQLAlchemy compiles once per process, not per call.

SQLAlchemy refuses to cache the dialects' ``insert(…).on_conflict_do_…()`` constructs (their
ON CONFLICT clause has no cache key), so every execution recompiled the statement — on the
webhook and drain paths that was a third of the CPU. :func:`upsert` builds the statement from
names only (the table, the conflict columns, the columns to update from ``excluded``, the columns
to return); rows are always execution parameters, never part of the statement. So the shape
*is* the statement, and the shape is its cache key. ``.values()`` is refused to keep it so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql.dml import Insert as PostgresInsert
from sqlalchemy.dialects.sqlite.dml import Insert as SqliteInsert
from sqlalchemy.orm import Session
from sqlalchemy.sql import FromClause
from sqlalchemy.sql.cache_key import CacheKey

Shape = tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]


class _Shaped:
    """Mixin: the cache key is the statement's shape; embedded values are refused."""

    inherit_cache = False  # type: ignore[misc]  # the key is built by _generate_cache_key below
    _shape: Shape

    def _generate_cache_key(self) -> CacheKey:
        return CacheKey(("milestones-upsert", self._shape), [])

    def values(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("pass rows as execution parameters: an upsert() statement is cached by its shape")


class _PostgresUpsert(_Shaped, PostgresInsert):  # type: ignore[misc]
    pass


class _SqliteUpsert(_Shaped, SqliteInsert):  # type: ignore[misc]
    pass


def upsert(
    session: Session,
    table: FromClause,
    *,
    conflict: Sequence[str],
    update: Sequence[str] = (),
    returning: Sequence[str] = (),
) -> Any:
    """``INSERT INTO table … ON CONFLICT (conflict) DO NOTHING`` — or, with ``update``, ``DO UPDATE
    SET col = excluded.col`` for those columns — ``RETURNING returning``. Execute it with the rows
    as parameters (a dict, or a list of dicts for executemany)."""
    dialect = session.get_bind().dialect.name
    cls: Any = _PostgresUpsert if dialect == "postgresql" else _SqliteUpsert
    table = cast(Table, table)
    statement = cls(table)
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=list(conflict), set_={name: statement.excluded[name] for name in update}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict))
    if returning:
        statement = statement.returning(*(table.c[name] for name in returning))
    statement._shape = (dialect, table.name, tuple(conflict), tuple(update), tuple(returning))
    return statement
