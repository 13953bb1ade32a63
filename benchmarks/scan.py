"""The daily anniversary scan on 1,000,000 customers in PostgreSQL.

    python benchmarks/scan.py [--customers 1000000] [--quiet-wait 30] [--keep]

On a fresh database (created, migrated by Alembic, dropped at the end unless ``--keep``):

1. one workspace (New York) with the default catalogue — its anniversaries are 1, 2 and 5 years —
   and a Shopify connection, so effects are planned as for a real store;
2. ``--customers`` customers loaded with one ``COPY``: "customer since" spread uniformly over ten
   years (mid-2016 to mid-2026) at any time of day, a fifth of them with a timezone of their own
   (Los Angeles … Auckland, half-hour zones included), so the Feb-29 starts of 2020 and 2024 are
   there in their natural share. The tenure columns the scan searches by are written by the
   application's own rule (:func:`plugin.milestones.tenure.tenure_columns`), then ANALYZEd as
   autovacuum would;
3. ``scan_day`` — exactly what ``milestones scan --date`` and the scheduler run — timed, one
   transaction per day, for: a normal day, Feb 28 of a non-leap year (which also celebrates
   the Feb-29 starts), the same normal day again (must award nothing), and a week of catch-up
   after the scheduler was "down" (``run_due_scans``);
4. every day's awards checked against an independent count: per customer, the local start date
   (``customer_since AT TIME ZONE`` the customer's zone, else the workspace's) plus 1, 2 and 5
   years by PostgreSQL's calendar (which lands Feb 29 on Feb 28) — the scan itself uses month-day
   columns and the engine's calendar in Python;
5. the ``EXPLAIN (ANALYZE, BUFFERS)`` of the candidate query, as the scan sent it.

Each day prints wall seconds, where they went (candidate query, evaluation in Python, milestone
inserts, effect planning, commit), candidates, milestones awarded, candidates/s, and the CPU of
this process and of its PostgreSQL backend, plus what the rest of the machine used meanwhile.
Exits 1 when an outcome is wrong; ``--strict`` also exits 2 when a day misses the target (2 s).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from sqlalchemy import Engine, event  # noqa: E402
from support import CpuMeter, drop_database, pg_backends, recreate_database, wait_for_quiet  # noqa: E402

import plugin.milestones.award as award_module  # noqa: E402
import plugin.milestones.scan as scan_module  # noqa: E402
from plugin import connections  # noqa: E402
from plugin.config import Settings  # noqa: E402
from plugin.db import transaction  # noqa: E402
from plugin.milestones.scan import run_due_scans, scan_day  # noqa: E402
from plugin.milestones.tenure import local_zone, tenure_columns  # noqa: E402
from plugin.models import Workspace  # noqa: E402
from plugin.schema import upgrade  # noqa: E402
from plugin.services import Services  # noqa: E402
from plugin.workspaces import create_workspace  # noqa: E402

TARGET_SECONDS = 2.0
WORKSPACE_TIMEZONE = "America/New_York"
CUSTOMER_TIMEZONES = ("America/Los_Angeles", "America/Chicago", "Europe/London", "Europe/Berlin",
                      "Asia/Kolkata", "Asia/Tokyo", "Australia/Adelaide", "Pacific/Auckland")
OWN_TIMEZONE_SHARE = 0.2
FIRST_START = datetime(2016, 7, 1, tzinfo=UTC)
LAST_START = datetime(2026, 7, 1, tzinfo=UTC)
ANNIVERSARY_YEARS = {"anniversary-1y": 1, "anniversary-2y": 2, "anniversary-5y": 5}
NORMAL_DAY = date(2026, 9, 15)
LEAP_DAY = date(2025, 2, 28)  # not a leap year: the day of the Feb-29 starts' 1st and 5th anniversaries
LEAP_STARTS = [date(2024, 2, 29), date(2020, 2, 29)]
CATCH_UP_DAYS = 7


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--database-url", default=os.environ.get(
        "BENCH_SCAN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/milestones_bench_scan"))
    p.add_argument("--quiet-wait", type=float, default=60.0,
                   help="seconds to wait for other processes to leave the CPUs alone before measuring")
    p.add_argument("--keep", action="store_true", help="leave the database in place (for EXPLAINs by hand)")
    p.add_argument("--strict", action="store_true", help="exit 2 when a day misses the target")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="profile the Feb-28 scan in this process (cProfile) and print its N costliest calls")
    return p.parse_args()


# -- data ------------------------------------------------------------------------------------------
def load_customers(database_url: str, workspace_id: uuid.UUID, count: int, seed: int) -> int:
    """COPY ``count`` customers; returns how many started on a Feb 29 (local date)."""
    rng = random.Random(seed)
    span = (LAST_START - FIRST_START).total_seconds()
    workspace_zone = ZoneInfo(WORKSPACE_TIMEZONE)
    zones = {name: ZoneInfo(name) for name in CUSTOMER_TIMEZONES}
    created = datetime(2026, 7, 1, tzinfo=UTC)
    leap_starts = 0
    columns = ("id, workspace_id, email, first_name, last_name, customer_since, timezone, since_local, since_mmdd, "
               "since_dom, properties, created_at, updated_at")
    with psycopg.connect(database_url) as conn, conn.cursor() as cur, \
            cur.copy(f"COPY customers ({columns}) FROM STDIN") as copy:
        for n in range(count):
            since = FIRST_START + timedelta(seconds=int(rng.random() * span))
            own = rng.choice(CUSTOMER_TIMEZONES) if rng.random() < OWN_TIMEZONE_SHARE else None
            tenure = tenure_columns(since, zones[own] if own else workspace_zone)
            leap_starts += tenure["since_mmdd"] == 229
            copy.write_row((uuid.UUID(int=rng.getrandbits(128), version=4), workspace_id, f"customer{n}@example.com",
                            "Pat", f"Shopper{n}", since, own, tenure["since_local"], tenure["since_mmdd"],
                            tenure["since_dom"], "{}", created, created))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE customers")
    return leap_starts


def check_tenure_sample(database_url: str, workspace_timezone: str, size: int = 20_000) -> list[str]:
    """The loaded tenure columns are what the application computes (a random sample, in Python)."""
    problems = []
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            f"""SELECT customer_since, timezone, since_local, since_mmdd, since_dom FROM customers
                TABLESAMPLE SYSTEM (5) LIMIT {size}""").fetchall()
    for since, zone, since_local, mmdd, dom in rows:
        expected = tenure_columns(since, local_zone(zone, workspace_timezone))
        if (since_local, mmdd, dom) != (expected["since_local"], expected["since_mmdd"], expected["since_dom"]):
            problems.append(f"tenure columns of a customer since {since} ({zone}): {since_local}, {mmdd}, {dom}")
    return problems[:5]


def expected_awards(database_url: str, workspace_id: uuid.UUID, days: list[date]) -> dict[date, dict[str, int]]:
    """Anniversaries on each of ``days``, counted from ``customer_since`` and the timezones alone."""
    values = ", ".join(f"('{key}', {years})" for key, years in ANNIVERSARY_YEARS.items())
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            f"""SELECT on_day, key, count(*) FROM (
                    SELECT a.key, CAST(CAST(c.customer_since AT TIME ZONE coalesce(c.timezone, w.timezone) AS date)
                                       + make_interval(years => a.years) AS date) AS on_day
                    FROM customers c
                    JOIN workspaces w ON w.id = c.workspace_id
                    CROSS JOIN (VALUES {values}) AS a(key, years)
                    WHERE c.workspace_id = %(workspace)s) anniversaries
                WHERE on_day = ANY(%(days)s)
                GROUP BY on_day, key""",
            {"workspace": workspace_id, "days": days}).fetchall()
    found: dict[date, dict[str, int]] = {day: dict.fromkeys(ANNIVERSARY_YEARS, 0) for day in days}
    for day, key, count in rows:
        found[day][key] = count
    return found


def awarded_on(database_url: str, workspace_id: uuid.UUID, day: date) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            """SELECT d.key, count(*) FROM customer_milestones m
               JOIN milestone_definitions d ON d.id = m.definition_id
               WHERE m.workspace_id = %(workspace)s AND m.context->>'source' = %(source)s
               GROUP BY d.key""",
            {"workspace": workspace_id, "source": f"anniversary scan {day.isoformat()}"}).fetchall()
    return {key: 0 for key in ANNIVERSARY_YEARS} | dict(rows)


def feb_29_awards(database_url: str, workspace_id: uuid.UUID, day: date) -> tuple[int, int]:
    """Customers who started on :data:`LEAP_STARTS` (local dates), and how many of them the scan of
    ``day`` celebrated."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            """WITH leap AS (
                   SELECT c.id FROM customers c JOIN workspaces w ON w.id = c.workspace_id
                   WHERE c.workspace_id = %(workspace)s
                     AND CAST(c.customer_since AT TIME ZONE coalesce(c.timezone, w.timezone) AS date)
                         = ANY(%(starts)s))
               SELECT (SELECT count(*) FROM leap),
                      (SELECT count(*) FROM customer_milestones m JOIN leap ON leap.id = m.customer_id
                       WHERE m.context->>'source' = %(source)s)""",
            {"workspace": workspace_id, "starts": LEAP_STARTS,
             "source": f"anniversary scan {day.isoformat()}"}).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def totals(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM customer_milestones), (SELECT count(*) FROM effects)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


# -- timing ---------------------------------------------------------------------------------------
@dataclass
class Split:
    """Where one day's wall time went: statements by kind, and the award/planning calls."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    candidate_statement: tuple[str, Any] | None = None


