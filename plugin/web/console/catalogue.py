"""The milestone catalogue page: the definitions by type, their editor, and the what-if first.

Enabling a definition, creating an enabled one, or changing what an enabled one asks for or
gives shows the what-if (:func:`plugin.admin.preview.compare`) and saves only when the admin
confirms *that* version: the confirmation carries a fingerprint of what was previewed, so a
change made after the preview is previewed again instead of saved unseen. The editor works as
plain forms; :file:`static/catalogue.js` only makes the condition check, the form/JSON switch,
the action list and the preview happen without a reload, through the same endpoints.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from plugin.admin import definitions as service
from plugin.admin import templates as email_templates
from plugin.admin.errors import AdminError
from plugin.admin.preview import Draft, compare
from plugin.admin.recognition import KIND_LABELS, credit_amounts, describe_action
from plugin.engine.conditions import describe, to_json
from plugin.milestones.reversals import MAX_HOLD_DAYS, REFUND_POLICIES
from plugin.milestones.wording import format_money
from plugin.models import MilestoneDefinition
from plugin.web.console import catalogue_form as forms
from plugin.web.console import condition_form as conditions
from plugin.web.console import core

bp = Blueprint("catalogue", __name__, url_prefix="/catalogue")

TYPE_LABELS = {
    "order": "Order milestones", "spend": "Spend milestones", "time": "Anniversaries", "usage": "Usage",
    "adoption": "Adoption", "business": "Business outcomes", "custom": "Custom",
}
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Listed:
    row: MilestoneDefinition
    condition: str | None
    recognition: list[str]
    reached: int


def _definitions() -> list[MilestoneDefinition]:
    return list(core.db().execute(
        select(MilestoneDefinition).where(MilestoneDefinition.workspace_id == core.workspace_id())
        .order_by(MilestoneDefinition.sort_order, MilestoneDefinition.key)
    ).scalars())


@bp.get("/")
def index() -> ResponseReturnValue:
    currency = core.workspace().currency
    rows = _definitions()
    reached = service.customers_reached(core.db(), [r.id for r in rows])
    listed = [Listed(r, service.summary(r), [describe_action(a, currency) for a in r.recognition or []],
                     reached.get(r.id, 0)) for r in rows]
    groups = [(kind, TYPE_LABELS.get(kind, kind.title()), [d for d in listed if d.row.type == kind])
              for kind in service.TYPES]
    return core.page(
        "console/catalogue.html", title="Milestone catalogue",
        groups=[g for g in groups if g[2]], total=len(rows), enabled=sum(r.enabled for r in rows),
        review=sum(r.requires_review for r in rows), significant=sum(r.significant for r in rows),
        reached_total=sum(reached.values()),
    )


@bp.get("/new")
def new() -> ResponseReturnValue:
    return _editor(forms.blank(core.workspace().currency), None)


@bp.post("/new")
def create() -> ResponseReturnValue:
    return _submit(None)


@bp.get("/<uuid:definition_id>")
def edit(definition_id: uuid.UUID) -> ResponseReturnValue:
    row = service.get(core.db(), core.workspace_id(), definition_id)
    return _editor(forms.from_definition(row, core.workspace().currency), row)


@bp.post("/<uuid:definition_id>")
def save(definition_id: uuid.UUID) -> ResponseReturnValue:
    return _submit(service.get(core.db(), core.workspace_id(), definition_id))


@bp.post("/condition")
def check_condition() -> ResponseReturnValue:
    """The live check of the condition editor; with ``cond_action`` also its new HTML."""
    editor = forms.from_form(request.form)
    action = request.form.get("cond_action", "")
    if action:
        editor.condition = _condition_action(editor.condition, action)
    parsed = forms.check_condition(editor)
    answer: dict[str, Any] = {
        "valid": parsed is not None,
        "description": describe(parsed) if parsed is not None else None,
        "condition": to_json(parsed) if parsed is not None else None,
        "error": editor.errors.get("condition"),
    }
    if action:
        answer["html"] = render_template("console/catalogue_condition.html", editor=editor,
                                         **_choices(), description=answer["description"])
    return answer


@bp.post("/preview")
def preview() -> ResponseReturnValue:
    """The what-if panel for the editor's current (unsaved) version."""
    row = _posted_definition()
    editor = forms.from_form(request.form)
    return {"html": render_template("console/catalogue_impact.html", impact=_impact(editor, row, editable_days=True))}


