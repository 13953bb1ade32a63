"""``milestones backfill`` on the command line: the report, the dry run, and clear errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from plugin.cli import main
from plugin.models import Order
from tests.backfill.support import csv_file, fingerprint, orders_of
from tests.conftest import services_of
from tests.support import count


@pytest.fixture
def env(clean_database, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", clean_database)
    monkeypatch.setenv("MILESTONES_SECRET_KEY", "test-secret")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("MILESTONES_ENCRYPTION_KEY", raising=False)


def _history(tmp_path):
    first = datetime.now(UTC) - timedelta(days=400)
    return str(csv_file(tmp_path / "h.csv", orders_of("9", "nia@example.com", [first + timedelta(days=3 * i)
                                                                              for i in range(30)])))


def test_a_dry_run_prints_the_plan_and_changes_nothing(app, shop, env, tmp_path):
    path = _history(tmp_path)
    before = fingerprint(app)
    result = CliRunner().invoke(main, ["backfill", "--connection", str(shop.id), "--file", path,
                                       "--mode", "recent", "--days", "330", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "DRY RUN — nothing was changed" in result.output
    assert "order-25" in result.output and "USD 10.00" in result.output
    assert fingerprint(app) == before


def test_a_run_reports_what_it_recorded(app, shop, env, tmp_path):
    result = CliRunner().invoke(main, ["backfill", "--connection", str(shop.id), "--file", _history(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "30 orders" in result.output
    line = next(line for line in result.output.splitlines() if line.startswith("order-10 "))
    assert line.split()[1:4] == ["1", "0", "0"]  # recorded, celebrated, already
    assert count(services_of(app), Order) == 30


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--mode", "recent"], "needs --days"),
        (["--days", "3"], "only goes with --mode recent"),
        (["--source", "woocommerce"], "cannot read woocommerce history"),
        (["--source", "csv"], "needs --file"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(app, shop, env, arguments, message):
    result = CliRunner().invoke(main, ["backfill", "--connection", str(shop.id), *arguments])
    assert result.exit_code == 1 and message in result.output


def test_an_unknown_or_non_store_connection_is_refused(app, hubspot, env):
    for connection in (uuid.uuid4(), hubspot.id):
        result = CliRunner().invoke(main, ["backfill", "--connection", str(connection)])
        assert result.exit_code == 1
    assert "not a store" in result.output
