"""The history backfill benchmark: 1,000,000 orders of 100,000 customers from CSV into PostgreSQL.

    python benchmarks/backfill.py [--orders 1000000] [--customers 100000]

On a fresh database (created, migrated, and dropped at the end), with the default catalogue:

1. writes a realistic export to a temporary CSV (customers created over six years, each with a
   few to a few dozen orders after that, ~4 % refunded, cancelled or pending; sorted by date);
2. **baseline**: PostgreSQL's own ``COPY`` of that file into a bare unlogged table — the floor
   for reading the same bytes on this machine;
3. **backfill**: ``run_backfill`` exactly as ``milestones backfill --source csv`` calls it (record
   mode): import pages (staging COPY + merge into customers/identities/orders), counters
   recomputed from the ledger, customer_since and tenure columns, historical milestones;
4. checks the outcome against the file (order and counted-order counts, spend, milestone
   counts) and prints every figure, the ratio to the baseline, and the target (< 60 s total).

Exits 1 when the outcome is wrong, 0 otherwise (a missed target is printed, not fatal,
unless ``--strict``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from sqlalchemy import Engine, event  # noqa: E402
from support import CpuMeter, drop_database, pg_backends, recreate_database, wait_for_quiet  # noqa: E402

from plugin import connections  # noqa: E402
from plugin.backfill.runner import Options, run_backfill  # noqa: E402
from plugin.config import Settings  # noqa: E402
from plugin.db import transaction  # noqa: E402
from plugin.schema import upgrade  # noqa: E402
from plugin.services import Services  # noqa: E402
from plugin.workspaces import create_workspace  # noqa: E402

TARGET_SECONDS = 60.0
START = datetime(2020, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=1_000_000)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--database-url", default=os.environ.get(
        "BENCH_BACKFILL_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/milestones_bench_backfill"))
    p.add_argument("--quiet-wait", type=float, default=60.0,
                   help="seconds to wait for other processes to leave the CPUs alone before measuring")
    p.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    p.add_argument("--statements", type=int, default=0, metavar="N",
                   help="also print the N statements that took longest in total (time per statement text)")
    p.add_argument("--explain-ms", type=float, default=0.0, metavar="MS",
                   help="print PostgreSQL's EXPLAIN ANALYZE of every backfill statement slower than MS "
                        "(auto_explain; needs a superuser connection, as on the development machine)")
    return p.parse_args()


class StatementTimes:
    """Wall time per statement text on one engine (the text with its whitespace squeezed)."""

    def __init__(self, engine: Engine, explain_ms: float) -> None:
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self.plans: list[str] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        if explain_ms:
            event.listen(engine, "connect", lambda dbapi, _record: self._auto_explain(dbapi, explain_ms))

    def _auto_explain(self, dbapi: Any, explain_ms: float) -> None:
        dbapi.add_notice_handler(lambda notice: self.plans.append(notice.message_primary or ""))
        with dbapi.cursor() as cursor:
            cursor.execute("LOAD 'auto_explain'")
            for name, value in (("log_min_duration", f"{explain_ms:g}ms"), ("log_analyze", "on"),
                                ("log_buffers", "on"), ("log_nested_statements", "on"),
                                ("log_level", "notice")):
                cursor.execute(f"SET auto_explain.{name} = '{value}'")
        dbapi.commit()

    def _before(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seconds = time.perf_counter() - conn.info["bench_started"].pop()
        entry = self.totals[" ".join(statement.split())]
        entry[0] += 1
        entry[1] += seconds

    def report(self, top: int) -> None:
        ranked = sorted(self.totals.items(), key=lambda item: -item[1][1])[:top]
        print(f"statements: the {len(ranked)} slowest in total (count, seconds, text)")
        for text, (count, seconds) in ranked:
            print(f"  {count:5d} {seconds:7.2f} s  {text[:300]}")
        for plan in self.plans:
            print(plan)


def write_export(database_url: str, path: Path, orders: int, customers: int, seed: int) -> dict[str, Decimal | int]:
    """The CSV (made by PostgreSQL: a million rows in Python take longer than the import), and what
    a correct import must find in it. Tables used to make it are dropped before the backfill runs."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT setseed(%s)", (1 / (seed + 1),))
        conn.execute(
            """CREATE UNLOGGED TABLE bench_customers AS
               SELECT g AS id, %(start)s::timestamptz + random() * (%(now)s::timestamptz - %(start)s::timestamptz) * 0.9
                      AS created
               FROM generate_series(1, %(customers)s) g""",
            {"start": START, "now": NOW, "customers": customers})
        # a skewed number of orders per customer (low ids buy more), each after the account was made
        conn.execute(
            """CREATE UNLOGGED TABLE bench_orders AS
               SELECT o.number, c.id AS owner, c.created,
                      date_trunc('second', c.created + random() * (%(now)s::timestamptz - c.created)) AS placed,
                      800 + floor(random() * 11200)::int AS cents, o.r
               FROM (SELECT g AS number, 1 + floor(%(customers)s * power(random(), 2))::int AS owner, random() AS r
                     FROM generate_series(1, %(orders)s) g) o
               JOIN bench_customers c ON c.id = o.owner""",
            {"now": NOW, "customers": customers, "orders": orders})
        status = ("CASE WHEN r < 0.96 THEN 'paid' WHEN r < 0.97 THEN 'refunded' WHEN r < 0.98 THEN 'cancelled' "
                  "WHEN r < 0.99 THEN 'pending' ELSE 'partially_refunded' END")
        with conn.cursor() as cur, path.open("wb") as handle, cur.copy(
            f"""COPY (SELECT '#' || number, owner, 'customer' || owner || '@example.com', 'Pat', 'Shopper' || owner,
                             to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                             to_char(placed AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                             to_char(cents / 100.0, 'FM999990.00'), 'USD', {status},
                             CASE WHEN r >= 0.99 THEN to_char((cents / 4) / 100.0, 'FM999990.00') END
                      FROM bench_orders ORDER BY placed, number)
                TO STDOUT WITH (FORMAT csv, HEADER false)""") as copy:
            handle.write(b"order_id,customer_id,email,first_name,last_name,customer_created_at,placed_at,"
                         b"total,currency,status,refunded\n")
            for data in copy:
                handle.write(data)
        found = conn.execute(
            """SELECT count(*), count(DISTINCT owner),
                      count(*) FILTER (WHERE r < 0.96 OR r >= 0.99),
                      sum(CASE WHEN r < 0.96 THEN cents WHEN r >= 0.99 THEN cents - cents / 4 ELSE 0 END) / 100.0
               FROM bench_orders""").fetchone()
        conn.execute("DROP TABLE bench_orders")
        conn.execute("DROP TABLE bench_customers")
    return {"orders": found[0], "customers": found[1], "counted": found[2], "spend": Decimal(found[3])}