@bp.get("/<uuid:definition_id>/enable")
def confirm_enable(definition_id: uuid.UUID) -> ResponseReturnValue:
    row = service.get(core.db(), core.workspace_id(), definition_id)
    if row.enabled:
        flash(f"{row.name} is already enabled.", "info")
        return redirect(url_for(".index"))
    editor = forms.from_definition(row, core.workspace().currency)
    editor.enabled = True
    return core.page("console/catalogue_enable.html", title=f"Enable {row.name}", row=row,
                     impact=_impact(editor, row, confirm_label=f"Enable {row.name}"))


@bp.post("/<uuid:definition_id>/enable")
def enable(definition_id: uuid.UUID) -> ResponseReturnValue:
    row = service.get(core.db(), core.workspace_id(), definition_id)
    currency = core.workspace().currency
    previewed = forms.fingerprint(service.canonical(row.condition) or {}, row.recognition or [], True,
                                  row.requires_review, currency)
    if request.form.get("confirm") != previewed:
        flash(f"{row.name} changed since its preview; check the impact again before enabling it.", "warning")
        return redirect(url_for(".confirm_enable", definition_id=row.id))
    row.enabled = True
    return _saved(row, f"{row.name} is enabled: customers who reach it from now on are celebrated.")


@bp.post("/<uuid:definition_id>/disable")
def disable(definition_id: uuid.UUID) -> ResponseReturnValue:
    row = service.get(core.db(), core.workspace_id(), definition_id)
    row.enabled = False
    return _saved(row, f"{row.name} is disabled: nobody is celebrated for it until it is enabled again.")


@bp.post("/<uuid:definition_id>/delete")
def delete(definition_id: uuid.UUID) -> ResponseReturnValue:
    db = core.db()
    row = service.get(db, core.workspace_id(), definition_id)
    name = row.name
    service.delete(db, row)  # refuses (Conflict) when milestones were recorded under it
    db.commit()
    flash(f"{name} is deleted.", "success")
    return redirect(url_for(".index"))


# -- the editor ---------------------------------------------------------------------------------


def _submit(row: MilestoneDefinition | None) -> ResponseReturnValue:
    editor = forms.from_form(request.form)
    intent = request.form.get("intent", "save")
    currency = core.workspace().currency
    if intent.startswith("cond:"):  # the condition editor's buttons, without JavaScript
        editor.condition = _condition_action(editor.condition, intent[len("cond:"):])
        return _editor(editor, row)
    if intent.startswith("rec:"):
        _action_list(editor, intent[len("rec:"):], currency)
        return _editor(editor, row)
    if intent == "preview":
        return _editor(editor, row, impact=_impact(editor, row, editable_days=True))
    checked = forms.validate(editor, service.NewDefinition() if row is None else service.DefinitionChanges(), currency)
    if checked is None:
        return _editor(editor, row, 400, problem="Nothing was saved: fix what is marked below.")
    values = checked.values
    if forms.needs_preview(row, values, currency):
        previewed = forms.fingerprint(values["condition"], values["recognition"], values["enabled"],
                                      values["requires_review"], currency)
        if request.form.get("confirm") != previewed:
            stale = bool(request.form.get("confirm"))
            return _editor(editor, row, impact=_impact(editor, row, editable_days=True), problem=(
                "You changed the definition after its preview: check the impact of this version, then confirm."
                if stale else "Check the impact below, then confirm to save."))
    db = core.db()
    if row is None:
        row = service.create(db, core.workspace_id(), values)
    else:
        service.update(row, values)
    return _saved(row, f"{row.name} is saved{'' if row.enabled else ' (disabled)'}.")


def _saved(row: MilestoneDefinition, message: str) -> ResponseReturnValue:
    """Commit a change to ``row``, say so, and go back to its line in the catalogue."""
    core.db().commit()
    flash(message, "success")
    return redirect(url_for(".index", _anchor=f"d-{row.key}"))