class Timer:
    """Times the candidate query (by its SQL), ``award`` and ``plan_effects`` (wrapped in place)."""

    def __init__(self, engine: Engine) -> None:
        self.split = Split()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        self._wrap(scan_module, "award", "award (milestones + effects)")
        self._wrap(award_module, "plan_effects", "planning effects")

    def _wrap(self, module: Any, name: str, label: str) -> None:
        original = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.split.seconds[label] += time.perf_counter() - started

        setattr(module, name, timed)

    def _before(self, conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seconds = time.perf_counter() - conn.info.pop("bench_started")
        if "FROM customers" in statement and "customers.since_mmdd IN" in statement:
            self.split.seconds["candidate query"] += seconds
            self.split.candidate_statement = (statement, parameters)

    def take(self) -> Split:
        split, self.split = self.split, Split()
        return split


@dataclass
class Day:
    label: str
    day: date
    wall: float
    candidates: int
    awarded: int
    split: Split
    cpu: dict[str, float]
    expected: dict[str, int]
    found: dict[str, int]


def scan_one(services: Services, timer: Timer, workspace_id: uuid.UUID, day: date, label: str,
             database_url: str, expected: dict[str, int]) -> Day:
    meter = CpuMeter({"bench": lambda: [os.getpid()], "postgres": lambda: pg_backends(database_url)})
    timer.take()
    with meter:
        started = time.perf_counter()
        with services.sessions() as session:
            workspace = session.get(Workspace, workspace_id)
            assert workspace is not None
            result = scan_day(session, workspace, day)
            commit_started = time.perf_counter()
            session.commit()
            commit = time.perf_counter() - commit_started
        wall = time.perf_counter() - started
    split = timer.take()
    split.seconds["commit"] = commit
    return Day(label, day, wall, result.candidates, result.awarded, split, meter.summary(), expected,
               awarded_on(database_url, workspace_id, day))


def explain(database_url: str, statement: tuple[str, Any]) -> str:
    text, parameters = statement
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + text, parameters).fetchall()
    return "\n".join(r[0] for r in rows)


