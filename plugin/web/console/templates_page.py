"""The templates page: the celebration emails and PRD-114's Slack alert, previewed for a real customer.

An email template is edited as the celebrations module stores it (subject, plain text, optional
HTML) and checked by :mod:`plugin.admin.templates` before it is saved; the preview runs the
real sandboxed renderer with the context of a customer of the workspace (the admin picks one by
email or from the latest milestone customers). The Slack alert's layout is PRD-114's and is not
edited here: its preview draws the blocks the connector would post.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from plugin.admin import celebration_preview as previews
from plugin.admin import templates as service
from plugin.admin.alert_preview import blocks_html
from plugin.admin.errors import Invalid, NotFound
from plugin.celebrations.templates import DEFAULT_TEMPLATES, EmailTemplate
from plugin.models import Customer, MilestoneDefinition
from plugin.web.console import core

bp = Blueprint("templates", __name__, url_prefix="/templates")

SOURCE_LABELS = {"default": ("Default", "neutral"), "customised": ("Customised", "info"), "custom": ("Your own", "good")}


@bp.get("/")
def index() -> ResponseReturnValue:
    workspace = core.workspace()
    entries = service.list_templates(core.db(), workspace)
    alerting = [d for d in _definitions() if any(a.get("kind") == "slack_alert" for a in d.recognition or [])]
    examples = {e.key: service.example_subject(workspace, e.template) for e in entries}
    return core.page("console/templates.html", title="Templates", entries=entries, sources=SOURCE_LABELS,
                     alerting=alerting, examples=examples)


@bp.post("/new")
def create() -> ResponseReturnValue:
    key = request.form.get("key", "").strip()
    template = service.create(core.workspace(), key, request.form.get("copy_from") or "celebration")
    core.db().commit()
    flash(f"Template {template.key} is created from a copy; make it yours.", "success")
    return redirect(url_for(".edit", key=template.key))


@bp.get("/email/<key>")
def edit(key: str) -> ResponseReturnValue:
    template, source = service.find(core.workspace(), key)
    return _editor(template, source, _customer_id(request.args.get("customer")))


@bp.post("/email/<key>")
def save(key: str) -> ResponseReturnValue:
    workspace = core.workspace()
    _, source = service.find(workspace, key)
    typed = _typed(key)
    customer_id = _customer_id(request.form.get("customer"))
    if request.form.get("intent") == "preview":
        return _editor(typed, source, customer_id)
    try:
        service.save(workspace, key, typed.subject, typed.text, typed.html)
    except Invalid as exc:
        return _editor(typed, source, customer_id, status=400, problem=f"Not saved: {exc.message}",
                       problems=dict(exc.details or {}))
    core.db().commit()
    flash(f"Template {key} is saved: the next celebration emails use it.", "success")
    return redirect(url_for(".edit", key=key, customer=customer_id or None))


@bp.post("/email/<key>/preview")
def preview(key: str) -> ResponseReturnValue:
    """The live preview of what is typed (not saved), as HTML for the page to swap in."""
    service.find(core.workspace(), key)  # 404 for a template that does not exist
    return {"html": render_template("console/templates_preview.html",
                                    **_preview(_typed(key), _customer_id(request.form.get("customer"))))}


@bp.post("/email/<key>/reset")
def reset(key: str) -> ResponseReturnValue:
    now = service.reset(core.db(), core.workspace(), key)
    core.db().commit()
    if now == "default":
        flash(f"Template {key} is back to the default.", "success")
        return redirect(url_for(".edit", key=key))
    flash(f"Template {key} is deleted.", "success")
    return redirect(url_for(".index"))


@bp.get("/customers")
def customers() -> ResponseReturnValue:
    """Customers to preview with: matching ``q``, else the latest milestone customers."""
    found = previews.customer_choices(core.db(), core.workspace_id(), request.args.get("q", "")[:100])
    return {"customers": [_choice(c) for c in found]}


@bp.get("/slack")
def slack() -> ResponseReturnValue:
    workspace = core.workspace()
    definitions = [d for d in _definitions() if any(a.get("kind") == "slack_alert" for a in d.recognition or [])]
    definition_id = _uuid(request.args.get("definition"))
    if definition_id is not None and definition_id not in {d.id for d in definitions}:
        raise NotFound(f"no milestone definition {definition_id} with a Slack alert")
    customer = _customer(_customer_id(request.args.get("customer")))
    shown = previews.alert_preview(core.db(), workspace, customer,
                                   definition_id or (definitions[0].id if definitions else None))
    return core.page(
        "console/templates_slack.html", title="Slack alert", preview=shown, blocks=blocks_html(shown.blocks),
        definitions=definitions, customer=customer,
        choices=_choices(customer), definition=shown.subject.definition,
    )


# -- helpers --------------------------------------------------------------------------------------


def _definitions() -> list[MilestoneDefinition]:
    return list(core.db().execute(
        select(MilestoneDefinition).where(MilestoneDefinition.workspace_id == core.workspace_id())
        .order_by(MilestoneDefinition.sort_order, MilestoneDefinition.key)
    ).scalars())


def _typed(key: str) -> EmailTemplate:
    form = request.form
    return EmailTemplate(key, form.get("subject", ""), form.get("text", "").replace("\r\n", "\n"),
                         form.get("html", "").replace("\r\n", "\n") or None)


def _uuid(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


def _customer_id(raw: str | None) -> uuid.UUID | None:
    if raw and _uuid(raw) is None:
        raise NotFound(f"no customer {raw}")
    return _uuid(raw)


def _customer(customer_id: uuid.UUID | None) -> Customer | None:
    found = previews.customer_of(core.db(), core.workspace_id(), customer_id)
    if customer_id is not None and found is None:
        raise NotFound(f"no customer {customer_id}")
    return found


def _choice(customer: Customer) -> dict[str, str]:
    name = customer.display_name
    label = name if not customer.email or name == customer.email else f"{name} <{customer.email}>"
    return {"id": str(customer.id), "label": label, "email": customer.email or ""}


def _choices(current: Customer | None) -> list[dict[str, str]]:
    """The customer picker's options: those matching the search typed (``q``), else the latest."""
    query = request.values.get("q", "")[:100]
    listed = [_choice(c) for c in previews.customer_choices(core.db(), core.workspace_id(), query)]
    if current is not None and str(current.id) not in {c["id"] for c in listed}:
        listed.insert(0, _choice(current))
    return listed


