"""``milestones backfill``: import a connection's history, then record (or celebrate) its milestones.

1. pages from the source (Shopify, WooCommerce, CSV), each merged into customers and the ledger
   in its own transaction with the run's cursor (:mod:`plugin.backfill.importer`);
2. one last transaction: counters, "customer since" and tenure columns recomputed from the ledger
   (:mod:`plugin.backfill.recompute`), then the milestones each customer passed, recorded as
   history or celebrated per the mode (:mod:`plugin.backfill.history`), and the run finished.

A dry run does all of it in one transaction and rolls it back: the report is exact, nothing
changes. An interrupted run (error, Ctrl-C, a killed process) resumes from its cursor.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.registry import CONNECTORS
from connectors.shopify import ShopifyConnector
from connectors.woocommerce import WooCommerceConnector
from plugin.backfill import crossings, history, recompute, runs, staging
from plugin.backfill.csv_file import CsvHistory
from plugin.backfill.history import Celebration, Outcome
from plugin.backfill.importer import PageCounts, Target, import_page
from plugin.backfill.rows import InvalidSource, Page, Source
from plugin.backfill.shopify import ShopifyHistory
from plugin.backfill.woocommerce import WooCommerceHistory
from plugin.connections import ConnectionView, view_of
from plugin.db import transaction, utcnow
from plugin.milestones.definitions import enabled_definitions
from plugin.milestones.scan import DEFAULT_SCAN_HOUR
from plugin.models import BackfillRun, Connection, Order, Workspace
from plugin.services import Services

RECORD, RECENT, ALL = "record", "recent", "all"
MODES = (RECORD, RECENT, ALL)
SOURCES = ("shopify", "woocommerce", "csv")


class BackfillError(ValueError):
    """Options or a connection the backfill cannot run with; nothing was changed."""


@dataclass(frozen=True)
class Options:
    connection_id: uuid.UUID
    source: str | None = None  # default: the connection's platform (csv when a file is given)
    file: str | None = None
    mode: str = RECORD
    days: int | None = None  # for RECENT: crossings in the last N days are celebrated
    dry_run: bool = False
    restart: bool = False  # abandon an unfinished run instead of resuming it


@dataclass
class Result:
    dry_run: bool
    run_id: uuid.UUID | None = None
    resumed: bool = False
    source: str = ""
    stage: str = ""  # what the last page was (customers, orders, rows)
    pages: int = 0
    customers: int = 0
    new_customers: int = 0
    orders: int = 0
    known_orders: int = 0  # already in the ledger: merged, never counted twice
    skipped: int = 0
    problems: list[str] = field(default_factory=list)
    reached_customers: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    celebrated_ids: list[uuid.UUID] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in
                ("customers", "new_customers", "orders", "known_orders", "skipped")}

    def add(self, page: Page, counts: PageCounts) -> None:
        self.pages += 1
        self.stage = str(page.cursor.get("stage") or "rows")
        self.customers += counts.customers
        self.new_customers += counts.new_customers
        self.orders += counts.orders
        self.known_orders += counts.known_orders
        self.skipped += counts.skipped
        self.problems += counts.problems[: max(0, 20 - len(self.problems))]


Progress = Callable[[Result], None]


def run_backfill(
    services: Services,
    options: Options,
    *,
    progress: Progress | None = None,
    source: Source | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Result:
    celebration = _celebration(options, clock())
    with services.sessions() as session:
        connection, workspace = _load(session, services, options.connection_id)
    source = source or make_source(options, connection)
    job = _Backfill(connection, workspace, source, celebration, Result(options.dry_run, source=source.name),
                    progress, clock)
    if options.dry_run:
        with services.sessions() as session:
            try:
                job.import_pages(session, {})
                job.finish(session, "backfill (dry run)")
            finally:
                session.rollback()
        return job.result
    with runs.exclusive(services.engine, connection.id):
        with transaction(services.sessions) as session:
            run, resumed = runs.start(
                session, workspace_id=workspace.id, connection_id=connection.id, source=source.name,
                mode=options.mode, days=options.days, restart=options.restart,
                file=str(Path(options.file).resolve()) if options.file else None,
            )
            run_id, cursor = job.begin(run, resumed)
        try:
            if not cursor.get("imported"):
                with services.sessions() as session:
                    job.import_pages(session, cursor)
            with transaction(services.sessions) as session:
                job.finish(session, f"backfill {run_id}")
                runs.finish(session, run_id, job.summary())
        except BaseException as exc:
            runs.fail(services.sessions, run_id, exc)
            raise
    return job.result


def _celebration(options: Options, now: datetime) -> Celebration:
    if options.mode not in MODES:
        raise BackfillError(f"unknown mode {options.mode!r}; one of {', '.join(MODES)}")
    if options.mode == RECENT:
        if options.days is None or options.days < 0:
            raise BackfillError("--mode recent needs --days N (celebrate crossings of the last N days)")
        return Celebration(now - timedelta(days=options.days))
    if options.days is not None:
        raise BackfillError("--days only goes with --mode recent")
    return Celebration(None, everything=options.mode == ALL)


def _load(session: Session, services: Services, connection_id: uuid.UUID) -> tuple[ConnectionView, Workspace]:
    row = session.get(Connection, connection_id)
    if row is None:
        raise BackfillError(f"no connection {connection_id}")
    cls = CONNECTORS.get(row.platform)
    if cls is None or cls.kind != "store":
        raise BackfillError(f"connection {connection_id} is {row.platform}, not a store: it has no orders to import")
    workspace = session.get(Workspace, row.workspace_id)
    assert workspace is not None
    session.expunge(workspace)
    return view_of(row, services.secrets), workspace


def make_source(options: Options, connection: ConnectionView) -> Source:
    name = options.source or ("csv" if options.file else connection.platform)
    if name not in SOURCES:
        raise BackfillError(f"unknown source {name!r}; one of {', '.join(SOURCES)}")
    if name == "csv":
        if not options.file:
            raise BackfillError("--source csv needs --file")
        return CsvHistory(options.file)
    if options.file:
        raise BackfillError(f"--file goes with --source csv, not {name}")
    if name != connection.platform:
        raise BackfillError(f"connection {connection.id} is {connection.platform}; it cannot read {name} history")
    if name == "shopify":
        return ShopifyHistory(ShopifyConnector(connection.settings))
    return WooCommerceHistory(WooCommerceConnector(connection.settings))


@dataclass
class _Backfill:
    connection: ConnectionView
    workspace: Workspace
    source: Source
    celebration: Celebration
    result: Result
    progress: Progress | None
    clock: Callable[[], datetime]
    run_id: uuid.UUID | None = None  # None: a dry run, nothing is committed

    def begin(self, run: BackfillRun, resumed: bool) -> tuple[uuid.UUID, dict[str, Any]]:
        """Take up a run (a resumed one with its totals so far); returns its id and cursor."""
        self.run_id = self.result.run_id = run.id
        self.result.resumed, self.result.pages = resumed, run.pages
        for name, value in (run.counts or {}).items():
            if name in self.result.counts():
                setattr(self.result, name, int(value))
        return run.id, dict(run.cursor or {})

    def import_pages(self, session: Session, cursor: dict[str, Any]) -> None:
        """Every page after ``cursor``; in a real run each is committed with the run's cursor."""
        timezone = staging.database_timezone(session, self.workspace.timezone)
        empty_ledger = session.scalar(select(Order.id).where(Order.connection_id == self.connection.id).limit(1)) is None
        target = Target(self.connection.workspace_id, self.connection.id, timezone, empty_ledger)
        statistics = _Statistics(session)
        with _timed(self.result, "import"):
            try:
                for page in self.source.pages(cursor):
                    counts = import_page(session, target, page, self.clock())
                    self.result.add(page, counts)
                    statistics.grew(counts.new_customers, counts.orders)
                    if self.run_id is not None:
                        runs.advance(session, self.run_id, page.cursor, self.result.counts())
                        session.commit()
                    if self.progress:
                        self.progress(self.result)
            except InvalidSource as exc:
                raise BackfillError(str(exc)) from exc
            if self.run_id is not None:
                runs.imported(session, self.run_id, self.result.counts())
                session.commit()

    def finish(self, session: Session, label: str) -> None:
        """Counters, start dates, and the milestones passed, for every customer the connection reaches."""
        result, workspace, now = self.result, self.workspace, self.clock()
        staging.tune(session)
        with _timed(result, "counters"):
            _Statistics(session).refresh()  # the import grew the ledger: plan the aggregations for its size
            result.reached_customers = recompute.reached_customers(session, self.connection.id)
            recompute.recompute_counters(session, now)
        with _timed(result, "tenure"):
            starts = recompute.refresh_tenure(session, workspace.timezone or "UTC", now)
        definitions = enabled_definitions(session, {workspace.id})[workspace.id]
        scan_hour = int((workspace.settings or {}).get("scan_hour", DEFAULT_SCAN_HOUR))
        with _timed(result, "crossings"):
            crossings.find_crossings(session, definitions, starts, now, scan_hour)
        plan = history.Settlement(workspace.id, workspace.currency, tuple(definitions), self.celebration, label, now,
                                  dry_run=self.run_id is None)
        with _timed(result, "milestones"):
            result.outcomes, result.celebrated_ids = history.settle(session, plan)
        staging.drop(session, staging.AFFECTED, staging.CROSSINGS)

    def summary(self) -> dict[str, Any]:
        result = self.result
        return {
            **result.counts(),
            "reached_customers": result.reached_customers,
            "recorded": sum(o.recorded for o in result.outcomes),
            "celebrated": sum(o.celebrated for o in result.outcomes),
            "already": sum(o.already for o in result.outcomes),
        }


