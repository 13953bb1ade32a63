"""The default celebration emails — the seeds' own messages — and how a workspace overrides them.

RHF's tracker gives three messages (first-order welcome, 10th order, 1-year anniversary) and
names a thank-you note for $500 spent; PRD-114 asks for a celebration email with messages
suggested by milestone type (US-2). Each is a subject, a plain-text body and an HTML body in
Jinja2, rendered by :mod:`plugin.celebrations.render` in a sandbox.

The seeds' texts promise things this plugin does not know (a delivery window, "local farms
supported") or rewards it may not have applied ("$5 credit added"). The defaults keep the
seeds' words but only say what is known: a reward line appears only when that reward's effect
succeeded, with its real amount and code, and data we do not have is left out.

Overrides live in ``Workspace.settings["templates"][key]`` as ``{"subject": …, "text": …,
"html": …}``. ``subject`` and ``text`` are required; without ``html`` the HTML part is made
from the rendered text inside the default layout. An override may ``{% extends "layout.html" %}``
and fill ``{% block body %}``. A workspace may also add keys of its own for its own definitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class TemplateProblem(Exception):
    """A template is missing, malformed or failed to render: the admin must fix it (permanent)."""


@dataclass(frozen=True)
class EmailTemplate:
    key: str
    subject: str
    text: str
    html: str | None  # None: made from the rendered text in the layout


LAYOUT = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ subject }}</title>
</head>
<body style="margin:0;padding:0;background:#f5f4ef;">
<div style="max-width:560px;margin:0 auto;padding:32px 24px;font-family:Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5;color:#222;">
{% block body %}{{ body }}{% endblock %}
</div>
</body>
</html>
"""

# Reward lines, shared by the bodies below ({{ reward.line }} is "$5 credit added to account").
_REWARDS_TEXT = """{% for reward in rewards %}
- {{ reward.line }}
{% endfor %}"""
_REWARDS_HTML = """<ul>
{% for reward in rewards %}
<li>{{ reward.line }}</li>
{% endfor %}
</ul>"""
# The other milestones of one combined email (several crossed at once: plugin.milestones.combined).
_ALSO_TEXT = """{% if also_reached %}

And there's more to celebrate: you've also reached the {{ also_reached_text }} milestone{{ "s" if also_reached|length > 1 else "" }}.
{% endif %}
"""
_ALSO_HTML = """{% if also_reached %}
<p>And there's more to celebrate: you've also reached the <strong>{{ also_reached_text }}</strong> milestone{{ "s" if also_reached|length > 1 else "" }}.</p>
{% endif %}
"""

# RHF "Communications: First Order Welcome". The delivery window ("Delivery: [Day] [Window]")
# is not in any order data we receive, so it is left to a workspace override.
FIRST_ORDER_WELCOME = EmailTemplate(
    key="first-order-welcome",
    subject="Welcome to the {{ store_name }} family{% if first_name %}, {{ first_name }}{% endif %}!",
    text="""Welcome to the {{ store_name }} family{% if first_name %}, {{ first_name }}{% endif %}!

Your first order is on its way.
We're so glad you chose local.
""" + _ALSO_TEXT + """{% if rewards %}

A little welcome from us:
""" + _REWARDS_TEXT + """
{% endif %}

Questions? Reply anytime!
-The {{ store_name }} Team
""",
    html="""{% extends "layout.html" %}
{% block body %}
<h1 style="font-size:22px;">Welcome to the {{ store_name }} family{% if first_name %}, {{ first_name }}{% endif %}!</h1>
<p>Your first order is on its way.<br>We're so glad you chose local.</p>
""" + _ALSO_HTML + """{% if rewards %}
<p>A little welcome from us:</p>
""" + _REWARDS_HTML + """
{% endif %}
<p>Questions? Reply anytime!</p>
<p>-The {{ store_name }} Team</p>
{% endblock %}
""",
)

# RHF "Communications: 10th Order", for any order-count milestone. RHF's table gives the 10th
# order a thank-you email while its text promises "$5 credit added": the credit line is there
# only when a credit effect of this milestone succeeded, with the amount that was applied.
ORDER_THANK_YOU = EmailTemplate(
    key="order-thank-you",
    subject="{% if first_name %}{{ first_name }}, this{% else %}This{% endif %} is your {{ milestone.ordinal }} order!",
    text="""Hi {{ first_name or "there" }}, this is your {{ milestone.ordinal }} order!

Thank you for making us part of your weekly routine. It means a lot.
""" + _ALSO_TEXT + """{% if rewards %}

As a small thank you:
""" + _REWARDS_TEXT + """
{% endif %}
{% if favourite_products %}

Your favourites so far: {{ favourite_products_text }}.
{% endif %}

Keep enjoying the freshest local produce. See you next delivery!
-The {{ store_name }} Team
""",
    html="""{% extends "layout.html" %}
{% block body %}
<p>Hi {{ first_name or "there" }}, this is your {{ milestone.ordinal }} order!</p>
<p>Thank you for making us part of your weekly routine. It means a lot.</p>
""" + _ALSO_HTML + """{% if rewards %}
<p>As a small thank you:</p>
""" + _REWARDS_HTML + """
{% endif %}
{% if favourite_products %}
<p>Your favourites so far: {{ favourite_products_text }}.</p>
{% endif %}
<p>Keep enjoying the freshest local produce. See you next delivery!</p>
<p>-The {{ store_name }} Team</p>
{% endblock %}
""",
)