def baseline_copy(database_url: str, path: Path) -> float:
    with psycopg.connect(database_url) as conn:
        conn.execute("""CREATE UNLOGGED TABLE raw_export (order_id text, customer_id text, email text,
            first_name text, last_name text, customer_created_at timestamptz, placed_at timestamptz,
            total numeric(18,2), currency text, status text, refunded numeric(18,2))""")
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY raw_export FROM STDIN WITH (FORMAT csv, HEADER true)") as copy, \
                path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE raw_export")
    return elapsed


def check(database_url: str, expected: dict[str, Decimal | int]) -> list[str]:
    with psycopg.connect(database_url) as conn:
        orders, counted = conn.execute("SELECT count(*), count(*) FILTER (WHERE counted) FROM orders").fetchone()
        customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
        metric = dict(conn.execute(
            "SELECT metric, sum(value) FROM customer_metrics GROUP BY metric").fetchall())
        firsts = conn.execute(
            """SELECT count(*) FROM customer_milestones m JOIN milestone_definitions d ON d.id = m.definition_id
               WHERE d.key = 'order-1' AND m.status = 'historical'""").fetchone()[0]
        effects = conn.execute("SELECT count(*) FROM effects").fetchone()[0]
    problems = []
    for name, found, wanted in (
        ("orders", orders, expected["orders"]), ("counted orders", counted, expected["counted"]),
        ("customers", customers, expected["customers"]), ("order_count total", metric.get("order_count"), expected["counted"]),
        ("lifetime_spend total", metric.get("lifetime_spend"), expected["spend"]),
        ("effects of a record-only run", effects, 0),
    ):
        if Decimal(found or 0) != Decimal(wanted):
            problems.append(f"{name}: found {found}, expected {wanted}")
    with psycopg.connect(database_url) as conn:
        buyers = conn.execute("SELECT count(DISTINCT customer_id) FROM orders WHERE counted").fetchone()[0]
    if firsts != buyers:
        problems.append(f"order-1 milestones: {firsts}, customers with a counted order: {buyers}")
    return problems


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        path = Path(tmp) / "export.csv"
        recreate_database(args.admin_url, args.database_url, migrate=False)
        services = None
        try:
            started = time.perf_counter()
            expected = write_export(args.database_url, path, args.orders, args.customers, args.seed)
            print(f"export: {args.orders:,} orders of {expected['customers']:,} customers, "
                  f"{path.stat().st_size / 1e6:.0f} MB, written in {time.perf_counter() - started:.1f} s", flush=True)
            upgrade(args.database_url)
            baseline = baseline_copy(args.database_url, path)
            services = Services.create(Settings(database_url=args.database_url, secret_key="bench"))
            with transaction(services.sessions) as session:
                workspace, _ = create_workspace(session, "Bench Grocer", currency="USD")
                shop = connections.create_connection(
                    session, services.secrets, workspace_id=workspace.id, platform="shopify", name="Shopify",
                    settings={"shop_domain": "bench.myshopify.com", "access_token": "x", "api_secret": "y"})
            statements = (StatementTimes(services.engine, args.explain_ms)
                          if args.statements or args.explain_ms else None)
            services.engine.dispose()  # connections made from here on are the profiled ones
            background = wait_for_quiet(args.quiet_wait)
            meter = CpuMeter({"backfill": lambda: [os.getpid()], "postgres": lambda: pg_backends(args.database_url)})
            with meter:
                result = run_backfill(services, Options(shop.id, source="csv", file=str(path)), clock=lambda: NOW)
            total = meter.wall
            problems = check(args.database_url, expected)
        finally:
            if services is not None:
                services.close()
            drop_database(args.admin_url, args.database_url)

    recorded = Counter({o.key: o.recorded for o in result.outcomes if o.recorded})
    print(f"baseline: COPY of the raw file into a bare table   {baseline:6.1f} s")
    for name, seconds in result.timings.items():
        print(f"backfill: {name:<40} {seconds:6.1f} s")
    print(f"backfill: total                                    {total:6.1f} s  "
          f"({args.orders / total:,.0f} orders/s, {total / baseline:.1f}x the bare COPY)")
    cpu = meter.summary()
    print(f"cpu: backfill process {cpu['backfill_cpu_s']:.1f} s, its PostgreSQL backends {cpu['postgres_cpu_s']:.1f} s; "
          f"other processes kept {cpu['rest_cpus']:.2f} of 2 CPUs busy (before the run: {background:.2f})")
    print(f"recorded {sum(recorded.values()):,} historical milestones: "
          + ", ".join(f"{k} {v:,}" for k, v in recorded.most_common()))
    met = total < TARGET_SECONDS
    print(f"target: < {TARGET_SECONDS:.0f} s for {args.orders:,} orders: {'met' if met else 'MISSED'}")
    if statements is not None:
        statements.report(args.statements)
    for problem in problems:
        print(f"WRONG: {problem}")
    if problems:
        return 1
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
