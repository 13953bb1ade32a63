"""Temporary staging tables, bulk loading, and the few SQL spellings PostgreSQL and SQLite differ on.

Everything the backfill writes goes through a staging table first: rows are bulk-loaded — with
``COPY … FROM STDIN`` on PostgreSQL (psycopg 3's ``cursor.copy``), a plain executemany on the
embedded SQLite — and then moved with one ``INSERT … SELECT … ON CONFLICT`` per target table.
Staging tables are temporary and declared here with the model column types, so values land in
them in exactly the form the real tables store (aware UTC datetimes, UUIDs, JSON).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    TextClause,
    Uuid,
    bindparam,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from plugin.db import JSONType, Money, UTCDateTime

STAGING = MetaData()


def _temp(name: str, *columns: Column[Any]) -> Table:
    return Table(name, STAGING, *columns, prefixes=["TEMPORARY"])


# Keys that are only ever compared with each other, inside the staging tables: on PostgreSQL they
# sort and index byte-wise ("C"), several times cheaper than the database's linguistic collation.
# (Columns compared with the real tables — emails, platform ids — keep the database's.)
STAGING_KEY = Text().with_variant(Text(collation="C"), "postgresql")

CUSTOMERS = _temp(
    "bf_customers",
    Column("key", STAGING_KEY, primary_key=True),
    Column("external_id", Text),
    Column("email", Text, index=True),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("created_at", UTCDateTime()),
    Column("new_id", Uuid(), nullable=False),
    Column("customer_id", Uuid()),
    Column("by_identity", Boolean, nullable=False, default=False),  # found by their id on this connection
)
ORDERS = _temp(
    "bf_orders",
    Column("external_id", STAGING_KEY, primary_key=True),
    Column("customer_key", STAGING_KEY),
    Column("currency", Text, nullable=False),
    Column("total", Money, nullable=False),
    Column("refunded", Money, nullable=False),
    Column("refunds", JSONType, nullable=False),
    Column("paid", Boolean, nullable=False),
    Column("cancelled", Boolean, nullable=False),
    Column("placed_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("line_items", JSONType, nullable=False),
)
AFFECTED = _temp("bf_affected", Column("customer_id", Uuid(), primary_key=True))
TOTALS = _temp(
    "bf_totals",
    Column("customer_id", Uuid(), primary_key=True),
    Column("order_count", Integer),
    Column("lifetime_spend", Money),
    Column("first_paid_at", UTCDateTime()),
)
TENURE = _temp(
    "bf_tenure",
    Column("customer_id", Uuid(), primary_key=True),
    Column("since_local", Text),  # ISO date; cast on the way in
    Column("since_mmdd", Integer),
    Column("since_dom", Integer),
)
ANNIVERSARIES = _temp(
    "bf_anniversaries",
    Column("since_local", Date, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("definition_id", Uuid(), nullable=False),
    Column("k", Integer, nullable=False),
    Column("value", Text, nullable=False),
    Column("achieved_at", UTCDateTime(), nullable=False),
)
NUMBERS = _temp(
    "bf_numbers",
    Column("definition_id", Uuid(), nullable=False),
    Column("k", Integer, nullable=False),
    Column("value", Text, nullable=False),
)
# Created by CREATE TABLE … AS (crossings.py): each counted order with its customer's running totals.
RUNNING = _temp(
    "bf_running",
    Column("customer_id", Uuid()),
    Column("placed_at", UTCDateTime()),
    Column("order_count", Integer),
    Column("lifetime_spend", Money),
    Column("net", Money),
)
CROSSINGS = _temp(
    "bf_crossings",
    Column("customer_id", Uuid(), nullable=False),
    Column("definition_id", Uuid(), nullable=False),
    Column("occurrence", Integer, nullable=False),
    Column("value", Text, nullable=False),
    Column("achieved_at", UTCDateTime(), nullable=False),
    Column("metric", Text),
    Column("metric_value", Text),  # the metric's value at the crossing, as the pipeline writes it
    Column("existing", Boolean, nullable=False, default=False),
)


# The columns the statements after a load join, filter or group staging tables by: ANALYZE
# reads only these (statistics of names and amounts would cost more than they ever help).
PLANNED_BY = {
    CUSTOMERS.name: ("key", "external_id", "email", "customer_id", "by_identity"),
    ORDERS.name: ("customer_key",),
}
# Staging tables updated in place after their load (customers resolved by identity, then by
# email): room on every page lets PostgreSQL rewrite a row where it is (a HOT update, no new
# index entries) instead of moving it.
UPDATED_IN_PLACE = {CUSTOMERS.name: 60}
# Memory for one transaction's sorts and hashes: a page's de-duplication of customers, and at
# the end the aggregations and window functions over the whole ledger (a million rows), which
# at the server's default (4 MB) spill to disk or are planned as random index scans instead.
WORK_MEM = "256MB"


def tune(session: Session) -> None:
    """Settings for the current transaction (``SET LOCAL``: they end with it, and never reach
    another user of the pooled connection)."""
    if is_postgres(session):
        session.connection().exec_driver_sql(f"SET LOCAL work_mem = '{WORK_MEM}'")


def analyze(session: Session, table: Table) -> None:
    """PostgreSQL never auto-analyzes temporary tables; the joins after a load need their counts."""
    if is_postgres(session):
        columns = PLANNED_BY.get(table.name)
        session.connection().exec_driver_sql(
            f"ANALYZE {table.name}" + (f" ({', '.join(columns)})" if columns else "")
        )


def recreate(session: Session, *tables: Table) -> None:
    """Fresh, empty staging tables on this session's connection (they outlive a commit)."""
    connection = session.connection()
    for table in tables:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")
        table.create(connection)
        if table.name in UPDATED_IN_PLACE and is_postgres(session):
            connection.exec_driver_sql(f"ALTER TABLE {table.name} SET (fillfactor = {UPDATED_IN_PLACE[table.name]})")