# RHF "Spend Milestones: $500 → Thank you note" (the seed names it but gives no text).
THANK_YOU_NOTE = EmailTemplate(
    key="thank-you-note",
    subject="A thank-you note from {{ store_name }}",
    text="""Dear {{ first_name or "friend" }},

A quick note to say thank you. {% if time_as_customer %}In {{ time_as_customer }} with us you have placed{% else %}You have placed{% endif %} {{ order_count }} order{{ "" if order_count == 1 else "s" }}, {{ lifetime_value }} in all, and every one of them helps keep local growers going.
""" + _ALSO_TEXT + """{% if favourite_products %}

We've noticed you love {{ favourite_products_text }}. Good taste!
{% endif %}
{% if rewards %}

For you, with our thanks:
""" + _REWARDS_TEXT + """
{% endif %}

With gratitude,
The {{ store_name }} Team
""",
    html="""{% extends "layout.html" %}
{% block body %}
<p>Dear {{ first_name or "friend" }},</p>
<p>A quick note to say thank you. {% if time_as_customer %}In {{ time_as_customer }} with us you have placed{% else %}You have placed{% endif %} {{ order_count }} order{{ "" if order_count == 1 else "s" }}, {{ lifetime_value }} in all, and every one of them helps keep local growers going.</p>
""" + _ALSO_HTML + """{% if favourite_products %}
<p>We've noticed you love {{ favourite_products_text }}. Good taste!</p>
{% endif %}
{% if rewards %}
<p>For you, with our thanks:</p>
""" + _REWARDS_HTML + """
{% endif %}
<p>With gratitude,<br>The {{ store_name }} Team</p>
{% endblock %}
""",
)

# RHF "Communications: 1 Year Anniversary". "Celebrate with 20% off: YEAR1, valid for 7 days"
# shows the code that was actually created, only if it was; "Local farms supported" is not data
# we have and is left out.
ANNIVERSARY_1Y = EmailTemplate(
    key="anniversary-1y",
    subject="Happy Anniversary{% if first_name %} {{ first_name }}{% endif %}!",
    text="""Happy Anniversary{% if first_name %} {{ first_name }}{% endif %}!

It's been one year since you joined the {{ store_name }} family.
""" + _ALSO_TEXT + """
What a year:
- Orders: {{ order_count }}
- Items delivered: {{ items_count }}
{% if favourite_products %}
- Your favourites: {{ favourite_products_text }}
{% endif %}
{% if discount %}

Celebrate with {{ discount.label }}: {{ discount.code }}
{% if discount.valid_days %}
Valid for {{ discount.valid_days }} day{{ "" if discount.valid_days == 1 else "s" }}.
{% elif discount.expires_on %}
Valid until {{ discount.expires_on }}.
{% endif %}
{% endif %}
{% for reward in rewards if reward.kind != "discount_code" %}
{% if loop.first %}

And from us:
{% endif %}
- {{ reward.line }}
{% endfor %}

Thanks for a wonderful first year!
-The {{ store_name }} Team
""",
    html="""{% extends "layout.html" %}
{% block body %}
<h1 style="font-size:22px;">Happy Anniversary{% if first_name %} {{ first_name }}{% endif %}!</h1>
<p>It's been one year since you joined the {{ store_name }} family.</p>
""" + _ALSO_HTML + """<p>What a year:</p>
<ul>
<li>Orders: {{ order_count }}</li>
<li>Items delivered: {{ items_count }}</li>
{% if favourite_products %}
<li>Your favourites: {{ favourite_products_text }}</li>
{% endif %}
</ul>
{% if discount %}
<p>Celebrate with {{ discount.label }}: <strong>{{ discount.code }}</strong><br>
{% if discount.valid_days %}
Valid for {{ discount.valid_days }} day{{ "" if discount.valid_days == 1 else "s" }}.
{% elif discount.expires_on %}
Valid until {{ discount.expires_on }}.
{% endif %}
</p>
{% endif %}
{% for reward in rewards if reward.kind != "discount_code" %}
{% if loop.first %}
<p>And from us:</p>
<ul>
{% endif %}
<li>{{ reward.line }}</li>
{% if loop.last %}
</ul>
{% endif %}
{% endfor %}
<p>Thanks for a wonderful first year!</p>
<p>-The {{ store_name }} Team</p>
{% endblock %}
""",
)

