"""Rendering a celebration email in a sandboxed Jinja2: subject, HTML and plain text.

Templates may come from a workspace admin, so they run in :class:`SandboxedEnvironment`
(no ``__class__``/``__globals__`` walks, no unsafe calls, bounded ``range``) with a strict
undefined: a misspelt field is an error, not a silent blank in a customer's inbox. HTML is
autoescaped (a product called ``<b>Kale</b>`` arrives as text); the subject and text parts are
not HTML and are not escaped. Any failure — syntax, undefined name, blocked attribute, a runaway
loop's output — is a :class:`TemplateProblem`, which the email effect records as permanent.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import DictLoader, StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from plugin.celebrations.templates import LAYOUT, EmailTemplate, TemplateProblem

MAX_OUTPUT_CHARS = 256_000  # per part; a template that prints more is broken, not generous
SUBJECT_MAX_CHARS = 200
BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


def ordinal(value: Any) -> str:
    """10 → "10th", 21 → "21st", 112 → "112th"; anything that is not a whole number as is."""
    try:
        number = int(str(value))
    except ValueError:
        return str(value)
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _environment(*, autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        loader=DictLoader({"layout.html": LAYOUT}) if autoescape else None,
    )
    env.filters["ordinal"] = ordinal
    return env


_HTML = _environment(autoescape=True)
_PLAIN = _environment(autoescape=False)


@lru_cache(maxsize=256)
def _compiled(source: str, is_html: bool) -> Template:
    return (_HTML if is_html else _PLAIN).from_string(source)


def render(template: EmailTemplate, context: Mapping[str, Any]) -> RenderedEmail:
    """The three parts of ``template`` filled from ``context``; TemplateProblem if it cannot be."""
    subject = " ".join(_render(template, "subject", template.subject, context, is_html=False).split())
    if not subject:
        raise TemplateProblem(f"template {template.key!r}: the subject rendered empty")
    subject = subject[:SUBJECT_MAX_CHARS]
    with_subject = {**context, "subject": subject}
    text = BLANK_LINES.sub("\n\n", _render(template, "text", template.text, with_subject, is_html=False)).strip()
    if template.html is not None:
        body = _render(template, "html", template.html, with_subject, is_html=True).strip()
    else:
        body = _render(template, "html", LAYOUT, {**with_subject, "body": text_to_html(text)}, is_html=True).strip()
    return RenderedEmail(subject=subject, html=body + "\n", text=text + "\n")


def _render(template: EmailTemplate, part: str, source: str, context: Mapping[str, Any], *, is_html: bool) -> str:
    try:
        compiled = _compiled(source, is_html)
        out: list[str] = []
        size = 0
        for chunk in compiled.generate(**context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateProblem(f"template {template.key!r}: the {part} is longer than {MAX_OUTPUT_CHARS} characters")
            out.append(chunk)
        return "".join(out)
    except TemplateProblem:
        raise
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)  # syntax errors know where they are
        where = f" (line {line})" if line else ""
        raise TemplateProblem(f"template {template.key!r}, {part}{where}: {exc.message or type(exc).__name__}") from exc
    except Exception as exc:  # an admin's template must never crash the worker
        raise TemplateProblem(f"template {template.key!r}, {part}: {type(exc).__name__}: {exc}") from exc


def text_to_html(text: str) -> Markup:
    """Plain text as escaped paragraphs, for an override that gives no HTML part."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return Markup("\n".join(f"<p>{'<br>'.join(html.escape(line) for line in p.splitlines())}</p>" for p in paragraphs))