def _preview(template: EmailTemplate, customer_id: uuid.UUID | None) -> dict[str, Any]:
    shown = service.preview_for(core.db(), core.workspace(), template, customer_id)
    return {"preview": shown, "variables": _variables(shown.context)}


def _variables(context: dict[str, Any]) -> list[tuple[str, Any]]:
    """What a template can say, with this customer's values: ``milestone.name`` → "10th Order"."""
    listed: list[tuple[str, Any]] = []
    for name, value in context.items():
        if isinstance(value, dict):
            listed += [(f"{name}.{k}", v) for k, v in value.items()]
        elif name == "rewards":
            listed.append((name, [r.get("line") for r in value] or "none given"))
        else:
            listed.append((name, value))
    return listed


def _editor(template: EmailTemplate, source: str, customer_id: uuid.UUID | None, *, status: int = 200,
            problem: str | None = None, problems: dict[str, str] | None = None) -> ResponseReturnValue:
    shown = _preview(template, customer_id)
    customer = shown["preview"].customer
    return core.page(
        "console/templates_edit.html", status, title=f"Email: {template.key}", email=template, source=source,
        sources=SOURCE_LABELS, problem=problem, problems=problems or {}, has_default=template.key in DEFAULT_TEMPLATES,
        choices=_choices(customer), customer=customer, **shown,
    )
