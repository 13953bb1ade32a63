"""After the import: counters, "customer since" and tenure columns, recomputed from the ledger.

For every customer the connection reaches (an identity on it, or an order in its ledger):

* ``order_count`` and ``lifetime_spend`` are recomputed from the ledger's counted orders, one
  ``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`` — the same numbers the pipeline keeps
  incrementally, so orders delivered by webhooks and imported ones count exactly once;
* ``customer_since`` becomes the earliest of the account creation and the first paid order;
* the tenure columns the daily scan searches by (:func:`plugin.milestones.tenure.tenure_columns`)
  follow it, computed in Python in bulk (the customer's timezone, else the workspace's).

On PostgreSQL these customers are locked first, in id order as the pipeline locks them: a batch
that read a counter before the recompute cannot write it back after.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.backfill import staging
from plugin.backfill.crossings import Start
from plugin.backfill.staging import Sql
from plugin.milestones.tenure import local_zone, tenure_columns
from plugin.models import Customer


def reached_customers(session: Session, connection_id: uuid.UUID) -> int:
    """``bf_affected``: the customers this connection knows, locked on PostgreSQL."""
    sql = Sql(session)
    staging.recreate(session, staging.AFFECTED)
    sql.run(
        """INSERT INTO bf_affected (customer_id)
           SELECT customer_id FROM customer_identities WHERE connection_id = :connection
           UNION
           SELECT customer_id FROM orders WHERE connection_id = :connection AND customer_id IS NOT NULL""",
        connection=connection_id,
    )
    if not sql.postgres:
        return int(sql.run("SELECT count(*) FROM bf_affected").scalar_one())
    sql.run("ANALYZE bf_affected")
    return int(
        sql.run(
            """SELECT count(*) FROM (SELECT c.id FROM customers c JOIN bf_affected a ON a.customer_id = c.id
                                     ORDER BY c.id FOR UPDATE OF c) locked"""
        ).scalar_one()
    )


def recompute_counters(session: Session, now: datetime) -> None:
    """Counters and "customer since" from one pass over the reached customers' ledger rows."""
    sql = Sql(session)
    staging.recreate(session, staging.TOTALS)
    sql.run(
        """INSERT INTO bf_totals (customer_id, order_count, lifetime_spend, first_paid_at)
           SELECT a.customer_id, sum(CASE WHEN o.counted THEN 1 ELSE 0 END),
                  coalesce(sum(CASE WHEN o.counted THEN o.total - o.refunded ELSE 0 END), 0),
                  min(CASE WHEN o.paid THEN o.placed_at END)
           FROM bf_affected a LEFT JOIN orders o ON o.customer_id = a.customer_id
           GROUP BY a.customer_id"""
    )
    sql.run(
        """INSERT INTO customer_metrics (customer_id, metric, value, observed_at, updated_at)
           SELECT customer_id, metric, value, NULL, :now FROM (
               SELECT customer_id, 'order_count' AS metric, coalesce(order_count, 0) AS value FROM bf_totals
               UNION ALL
               SELECT customer_id, 'lifetime_spend', lifetime_spend FROM bf_totals) t
           WHERE TRUE
           ORDER BY customer_id, metric
           ON CONFLICT (customer_id, metric) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
           WHERE customer_metrics.value <> excluded.value""",
        now=now,
    )
    sql.run(
        """UPDATE customers SET customer_since = t.first_paid_at, updated_at = :now
           FROM bf_totals t
           WHERE customers.id = t.customer_id AND t.first_paid_at IS NOT NULL
             AND (customers.customer_since IS NULL OR t.first_paid_at < customers.customer_since)""",
        now=now,
    )
    staging.drop(session, staging.TOTALS)


def refresh_tenure(session: Session, workspace_timezone: str, now: datetime) -> set[Start]:
    """Set the tenure columns where they changed; return the start dates (and zones) they have."""
    sql = Sql(session)
    rows = session.execute(
        select(Customer.id, Customer.customer_since, Customer.timezone, Customer.since_local)
        .join(staging.AFFECTED, staging.AFFECTED.c.customer_id == Customer.id)
        .where(Customer.customer_since.is_not(None))
    ).all()
    zones: dict[str | None, ZoneInfo] = {}
    starts: set[Start] = set()
    changed: list[tuple[uuid.UUID, str, int, int]] = []
    for customer_id, since, timezone, since_local in rows:
        zone = zones.get(timezone)
        if zone is None:
            zone = zones[timezone] = local_zone(timezone, workspace_timezone)
        columns = tenure_columns(since, zone)
        if columns["since_local"] != since_local:
            changed.append((customer_id, columns["since_local"].isoformat(), columns["since_mmdd"], columns["since_dom"]))
        starts.add(Start(columns["since_local"], timezone or "", zone))
    if changed:
        staging.recreate(session, staging.TENURE)
        staging.load(session, staging.TENURE, changed)
        sql.run(
            f"""UPDATE customers SET since_local = {sql.date("t.since_local")}, since_mmdd = t.since_mmdd,
                       since_dom = t.since_dom, updated_at = :now
                FROM bf_tenure t WHERE customers.id = t.customer_id""",
            now=now,
        )
        staging.drop(session, staging.TENURE)
    return starts
