"""The Operations page: how the pipeline is doing, and putting stuck work back in line.

Four tabs: health (queue, inbox, outbox, last webhook per connection, the daily scan), the inbox
(every delivery, *Replay*), the effects (what was done or is to be done elsewhere, *Retry* a dead
one) and the tasks for people (*Mark done*). Lists and changes go through
:mod:`plugin.admin.operations`; another workspace's ids are simply not found (404).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Blueprint, flash, request
from flask.typing import ResponseReturnValue

from plugin.admin import connections as connection_service
from plugin.admin import effect_words
from plugin.admin import operations as service
from plugin.admin.errors import Invalid, NotFound
from plugin.admin.health import health
from plugin.db import utcnow
from plugin.models import Connection, Effect
from plugin.web.console import core, when

operations = Blueprint("operations", __name__, url_prefix="/operations")

PER_PAGE = 25
BIGINT = "int(max=9223372036854775807)"  # larger ids cannot exist: 404, not a database error
NOTES_MAX = 5000
BODY_SHOWN = 20_000  # characters of a delivery's body shown on the page
TABS = [("console.operations.index", "Health"), ("console.operations.inbox", "Inbox"),
        ("console.operations.effects", "Effects"), ("console.operations.tasks", "Tasks")]


when.install(operations)


@operations.context_processor
def _tabs() -> dict[str, Any]:
    return {"tabs": TABS}


@operations.get("/")
def index() -> ResponseReturnValue:
    services = core.services()
    figures = health(core.db(), core.workspace_id(), utcnow())
    queue = {"configured": services.redis is not None, "depth": services.queue.depth()}
    return core.page("console/operations.html", title="Operations", health=figures, queue=queue)


@operations.get("/inbox")
def inbox() -> ResponseReturnValue:
    db = core.db()
    every = {row.id: row for row in connection_service.every(db, core.workspace_id(), disconnected=True)}
    status = request.args.get("status") or None
    connection_id = _connection_filter(request.args.get("connection"), every)
    try:
        page = service.list_deliveries(db, core.workspace_id(), status=status, connection_id=connection_id,
                                       page=_page_number(), per_page=PER_PAGE)
    except Invalid as exc:
        return core.page("console/error.html", 400, title="Unknown filter", message=exc.message)
    rows = [{"row": row, "body": _pretty(row.body), "connection": every.get(row.connection_id)} for row in page.items]
    filters = {k: v for k, v in {"status": status, "connection": connection_id}.items() if v}
    connection_options = [("", "Any connection")] + [
        (str(c.id), c.name + (" (disconnected)" if c.status == connection_service.DISCONNECTED else ""))
        for c in every.values()
    ]
    return core.page("console/operations_inbox.html", title="Operations", page=page, rows=rows, filters=filters,
                     status_options=_options("Any status", service.INBOX_STATUSES),
                     connection_options=connection_options, replayable=service.REPLAYABLE)


@operations.post(f"/inbox/<{BIGINT}:delivery_id>/replay")
def replay(delivery_id: int) -> ResponseReturnValue:
    db = core.db()
    service.replay_delivery(db, core.workspace_id(), delivery_id)
    db.commit()
    from plugin.jobs.drain import drain_inbox

    core.services().queue.nudge(drain_inbox, "inbox", job_suffix=f"replay-{delivery_id}")
    flash(f"Delivery #{delivery_id} is queued to be processed again.", "success")
    return core.back("console.operations.inbox")


@operations.get("/effects")
def effects() -> ResponseReturnValue:
    db = core.db()
    status = request.args.get("status") or None
    kind = request.args.get("kind") or None
    try:
        page = service.list_effects(db, core.workspace_id(), status=status, kind=kind, page=_page_number(),
                                    per_page=PER_PAGE)
    except Invalid as exc:
        return core.page("console/error.html", 400, title="Unknown filter", message=exc.message)
    every = {row.id: row for row in connection_service.every(db, core.workspace_id(), disconnected=True)}
    about = service.milestones_of(db, page.items)
    currency = core.workspace().currency
    rows = [_effect_row(effect, about, every, currency) for effect in page.items]
    filters = {k: v for k, v in {"status": status, "kind": kind}.items() if v}
    kind_options = [("", "Any kind")] + [(k, _capital(effect_words.KIND_NAMES.get(k, k))) for k in service.EFFECT_KINDS]
    return core.page("console/operations_effects.html", title="Operations", page=page, rows=rows, filters=filters,
                     status_options=_options("Any status", service.EFFECT_STATUSES), kind_options=kind_options)


@operations.post(f"/effects/<{BIGINT}:effect_id>/retry")
def retry(effect_id: int) -> ResponseReturnValue:
    db = core.db()
    service.retry_effect(db, core.workspace_id(), effect_id)
    db.commit()
    from plugin.jobs.effects import run_effects

    core.services().queue.nudge(run_effects, "effects")
    flash(f"Effect #{effect_id} is being tried again.", "success")
    return core.back("console.operations.effects")


@operations.get("/tasks")
def tasks() -> ResponseReturnValue:
    db = core.db()
    page = service.open_tasks(db, core.workspace_id(), page=_page_number(), per_page=PER_PAGE)
    return core.page("console/operations_tasks.html", title="Operations", page=page,
                     rows=service.describe_tasks(db, page.items), notes_max=NOTES_MAX)


@operations.post(f"/tasks/<{BIGINT}:task_id>/done")
def done(task_id: int) -> ResponseReturnValue:
    notes = request.form.get("notes", "").strip()
    if len(notes) > NOTES_MAX:
        raise Invalid(f"Notes can be at most {NOTES_MAX} characters; nothing was changed.")
    db = core.db()
    task, changed = service.complete_task(db, core.workspace_id(), task_id, notes or None)
    db.commit()
    title = service.describe_tasks(db, [task])[0]["title"]
    flash(f"Done: {title}." if changed else f"“{title}” was already done.", "success" if changed else "info")
    return core.back("console.operations.tasks")


# --- helpers ---------------------------------------------------------------------------------


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _options(anything: str, values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [("", anything)] + [(value, value.replace("_", " ")) for value in values]


def _page_number() -> int:
    return max(1, request.args.get("page", 1, type=int) or 1)


def _connection_filter(raw: str | None, every: dict[uuid.UUID, Connection]) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        wanted = uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"no connection {raw}") from None
    if wanted not in every:
        raise NotFound(f"no connection {raw}")
    return wanted


def _pretty(body: str) -> str:
    """A delivery's body for a person: indented JSON when it is JSON, cut at :data:`BODY_SHOWN`."""
    try:
        text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        text = body
    return text if len(text) <= BODY_SHOWN else text[:BODY_SHOWN] + "\n… (cut here; the stored body is complete)"


def _effect_row(
    effect: Effect, about: dict[uuid.UUID, Any], every: dict[uuid.UUID, Connection], currency: str
) -> dict[str, Any]:
    milestone, customer = about.get(effect.milestone_id, (None, None))
    return {
        "row": effect,
        "what": effect_words.describe(effect, currency).label,
        "milestone": milestone,
        "customer": customer,
        "connection": every.get(effect.connection_id) if effect.connection_id else None,
    }