def _condition_action(state: conditions.ConditionState, action: str) -> conditions.ConditionState:
    if action.startswith("mode:"):
        return conditions.switch(state, action[len("mode:"):])
    if action == "add_row" and len(state.rows) < 20:
        state.rows.append(conditions.Row())
    elif action.startswith("remove_row:") and len(state.rows) > 1:
        index = action[len("remove_row:"):]
        if index.isdigit() and int(index) < len(state.rows):
            del state.rows[int(index)]
    return state


def _action_list(editor: forms.Editor, action: str, currency: str) -> None:
    kind = request.form.get("add_kind", "")
    if action == "add" and kind in KIND_LABELS and len(editor.actions) < 20:
        editor.actions.append(forms.blank_action(kind, currency))
    elif action.startswith("remove:") and action[len("remove:"):].isdigit():
        index = int(action[len("remove:"):])
        if index < len(editor.actions):
            del editor.actions[index]


def _posted_definition() -> MilestoneDefinition | None:
    raw = request.form.get("definition_id", "")
    if not raw:
        return None
    try:
        definition_id = uuid.UUID(raw)
    except ValueError:
        return None
    return service.get(core.db(), core.workspace_id(), definition_id)  # 404 for another workspace's


def _choices() -> dict[str, Any]:
    return {
        "metrics": service.known_metrics(core.db(), core.workspace_id()),
        "modes": conditions.MODE_LABELS, "ops": conditions.OPS, "units": conditions.UNITS,
    }


def _editor(editor: forms.Editor, row: MilestoneDefinition | None, status: int = 200, *,
            impact: dict[str, Any] | None = None, problem: str | None = None) -> ResponseReturnValue:
    workspace = core.workspace()
    description = None
    if "condition" not in editor.errors:
        try:  # said in words when it parses; its error is shown only once the admin acts
            description = describe(service.parse(editor.condition.raw()))
        except AdminError:
            description = None
    templates = [e.key for e in email_templates.list_templates(core.db(), workspace)]
    return core.page(
        "console/catalogue_edit.html", status, title=row.name if row else "New milestone", row=row, editor=editor,
        impact=impact, problem=problem, description=description, types=[(t, TYPE_LABELS[t]) for t in service.TYPES],
        kinds=[(k, KIND_LABELS[k]) for k in forms.KIND_ORDER], templates=templates, currency=workspace.currency,
        refund_policies=[(p, forms.REFUND_LABELS.get(p, p)) for p in REFUND_POLICIES], max_hold_days=MAX_HOLD_DAYS,
        blank_action=forms.blank_action("store_credit", workspace.currency), **_choices(),
    )


def _impact(editor: forms.Editor, row: MilestoneDefinition | None, *, confirm_label: str | None = None,
            editable_days: bool = False) -> dict[str, Any]:
    """What the impact panel shows: the what-if under each way of treating past customers."""
    workspace = core.workspace()
    days = _days(request.values.get("preview_days"))
    parts = forms.draft(editor, workspace.currency)
    if parts is None:
        return {"impact_error": editor.errors.get("condition") or "Fix the recognition marked in the form first.",
                "days": days}
    condition, recognition = parts
    draft = Draft(condition, recognition, editor.requires_review, row.id if row else None)
    scenarios = compare(core.db(), workspace, draft, days=days)
    per_milestone = credit_amounts(recognition, workspace.currency)
    return {
        "scenarios": scenarios, "days": days, "description": describe(condition),
        "per_milestone": [format_money(amount, code) for code, amount in sorted(per_milestone.items())],
        "per_milestone_counts": {kind: sum(1 for a in recognition if a["kind"] == kind)
                                 for kind in ("slack_alert", "email", "task")},
        "confirm": forms.fingerprint(to_json(condition), recognition, editor.enabled, editor.requires_review,
                                     workspace.currency),
        "confirm_label": confirm_label or ("Confirm and save" if row is None or row.enabled or not editor.enabled
                                           else "Confirm, save and enable"),
        "money": _money, "editable_days": editable_days,
    }


def _money(entries: list[dict[str, str]]) -> str:
    if not entries:
        return "—"
    return " + ".join(format_money(Decimal(e["amount"]), e["currency"]) for e in entries)


def _days(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 1 <= int(raw) <= 3650 else DEFAULT_DAYS
