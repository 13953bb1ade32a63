"""The definition fields of the refund policy and the credit hold (API and validation), and
migration 0006 on the embedded SQLite database, which must keep every row it finds."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from alembic import command

from plugin.models import MilestoneDefinition
from plugin.schema import alembic_config, upgrade
from tests.api.support import AUTH
from tests.conftest import services_of
from tests.support import count

NEW = {"name": "Breakfast Club", "type": "order", "condition": {"metric": "order_count", "gte": 15},
       "recognition": [{"kind": "store_credit", "amount": 10}]}


def test_a_definition_keeps_its_rewards_and_pays_at_once_unless_told_otherwise(client, workspace):
    body = client.post("/api/definitions", json=NEW, headers=AUTH).get_json()
    assert (body["refund_policy"], body["credit_hold_days"]) == ("keep", None)
    listed = client.get("/api/definitions?type=order", headers=AUTH).get_json()["items"]
    assert {d["refund_policy"] for d in listed} == {"keep"}


def test_the_refund_policy_and_hold_are_saved_and_changed(client, workspace):
    created = client.post("/api/definitions", json={**NEW, "refund_policy": "claw_back", "credit_hold_days": 14},
                          headers=AUTH)
    assert created.status_code == 201
    path = f"/api/definitions/{created.get_json()['id']}"
    assert client.get(path, headers=AUTH).get_json()["credit_hold_days"] == 14
    changed = client.patch(path, json={"refund_policy": "revoke", "credit_hold_days": None}, headers=AUTH).get_json()
    assert (changed["refund_policy"], changed["credit_hold_days"]) == ("revoke", None)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"refund_policy": "refund"}, "refund_policy", "unknown refund policy 'refund': use one of keep, claw_back, revoke"),
        ({"refund_policy": None}, "refund_policy", "Field may not be null"),
        ({"credit_hold_days": 366}, "credit_hold_days", "a credit hold is 0 to 365 days"),
        ({"credit_hold_days": -1}, "credit_hold_days", "a credit hold is 0 to 365 days"),
        ({"credit_hold_days": "14"}, "credit_hold_days", "Not a valid integer"),
        ({"credit_hold_days": 1.5}, "credit_hold_days", "Not a valid integer"),
    ],
)
def test_a_bad_policy_or_hold_is_refused_saying_why_and_changes_nothing(app, client, workspace, changes, field, message):
    created = client.post("/api/definitions", json={**NEW, **changes}, headers=AUTH)
    assert created.status_code == 400
    body = created.get_json()
    assert message in body["details"][field][0] and message in body["error"], body
    assert count(services_of(app), MilestoneDefinition) == 16  # the default catalogue only
    order_25 = next(d for d in client.get("/api/definitions", headers=AUTH).get_json()["items"] if d["key"] == "order-25")
    changed = client.patch(f"/api/definitions/{order_25['id']}", json=changes, headers=AUTH)
    assert changed.status_code == 400
    after = client.get(f"/api/definitions/{order_25['id']}", headers=AUTH).get_json()
    assert (after["refund_policy"], after["credit_hold_days"]) == ("keep", None)


# --- migration 0006 on SQLite ---------------------------------------------------------------

NOW = "2026-01-01 00:00:00.000000"


def _insert(db: sqlite3.Connection, table: str, **values: object) -> None:
    db.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})", list(values.values()))


def _populate_at_0005(path: Path) -> None:
    """A workspace with one milestone and its effect, written with 0005's columns."""
    workspace, customer, definition, milestone = (uuid.uuid4().hex for _ in range(4))
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys=ON")
    _insert(db, "workspaces", id=workspace, name="w", slug="w", timezone="UTC", currency="USD", admin_token_hash="h",
            settings="{}", created_at=NOW, updated_at=NOW)
    _insert(db, "customers", id=customer, workspace_id=workspace, properties="{}", created_at=NOW, updated_at=NOW)
    _insert(db, "milestone_definitions", id=definition, workspace_id=workspace, key="order-3", type="order",
            name="3rd Order", condition='{"metric": "order_count", "gte": 3}', enabled=1, recognition="[]",
            requires_review=0, escalate=0, significant=0, sort_order=0, created_at=NOW, updated_at=NOW)
    _insert(db, "customer_milestones", id=milestone, customer_id=customer, milestone_type="order",
            milestone_name="3rd Order", achieved_at=NOW, celebrated=0, created_at=NOW, workspace_id=workspace,
            definition_id=definition, occurrence=1, status="active", context="{}")
    _insert(db, "effects", workspace_id=workspace, milestone_id=milestone, kind="store_credit", idempotency_key="k",
            payload="{}", status="succeeded", attempts=1, next_attempt_at=NOW, created_at=NOW, updated_at=NOW)
    db.commit()
    db.close()


def _counts(path: Path) -> tuple[int, int, int]:
    db = sqlite3.connect(path)
    try:
        return tuple(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[return-value]
                     for t in ("milestone_definitions", "customer_milestones", "effects"))
    finally:
        db.close()


def test_migration_0006_upgrades_and_downgrades_sqlite_keeping_every_row(tmp_path):
    path = tmp_path / "embedded.sqlite3"
    url = f"sqlite:///{path}"
    upgrade(url, "0005")
    _populate_at_0005(path)
    upgrade(url, "0006")
    assert _counts(path) == (1, 1, 1)
    db = sqlite3.connect(path)
    assert db.execute("SELECT refund_policy, credit_hold_days FROM milestone_definitions").fetchall() == [("keep", None)]
    assert db.execute("SELECT order_id, reversed_at, revoked_at FROM customer_milestones").fetchall() == [(None, None, None)]
    assert db.execute("SELECT hold_reason FROM effects").fetchall() == [(None,)]
    references = db.execute("PRAGMA foreign_key_list(customer_milestones)").fetchall()
    assert any(r[2] == "orders" and r[3] == "order_id" and r[6] == "SET NULL" for r in references)
    db.close()
    command.downgrade(alembic_config(url), "0005")
    assert _counts(path) == (1, 1, 1)
    db = sqlite3.connect(path)
    assert "refund_policy" not in {r[1] for r in db.execute("PRAGMA table_info(milestone_definitions)")}
    db.close()
    upgrade(url)
    assert _counts(path) == (1, 1, 1)
