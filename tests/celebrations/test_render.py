"""The seeds' messages as templates: personalised, sandboxed, and never promising a reward not given."""

from __future__ import annotations

from decimal import Decimal

import pytest

from plugin.celebrations.context import email_properties, favourite_products, joined
from plugin.celebrations.render import MAX_OUTPUT_CHARS, ordinal, render
from plugin.celebrations.templates import DEFAULT_TEMPLATES, EmailTemplate, TemplateProblem, template_for
from tests.celebrations.support import credit_effect, discount_effect, make_context, tag_effect


def rendered(key: str, template: str | None = None, **context_args):
    context = make_context(key, **context_args)
    return render(template_for(template or DEFAULT_TEMPLATES_FOR[key], None), context)


DEFAULT_TEMPLATES_FOR = {
    "order-1": "first-order-welcome",
    "order-10": "order-10-thank-you",
    "order-25": "order-thank-you",
    "spend-500": "thank-you-note",
    "anniversary-1y": "anniversary-1y",
    "api-calls-1m": "celebration",
}


@pytest.mark.parametrize("key", sorted(DEFAULT_TEMPLATES))
def test_every_default_template_renders_a_subject_an_html_and_a_text_part(key):
    email = render(DEFAULT_TEMPLATES[key], make_context("order-10"))
    assert email.subject and "\n" not in email.subject
    assert email.html.startswith("<!DOCTYPE html>") and "</html>" in email.html
    assert email.text.strip() and "{{" not in email.text and "{%" not in email.text


def test_the_first_order_welcome_is_rhfs_text_with_the_store_and_the_first_name():
    email = rendered("order-1", value="1")
    assert email.subject == "Welcome to the Red Hill Fresh family, Alice!"
    assert email.text.startswith("Welcome to the Red Hill Fresh family, Alice!\n\nYour first order is on its way.\n"
                                 "We're so glad you chose local.\n")
    assert email.text.rstrip().endswith("Questions? Reply anytime!\n-The Red Hill Fresh Team")
    assert "Delivery:" not in email.text  # RHF's delivery window is not data we have


def test_the_tenth_order_without_a_credit_promises_no_credit():
    email = rendered("order-10")
    assert email.text.startswith("Hi Alice, this is your 10th order!\n\nThank you for making us part of your weekly "
                                 "routine. It means a lot.\n")
    for part in (email.text, email.html):
        assert "$5" not in part and "credit" not in part and "As a small thank you" not in part


def test_the_tenth_order_with_a_five_dollar_credit_that_succeeded_says_so():
    email = rendered("order-10", siblings=[credit_effect("5.00")])
    assert "As a small thank you:\n- $5 credit added to account\n" in email.text
    assert "<li>$5 credit added to account</li>" in email.html


@pytest.mark.parametrize("status", ["pending", "in_flight", "held", "dead", "no_connection", "cancelled"])
def test_a_credit_that_did_not_succeed_is_never_mentioned(status):
    email = rendered("order-10", siblings=[credit_effect("5.00", status=status)])
    assert "$5" not in email.text and "credit" not in email.text


def test_the_credit_line_shows_the_amount_actually_applied():
    email = rendered("order-25", value="25", siblings=[credit_effect("12.50")])
    assert "- $12.50 credit added to account" in email.text
    assert "$10" not in email.text


def test_a_woocommerce_credit_shows_the_coupon_code_it_was_issued_as():
    coupon = credit_effect("10.00", code="THANKS-9F2C1A", date_expires_gmt="2026-02-05T23:59:59")
    email = rendered("order-25", value="25", siblings=[coupon])
    assert "- $10 credit with code THANKS-9F2C1A at checkout (valid until Feb 6, 2026)" in email.text


def test_the_anniversary_offers_the_code_that_was_created_and_for_as_long_as_it_is_valid():
    email = rendered("anniversary-1y", value="1 year", siblings=[discount_effect(code="YEAR1-3F9A2C")])
    assert email.subject == "Happy Anniversary Alice!"
    assert "It's been one year since you joined the Red Hill Fresh family." in email.text
    assert "What a year:\n- Orders: 10\n- Items delivered: 7\n" in email.text
    assert "Celebrate with 20% off: YEAR1-3F9A2C\nValid for 7 days.\n" in email.text
    assert "<strong>YEAR1-3F9A2C</strong>" in email.html
    assert "Local farms" not in email.text