def drop(session: Session, *tables: Table) -> None:
    connection = session.connection()
    for table in tables:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name}")


def load(session: Session, table: Table, rows: Sequence[Sequence[Any]]) -> None:
    """Bulk-load tuples (in the table's column order) into a staging table, then :func:`analyze` it."""
    if not rows:
        return
    if is_postgres(session):
        _copy(session, table, rows)
        analyze(session, table)
    else:
        names = [c.name for c in table.columns]
        for start in range(0, len(rows), 5000):
            session.execute(table.insert(), [dict(zip(names, row, strict=True)) for row in rows[start : start + 5000]])


def _copy(session: Session, table: Table, rows: Iterable[Sequence[Any]]) -> None:
    json_at = [i for i, column in enumerate(table.columns) if isinstance(column.type, type(JSONType))]
    names = ", ".join(c.name for c in table.columns)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        if not json_at:
            for row in rows:
                copy.write_row(row)
            return
        for row in rows:
            values = list(row)
            for i in json_at:
                values[i] = _json_text(values[i])
            copy.write_row(values)


def _json_text(value: Any) -> str:
    if not value:
        return "[]" if isinstance(value, list) else "{}"
    return json.dumps(value, separators=(",", ":"))


def database_timezone(session: Session, name: str | None) -> str | None:
    """``name`` when the database can convert to it (PostgreSQL, a zone it knows), else None."""
    if not name or not is_postgres(session):
        return None
    savepoint = session.begin_nested()
    try:
        session.execute(text("SELECT now() AT TIME ZONE :name"), {"name": name})
    except DBAPIError:
        savepoint.rollback()
        return None
    savepoint.commit()
    return name


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class Sql:
    """SQL text with typed parameters, and the spellings that differ between the two databases."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgres = is_postgres(session)

    def run(self, statement: str, **params: Any) -> Any:
        return self.session.execute(self.clause(statement, params), params)

    @staticmethod
    def clause(statement: str, params: dict[str, Any]) -> TextClause:
        """``text`` whose parameters carry the model types, so a UUID or an aware datetime is
        stored the way the ORM stores it (a hex string and a naive UTC text on SQLite)."""
        clause = text(statement)
        typed: list[BindParameter[Any]] = []
        for name, value in params.items():
            if isinstance(value, uuid.UUID):
                typed.append(bindparam(name, type_=Uuid()))
            elif isinstance(value, datetime):
                typed.append(bindparam(name, type_=UTCDateTime()))
            elif isinstance(value, Decimal):
                typed.append(bindparam(name, type_=Numeric(30, 6)))
        return clause.bindparams(*typed) if typed else clause

    def json_merge(self, left: str, right: str) -> str:
        """Keys of ``right`` over those of ``left`` (refund ids to amounts)."""
        return f"({left} || {right})" if self.postgres else f"json_patch({left}, {right})"

    def json_sum(self, value: str) -> str:
        """The sum of a JSON object's values (amounts kept as strings)."""
        if self.postgres:
            return f"(SELECT coalesce(sum(v::numeric), 0) FROM jsonb_each_text({value}) AS r(k, v))"
        return f"(SELECT coalesce(sum(CAST(value AS REAL)), 0) FROM json_each({value}))"

    def new_uuid(self) -> str:
        return "gen_random_uuid()" if self.postgres else "lower(hex(randomblob(16)))"

    def json_object(self, *pairs: str) -> str:
        return f"jsonb_build_object({', '.join(pairs)})" if self.postgres else f"json_object({', '.join(pairs)})"

    @staticmethod
    def literal(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def empty_object(self) -> str:
        return "'{}'::jsonb" if self.postgres else "json('{}')"

    def as_text(self, value: str) -> str:
        return f"({value})::text" if self.postgres else f"CAST({value} AS TEXT)"

    def whole(self, value: str) -> str:
        """The integer part of a non-negative number."""
        return f"floor({value})" if self.postgres else f"CAST({value} AS INTEGER)"

    def up(self, value: str) -> str:
        """The ceiling of a non-negative number."""
        if self.postgres:
            return f"ceil({value})"
        return f"(CAST({value} AS INTEGER) + (({value}) > CAST({value} AS INTEGER)))"

    def duration(self, later: str, earlier: str) -> str:
        """``later - earlier``, never negative, in the Interval column's storage."""
        if self.postgres:
            return f"greatest({later} - {earlier}, interval '0')"
        seconds = f"max(0, (julianday({later}) - julianday({earlier})) * 86400.0)"
        return f"datetime({seconds}, 'unixepoch')"

    def date(self, value: str) -> str:
        return f"CAST({value} AS date)" if self.postgres else value
