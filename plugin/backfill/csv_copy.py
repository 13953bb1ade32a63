"""A CSV page read by PostgreSQL itself: ``COPY … (FORMAT csv)``, then checked and converted in SQL.

A million orders read row by row in Python cost more than all the database work of their import,
so on PostgreSQL the page's bytes go to the server as they are and fill the same staging tables
the Python reader (:func:`plugin.backfill.csv_file.parse_chunk`) fills. The page is taken this
way only when every row is plainly well-formed: an id, a three-letter currency, a known status,
dates that start YYYY-MM-DD, amounts PostgreSQL reads as finite non-negative numbers, no order
twice. Anything else — a row to skip and report, a date PostgreSQL refuses (Feb 30), a row with
the wrong number of fields — rolls the attempt back and leaves the page to the Python reader,
which decides exactly as it does on SQLite.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import exc
from sqlalchemy.orm import Session

from plugin.backfill import csv_file, staging
from plugin.backfill.rows import CsvChunk
from plugin.backfill.staging import Sql

CURRENCY = r"^[A-Za-z]{3}$"
COPY_SLICE = 1 << 20
FIELDS = {  # staging name: CSV column
    "order_id": "order_id", "ext": "customer_id", "email": "email", "first_name": "first_name",
    "last_name": "last_name", "created": "customer_created_at", "placed": "placed_at", "updated": "updated_at",
    "total": "total", "currency": "currency", "status": "status", "refunded": "refunded",
}


def stage(session: Session, chunk: CsvChunk) -> bool:
    """Fill ``bf_customers`` and ``bf_orders`` from the chunk; False, with nothing staged, when the
    chunk must be read row by row instead."""
    savepoint = session.begin_nested()
    try:
        staged = _stage(Sql(session), chunk)
    except (exc.DataError, exc.IntegrityError, psycopg.DataError):  # a value or a row PostgreSQL refuses
        staged = False
    if staged:
        savepoint.commit()
    else:
        savepoint.rollback()
    return staged


def _stage(sql: Sql, chunk: CsvChunk) -> bool:
    connection = sql.session.connection()
    connection.exec_driver_sql("SET LOCAL TimeZone = 'UTC'")  # an ISO date without an offset is UTC
    raw = [f"c{i}" for i in range(chunk.width)]
    connection.exec_driver_sql("DROP TABLE IF EXISTS bf_raw")
    connection.exec_driver_sql(f"CREATE TEMPORARY TABLE bf_raw (n bigserial, {', '.join(c + ' text' for c in raw)})")
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(f"COPY bf_raw ({', '.join(raw)}) FROM STDIN (FORMAT csv)") as copy:
        for start in range(0, len(chunk.data), COPY_SLICE):
            copy.write(chunk.data[start : start + COPY_SLICE])

    def trimmed(column: str) -> str:
        at = chunk.columns.get(column)
        return "NULL::text" if at is None else f"nullif(btrim(c{at}, E' \\t\\r\\n'), '')"

    # every field trimmed once
    values = ", ".join(f"{trimmed(column)} AS {name}" for name, column in FIELDS.items())
    connection.exec_driver_sql("DROP TABLE IF EXISTS bf_fields")
    rows = sql.run(f"CREATE TEMPORARY TABLE bf_fields AS SELECT n, {values} FROM bf_raw").rowcount
    connection.exec_driver_sql("DROP TABLE bf_raw")
    key = ("CASE WHEN ext IS NOT NULL THEN 'id:' || ext WHEN email IS NOT NULL THEN 'email:' || lower(email) END "
           'COLLATE "C"')
    # Only plain rows are converted (the filter runs before the casts); one row left out means
    # the page is not plain, and the Python reader takes it. bf_orders' primary key is built
    # after the load, in one sort (an order twice in the page violates it: the Python reader
    # splits the page), rather than searched row by row while it grows.
    connection.exec_driver_sql("ALTER TABLE bf_orders DROP CONSTRAINT bf_orders_pkey")
    converted = sql.run(
        f"""INSERT INTO bf_orders (external_id, customer_key, currency, total, refunded, refunds, paid, cancelled,
                                   placed_at, updated_at, line_items)
            SELECT order_id, {key}, upper(currency), CAST(total AS numeric), coalesce(refund, 0),
                   CASE WHEN refund > 0 THEN jsonb_build_object(CAST(:refund_id AS text), CAST(refund AS text))
                        ELSE '{{}}'::jsonb END,
                   status = ANY(:paid), status = ANY(:cancelled),
                   CAST(placed AS timestamptz), CAST(coalesce(updated, placed) AS timestamptz), '[]'::jsonb
            FROM (SELECT *, CASE WHEN status = ANY(:refunded_statuses) AND coalesce(CAST(refunded AS numeric), 0) = 0
                                 THEN CAST(total AS numeric) ELSE CAST(refunded AS numeric) END AS refund
                  FROM (SELECT n, order_id, ext, email, placed, updated, total, currency, refunded,
                               coalesce(lower(status), 'paid') AS status FROM bf_fields
                        WHERE order_id IS NOT NULL AND currency ~ :currency
                          AND coalesce(lower(status), 'paid') = ANY(:statuses)
                          AND {_iso_shape("placed")} AND coalesce({_iso_shape("created")}, TRUE)
                          AND coalesce({_iso_shape("updated")}, TRUE)) f) r""",
        currency=CURRENCY, statuses=sorted(csv_file.STATUSES),
        refund_id=csv_file.CSV_REFUND_ID,
        paid=sorted(csv_file.PAID | csv_file.REFUNDED),
        cancelled=sorted(csv_file.CANCELLED),
        refunded_statuses=sorted(csv_file.REFUNDED),
    ).rowcount
    if converted != rows:
        return False
    connection.exec_driver_sql("ALTER TABLE bf_orders ADD PRIMARY KEY (external_id)")
    sql.run(
        f"""INSERT INTO bf_customers (key, external_id, email, first_name, last_name, created_at, new_id, by_identity)
            SELECT DISTINCT ON (key) key, ext, lower(email), first_name, last_name, CAST(created AS timestamptz),
                   gen_random_uuid(), FALSE
            FROM (SELECT {key} AS key, * FROM bf_fields) r
            WHERE key IS NOT NULL
            ORDER BY key, n"""
    )
    connection.exec_driver_sql("DROP TABLE bf_fields")
    unreadable = sql.run(
        """SELECT (SELECT count(*) FROM bf_orders WHERE total < 0 OR total = 'NaN' OR refunded < 0
                   OR refunded = 'NaN' OR NOT isfinite(placed_at) OR NOT isfinite(updated_at))
                + (SELECT count(*) FROM bf_customers WHERE NOT isfinite(created_at))"""
    ).scalar_one()
    if unreadable:
        return False
    staging.analyze(sql.session, staging.CUSTOMERS)
    staging.analyze(sql.session, staging.ORDERS)
    return True


def _iso_shape(value: str) -> str:
    """YYYY-MM-DD at the start: what ``datetime.fromisoformat`` reads, not "now" or "Jan 5"."""
    return (f"(substr({value}, 5, 1) = '-' AND substr({value}, 8, 1) = '-' "
            f"AND substr({value}, 1, 4) ~ '^[0-9]{{4}}$')")
