"""The Connections page: one card per platform, each connection's health and settings, and the
actions on it (save, test, re-register webhooks, disconnect), all through :mod:`plugin.admin`.

A refused form is shown again with its errors next to the fields, what was typed kept (secrets
excepted), status 400 (409 when the shop is already connected), and nothing saved.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue

from plugin import connections as connection_cache
from plugin import webhook_subscriptions
from plugin.admin import connections as service
from plugin.admin.errors import AdminError, NotFound
from plugin.models import Connection
from plugin.web.console import connection_forms as forms
from plugin.web.console import core, when

connections = Blueprint("connections", __name__, url_prefix="/connections")
CHANGED = timedelta(minutes=1)  # a connection saved later than this after it was made shows "changed …"
when.install(connections)


@connections.get("/")
def index() -> ResponseReturnValue:
    return _render()


@connections.post("/new/<platform>")
def create(platform: str) -> ResponseReturnValue:
    info = _platform(platform)
    submitted = forms.read(request.form, info, creating=True)
    target = f"new-{platform}"
    if not submitted.ok:
        return _render(_refused(target, submitted), 400)
    db = core.db()
    try:
        row = service.create(db, core.services().secrets, core.workspace_id(), platform=platform,
                             name=submitted.name, settings=submitted.settings)
    except AdminError as exc:
        return _refused_by_service(target, submitted, exc)
    return _saved(row, f"{row.name} is connected.")


@connections.post("/<uuid:connection_id>")
def save(connection_id: uuid.UUID) -> ResponseReturnValue:
    db = core.db()
    row = service.get(db, core.workspace_id(), connection_id)
    submitted = forms.read(request.form, _platform(row.platform), creating=False)
    target = str(row.id)
    if not submitted.ok:
        return _render(_refused(target, submitted), 400)
    try:
        service.update(db, core.services().secrets, row, name=submitted.name, settings=submitted.settings)
    except AdminError as exc:
        return _refused_by_service(target, submitted, exc)
    return _saved(row, f"{row.name}: settings saved.")


@connections.post("/<uuid:connection_id>/test")
def test(connection_id: uuid.UUID) -> ResponseReturnValue:
    db = core.db()
    row = service.get(db, core.workspace_id(), connection_id)
    ok, problem = service.check(row, core.services().secrets)
    service.record_check(row, ok, problem)
    db.commit()
    if ok:
        flash(f"{row.name}: connection OK — {_title(row.platform)} accepted the credentials.", "success")
    else:
        flash(f"{row.name}: the test failed — {problem}", "error")
    return _to(row.id)


@connections.post("/<uuid:connection_id>/webhooks")
def register(connection_id: uuid.UUID) -> ResponseReturnValue:
    db = core.db()
    row = service.get(db, core.workspace_id(), connection_id)
    if not webhook_subscriptions.supports_registration(row.platform):
        flash(f"{_title(row.platform)} webhooks are set up in {_title(row.platform)} itself, not from here.", "error")
        return _to(row.id)
    if not service.registers_webhooks(row):
        flash(f"{row.name} is {row.status}: save its settings with fresh credentials first.", "error")
        return _to(row.id)
    db.commit()  # end the read: the registration records its outcome in a session of its own
    _register_and_tell(row)
    return _to(row.id)


@connections.post("/<uuid:connection_id>/disconnect")
def disconnect(connection_id: uuid.UUID) -> ResponseReturnValue:
    db = core.db()
    row = service.get(db, core.workspace_id(), connection_id)
    service.disconnect(row)
    db.commit()
    connection_cache.forget()
    flash(f"{row.name} is disconnected. Its webhooks are ignored from now on; its history stays.", "info")
    return redirect(url_for(".index"))


# --- helpers ---------------------------------------------------------------------------------


def _platform(name: str) -> dict[str, Any]:
    found = next((p for p in forms.catalogue() if p["platform"] == name), None)
    if found is None:
        raise NotFound(f"There is no platform called {name!r}.")
    return found


def _title(platform: str) -> str:
    return forms.TEXT[platform].title if platform in forms.TEXT else platform


def _to(connection_id: uuid.UUID) -> ResponseReturnValue:
    return redirect(url_for(".index", _anchor=f"connection-{connection_id}"))


def _saved(row: Connection, message: str) -> ResponseReturnValue:
    """An accepted form: commit, drop the cached connections, say so, (re-)register the webhooks
    and go back to the connection."""
    core.db().commit()
    connection_cache.forget()
    flash(message, "success")
    _register_and_tell(row)
    return _to(row.id)


def _register_and_tell(row: Connection) -> None:
    """Register the platform's webhooks (after the commit: the registration records its outcome
    in a session of its own) and say how it went."""
    if not service.registers_webhooks(row):
        return
    outcome = webhook_subscriptions.register(core.services(), row.id)
    failed = [status for status in outcome.values() if forms.topic_tone(status) == "bad"]
    if failed:
        flash(f"{row.name}: {len(failed)} of {len(outcome)} webhook topics could not be registered — {failed[0]}",
              "error")
        return
    ready = sum(1 for status in outcome.values() if forms.topic_tone(status) == "good")
    flash(f"{row.name}: {ready} webhook topics registered with {_title(row.platform)}.", "success")


def _refused(target: str, submitted: forms.Submitted) -> dict[str, Any]:
    return {"target": target, "name": submitted.name, "values": submitted.shown, "errors": submitted.errors}


def _refused_by_service(target: str, submitted: forms.Submitted, exc: AdminError) -> ResponseReturnValue:
    core.db().rollback()
    errors = forms.field_errors(exc.details)
    form = _refused(target, submitted)
    form["errors"] = errors
    form["message"] = None if errors else exc.message
    return _render(form, 400 if exc.status == 404 else exc.status)


def _render(form: dict[str, Any] | None = None, status: int = 200) -> ResponseReturnValue:
    db = core.db()
    workspace_id = core.workspace_id()
    rows = service.every(db, workspace_id)
    heard = service.last_webhooks(db, workspace_id)
    cards = []
    for platform in forms.catalogue():
        mine = [_describe(row, platform, heard) for row in rows if row.platform == platform["platform"]]
        cards.append({"platform": platform, "connections": mine, "defaults": forms.defaults(platform)})
    return core.page(
        "console/connections.html", status, title="Connections", form=form,
        connected=[c for c in cards if c["connections"]], available=[c for c in cards if not c["connections"]],
        count=len(rows),
    )


def _describe(row: Connection, platform: dict[str, Any], heard: dict[uuid.UUID, Any]) -> dict[str, Any]:
    state = row.webhook_status or {}
    values = service.form_values(row, core.services().secrets)
    # Which account this is, at a glance: the required settings that are not secret (shop, channel…).
    identity = [(f["label"], values[f["name"]]) for f in platform["basic_fields"]
                if f["required"] and not f["secret"] and values.get(f["name"])]
    topics = state.get("topics") or {}
    changed = row.updated_at is not None and row.created_at is not None and row.updated_at - row.created_at > CHANGED
    return {
        "row": row,
        "changed": changed,
        "anchor": f"connection-{row.id}",
        "prefix": f"c-{row.id.hex}",
        "webhook_url": service.webhook_url(core.services().settings.public_url, row.platform, row.id),
        "values": values,
        "identity": identity,
        "topics": [(topic, topics[topic], forms.topic_tone(topics[topic])) for topic in forms.in_order(row.platform, topics)],
        "topics_checked_at": state.get("checked_at"),
        "check": state.get("check"),
        "reconcile": state.get("reconcile"),
        "last_webhook_at": heard.get(row.id),
        "registers": service.registers_webhooks(row),
    }
