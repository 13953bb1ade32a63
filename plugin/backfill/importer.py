"""One page of history into customers, their identities and the order ledger, set-based.

The page is staged, then merged with a fixed number of statements whatever its size:

* customers are resolved the way the pipeline resolves them (:mod:`plugin.pipeline.customers`):
  by the connection's customer id, else by email in the workspace, else created; identities are
  added, and an existing customer only gains what it lacked (names) and an earlier start;
* orders are merged into the ledger under the ledger's rules (:mod:`plugin.ledger.orders`), in
  SQL: ``paid`` and ``cancelled`` are sticky, refunds merge by refund id, descriptive fields
  (total, currency, placement date, line items) come from whichever snapshot is newer by the
  platform's ``updated_at``. An order a webhook already delivered therefore keeps its webhook
  state unless the import's data is newer, and is still one row — counted once.

``counted`` is the ledger's definition (``OrderState.counted``): paid, not cancelled, and not
refunded in full. Counters and milestones are not touched here; the run's last step recomputes
them from the ledger for every customer the import reached.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exc
from sqlalchemy.orm import Session

from plugin.backfill import csv_copy, staging
from plugin.backfill.csv_file import parse_chunk
from plugin.backfill.rows import CustomerRow, OrderRow, Page
from plugin.backfill.staging import Sql


@dataclass(frozen=True)
class Target:
    workspace_id: uuid.UUID
    connection_id: uuid.UUID
    timezone: str | None = None  # the workspace's, when the database knows it by name
    # The connection had no order in the ledger when the run began (a first import): a page's
    # orders are inserted as they are, and only a page that meets one already there (a repeat
    # in the file, a webhook that raced the import) is merged. Merging costs a lookup per order.
    empty_ledger: bool = False


@dataclass(frozen=True)
class PageCounts:
    customers: int = 0  # distinct customer records in the page
    new_customers: int = 0
    orders: int = 0
    known_orders: int = 0  # already in the ledger (delivered by webhooks or an earlier import)
    skipped: int = 0  # records that could not be read
    problems: tuple[str, ...] = ()

    def __add__(self, other: PageCounts) -> PageCounts:
        return PageCounts(
            self.customers + other.customers, self.new_customers + other.new_customers, self.orders + other.orders,
            self.known_orders + other.known_orders, self.skipped + other.skipped, self.problems + other.problems,
        )


def import_page(session: Session, target: Target, page: Page, now: datetime) -> PageCounts:
    staging.tune(session)
    if page.csv is None:
        return _import_rows(session, target, page, now)
    if staging.is_postgres(session):
        staging.recreate(session, staging.CUSTOMERS, staging.ORDERS)
        if csv_copy.stage(session, page.csv):
            return _merge_staged(Sql(session), target, now)
    counts = PageCounts()
    for rows in parse_chunk(page.csv):
        counts += _import_rows(session, target, rows, now)
    return counts


def _import_rows(session: Session, target: Target, page: Page, now: datetime) -> PageCounts:
    staging.recreate(session, staging.CUSTOMERS, staging.ORDERS)
    staging.load(session, staging.CUSTOMERS,
                 [(*c, uuid.uuid4(), None, False) for c in _distinct_customers(page.customers)])
    staging.load(session, staging.ORDERS, [_order_values(o) for o in page.orders])
    counts = _merge_staged(Sql(session), target, now)
    return counts + PageCounts(skipped=page.skipped, problems=tuple(page.problems))


def _merge_staged(sql: Sql, target: Target, now: datetime) -> PageCounts:
    customers = sql.run("SELECT count(*) FROM bf_customers").scalar_one()
    orders = sql.run("SELECT count(*) FROM bf_orders").scalar_one()
    new_customers = _resolve_customers(sql, target, now) if customers else 0
    known = _merge_orders(sql, target, now) if orders else 0
    staging.drop(sql.session, staging.CUSTOMERS, staging.ORDERS)
    return PageCounts(int(customers), new_customers, int(orders), known)


def _distinct_customers(rows: list[CustomerRow]) -> list[CustomerRow]:
    """One row per key: the first non-empty value of each field, the earliest account creation."""
    found: dict[str, CustomerRow] = {}
    for row in rows:
        seen = found.get(row.key)
        if seen is None:
            found[row.key] = row
        elif seen != row:
            created = min((t for t in (seen.created_at, row.created_at) if t), default=None)
            found[row.key] = CustomerRow(
                row.key,
                seen.external_id or row.external_id,
                seen.email or row.email,
                seen.first_name or row.first_name,
                seen.last_name or row.last_name,
                created,
            )
    return list(found.values())


def _order_values(row: OrderRow) -> tuple[object, ...]:
    return (
        row.external_id, row.customer_key, row.currency, row.total, row.refunded if row.refunds else 0,
        row.refunds, row.paid, row.cancelled, row.placed_at, row.updated_at, row.line_items,
    )


def _resolve_customers(sql: Sql, target: Target, now: datetime) -> int:
    ids = {"workspace": target.workspace_id, "connection": target.connection_id}
    # 1. known by their id on this connection
    sql.run(
        """UPDATE bf_customers SET customer_id = ci.customer_id, by_identity = TRUE FROM customer_identities ci
           WHERE ci.connection_id = :connection AND ci.external_id = bf_customers.external_id""",
        connection=target.connection_id,
    )
    staging.analyze(sql.session, staging.CUSTOMERS)  # most are known after the first pages: plan for the few left
    # 2. known by email in the workspace (another platform, a guest checkout, a webhook)
    by_email = """UPDATE bf_customers SET customer_id = c.id FROM customers c
                  WHERE bf_customers.customer_id IS NULL AND c.workspace_id = :workspace
                    AND c.email = bf_customers.email"""
    sql.run(by_email, workspace=target.workspace_id)
    # 3. new: one customer per email (the lowest key), one per record without an email; on
    #    PostgreSQL with the tenure columns of their start (recompute.refresh_tenure checks them)
    tenure_columns, tenure_values = "", ""
    if sql.postgres and target.timezone:
        local = "(b.created_at AT TIME ZONE :timezone)"
        tenure_columns = ", since_local, since_mmdd, since_dom"
        tenure_values = (f", CAST({local} AS date), CAST(extract(month FROM {local}) * 100 + extract(day FROM {local}) "
                         f"AS smallint), CAST(extract(day FROM {local}) AS smallint)")
    inserted = sql.run(
        f"""INSERT INTO customers (id, workspace_id, email, first_name, last_name, customer_since,
                                  properties, created_at, updated_at{tenure_columns})
           SELECT b.new_id, :workspace, b.email, b.first_name, b.last_name, b.created_at, {sql.empty_object()},
                  :now, :now{tenure_values}
           FROM bf_customers b
           WHERE b.customer_id IS NULL AND NOT EXISTS (
               SELECT 1 FROM bf_customers o WHERE o.email = b.email AND o.customer_id IS NULL AND o.key < b.key)
           ON CONFLICT (workspace_id, email) DO NOTHING""",
        workspace=target.workspace_id, now=now, **({"timezone": target.timezone} if tenure_columns else {}),
    ).rowcount
    sql.run(by_email, workspace=target.workspace_id)
    sql.run("UPDATE bf_customers SET customer_id = new_id WHERE customer_id IS NULL AND email IS NULL")
    sql.run(
        """INSERT INTO customer_identities (workspace_id, connection_id, external_id, customer_id)
           SELECT :workspace, :connection, external_id, customer_id FROM bf_customers
           WHERE external_id IS NOT NULL AND customer_id IS NOT NULL AND NOT by_identity
           ON CONFLICT (connection_id, external_id) DO NOTHING""",
        **ids,
    )
    # 4. customers we already had gain what they lacked, and an earlier start
    sql.run(
        """UPDATE customers SET
               first_name = coalesce(customers.first_name, b.first_name),
               last_name = coalesce(customers.last_name, b.last_name),
               customer_since = CASE WHEN customers.customer_since IS NULL OR b.created_at < customers.customer_since
                                     THEN b.created_at ELSE customers.customer_since END,
               updated_at = :now
           FROM bf_customers b
           WHERE customers.id = b.customer_id AND customers.id <> b.new_id AND (
               (customers.first_name IS NULL AND b.first_name IS NOT NULL)
               OR (customers.last_name IS NULL AND b.last_name IS NOT NULL)
               OR (b.created_at IS NOT NULL
                   AND (customers.customer_since IS NULL OR b.created_at < customers.customer_since)))""",
        now=now,
    )
    return max(int(inserted or 0), 0)


def _merge_orders(sql: Sql, target: Target, now: datetime) -> int:
    """Merge the staged orders into the ledger; returns how many were already there."""
    newer = "(orders.source_updated_at IS NULL OR excluded.source_updated_at >= orders.source_updated_at)"
    refunds = sql.json_merge("orders.refunds", "excluded.refunds")
    refunded = sql.json_sum(refunds)

    def pick(column: str) -> str:
        return f"{column} = CASE WHEN {newer} THEN excluded.{column} ELSE orders.{column} END"

    total = f"CASE WHEN {newer} THEN excluded.total ELSE orders.total END"
    insert = (
        """INSERT INTO orders (workspace_id, connection_id, external_id, customer_id, currency, total, refunded,
                               refunds, paid, cancelled, counted, has_snapshot, placed_at, source_updated_at,
                               line_items, created_at, updated_at)
           SELECT :workspace, :connection, s.external_id, c.customer_id, s.currency, s.total, s.refunded,
                  s.refunds, s.paid, s.cancelled, s.paid AND NOT s.cancelled AND s.refunded < s.total, TRUE,
                  s.placed_at, s.updated_at, s.line_items, :now, :now
           FROM bf_orders s LEFT JOIN bf_customers c ON c.key = s.customer_key
           WHERE TRUE"""
    )
    params = {"workspace": target.workspace_id, "connection": target.connection_id, "now": now}
    if target.empty_ledger:
        savepoint = sql.session.begin_nested()
        try:
            sql.run(f"{insert} ORDER BY c.customer_id", **params)
        except exc.IntegrityError:  # one of them is in the ledger already: merge the page instead
            savepoint.rollback()
        else:
            savepoint.commit()
            return 0
    merge = (
        f"""{insert}
            ON CONFLICT (connection_id, external_id) DO UPDATE SET
                customer_id = coalesce(orders.customer_id, excluded.customer_id),
                paid = orders.paid OR excluded.paid,
                cancelled = orders.cancelled OR excluded.cancelled,
                has_snapshot = TRUE,
                refunds = {refunds},
                refunded = {refunded},
                {pick("currency")}, {pick("total")}, {pick("placed_at")}, {pick("line_items")},
                source_updated_at = CASE WHEN {newer} THEN excluded.source_updated_at ELSE orders.source_updated_at END,
                counted = (orders.paid OR excluded.paid) AND NOT (orders.cancelled OR excluded.cancelled)
                          AND {refunded} < {total},
                updated_at = excluded.updated_at"""
    )
    if sql.postgres:  # a row the merge updated comes back locked (xmax set), an inserted one with xmax 0
        merged = f"WITH merged AS ({merge} RETURNING xmax::text <> '0' AS known) SELECT count(*) FILTER (WHERE known) FROM merged"
        return int(sql.run(merged, **params).scalar_one())
    known = sql.run(
        """SELECT count(*) FROM bf_orders s JOIN orders o
           ON o.connection_id = :connection AND o.external_id = s.external_id""",
        connection=target.connection_id,
    ).scalar_one()
    sql.run(merge, **params)
    return int(known)
