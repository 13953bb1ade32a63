"""The ``milestones`` command: demo, serve, worker, scheduler, sweep, db upgrade."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime

import click

from plugin.config import from_environment

log = logging.getLogger(__name__)


@click.group()
def main() -> None:
    """Customer Milestones: detect customer milestones from webhooks and celebrate them."""


@main.command()
@click.option("--customers", default=300, show_default=True, help="Customers in the sample store.")
@click.option("--years", default=3, show_default=True, help="Years of order history to replay.")
@click.option("--seed", default=7, show_default=True, help="Random seed of the sample store.")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Serve the app afterwards.")
@click.option("--port", default=8000, show_default=True)
def demo(customers: int, years: int, seed: int, serve: bool, port: int) -> None:
    """Replay a realistic sample store through the real webhook endpoint and show what happens."""
    from plugin.demo.run import run_demo

    run_demo(customers=customers, years=years, seed=seed, serve=serve, port=port)


@main.group()
def db() -> None:
    """Database schema (Alembic)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema of DATABASE_URL."""
    from plugin.schema import upgrade

    settings = from_environment()
    upgrade(settings.database_url, revision)
    click.echo(f"database at {settings.database_url.split('@')[-1]} is at {revision}")


@main.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--threads", default=4, show_default=True, help="Threads per worker.")
def serve(bind: str, workers: int, threads: int) -> None:
    """Serve the app with gunicorn (a production WSGI server)."""
    from plugin.wsgi_server import run_gunicorn

    run_gunicorn(bind=bind, workers=workers, threads=threads)


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--with-scheduler/--without-scheduler", default=True, show_default=True,
              help="Also run RQ's scheduler for delayed retries.")
def worker(burst: bool, with_scheduler: bool) -> None:
    """Run an RQ worker on REDIS_URL.

    A SimpleWorker (no fork per job): jobs reuse the process's database pool, which keeps RQ's
    per-job overhead at a few milliseconds; a crashed job's rows go back to pending anyway.
    """
    from rq import SimpleWorker

    from plugin.app import create_app

    app = create_app()
    services = app.extensions["milestones"]
    if services.redis is None:
        raise click.ClickException("REDIS_URL is not set: without it jobs run inline and no worker is needed")
    rq_worker = SimpleWorker([services.queue.rq], connection=services.redis)
    rq_worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="WARNING")


@main.command()
@click.option("--every", default=10.0, show_default=True, help="Seconds between sweeps.")
@click.option("--once", is_flag=True, help="Sweep and scan once, then exit.")
def scheduler(every: float, once: bool) -> None:
    """Run the periodic work: the daily anniversary scans (each workspace at its local scan
    hour, catching up missed days), store reconciliation every 15 minutes (orders whose
    webhooks were lost; deleted or disabled webhooks re-registered), and sweeps for work
    nobody picked up."""
    from plugin.app import create_app
    from plugin.jobs.sweeper import sweep
    from plugin.milestones.scan import run_due_scans
    from plugin.reconcile import reconcile_due

    services = create_app().extensions["milestones"]
    while True:
        for reconciled in reconcile_due(services):
            click.echo(f"reconciled {reconciled.connection_id}: {reconciled.fetched} changed, "
                       f"{reconciled.new} new{', error: ' + reconciled.error if reconciled.error else ''}")
        for result in run_due_scans(services.sessions):
            click.echo(f"scanned {result.day} for workspace {result.workspace_id}: "
                       f"{result.candidates} candidates, {result.awarded} milestones")
        waiting = sweep()
        if any(waiting.values()):
            click.echo(f"swept: {waiting}")
        if once:
            return
        time.sleep(every)


@main.command()
@click.option("--date", "day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The local date to scan (YYYY-MM-DD).")
@click.option("--workspace", "workspace_id", default=None, help="Only this workspace (id).")
def scan(day: datetime, workspace_id: str | None) -> None:
    """Run the time-milestone scan for one local date by hand (safe to repeat)."""
    from sqlalchemy import select

    from plugin.app import create_app
    from plugin.jobs.effects import run_effects
    from plugin.milestones.scan import scan_day
    from plugin.models import Workspace

    services = create_app().extensions["milestones"]
    with services.sessions() as session:
        query = select(Workspace)
        if workspace_id:
            query = query.where(Workspace.id == uuid.UUID(workspace_id))
        workspaces = session.execute(query).scalars().all()
        for workspace in workspaces:
            result = scan_day(session, workspace, day.date())
            session.commit()
            click.echo(f"{workspace.name}: {result.candidates} candidates, {result.awarded} milestones on {result.day}")
    services.queue.nudge(run_effects, "effects")


@main.command("sweep")
def sweep_command() -> None:
    """Nudge anything committed but never picked up (inbox rows, due effects) once."""
    from plugin.app import create_app
    from plugin.jobs.sweeper import sweep

    create_app()
    click.echo(sweep())


@main.command()
@click.option("--connection", "connection_id", required=True, help="Connection id.")
def reconcile(connection_id: str) -> None:
    """Fetch the orders a store changed since the last reconciliation and process them."""
    from plugin.app import create_app
    from plugin.reconcile import reconcile_connection

    services = create_app().extensions["milestones"]
    result = reconcile_connection(services, uuid.UUID(connection_id))
    if result.error:
        raise click.ClickException(result.error)
    click.echo(f"{result.fetched} orders changed, {result.new} were new to us")


@main.group()
def webhooks() -> None:
    """The platforms' webhook subscriptions of a connection."""


