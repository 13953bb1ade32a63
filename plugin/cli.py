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
    hour, catching up missed days) and sweeps for work nobody picked up."""
    from plugin.app import create_app
    from plugin.jobs.sweeper import sweep
    from plugin.milestones.scan import run_due_scans

    services = create_app().extensions["milestones"]
    while True:
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
