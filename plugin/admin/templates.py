"""Celebration email templates as an admin edits them: listed, checked, saved, reset.

The defaults are the seeds' messages (:mod:`plugin.celebrations.templates`); a workspace's own
versions live in ``Workspace.settings["templates"][key]`` as ``{"subject", "text", "html"}``,
where the renderer looks for them. A template is refused before it is saved when

* it does not compile in the renderer's sandbox (syntax, an unknown filter);
* it names a variable the celebration context does not have — checked over *every* branch
  of the template, not only the one a sample customer takes: ``{{ frist_name }}`` and
  ``{{ milestone.nmae }}`` are found even inside an ``{% if %}`` that is false today;
* it fails to render against a sample context that has everything set (all rewards given).

So a typo is caught on the settings page, not as a permanent email failure at send time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.admin.celebration_preview import (
    Subject,
    context_of,
    customer_of,
    sample_context,
    subject_for,
    uses_template,
)
from plugin.admin.errors import Conflict, Invalid, NotFound
from plugin.admin.recognition import RecognitionSchema
from plugin.celebrations.render import RenderedEmail, ordinal, render
from plugin.celebrations.templates import DEFAULT_TEMPLATES, EmailTemplate, TemplateProblem
from plugin.models import Customer, MilestoneDefinition, Workspace

Source = Literal["default", "customised", "custom"]
PARTS = ("subject", "text", "html")
MAX_CHARS = {"subject": 1000, "text": 50_000, "html": 100_000}
_PARSER = SandboxedEnvironment()  # for reading a template's names; rendering uses the renderer's own
_PARSER.filters["ordinal"] = ordinal


@dataclass(frozen=True)
class TemplateEntry:
    key: str
    template: EmailTemplate
    source: Source  # the seeds' default, a workspace's version of it, or a workspace's own
    used_by: list[str]  # names of the definitions whose email action sends it


def _overrides(workspace: Workspace) -> dict[str, Any]:
    found = (workspace.settings or {}).get("templates") or {}
    return dict(found) if isinstance(found, dict) else {}


def find(workspace: Workspace, key: str) -> tuple[EmailTemplate, Source]:
    override = _overrides(workspace).get(key)
    if isinstance(override, dict):
        template = EmailTemplate(key, str(override.get("subject") or ""), str(override.get("text") or ""),
                                 override.get("html") or None)
        return template, "customised" if key in DEFAULT_TEMPLATES else "custom"
    if key in DEFAULT_TEMPLATES:
        return DEFAULT_TEMPLATES[key], "default"
    raise NotFound(f"no email template {key!r}")


def list_templates(session: Session, workspace: Workspace) -> list[TemplateEntry]:
    definitions = list(session.execute(
        select(MilestoneDefinition).where(MilestoneDefinition.workspace_id == workspace.id)
        .order_by(MilestoneDefinition.sort_order, MilestoneDefinition.key)
    ).scalars())
    keys = sorted({*DEFAULT_TEMPLATES, *_overrides(workspace)})
    entries = []
    for key in keys:
        template, source = find(workspace, key)
        entries.append(TemplateEntry(key, template, source, [d.name for d in definitions if uses_template(d, key)]))
    return entries


def check(key: str, subject: str, text: str, html: str | None) -> EmailTemplate:
    """The template, or :class:`Invalid` whose details say what is wrong with which part."""
    parts = {"subject": subject, "text": text, "html": html or None}
    errors: dict[str, str] = {}
    for part in ("subject", "text"):
        if not (parts[part] or "").strip():
            errors[part] = f"the {part} is required"
    for part, source in parts.items():
        if source is None or part in errors:
            continue
        if len(source) > MAX_CHARS[part]:
            errors[part] = f"at most {MAX_CHARS[part]:,} characters"
            continue
        problem = _static_problem(part, source)
        if problem:
            errors[part] = problem
    if errors:
        raise Invalid(_summary(errors), errors)
    template = EmailTemplate(key, subject, text, html or None)
    try:
        render(template, sample_context())
    except TemplateProblem as exc:
        raise Invalid(str(exc), {"template": str(exc)}) from exc
    return template


def _summary(errors: dict[str, str]) -> str:
    return "; ".join(f"{part}: {message}" for part, message in errors.items())


def save(workspace: Workspace, key: str, subject: str, text: str, html: str | None) -> EmailTemplate:
    template = check(key, subject, text, html)
    stored: dict[str, Any] = {"subject": template.subject, "text": template.text}
    if template.html:
        stored["html"] = template.html
    _store(workspace, {**_overrides(workspace), key: stored})
    return template


def create(workspace: Workspace, key: str, copy_from: str) -> EmailTemplate:
    """A new template of the workspace's own, starting as a copy of ``copy_from``."""
    try:
        RecognitionSchema().load({"kind": "email", "template": key})
    except ValidationError as exc:
        raise Invalid(f"template key: {exc.messages.get('template', ['invalid'])[0]}", {"key": "invalid"}) from exc  # type: ignore[union-attr]
    if key in DEFAULT_TEMPLATES or key in _overrides(workspace):
        raise Conflict(f"a template {key!r} exists already", {"key": "taken"})
    original, _ = find(workspace, copy_from)
    return save(workspace, key, original.subject, original.text, original.html)