def report(day: Day) -> None:
    seconds = day.split.seconds
    accounted = seconds["candidate query"] + seconds["award (milestones + effects)"] + seconds["commit"]
    parts = [f"candidate query {seconds['candidate query'] * 1000:.0f} ms",
             f"evaluation and the rest {max(0.0, day.wall - accounted) * 1000:.0f} ms",
             f"milestone inserts {(seconds['award (milestones + effects)'] - seconds['planning effects']) * 1000:.0f} ms",
             f"effect planning {seconds['planning effects'] * 1000:.0f} ms",
             f"commit {seconds['commit'] * 1000:.0f} ms"]
    rate = day.candidates / day.wall if day.wall else 0.0
    print(f"{day.label:<32} {day.day}  {day.wall:6.3f} s  {day.candidates:6,} candidates  {day.awarded:5,} awarded  "
          f"{rate:8,.0f} candidates/s")
    print(f"    {'; '.join(parts)}")
    print(f"    cpu: this process {day.cpu['bench_cpu_s']:.2f} s, PostgreSQL {day.cpu['postgres_cpu_s']:.2f} s; "
          f"rest of the machine {day.cpu['rest_cpus']:.2f} of 2 CPUs")


def main() -> int:
    args = parse_args()
    recreate_database(args.admin_url, args.database_url, migrate=False)
    services = None
    problems: list[str] = []
    days: list[Day] = []
    plan = ""
    profiler: cProfile.Profile | None = None
    try:
        upgrade(args.database_url)
        services = Services.create(Settings(database_url=args.database_url, secret_key="bench"))
        with transaction(services.sessions) as session:
            workspace, _ = create_workspace(session, "Bench Grocer", timezone=WORKSPACE_TIMEZONE, currency="USD")
            connections.create_connection(
                session, services.secrets, workspace_id=workspace.id, platform="shopify", name="Shopify",
                settings={"shop_domain": "bench.myshopify.com", "access_token": "x", "api_secret": "y"})
        started = time.perf_counter()
        leap_starts = load_customers(args.database_url, workspace.id, args.customers, args.seed)
        print(f"loaded {args.customers:,} customers ({leap_starts:,} started on a Feb 29) "
              f"in {time.perf_counter() - started:.1f} s")
        problems += check_tenure_sample(args.database_url, WORKSPACE_TIMEZONE)
        catch_up_days = [NORMAL_DAY + timedelta(days=n) for n in range(1, CATCH_UP_DAYS + 1)]
        expected = expected_awards(args.database_url, workspace.id, [NORMAL_DAY, LEAP_DAY, *catch_up_days])
        timer = Timer(services.engine)
        background = wait_for_quiet(args.quiet_wait)
        print(f"other processes before measuring: {background:.2f} of 2 CPUs busy")
        days.append(scan_one(services, timer, workspace.id, NORMAL_DAY, "normal day", args.database_url,
                             expected[NORMAL_DAY]))
        statement = days[-1].split.candidate_statement
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
        days.append(scan_one(services, timer, workspace.id, LEAP_DAY, "Feb 28, non-leap year", args.database_url,
                             expected[LEAP_DAY]))
        if profiler:
            profiler.disable()
        leap_starts_due, leap_celebrated = feb_29_awards(args.database_url, workspace.id, LEAP_DAY)
        if leap_celebrated != leap_starts_due or not leap_starts_due:
            problems.append(f"Feb-29 starts due on {LEAP_DAY}: {leap_starts_due}, celebrated {leap_celebrated}")
        # a rerun awards nothing new: the day's milestones are still exactly the expected ones
        days.append(scan_one(services, timer, workspace.id, NORMAL_DAY, "normal day again (rerun)",
                             args.database_url, expected[NORMAL_DAY]))
        before = totals(args.database_url)
        # the scheduler was down for a week: the next run catches up, one transaction per day
        zone = ZoneInfo(WORKSPACE_TIMEZONE)
        now = datetime.combine(catch_up_days[-1], datetime.min.time(), zone).replace(hour=10)
        started = time.perf_counter()
        results = run_due_scans(services.sessions, now)
        catch_up = time.perf_counter() - started
        scanned = [r.day for r in results]
        if scanned != catch_up_days:
            problems.append(f"catch-up scanned {scanned}, expected {catch_up_days}")
        catch_up_awarded = sum(r.awarded for r in results)
        for r in results:
            wanted = expected.get(r.day, {})
            if awarded_on(args.database_url, workspace.id, r.day) != wanted or r.awarded != sum(wanted.values()):
                problems.append(f"catch-up day {r.day}: awarded {r.awarded}, expected {wanted}")
        plan = explain(args.database_url, statement) if statement else "(no candidate query was sent)"
        after = totals(args.database_url)
    finally:
        if services is not None:
            services.close()
        if not args.keep:
            drop_database(args.admin_url, args.database_url)

    print()
    for n, day in enumerate(days):
        report(day)
        awarded = 0 if n == 2 else sum(day.expected.values())  # the third is the rerun
        if day.found != day.expected or day.awarded != awarded:
            problems.append(f"{day.label} {day.day}: awarded {day.awarded} {day.found}, expected {day.expected}")
    print(f"    (on {LEAP_DAY}: {leap_celebrated:,} of the {leap_starts_due:,} customers who started on "
          f"{' or '.join(str(d) for d in LEAP_STARTS)} were celebrated)")
    print(f"{'catch-up after a week down':<32} {CATCH_UP_DAYS} days  {catch_up:6.3f} s  "
          f"{sum(r.candidates for r in results):6,} candidates  {catch_up_awarded:5,} awarded  "
          f"({catch_up / CATCH_UP_DAYS:.3f} s a day)")
    print(f"milestones: {before[0]:,} after the three days, {after[0]:,} after the catch-up; effects planned: {after[1]:,}")
    print()
    print("candidate query, as the scan sent it for the normal day:")
    print(statement[0] if statement else "")
    print(plan)
    if profiler:
        print(f"\nthe Feb-28 scan under cProfile (slower than measured above), {args.profile} costliest calls:")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
    judged = [d for n, d in enumerate(days) if not (profiler and n == 1)]  # cProfile slows the Feb-28 scan
    slowest = max(d.wall for d in judged)
    met = slowest < TARGET_SECONDS and catch_up / CATCH_UP_DAYS < TARGET_SECONDS
    print(f"\ntarget: every day's scan < {TARGET_SECONDS:.0f} s on {args.customers:,} customers: "
          f"{'met' if met else 'MISSED'} (slowest day {slowest:.3f} s{', the profiled day left out' if profiler else ''})")
    for problem in problems:
        print(f"WRONG: {problem}")
    if problems:
        return 1
    return 2 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
