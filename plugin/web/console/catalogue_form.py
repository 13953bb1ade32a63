"""The definition editor's form: what its fields hold, read back, and validated by the service.

The page is plain HTML forms, so everything an admin edits comes back as strings. This module
turns a definition into the editor's state (:func:`from_definition`) and a posted form into the
same state (:func:`from_form`); :func:`validate` hands the values to the service layer's
schema and the engine's parser, and maps their messages back onto the fields. The condition's
part of the form is :mod:`plugin.web.console.condition_form`. Nothing here decides what is
valid — :mod:`plugin.admin.definitions` and the engine do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict

from plugin.admin import definitions as service
from plugin.admin.errors import Invalid
from plugin.admin.recognition import RecognitionSchema, normalized
from plugin.engine.conditions import Condition, to_json
from plugin.models import MilestoneDefinition
from plugin.web.console.condition_form import (
    ConditionState,
    condition_from_form,
    condition_state,
    text,
    whole,
)

KIND_ORDER = ("store_credit", "discount_code", "customer_tag", "email", "task", "slack_alert", "crm_note")
REFUND_LABELS = {"keep": "Keep the rewards", "claw_back": "Claw back paid store credit",
                 "revoke": "Revoke the milestone and tell the CSM"}
# The form fields of each kind, and where the schema's message about a key is shown.
KIND_FIELDS = {
    "store_credit": ("amount", "currency", "expires_in_days"),
    "discount_code": ("discount_value", "discount_currency", "valid_days", "code_prefix"),
    "customer_tag": ("tags",), "task": ("title",), "email": ("template",), "slack_alert": ("channel", "ideas"),
    "crm_note": (),
}
ERROR_FIELD = {"discount_code": {"percentage": "discount_value", "amount": "discount_value",
                                 "currency": "discount_currency"},
               "customer_tag": {"tag": "tags"}}


@dataclass
class ActionRow:
    """One recognition action as the form holds it (strings); ``errors`` per field."""

    kind: str
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def action(self, currency: str) -> dict[str, Any]:
        """The action for the schema; what the kind does not take is left out."""
        v = {k: s.strip() for k, s in self.values.items()}
        data: dict[str, Any] = {"kind": self.kind}
        if self.kind == "store_credit":
            data.update(amount=v.get("amount", ""), currency=v.get("currency") or currency)
            if v.get("expires_in_days"):
                data["expires_in_days"] = whole(v["expires_in_days"])
            if v.get("notify") != "1":
                data["notify"] = False
        elif self.kind == "discount_code":
            if v.get("discount_type") == "amount":
                data.update(amount=v.get("discount_value", ""), currency=v.get("discount_currency") or currency)
            else:
                data["percentage"] = v.get("discount_value", "")
            if v.get("valid_days"):
                data["valid_days"] = whole(v["valid_days"])
            if v.get("code_prefix"):
                data["code_prefix"] = v["code_prefix"]
        elif self.kind == "customer_tag":
            tags = [t.strip() for t in v.get("tags", "").split(",") if t.strip()]
            data.update({"tags": tags} if len(tags) > 1 else {"tag": tags[0] if tags else ""})
        elif self.kind == "task":
            if v.get("title"):
                data["title"] = v["title"]
        elif self.kind == "email":
            data["template"] = v.get("template", "")
        elif self.kind == "slack_alert":
            if v.get("channel"):
                data["channel"] = v["channel"]
            ideas = [line.strip() for line in self.values.get("ideas", "").splitlines() if line.strip()]
            if ideas:
                data["ideas"] = ideas
        return data


def action_row(action: dict[str, Any], currency: str) -> ActionRow:
    kind = str(action.get("kind"))
    values: dict[str, str] = {}
    if kind == "store_credit":
        values = {"amount": text(action.get("amount")), "currency": text(action.get("currency") or currency),
                  "expires_in_days": text(action.get("expires_in_days")),
                  "notify": "" if action.get("notify") is False else "1"}
    elif kind == "discount_code":
        by_amount = action.get("amount") is not None
        values = {"discount_type": "amount" if by_amount else "percentage",
                  "discount_value": text(action.get("amount") if by_amount else action.get("percentage")),
                  "discount_currency": text(action.get("currency") or currency),
                  "valid_days": text(action.get("valid_days")), "code_prefix": text(action.get("code_prefix"))}
    elif kind == "customer_tag":
        values = {"tags": ", ".join(str(t) for t in (action.get("tags") or [action.get("tag") or ""]))}
    elif kind in ("task", "email"):
        key = "title" if kind == "task" else "template"
        values = {key: text(action.get(key))}
    elif kind == "slack_alert":
        values = {"channel": text(action.get("channel")), "ideas": "\n".join(action.get("ideas") or [])}
    return ActionRow(kind, values)


def blank_action(kind: str, currency: str) -> ActionRow:
    defaults: dict[str, dict[str, Any]] = {
        "store_credit": {"kind": kind, "amount": "", "currency": currency},
        "discount_code": {"kind": kind, "percentage": "", "valid_days": 7},
        "email": {"kind": kind, "template": "celebration"},
    }
    return action_row(defaults.get(kind, {"kind": kind}), currency)


@dataclass
class Editor:
    """Everything the editor shows: the definition's fields, as strings, and their errors."""

    name: str = ""
    type: str = "order"
    description: str = ""
    celebration_template: str = ""
    enabled: bool = True
    requires_review: bool = False
    escalate: bool = False
    significant: bool = False
    refund_policy: str = "keep"
    credit_hold_days: str = ""
    condition: ConditionState = field(default_factory=ConditionState)
    actions: list[ActionRow] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def blank(currency: str) -> Editor:
    return Editor(actions=[blank_action("crm_note", currency), blank_action("slack_alert", currency)])


