"""``milestones demo``: replay a sample grocery store through the real webhook endpoint, report, serve.

The steps, each in its own module: an embedded environment (:mod:`.environment`) with local
stand-ins for Shopify, HubSpot and Slack (:mod:`.standins`); a deterministic store
(:mod:`.sample_store`); signed deliveries posted to ``POST /webhooks/shopify`` (:mod:`.replay`);
one sweep; the report (:mod:`.report`); then the app served with gunicorn (:mod:`.serving`).
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import TextIO

import click

from plugin import connections
from plugin.demo import serving
from plugin.demo.environment import (
    CURRENCY,
    SHOP_DOMAIN,
    TIMEZONE,
    WORKSPACE_NAME,
    DemoEnvironment,
    DemoSetupError,
    prepare,
    safe_url,
)
from plugin.demo.pacing import jobs_in_batches, sweep_until_settled
from plugin.demo.replay import ProgressLine, plan, replay
from plugin.demo.report import DemoReport, collect, render
from plugin.demo.sample_store import SampleStore, generate
from plugin.demo.standins import StandIns, StandInServer

RELEASE_EVERY = 250  # deliveries between two runs of the (inline) jobs


@dataclass(frozen=True)
class DemoOutcome:
    database_url: str
    workspace_id: uuid.UUID
    admin_token: str
    store: SampleStore
    report: DemoReport
    standins: StandIns  # what the stand-ins were asked
    seconds: float


def run_demo(
    customers: int = 300,
    years: int = 3,
    seed: int = 7,
    serve: bool = True,
    port: int = 8000,
    *,
    database_url: str | None = None,
    today: date | None = None,
    out: TextIO | None = None,
) -> DemoOutcome:
    out = out or sys.stdout
    if serve and not serving.port_is_free(port):
        raise click.ClickException(f"port {port} on 127.0.0.1 is taken; pass --port, or --no-serve")
    started = time.monotonic()
    root = logging.getLogger()
    level = root.level
    standins = StandInServer().start()
    try:
        try:
            env = prepare(standins, database_url)
        except DemoSetupError as exc:
            raise click.ClickException(str(exc)) from exc
        root.setLevel(logging.WARNING)  # the report says what happened, not the logs
        try:
            outcome = _replay_and_report(env, customers, years, seed, today, port, serve, started, out)
        finally:
            env.services.close()
            connections.forget()
        if serve:
            _serve(env, port, out)
        return outcome
    finally:
        standins.stop()
        root.setLevel(level)


def _replay_and_report(
    env: DemoEnvironment, customers: int, years: int, seed: int, today: date | None, port: int, serve: bool,
    started: float, out: TextIO,
) -> DemoOutcome:
    write = out.write
    write(f"Customer Milestones demo: {WORKSPACE_NAME} ({TIMEZONE}, {CURRENCY})\n")
    freshness = "fresh, migrated with Alembic" if env.fresh_database else "from DATABASE_URL, migrated with Alembic"
    write(f"  database     {safe_url(env.database_url)} ({freshness})\n")
    write(f"  jobs         inline, no Redis: they run every {RELEASE_EVERY} deliveries, like a worker catching up\n")
    write(f"  stand-ins    {env.standins.url}: Shopify Admin GraphQL, HubSpot CRM v3 and email, Slack Web API\n")
    origin = "generated; set MILESTONES_ADMIN_TOKEN to choose it" if env.token_generated else "from MILESTONES_ADMIN_TOKEN"
    write(f"  admin token  {env.admin_token} ({origin})\n")
    store = generate(customers, years, seed, today=today, currency=CURRENCY, timezone=TIMEZONE)
    summary = store.summary()
    habits = Counter(store.habits.values())
    write(
        f"Sample store (seed {seed}): {customers:,} customers over {years} years, "
        + ", ".join(f"{habits[h]} {h}" for h in ("weekly", "fortnightly", "monthly", "occasional"))
        + f"; {summary['orders']:,} orders ({summary['cancelled']} cancelled, {summary['refunded_in_full']} refunded in full, "
        f"{summary['refunded_in_part']} in part)\n"
    )
    planned = plan(store, seed)
    with jobs_in_batches(env.services) as held:
        result = replay(
            env.app.test_client(), store, planned, shop_domain=SHOP_DOMAIN, secret=env.shop_secret,
            progress=ProgressLine(out), every=held.release, every_n=RELEASE_EVERY,
        )
    swept = sweep_until_settled(env.services)
    with env.services.sessions() as session:
        report = collect(session, env.workspace_id, env.standins.standins, result, swept, CURRENCY)
    write(render(report))
    write(_admin_help(env, report, port, serve))
    seconds = time.monotonic() - started
    write(f"\nDemo finished in {seconds:.1f} s.\n")
    out.flush()
    return DemoOutcome(env.database_url, env.workspace_id, env.admin_token, store, report, env.standins.standins, seconds)


def _admin_help(env: DemoEnvironment, report: DemoReport, port: int, serve: bool) -> str:
    base = f"http://127.0.0.1:{port}"
    auth = f'-H "Authorization: Bearer {env.admin_token}"'
    email = report.busiest_email or "someone@example.com"
    lines = ["", "Admin API (JSON, bearer token)"]
    if not serve:
        lines.append(
            f"  serve this database first:  DATABASE_URL={env.database_url} "
            f"milestones serve --bind 127.0.0.1:{port}"
        )
    lines += [
        f"  curl -s {auth} '{base}/api/milestones?per_page=5'",
        f"  curl -s {auth} '{base}/api/customers?email={email}'",
        f"  curl -s {auth} '{base}/api/effects?status=open_task&per_page=5'",
    ]
    extra = {rule.rule for rule in env.app.url_map.iter_rules()}
    for path in ("/api/reviews", "/api/dashboard", "/api/openapi.json"):
        if path in extra:
            lines.append(f"  curl -s {auth} '{base}{path}'")
    return "\n".join(lines) + "\n"


def _serve(env: DemoEnvironment, port: int, out: TextIO) -> None:
    pages = {rule.rule for rule in env.app.url_map.iter_rules()}
    admin_page = next((p for p in ("/admin", "/admin/", "/") if p in pages), None)
    out.write(f"\nServing the app on the demo database at http://127.0.0.1:{port} (gunicorn). Ctrl-C stops it.\n")
    if admin_page:
        out.write(f"  open http://127.0.0.1:{port}{admin_page} and sign in as {env.admin_email} "
                  f"with the password {env.admin_password}\n")
    out.write(f"  health: http://127.0.0.1:{port}/healthz · the admin API as above\n")
    out.flush()
    serving.serve(env.services.settings, port)
    out.write("Stopped.\n")