@webhooks.command("register")
@click.option("--connection", "connection_id", required=True, help="Connection id.")
def webhooks_register(connection_id: str) -> None:
    """Register every topic plugin.json lists that the platform is not delivering yet."""
    _print_webhooks(connection_id, register=True)


@webhooks.command("check")
@click.option("--connection", "connection_id", required=True, help="Connection id.")
def webhooks_check(connection_id: str) -> None:
    """Show, per topic, whether the platform delivers it to this deployment."""
    _print_webhooks(connection_id, register=False)


def _print_webhooks(connection_id: str, *, register: bool) -> None:
    from plugin import webhook_subscriptions
    from plugin.app import create_app

    services = create_app().extensions["milestones"]
    run = webhook_subscriptions.register if register else webhook_subscriptions.check
    try:
        status = run(services, uuid.UUID(connection_id))
    except (ValueError, LookupError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not status:
        click.echo("this platform's webhooks are configured on the platform side, not registered by us")
    for topic, state in status.items():
        click.echo(f"{topic:32} {state}")


@main.command("create-workspace")
@click.argument("name")
@click.option("--timezone", default="UTC", show_default=True)
@click.option("--currency", default="USD", show_default=True)
def create_workspace_command(name: str, timezone: str, currency: str) -> None:
    """Create a workspace with the default catalogue and print its admin token."""
    from plugin.app import create_app
    from plugin.db import transaction
    from plugin.workspaces import create_workspace

    app = create_app()
    with transaction(app.extensions["milestones"].sessions) as session:
        workspace, token = create_workspace(session, name, timezone=timezone, currency=currency)
        click.echo(f"workspace {workspace.id}\nadmin token: {token}")


@main.command("create-admin")
@click.argument("email")
@click.option("--workspace", "workspace_ref", required=True, help="The workspace's id or slug.")
@click.option("--name", default="", help="How the settings page greets this admin.")
@click.password_option(help="At least 10 characters; asked for when not given.")
def create_admin_command(email: str, workspace_ref: str, name: str, password: str) -> None:
    """Create an admin who signs in to the workspace's settings page at /admin."""
    from plugin.admin.errors import AdminError
    from plugin.admins import create_admin
    from plugin.app import create_app
    from plugin.db import transaction
    from plugin.workspaces import find_workspace

    app = create_app()
    try:
        with transaction(app.extensions["milestones"].sessions) as session:
            workspace = find_workspace(session, workspace_ref)
            if workspace is None:
                raise click.ClickException(f"no workspace with the id or slug {workspace_ref!r}")
            admin = create_admin(session, workspace.id, email, password, name=name)
            click.echo(f"admin {admin.email} can sign in to {workspace.name} at /admin")
    except AdminError as exc:
        raise click.ClickException(exc.message) from exc


@main.command()
@click.option("--connection", "connection_id", required=True, help="The store connection (id) to import.")
@click.option("--source", type=click.Choice(["shopify", "woocommerce", "csv"]), default=None,
              help="Where the history comes from (default: the connection's platform; csv with --file).")
@click.option("--file", "file", type=click.Path(dir_okay=False), default=None, help="The CSV file of --source csv.")
@click.option("--mode", type=click.Choice(["record", "recent", "all"]), default="record", show_default=True,
              help="record: past milestones as history, no rewards; recent: celebrate the last --days; all: celebrate all.")
@click.option("--days", type=click.IntRange(min=0), default=None, help="With --mode recent: the N days to celebrate.")
@click.option("--dry-run", is_flag=True, help="Report what would be recorded and celebrated, and change nothing.")
@click.option("--restart", is_flag=True, help="Start over instead of resuming an interrupted run.")
def backfill(connection_id: str, source: str | None, file: str | None, mode: str, days: int | None,
             dry_run: bool, restart: bool) -> None:
    """Import a store's customers and orders from before installation, and its past milestones.

    Resumable: an interrupted run continues where it stopped when run again."""
    from plugin.app import create_app
    from plugin.backfill.report import ProgressLine, report
    from plugin.backfill.runner import BackfillError, Options, run_backfill
    from plugin.backfill.runs import BackfillBusy
    from plugin.jobs.effects import run_effects

    services = create_app().extensions["milestones"]
    try:
        options = Options(uuid.UUID(connection_id), source, file, mode, days, dry_run, restart)
    except ValueError as exc:
        raise click.ClickException(f"--connection is not an id: {connection_id!r}") from exc
    progress = ProgressLine()
    try:
        result = run_backfill(services, options, progress=progress)
    except (BackfillError, BackfillBusy) as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:
        resume = "" if dry_run else "; run the same command again to resume"
        raise click.ClickException(f"backfill stopped ({exc}){resume}") from exc
    finally:
        progress.close()
    for line in report(result):
        click.echo(line)
    if result.celebrated_ids:
        services.queue.nudge(run_effects, "effects")