def from_definition(row: MilestoneDefinition, currency: str) -> Editor:
    return Editor(
        name=row.name, type=row.type, description=row.description or "",
        celebration_template=row.celebration_template or "", enabled=row.enabled,
        requires_review=row.requires_review, escalate=row.escalate, significant=row.significant,
        refund_policy=row.refund_policy or "keep", credit_hold_days=text(row.credit_hold_days),
        condition=condition_state(row.condition),
        actions=[action_row(a, currency) for a in row.recognition or []],
    )


def from_form(form: MultiDict[str, str]) -> Editor:
    condition = condition_from_form(form)
    actions = []
    for i in sorted({int(k.split("-")[1]) for k in form if k.startswith("rec-") and k.endswith("-kind")
                     and k.split("-")[1].isdigit()}):
        prefix = f"rec-{i}-"
        values = {k[len(prefix):]: v for k, v in form.items() if k.startswith(prefix) and k != f"{prefix}kind"}
        actions.append(ActionRow(form.get(f"{prefix}kind", ""), values))
    return Editor(
        name=form.get("name", "").strip(), type=form.get("type", ""), description=form.get("description", "").strip(),
        celebration_template=form.get("celebration_template", ""), enabled=form.get("enabled") == "1",
        requires_review=form.get("requires_review") == "1", escalate=form.get("escalate") == "1",
        significant=form.get("significant") == "1", refund_policy=form.get("refund_policy", "keep"),
        credit_hold_days=form.get("credit_hold_days", "").strip(), condition=condition, actions=actions,
    )


@dataclass(frozen=True)
class Checked:
    """A form that passed: ``values`` for the service, and the parsed condition for the preview."""

    values: dict[str, Any]
    condition: Condition


def check_condition(editor: Editor) -> Condition | None:
    """The parsed condition, or None with the engine's message in ``editor.errors["condition"]``."""
    try:
        return service.parse(editor.condition.raw())
    except Invalid as exc:
        where = (exc.details or {}).get("condition") or {}
        message = where.get("message") or exc.message
        editor.errors["condition"] = f"{where['path']}: {message}" if where.get("path") else message
        return None


def draft(editor: Editor, currency: str) -> tuple[Condition, list[dict[str, Any]]] | None:
    """The condition and recognition alone, as a what-if needs them (a missing name is no reason
    not to preview); errors land on ``editor``."""
    parsed = check_condition(editor)
    try:
        recognition: list[dict[str, Any]] = RecognitionSchema(many=True).load(
            [a.action(currency) for a in editor.actions])
    except ValidationError as exc:
        _place(editor, {"recognition": exc.normalized_messages()})
        return None
    return None if parsed is None else (parsed, recognition)


def validate(editor: Editor, schema: Schema, currency: str) -> Checked | None:
    """Run the engine's parser and the service's schema; errors land on ``editor``."""
    parsed = check_condition(editor)
    data: dict[str, Any] = {
        "name": editor.name, "type": editor.type, "description": editor.description or None,
        "celebration_template": editor.celebration_template or None, "enabled": editor.enabled,
        "requires_review": editor.requires_review, "escalate": editor.escalate, "significant": editor.significant,
        "recognition": [a.action(currency) for a in editor.actions],
        "refund_policy": editor.refund_policy,
        "credit_hold_days": whole(editor.credit_hold_days) if editor.credit_hold_days else None,
    }
    if parsed is not None:
        data["condition"] = to_json(parsed)
    try:
        values = schema.load(data, partial=("condition",) if parsed is None else False)
    except ValidationError as exc:
        _place(editor, exc.normalized_messages())
        return None
    if parsed is None:
        return None
    return Checked(values, parsed)


def _place(editor: Editor, messages: dict[str, Any]) -> None:
    for name, problem in messages.items():
        if name == "recognition" and isinstance(problem, dict):
            for index, per_key in problem.items():
                if not isinstance(index, int) or index >= len(editor.actions):
                    continue
                row = editor.actions[index]
                for key, texts in (per_key.items() if isinstance(per_key, dict) else [("kind", per_key)]):
                    where = ERROR_FIELD.get(row.kind, {}).get(key, key)
                    if where not in KIND_FIELDS.get(row.kind, ()):
                        where = "kind"  # shown under the kind: "store_credit does not take …", "_schema"
                    row.errors.setdefault(where, _first(texts))
            continue
        if name != "condition":
            editor.errors[name] = _first(problem)


def _first(problem: Any) -> str:
    if isinstance(problem, list):
        return _first(problem[0]) if problem else ""
    if isinstance(problem, dict):
        return _first(next(iter(problem.values()), ""))
    return str(problem)


def fingerprint(condition: dict[str, Any], recognition: list[dict[str, Any]], enabled: bool, requires_review: bool,
                currency: str) -> str:
    """What a what-if preview was about: a save is confirmed only for the version previewed."""
    body = json.dumps([condition, normalized(recognition, currency), enabled, requires_review], sort_keys=True,
                      default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:24]


def needs_preview(row: MilestoneDefinition | None, values: dict[str, Any], currency: str) -> bool:
    """Enabling, or changing what an enabled definition asks for or gives, shows the what-if first."""
    enabled = values.get("enabled", row.enabled if row else True)
    if not enabled:
        return False
    if row is None or not row.enabled:
        return True
    return (service.canonical(row.condition) != values.get("condition")
            or normalized(row.recognition or [], currency) != normalized(values.get("recognition", []), currency)
            or row.requires_review != values.get("requires_review", row.requires_review))