def reset(session: Session, workspace: Workspace, key: str) -> Source:
    """Back to the seeds' default; a template of the workspace's own is deleted, unless a
    definition still sends it. Answers what the key is now ("default", or "custom" = gone)."""
    _, source = find(workspace, key)
    if source == "default":
        return source
    if source == "custom":
        users = [e for e in list_templates(session, workspace) if e.key == key][0].used_by
        if users:
            raise Conflict(f"{', '.join(users)} still send{'s' if len(users) == 1 else ''} {key!r}; "
                           "choose another email for it first", {"used_by": users})
    remaining = _overrides(workspace)
    remaining.pop(key, None)
    _store(workspace, remaining)
    return "default" if key in DEFAULT_TEMPLATES else "custom"


def _store(workspace: Workspace, templates: dict[str, Any]) -> None:
    settings = dict(workspace.settings or {})
    settings["templates"] = templates
    workspace.settings = settings  # a new dict: the JSON column does not track changes inside


def example_subject(workspace: Workspace, template: EmailTemplate) -> str | None:
    """The subject as the sample customer would read it, for the list (None: it does not render)."""
    try:
        return render(template, sample_context(workspace)).subject
    except TemplateProblem:
        return None


def preview(template: EmailTemplate, context: dict[str, Any]) -> RenderedEmail:
    """The email as it would be sent with ``context`` (TemplateProblem if it cannot be)."""
    return render(template, context)


# -- what a template may name --------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    names: frozenset[str]  # top-level variables
    fields: dict[str, frozenset[str]]  # the keys of the dict-valued ones (milestone, credit…)
    item_fields: dict[str, frozenset[str]]  # the keys of the items of the lists of dicts (rewards…)


@cache
def vocabulary() -> Vocabulary:
    """Read off a full sample context, so it follows :func:`celebration_context` as it changes."""
    context = sample_context()
    fields = {name: frozenset(value) for name, value in context.items() if isinstance(value, dict)}
    items = {name: frozenset().union(*(frozenset(v) for v in value)) for name, value in context.items()
             if isinstance(value, list) and value and all(isinstance(v, dict) for v in value)}
    return Vocabulary(frozenset(context) | {"subject"} | set(_PARSER.globals), fields, items)


def _static_problem(part: str, source: str) -> str | None:
    try:
        tree = _PARSER.parse(source)
        declared = meta.find_undeclared_variables(tree)  # compiles: an unknown filter fails here
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    words = vocabulary()
    names = words.names - ({"subject"} if part == "subject" else set())
    unknown = sorted(declared - names)
    if unknown:
        line = next((n.lineno for n in tree.find_all(nodes.Name) if n.name == unknown[0]), None)
        usable = ", ".join(sorted(words.names - set(_PARSER.globals) - {"subject"}))
        return f"unknown variable {unknown[0]!r}{_line(line)}; the email can use {usable}"
    # loop variables over a list of dicts: {% for reward in rewards %} → reward has what a reward has
    items = {n.target.name: words.item_fields[n.iter.name] for n in tree.find_all(nodes.For)
             if isinstance(n.iter, nodes.Name) and n.iter.name in words.item_fields and isinstance(n.target, nodes.Name)}
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        if not isinstance(node.node, nodes.Name):
            continue
        attribute = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if not isinstance(attribute, str):
            continue
        base = node.node.name
        known = items.get(base) or words.fields.get(base)
        if known is not None and attribute not in known:
            return f"unknown variable '{base}.{attribute}'{_line(node.lineno)}; {base} has {', '.join(sorted(known))}"
    return None


def _line(number: int | None) -> str:
    return f" (line {number})" if number else ""


# -- the live preview ------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailPreview:
    rendered: RenderedEmail | None
    problem: str | None  # why it could not be rendered (the admin's to fix)
    problems: dict[str, str]  # per part, for the editor to mark
    customer: Customer | None  # None: the sample customer (a workspace without customers)
    subject: Subject | None
    context: dict[str, Any]


def preview_for(session: Session, workspace: Workspace, template: EmailTemplate,
                customer_id: uuid.UUID | None = None) -> EmailPreview:
    """``template`` (saved or not) as ``customer_id`` would get it, with the real renderer.

    The customer is the workspace's (NotFound for another's); without one, the most recent
    milestone customer, or the sample customer when the workspace has none.
    """
    customer = customer_of(session, workspace.id, customer_id)
    if customer_id is not None and customer is None:
        raise NotFound(f"no customer {customer_id}")
    subject = None
    if customer is None:
        context = sample_context(workspace)
    else:
        subject = subject_for(session, workspace, customer, template=template.key)
        context = context_of(session, workspace, subject)
    try:
        check(template.key, template.subject, template.text, template.html)
        rendered = preview(template, context)
    except Invalid as exc:
        return EmailPreview(None, exc.message, dict(exc.details or {}), customer, subject, context)
    except TemplateProblem as exc:
        return EmailPreview(None, str(exc), {"template": str(exc)}, customer, subject, context)
    return EmailPreview(rendered, None, {}, customer, subject, context)