def test_the_anniversary_without_a_discount_offers_none():
    email = rendered("anniversary-1y", value="1 year", siblings=[discount_effect(status="dead")])
    assert "% off" not in email.text and "YEAR1" not in email.text
    assert "Thanks for a wonderful first year!" in email.text


def test_a_tag_upgrade_is_a_reward_line():
    email = rendered("order-10", siblings=[tag_effect("VIP")])
    assert "- Upgraded to VIP" in email.text


def test_the_thank_you_note_uses_rhfs_personalisation_data_points():
    email = rendered("spend-500", value="500")
    assert email.subject == "A thank-you note from Red Hill Fresh"
    assert "Dear Alice," in email.text
    assert "In 2 years 3 months with us you have placed 10 orders, $1,234.50 in all" in email.text
    assert "We've noticed you love Free-range eggs, Seasonal veg box and Sourdough." in email.text


def test_favourite_products_are_the_top_three_titles_by_quantity_ties_to_the_first_bought():
    orders = [
        [{"title": "Kale", "quantity": 1}, {"title": "Eggs", "quantity": 3}],
        [{"title": "Bread", "quantity": 2}, {"title": " Kale ", "quantity": 1}, {"title": "", "quantity": 9}],
        [{"title": "Milk", "quantity": 2}, {"title": "Apples", "quantity": "x"}],
    ]
    assert favourite_products(orders) == ["Eggs", "Kale", "Bread"]
    assert favourite_products([]) == []
    assert joined(["A"]) == "A" and joined(["A", "B"]) == "A and B" and joined(["A", "B", "C"]) == "A, B and C"


def test_the_context_carries_every_personalisation_field():
    context = make_context("order-10", siblings=[credit_effect("5.00")], arr=Decimal("65000"), health_score=85)
    assert context["first_name"] == "Alice"
    assert context["order_count"] == 10
    assert context["lifetime_value"] == "$1,234.50"
    assert context["time_as_customer"] == "2 years 3 months"
    assert context["favourite_products"] == ["Free-range eggs", "Seasonal veg box", "Sourdough"]
    assert context["arr"] == "$65,000" and context["health_score"] == 85
    assert context["milestone"]["ordinal"] == "10th" and context["milestone"]["detail"] == "Order count reached 10"
    assert context["credit"]["amount"] == "$5"


def test_the_b2b_celebration_congratulates_the_account_without_showing_its_arr_or_health():
    email = rendered("api-calls-1m", value="1000000", company_name="GrowthCorp", arr=Decimal("65000"), health_score=85)
    assert email.subject == "Congratulations on 1 Million API Calls!"
    assert "Congratulations to everyone at GrowthCorp!" in email.text
    assert "API usage reached 1,000,000 calls, Jan 6, 2026" in email.text
    assert "how much your team relies on" in email.text  # PRD-114 US-2: the message suits the type
    assert "65,000" not in email.text and "85" not in email.text and "65,000" not in email.html


def test_the_properties_for_platform_templates_are_flat_and_leave_out_arr_and_health():
    context = make_context("order-10", siblings=[credit_effect("5.00"), tag_effect("VIP")], arr=Decimal("65000"))
    properties = email_properties(context)
    assert properties["first_name"] == "Alice" and properties["order_count"] == 10
    assert properties["credit_amount"] == "$5"
    assert properties["reward_lines"] == "$5 credit added to account\nUpgraded to VIP"
    assert properties["favourite_products"] == "Free-range eggs, Seasonal veg box and Sourdough"
    assert all(not isinstance(v, list | dict) for v in properties.values())
    assert "arr" not in properties and "health_score" not in properties


def test_html_is_escaped_and_text_is_not():
    items = [[{"title": "<b>Kale & Co</b>", "quantity": 5}]]
    email = rendered("order-10", line_items=items)
    assert "&lt;b&gt;Kale &amp; Co&lt;/b&gt;" in email.html and "<b>Kale" not in email.html
    assert "Your favourites so far: <b>Kale & Co</b>." in email.text