# PRD-114 FR-2.2 "celebration email template", with US-2's message suggested by milestone type.
# Customer-facing: the account's ARR and health score are in the context but not shown here.
CELEBRATION = EmailTemplate(
    key="celebration",
    subject="Congratulations on {{ milestone.name }}!",
    text="""Hi {{ first_name or "there" }},

Congratulations{% if company_name %} to everyone at {{ company_name }}{% endif %}! You've reached a milestone: {{ milestone.name }} ({{ milestone.detail }}, {{ milestone.achieved_on }}).

{% if milestone.type == "usage" %}
That says a lot about how much your team relies on what you've built with us, and we're proud to be part of it.
{% elif milestone.type == "adoption" %}
Your team now uses every part of the product, so you're getting the full value of it. Well done.
{% elif milestone.type == "business" %}
Reaching this goal is a real achievement, and we're glad we could help you get there.
{% elif milestone.type == "time" %}
Thank you for {{ time_as_customer or milestone.value }} of partnership. We're grateful for your trust.
{% else %}
It's a moment worth celebrating, and we wanted you to know we noticed.
{% endif %}
{% if milestone.time_to_milestone %}
You got there in {{ milestone.time_to_milestone }}.
{% endif %}
""" + _ALSO_TEXT + """{% if rewards %}

To say thank you:
""" + _REWARDS_TEXT + """
{% endif %}

We'd love to hear how you got here. If you'd be happy to share your story, just reply to this email.

Cheers,
The {{ store_name }} team
""",
    html="""{% extends "layout.html" %}
{% block body %}
<p>Hi {{ first_name or "there" }},</p>
<p>Congratulations{% if company_name %} to everyone at {{ company_name }}{% endif %}! You've reached a milestone: <strong>{{ milestone.name }}</strong> ({{ milestone.detail }}, {{ milestone.achieved_on }}).</p>
<p>
{% if milestone.type == "usage" %}
That says a lot about how much your team relies on what you've built with us, and we're proud to be part of it.
{% elif milestone.type == "adoption" %}
Your team now uses every part of the product, so you're getting the full value of it. Well done.
{% elif milestone.type == "business" %}
Reaching this goal is a real achievement, and we're glad we could help you get there.
{% elif milestone.type == "time" %}
Thank you for {{ time_as_customer or milestone.value }} of partnership. We're grateful for your trust.
{% else %}
It's a moment worth celebrating, and we wanted you to know we noticed.
{% endif %}
{% if milestone.time_to_milestone %}
You got there in {{ milestone.time_to_milestone }}.
{% endif %}
</p>
""" + _ALSO_HTML + """{% if rewards %}
<p>To say thank you:</p>
""" + _REWARDS_HTML + """
{% endif %}
<p>We'd love to hear how you got here. If you'd be happy to share your story, just reply to this email.</p>
<p>Cheers,<br>The {{ store_name }} team</p>
{% endblock %}
""",
)

DEFAULT_TEMPLATES: dict[str, EmailTemplate] = {
    t.key: t for t in (FIRST_ORDER_WELCOME, ORDER_THANK_YOU, THANK_YOU_NOTE, ANNIVERSARY_1Y, CELEBRATION)
}
# The catalogue's name for RHF's 10th-order message.
DEFAULT_TEMPLATES["order-10-thank-you"] = EmailTemplate(
    "order-10-thank-you", ORDER_THANK_YOU.subject, ORDER_THANK_YOU.text, ORDER_THANK_YOU.html
)
FALLBACK_KEY = "celebration"  # an email action that names no template


def template_for(key: str | None, workspace_settings: Mapping[str, Any] | None) -> EmailTemplate:
    """The workspace's override of ``key`` when it has one, else the default; TemplateProblem if neither."""
    key = key or FALLBACK_KEY
    overrides = (workspace_settings or {}).get("templates") or {}
    if not isinstance(overrides, Mapping):
        raise TemplateProblem("workspace setting 'templates' must map template keys to templates")
    override = overrides.get(key)
    if override is not None:
        return _override(key, override)
    if key in DEFAULT_TEMPLATES:
        return DEFAULT_TEMPLATES[key]
    known = ", ".join(sorted({*DEFAULT_TEMPLATES, *overrides}))
    raise TemplateProblem(f"no email template {key!r}; known: {known}")


def _override(key: str, override: Any) -> EmailTemplate:
    if not isinstance(override, Mapping):
        raise TemplateProblem(f"template {key!r}: an override is an object with 'subject', 'text' and 'html'")
    parts: dict[str, str | None] = {}
    for part in ("subject", "text", "html"):
        value = override.get(part)
        if value is not None and not isinstance(value, str):
            raise TemplateProblem(f"template {key!r}: {part!r} must be text")
        parts[part] = value or None
    if not parts["subject"] or not parts["text"]:
        raise TemplateProblem(f"template {key!r}: an override needs both 'subject' and 'text'")
    return EmailTemplate(key=key, subject=parts["subject"] or "", text=parts["text"] or "", html=parts["html"])