class _Statistics:
    """PostgreSQL plans each page's joins from table statistics that autovacuum refreshes only now
    and then: a ledger growing from nothing to a million rows in minutes would be planned as if
    it were still empty. Refreshed whenever the import has doubled what was there at the last one.

    A page joins customers and identities; orders it only writes (their unique key finds a known
    one, not a plan), so the ledger is analyzed once, before the statements that read it. Only
    the columns those statements join and filter by are analyzed: the sample is read anyway,
    but statistics of names, amounts and JSON would cost more than the plans they never change."""

    JOINED = ("customers (workspace_id, email, id)", "customer_identities (connection_id, external_id, customer_id)")
    READ_AT_THE_END = (*JOINED, "orders (connection_id, customer_id, counted, paid)")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.rows = 0
        self.next = 10_000

    def grew(self, customers: int, orders: int) -> None:
        self.rows += customers + orders
        if self.rows >= self.next:
            self._analyze(self.JOINED)
            self.next = 2 * self.rows

    def refresh(self) -> None:
        self._analyze(self.READ_AT_THE_END)

    def _analyze(self, tables: tuple[str, ...]) -> None:
        if staging.is_postgres(self.session):
            for table in tables:
                self.session.connection().exec_driver_sql(f"ANALYZE {table}")


@contextmanager
def _timed(result: Result, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        result.timings[name] = result.timings.get(name, 0.0) + time.perf_counter() - started