def test_without_a_first_name_the_greeting_stays_friendly():
    email = rendered("order-10", first_name=None)
    assert email.subject == "This is your 10th order!"
    assert email.text.startswith("Hi there, this is your 10th order!")


def override(**parts: str) -> dict:
    return {"templates": {"order-10-thank-you": parts}}


def test_a_workspace_override_replaces_the_default_and_gets_the_layout_when_it_has_no_html():
    template = template_for("order-10-thank-you", override(subject="Order {{ order_count }}!", text="Hi {{ first_name }}\n\nBye"))
    email = render(template, make_context("order-10"))
    assert email.subject == "Order 10!"
    assert email.text == "Hi Alice\n\nBye\n"
    assert "<p>Hi Alice</p>\n<p>Bye</p>" in email.html and email.html.startswith("<!DOCTYPE html>")


def test_an_override_may_extend_the_layout():
    html = '{% extends "layout.html" %}{% block body %}<h1>{{ first_name }}</h1>{% endblock %}'
    email = render(template_for("order-10-thank-you", override(subject="s", text="t", html=html)), make_context())
    assert "<h1>Alice</h1>" in email.html and "<title>s</title>" in email.html


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"templates": {"order-10-thank-you": {"text": "no subject"}}}, "needs both 'subject' and 'text'"),
        ({"templates": {"order-10-thank-you": "just a string"}}, "an override is an object"),
        ({"templates": {"order-10-thank-you": {"subject": 1, "text": "t"}}}, "'subject' must be text"),
        ({"templates": ["not", "a", "mapping"]}, "must map template keys"),
    ],
)
def test_a_malformed_override_is_a_clear_template_problem(settings, message):
    with pytest.raises(TemplateProblem, match=message):
        template_for("order-10-thank-you", settings)


def test_an_unknown_template_key_is_a_template_problem_naming_the_known_ones():
    with pytest.raises(TemplateProblem, match="no email template 'birthday'; known: .*celebration"):
        template_for("birthday", {})
    assert template_for("birthday", {"templates": {"birthday": {"subject": "s", "text": "t"}}}).key == "birthday"
    assert template_for(None, {}).key == "celebration"


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ first_name.__init__.__globals__ }}",
        "{{ milestone.items.__self__ }}",
        "{% for x in range(10000000) %}{% endfor %}",
    ],
)
def test_the_sandbox_refuses_what_a_template_must_not_do(text):
    template = EmailTemplate("evil", "s", text, None)
    with pytest.raises(TemplateProblem, match="template 'evil', text"):
        render(template, make_context())


def test_a_misspelt_field_is_an_error_not_a_blank():
    with pytest.raises(TemplateProblem, match="'frist_name' is undefined"):
        render(EmailTemplate("typo", "s", "Hi {{ frist_name }}", None), make_context())


def test_a_syntax_error_says_which_part_and_line():
    with pytest.raises(TemplateProblem, match=r"template 'broken', html \(line 2\)"):
        render(EmailTemplate("broken", "s", "t", "<p>\n{% if %}</p>"), make_context())


def test_a_runaway_template_is_stopped():
    text = "{% for i in range(90000) %}{{ 'x' * 10 }}{% endfor %}"
    with pytest.raises(TemplateProblem, match=f"longer than {MAX_OUTPUT_CHARS}"):
        render(EmailTemplate("long", "s", text, None), make_context())


def test_an_empty_subject_is_refused():
    with pytest.raises(TemplateProblem, match="subject rendered empty"):
        render(EmailTemplate("blank", "{% if false %}x{% endif %}", "t", None), make_context())


@pytest.mark.parametrize("value, expected", [(1, "1st"), (2, "2nd"), (3, "3rd"), (10, "10th"), (11, "11th"),
                                             (12, "12th"), (13, "13th"), (21, "21st"), (101, "101st"),
                                             (112, "112th"), ("2 years", "2 years")])
def test_ordinals(value, expected):
    assert ordinal(value) == expected
