"""Slack Block Kit as HTML, so the settings page shows PRD-114's alert as Slack would.

It renders the blocks :func:`connectors.slack.alert_blocks` builds — the very list posted to
``chat.postMessage`` — so the preview cannot drift from what is sent. Only what those blocks
use is drawn: header, section (mrkdwn), actions (buttons), divider, context. Everything is
escaped: mrkdwn's ``&amp; &lt; &gt;`` are undone, then the text is escaped again for HTML.
"""

from __future__ import annotations

import html
import re
from typing import Any

from markupsafe import Markup

EMOJI = {
    "trophy": "🏆", "email": "📧", "bird": "🐦", "gift": "🎁", "memo": "📝", "sparkles": "✨",
    "tada": "🎉", "star": "⭐", "rocket": "🚀", "heart": "❤️", "white_check_mark": "✅", "calendar": "📅",
}
_CONTROL = re.compile(r"<([^<>\n]*)>")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
_CODE = re.compile(r"`([^`\n]+)`")
_SHORTCODE = re.compile(r":([a-z0-9_+-]+):")


def emoji(text: str) -> str:
    return _SHORTCODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def _styled(piece: str) -> str:
    text = html.escape(piece.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"), quote=False)
    text = _CODE.sub(r"<code>\1</code>", text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    text = _ITALIC.sub(r"<em>\1</em>", text)
    text = _STRIKE.sub(r"<s>\1</s>", text)
    return emoji(text)


def _control(inner: str) -> str:
    """``<@U123>`` a mention, ``<#C1|name>`` a channel, ``<https://…|label>`` a link."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return f'<span class="slack-mention">@{html.escape(label or target[1:])}</span>'
    if target.startswith("#"):
        return f'<span class="slack-mention">#{html.escape(label or target[1:])}</span>'
    if target.startswith(("http://", "https://", "mailto:")):
        return f'<a href="{html.escape(target)}" rel="noopener noreferrer">{html.escape(label or target)}</a>'
    return html.escape(f"<{inner}>")


def mrkdwn_html(text: str) -> Markup:
    pieces = _CONTROL.split(text)
    rendered = "".join(_control(p) if i % 2 else _styled(p) for i, p in enumerate(pieces))
    return Markup(rendered.replace("\n", "<br>"))


def blocks_html(blocks: list[dict[str, Any]]) -> Markup:
    out: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            out.append(f'<div class="slack-header">{emoji(html.escape(block["text"]["text"], quote=False))}</div>')
        elif kind == "section":
            out.append(f'<div class="slack-section">{mrkdwn_html(block["text"]["text"])}</div>')
        elif kind == "divider":
            out.append('<hr class="slack-divider">')
        elif kind == "context":
            parts = [mrkdwn_html(e.get("text", "")) for e in block.get("elements", [])]
            out.append(f'<div class="slack-context">{" ".join(parts)}</div>')
        elif kind == "actions":
            buttons = "".join(
                f'<span class="slack-button{" slack-" + e["style"] if e.get("style") else ""}">'
                f'{emoji(html.escape(e["text"]["text"], quote=False))}</span>'
                for e in block.get("elements", []) if e.get("type") == "button"
            )
            out.append(f'<div class="slack-actions">{buttons}</div>')
    return Markup("\n".join(out))
