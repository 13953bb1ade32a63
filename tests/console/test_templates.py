"""The templates page: celebration emails edited, checked and previewed for a real customer; the Slack alert."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from plugin.admin.templates import check
from plugin.celebrations.templates import DEFAULT_TEMPLATES, template_for
from plugin.db import transaction, utcnow
from plugin.models import Order, Workspace
from tests.api.support import Rows, credit
from tests.conftest import services_of
from tests.console.conftest import csrf_token

ORDER_10 = "/admin/templates/email/order-10-thank-you"


def text_of(answer: Any) -> str:
    return html.unescape(re.sub(r"\s+", " ", answer.get_data(as_text=True)))


def post(client: FlaskClient, path: str, data: dict[str, Any]) -> Any:
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/admin/templates/")})


def fetch(client: FlaskClient, path: str, data: dict[str, Any]) -> Any:
    headers = {"X-CSRFToken": csrf_token(client, "/admin/templates/"), "Accept": "application/json"}
    return client.post(path, data=data, headers=headers)


def settings(app: Flask, workspace_id: Any) -> dict[str, Any]:
    with services_of(app).sessions() as session:
        found = session.get(Workspace, workspace_id)
        assert found is not None
        return dict(found.settings or {})


@pytest.fixture
def maya(app: Flask, workspace: Any, shop: Any) -> Any:
    """A regular with 10 orders (kale, mostly), whose 10th order got a $5 credit; and an older customer."""
    now = utcnow()
    with transaction(services_of(app).sessions) as session:
        rows = Rows(session, workspace.id)
        rows.customer("zed@example.com", {"order_count": "3"}, first_name="Zed")
        maya = rows.customer("maya@example.com", {"order_count": "10", "lifetime_spend": "412.50"},
                             first_name="Maya", last_name="Lin", customer_since=now - timedelta(days=400))
        for n, items in enumerate([[("Kale", 2), ("Sourdough", 1)], [("Kale", 1), ("Eggs", 3)]]):
            session.add(Order(workspace_id=workspace.id, connection_id=shop.id, external_id=f"o-{n}",
                              customer_id=maya.id, currency="USD", total=Decimal("40"), counted=True, paid=True,
                              placed_at=now - timedelta(days=10 - n),
                              line_items=[{"title": t, "quantity": q} for t, q in items]))
        milestone = rows.milestone(maya, "order-10", achieved_at=now - timedelta(days=1))
        rows.effect(milestone, "store_credit", "succeeded", credit("5.00"))
        return maya


def test_the_list_shows_every_email_the_milestones_that_send_it_and_the_slack_alert(console: FlaskClient) -> None:
    page = text_of(console.get("/admin/templates/"))
    for key in ("first-order-welcome", "order-10-thank-you", "thank-you-note", "anniversary-1y", "celebration"):
        assert f"<code>{key}</code>" in page
    row = re.search(r'id="t-celebration">.*?</tr>', page).group(0)  # type: ignore[union-attr]
    assert "1 Million API Calls, 100 Users, Full Feature Adoption" in row and "Default" in row
    assert "Congratulations on 10th Order!" in row  # the subject as the sample customer reads it
    assert "Happy Anniversary Alex!" in page
    assert "Preview the Slack alert" in page and "16 milestones send it" in page


def test_the_editor_previews_the_email_for_the_latest_milestone_customer_with_real_rewards(
    console: FlaskClient, maya: Any,
) -> None:
    answer = console.get(ORDER_10)
    assert answer.status_code == 200
    page = text_of(answer)
    assert 'id="preview-subject">Maya, this is your 10th order!<' in page
    assert "their <strong>10th Order</strong>" in page and "with the rewards it really got" in page
    assert "- $5 credit added to account" in page  # from the effect that succeeded
    assert "Your favourites so far: Kale, Eggs and Sourdough." in page
    assert f'<option value="{maya.id}" selected>Maya Lin <maya@example.com></option>' in page


def test_a_customer_without_the_milestone_is_previewed_as_if_they_reached_it_now(
    console: FlaskClient, maya: Any, app: Flask, workspace: Any,
) -> None:
    zed = next(c for c in console.get("/admin/templates/customers?q=zed").get_json()["customers"])
    page = text_of(console.get(f"/admin/templates/email/anniversary-1y?customer={zed['id']}"))
    assert "as if they reached <strong>1 Year Anniversary</strong> now" in page
    assert "Celebrate with 20% off: YEAR1-PREVIEW" in page and "Happy Anniversary Zed!" in page


def test_typing_previews_against_the_chosen_customer_without_saving(console: FlaskClient, maya: Any, app: Flask,
                                                                   workspace: Any) -> None:
    answer = fetch(console, f"{ORDER_10}/preview", {
        "subject": "{{ first_name }}, {{ order_count }} orders!", "text": "Thanks for {{ lifetime_value }}.",
        "html": "", "customer": str(maya.id)})
    assert answer.status_code == 200
    panel = html.unescape(answer.get_json()["html"])
    assert 'id="preview-subject">Maya, 10 orders!<' in panel
    assert "Thanks for $412.50." in panel and "<p>Thanks for $412.50.</p>" in panel  # the layout wraps it
    typo = fetch(console, f"{ORDER_10}/preview", {"subject": "Hi", "text": "{{ frist_name }}", "customer": str(maya.id)})
    assert "unknown variable 'frist_name' (line 1)" in html.unescape(typo.get_json()["html"])
    assert "templates" not in settings(app, workspace.id)


def test_saving_a_valid_template_stores_it_where_the_sender_reads_it(console: FlaskClient, app: Flask,
                                                                      workspace: Any) -> None:
    answer = post(console, ORDER_10, {"subject": "Order {{ milestone.value }}, {{ first_name or 'friend' }}!",
                                      "text": "Thank you.\r\n{% for r in rewards %}{{ r.line }}\r\n{% endfor %}",
                                      "html": ""})
    assert answer.status_code == 302
    stored = settings(app, workspace.id)["templates"]["order-10-thank-you"]
    assert stored == {"subject": "Order {{ milestone.value }}, {{ first_name or 'friend' }}!",
                      "text": "Thank you.\n{% for r in rewards %}{{ r.line }}\n{% endfor %}"}
    assert template_for("order-10-thank-you", settings(app, workspace.id)).subject.startswith("Order {{")
    assert "Customised" in text_of(console.get("/admin/templates/"))
    reset = post(console, f"{ORDER_10}/reset", {})
    assert reset.status_code == 302 and "order-10-thank-you" not in settings(app, workspace.id)["templates"]


@pytest.mark.parametrize(("part", "source", "message"), [
    ("text", "Hi {{ first_name }", "text: line 1: unexpected '}'"),
    ("text", "{% if discount %}{{ discount.cod }}{% endif %}", "unknown variable 'discount.cod' (line 1)"),
    ("subject", "{{ subject }}", "subject: unknown variable 'subject' (line 1)"),
    ("html", "<p>{{ first_name | shout }}</p>", "html: line 1: No filter named 'shout'."),
    ("text", "", "text: the text is required"),
])
def test_a_template_that_does_not_parse_or_names_an_unknown_variable_is_refused(
    console: FlaskClient, app: Flask, workspace: Any, part: str, source: str, message: str,
) -> None:
    form = {"subject": "Hello {{ first_name }}", "text": "Thanks!", "html": "", part: source}
    answer = post(console, ORDER_10, form)
    assert answer.status_code == 400
    page = text_of(answer)
    assert "Not saved:" in page and message in page
    assert "templates" not in settings(app, workspace.id)


def test_a_workspace_template_of_its_own_is_created_and_deleted_only_when_unused(
    console: FlaskClient, app: Flask, workspace: Any,
) -> None:
    created = post(console, "/admin/templates/new", {"key": "vip-welcome", "copy_from": "thank-you-note"})
    assert created.status_code == 302 and created.headers["Location"].endswith("/email/vip-welcome")
    assert settings(app, workspace.id)["templates"]["vip-welcome"]["subject"] == "A thank-you note from {{ store_name }}"
    assert "Your own" in text_of(console.get("/admin/templates/"))
    bad = post(console, "/admin/templates/new", {"key": "VIP Welcome!", "copy_from": "celebration"})
    assert bad.status_code == 302 and "vip welcome!" not in str(settings(app, workspace.id)["templates"]).lower()
    with services_of(app).sessions() as session, session.begin():
        order_1 = Rows(session, workspace.id).definition("order-1")
        order_1.recognition = [*order_1.recognition, {"kind": "email", "template": "vip-welcome"}]
    refused = post(console, "/admin/templates/email/vip-welcome/reset", {})
    assert refused.status_code == 302 and "vip-welcome" in settings(app, workspace.id)["templates"]
    with services_of(app).sessions() as session, session.begin():
        order_1 = Rows(session, workspace.id).definition("order-1")
        order_1.recognition = order_1.recognition[:-1]
    deleted = post(console, "/admin/templates/email/vip-welcome/reset", {})
    assert deleted.status_code == 302 and "vip-welcome" not in settings(app, workspace.id)["templates"]
    assert console.get("/admin/templates/email/vip-welcome").status_code == 404


def test_the_slack_alert_preview_draws_prd_114s_layout_for_a_real_customer(
    console: FlaskClient, maya: Any, app: Flask, workspace: Any,
) -> None:
    with services_of(app).sessions() as session:
        order_10 = Rows(session, workspace.id).definition("order-10")
    page = text_of(console.get(f"/admin/templates/slack?definition={order_10.id}&customer={maya.id}"))
    assert '<div class="slack-header">🏆 Customer Milestone: Maya Lin</div>' in page
    assert "<strong>Milestone Achieved:</strong> 10th Order!" in page
    assert "- Milestone: Order count reached 10" in page and "<strong>Celebration Ideas:</strong>" in page
    assert "1. 📧 Send congratulations email" in page and "4. 📝 Invite to case study participation" in page
    assert '<span class="slack-button slack-primary">Mark Celebrated</span>' in page


def test_another_workspaces_customers_and_a_missing_template_are_not_found(
    console: FlaskClient, app: Flask, workspace: Any, other_workspace: Any,
) -> None:
    with transaction(services_of(app).sessions) as session:
        stranger = Rows(session, other_workspace.id).customer("stranger@elsewhere.example", first_name="Stranger")
    assert console.get(f"{ORDER_10}?customer={stranger.id}").status_code == 404
    assert fetch(console, f"{ORDER_10}/preview", {"subject": "x", "text": "y", "customer": str(stranger.id)}).status_code == 404
    assert console.get(f"/admin/templates/slack?customer={stranger.id}").status_code == 404
    assert console.get("/admin/templates/customers?q=stranger").get_json() == {"customers": []}
    assert console.get("/admin/templates/email/no-such-template").status_code == 404


def test_posts_without_the_csrf_token_are_refused_and_save_nothing(console: FlaskClient, app: Flask,
                                                                     workspace: Any) -> None:
    for path, data in [(ORDER_10, {"subject": "Gotcha", "text": "x"}), ("/admin/templates/new", {"key": "sneaky"}),
                       (f"{ORDER_10}/reset", {}), (f"{ORDER_10}/preview", {"subject": "x", "text": "y"})]:
        assert console.post(path, data=data).status_code == 403, path
    assert "templates" not in settings(app, workspace.id)


def test_every_default_template_passes_the_check_so_one_can_be_saved_unchanged(console: FlaskClient, app: Flask,
                                                                               workspace: Any) -> None:
    for key, template in DEFAULT_TEMPLATES.items():
        check(key, template.subject, template.text, template.html)  # raises if the check drifted from the renderer
    default = DEFAULT_TEMPLATES["anniversary-1y"]
    answer = post(console, "/admin/templates/email/anniversary-1y",
                  {"subject": default.subject, "text": default.text, "html": default.html})
    assert answer.status_code == 302
    assert settings(app, workspace.id)["templates"]["anniversary-1y"]["html"] == default.html
