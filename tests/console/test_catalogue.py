"""The milestone catalogue page: the list, the editor, the what-if before saving, and who may touch what."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from plugin.db import utcnow
from plugin.models import MilestoneDefinition
from tests.api.support import Rows
from tests.conftest import services_of
from tests.console.conftest import add_admin, csrf_token, post_form, sign_in

ORDER_10 = {  # the 10th-order definition as its editor posts it
    "name": "10th Order", "type": "order", "cond_mode": "metric", "cond_metric": "order_count", "cond_op": "gte",
    "cond_value": "10", "cond_every": "", "enabled": "1", "refund_policy": "keep", "credit_hold_days": "",
    "rec-0-kind": "crm_note", "rec-1-kind": "slack_alert", "rec-1-channel": "", "rec-1-ideas": "",
    "rec-2-kind": "email", "rec-2-template": "order-10-thank-you",
}


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None) -> Any:
    return post_form(client, path, data, from_page="/admin/catalogue/")


def definition(app: Flask, workspace_id: Any, key: str) -> MilestoneDefinition:
    with services_of(app).sessions() as session:
        return session.execute(select(MilestoneDefinition).where(
            MilestoneDefinition.workspace_id == workspace_id, MilestoneDefinition.key == key)).scalar_one()


def text_of(answer: Any) -> str:
    return re.sub(r"\s+", " ", answer.get_data(as_text=True))


def figure(page: str, scenario: str, name: str) -> str:
    """One cell of the what-if table: ``scenario`` none/recent/all, ``name`` celebrated, liability…"""
    cell = re.search(rf'data-scenario="{scenario}" data-figure="{name}">\s*([^<]*?)\s*<', page)
    assert cell, f"no {name} for {scenario}"
    return cell.group(1)


def confirm_token(page: str) -> str:
    found = re.search(r'name="confirm" value="([0-9a-f]+)"', page)
    assert found, "no confirmation on the page"
    return found.group(1)


def orders(now: Any) -> Callable[[Rows], Any]:
    def dataset(rows: Rows) -> Any:
        rows.customer("recent@example.com", {"order_count": "14"}, changed_at=now - timedelta(days=3))
        rows.customer("long-ago@example.com", {"order_count": "30"}, changed_at=now - timedelta(days=200))
        rows.customer("eleven@example.com", {"order_count": "11"}, changed_at=now - timedelta(days=1))
        rows.customer("few@example.com", {"order_count": "2"}, changed_at=now)
        done = rows.customer("done@example.com", {"order_count": "40"}, changed_at=now)
        rows.milestone(done, "order-10")
        return done

    return dataset


def test_the_catalogue_lists_both_seeds_by_type_with_what_each_does(console: FlaskClient, build: Any) -> None:
    def reached(rows: Rows) -> None:
        first = rows.customer("a@example.com", {"order_count": "3"})
        second = rows.customer("b@example.com", {"order_count": "12"})
        rows.milestone(first, "order-1")
        rows.milestone(second, "order-1")
        rows.milestone(second, "order-10")

    build(reached)
    answer = console.get("/admin/catalogue/")
    assert answer.status_code == 200
    page = text_of(answer)
    for heading in ("Order milestones", "Spend milestones", "Anniversaries", "Usage", "Adoption", "Business outcomes"):
        assert heading in page
    order_1 = re.search(r'id="d-order-1".*?</tr>', page).group(0)  # type: ignore[union-attr]
    assert "order count ≥ 1" in order_1 and "Task: Send a welcome gift" in order_1
    assert "Email: first-order-welcome" in order_1 and "Slack alert" in order_1
    assert re.search(r'class="num reached">2<', order_1)
    order_100 = re.search(r'id="d-order-100".*?</tr>', page).group(0)  # type: ignore[union-attr]
    assert "Requires review" in order_100 and "Escalates" in order_100 and "Significant" in order_100
    assert "Tag: VIP" in order_100
    assert "$10 store credit" in re.search(r'id="d-order-25".*?</tr>', page).group(0)  # type: ignore[union-attr]
    adoption = re.search(r'id="d-feature-adoption".*?</tr>', page).group(0)  # type: ignore[union-attr]
    assert "all of: feature dashboards is true; feature reports is true" in adoption
    assert '>16 <small class="muted">of 16</small>' in page  # all sixteen enabled


def test_the_editor_shows_a_definition_as_its_form(console: FlaskClient, app: Flask, workspace: Any) -> None:
    order_25 = definition(app, workspace.id, "order-25")
    page = text_of(console.get(f"/admin/catalogue/{order_25.id}"))
    assert 'name="cond_metric" value="order_count"' in page and 'name="cond_value" value="25"' in page
    assert "✓ Means: <strong>order count ≥ 25</strong>" in page
    assert 'name="rec-2-amount" value="10.00"' in page and 'name="rec-2-currency" value="USD"' in page
    adoption = definition(app, workspace.id, "feature-adoption")
    page = text_of(console.get(f"/admin/catalogue/{adoption.id}"))
    assert 'aria-selected="true" class="tab active">All of<' in page
    assert 'name="cond_rows-3-metric" value="feature.alerts"' in page
    assert '<option value="true" selected>is true</option>' in page


def test_creating_an_enabled_milestone_shows_its_impact_and_saves_on_confirm(
    console: FlaskClient, app: Flask, workspace: Any, build: Any,
) -> None:
    build(orders(utcnow()))
    form = {"name": "VIP Breakfast Club", "type": "order", "cond_mode": "metric", "cond_metric": "order_count",
            "cond_op": "gte", "cond_value": "12", "enabled": "1", "refund_policy": "keep",
            "rec-0-kind": "store_credit", "rec-0-amount": "7.50", "rec-0-currency": "USD", "rec-0-notify": "1",
            "rec-1-kind": "slack_alert", "rec-1-ideas": "Call them\nSend a breakfast hamper"}
    first = post(console, "/admin/catalogue/new", form)
    assert first.status_code == 200
    page = text_of(first)
    assert "Check the impact below, then confirm to save." in page
    assert re.search(r'data-figure="qualifying">3<', page)  # 14, 30 and 40 orders
    assert figure(page, "recent", "celebrated") == "2" and figure(page, "recent", "historical") == "1"
    assert figure(page, "recent", "liability") == "$15" and figure(page, "all", "liability") == "$22.50"
    assert figure(page, "none", "liability") == "$0" and figure(page, "all", "slack") == "3"
    with services_of(app).sessions() as session:
        assert session.scalar(select(MilestoneDefinition).where(MilestoneDefinition.name == "VIP Breakfast Club")) is None
    saved = post(console, "/admin/catalogue/new", {**form, "confirm": confirm_token(page)})
    assert saved.status_code == 302
    created = definition(app, workspace.id, "vip-breakfast-club")
    assert created.condition == {"metric": "order_count", "gte": 12} and created.enabled
    assert created.recognition == [
        {"kind": "store_credit", "amount": "7.50", "currency": "USD"},
        {"kind": "slack_alert", "ideas": ["Call them", "Send a breakfast hamper"]},
    ]
    assert "VIP Breakfast Club is saved." in text_of(console.get(saved.headers["Location"]))


def test_changing_the_threshold_previews_then_saves_only_the_version_confirmed(
    console: FlaskClient, app: Flask, workspace: Any, build: Any,
) -> None:
    build(orders(utcnow()))
    order_10 = definition(app, workspace.id, "order-10")
    path = f"/admin/catalogue/{order_10.id}"
    answer = post(console, path, {**ORDER_10, "cond_value": "12"})
    page = text_of(answer)
    assert answer.status_code == 200 and "order count ≥ 12" in page
    assert re.search(r'data-figure="qualifying">3<', page)
    assert re.search(r'data-figure="already_recorded">1<', page)  # done@ has the 10th-order milestone
    assert figure(page, "none", "historical") == "2" and figure(page, "recent", "celebrated") == "1"
    assert definition(app, workspace.id, "order-10").condition == {"metric": "order_count", "gte": 10}
    token = confirm_token(page)
    stale = post(console, path, {**ORDER_10, "cond_value": "13", "confirm": token})
    assert stale.status_code == 200 and "You changed the definition after its preview" in text_of(stale)
    assert definition(app, workspace.id, "order-10").condition == {"metric": "order_count", "gte": 10}
    saved = post(console, path, {**ORDER_10, "cond_value": "12", "confirm": token})
    assert saved.status_code == 302
    assert definition(app, workspace.id, "order-10").condition == {"metric": "order_count", "gte": 12}


def test_a_change_that_alters_nothing_celebrated_saves_at_once(console: FlaskClient, app: Flask, workspace: Any) -> None:
    order_10 = definition(app, workspace.id, "order-10")
    path = f"/admin/catalogue/{order_10.id}"
    too_long = post(console, path, {**ORDER_10, "credit_hold_days": "9999"})
    assert too_long.status_code == 400 and "a credit hold is 0 to 365 days" in text_of(too_long)
    answer = post(console, path, {**ORDER_10, "name": "Tenth order", "significant": "1",
                                  "description": "Weekly regulars", "refund_policy": "claw_back",
                                  "credit_hold_days": "14"})
    assert answer.status_code == 302
    saved = definition(app, workspace.id, "order-10")
    assert (saved.name, saved.significant, saved.description) == ("Tenth order", True, "Weekly regulars")
    assert (saved.refund_policy, saved.credit_hold_days) == ("claw_back", 14)
    assert saved.recognition == order_10.recognition and saved.key == "order-10"
    page = text_of(console.get(path))
    assert '<option value="claw_back" selected>' in page and 'name="credit_hold_days" value="14"' in page


def test_an_invalid_json_condition_is_refused_with_the_parsers_message(
    console: FlaskClient, app: Flask, workspace: Any,
) -> None:
    order_10 = definition(app, workspace.id, "order-10")
    path = f"/admin/catalogue/{order_10.id}"
    base = {k: v for k, v in ORDER_10.items() if not k.startswith("cond_")}
    bad = post(console, path, {**base, "cond_mode": "json", "name": "Changed",
                                    "condition": '{"any": [{"metric": "Order Count", "gte": 10}]}'})
    assert bad.status_code == 400
    page = text_of(bad)
    assert "Nothing was saved" in page
    assert "✕ any[0].metric: must look like order_count or feature.reports" in page
    broken = post(console, path, {**base, "cond_mode": "json", "condition": '{"metric": "order_count",'})
    assert broken.status_code == 400 and "not valid JSON: Expecting property name" in text_of(broken)
    unchanged = definition(app, workspace.id, "order-10")
    assert unchanged.name == "10th Order" and unchanged.condition == {"metric": "order_count", "gte": 10}


def test_recognition_mistakes_are_marked_on_their_action_and_nothing_is_saved(
    console: FlaskClient, app: Flask, workspace: Any,
) -> None:
    order_10 = definition(app, workspace.id, "order-10")
    path = f"/admin/catalogue/{order_10.id}"
    answer = post(console, path, {**ORDER_10, "rec-3-kind": "store_credit", "rec-3-amount": "-5",
                                       "rec-3-currency": "usd", "rec-4-kind": "discount_code",
                                       "rec-4-discount_type": "percentage", "rec-4-discount_value": "150"})
    assert answer.status_code == 400
    page = text_of(answer)
    assert "must be greater than 0" in page and "must be a 3-letter currency code such as USD" in page
    assert "must be greater than 0 and at most 100" in page
    assert definition(app, workspace.id, "order-10").recognition == order_10.recognition


def test_the_live_check_and_the_form_json_switch_keep_the_condition(console: FlaskClient) -> None:
    token = csrf_token(console, "/admin/catalogue/new")
    headers = {"X-CSRFToken": token, "Accept": "application/json"}
    form = {"cond_mode": "metric", "cond_metric": "lifetime_spend", "cond_op": "gte", "cond_value": "250.5",
            "cond_every": "250"}
    ok = console.post("/admin/catalogue/condition", data=form, headers=headers).get_json()
    assert ok == {"valid": True, "description": "lifetime spend ≥ 250.50, every 250",
                  "condition": {"metric": "lifetime_spend", "gte": 250.5, "every": 250}, "error": None}
    bad = console.post("/admin/catalogue/condition", data={**form, "cond_value": "lots"}, headers=headers).get_json()
    assert bad["valid"] is False and bad["error"] == "gte: must be a number"
    as_json = console.post("/admin/catalogue/condition", data={**form, "cond_action": "mode:json"},
                           headers=headers).get_json()
    assert '"every": 250' in html.unescape(as_json["html"]) and 'name="condition"' in as_json["html"]
    back = console.post("/admin/catalogue/condition", headers=headers, data={
        "cond_mode": "json", "condition": '{"metric": "lifetime_spend", "gte": 99, "every": 50}',
        "cond_action": "mode:all"}).get_json()
    assert 'name="cond_rows-0-metric" value="lifetime_spend"' in back["html"]
    nested = console.post("/admin/catalogue/condition", headers=headers, data={
        "cond_mode": "json", "condition": '{"all": [{"tenure": {"years": 1}}, {"metric": "order_count", "gte": 5}]}',
        "cond_action": "mode:metric"}).get_json()
    assert nested["valid"] and "edited as JSON" in nested["html"] and 'name="condition"' in nested["html"]
    anniversary = console.post("/admin/catalogue/condition", headers=headers, data={
        "cond_mode": "tenure", "cond_amount": "2", "cond_unit": "years", "cond_tenure_every": "2"}).get_json()
    assert anniversary["description"] == "2 years as a customer, every 2 years"


def test_the_impact_panel_answers_the_editor_without_saving(console: FlaskClient, app: Flask, workspace: Any,
                                                            build: Any) -> None:
    build(orders(utcnow()))
    order_10 = definition(app, workspace.id, "order-10")
    token = csrf_token(console, f"/admin/catalogue/{order_10.id}")
    answer = console.post("/admin/catalogue/preview", headers={"X-CSRFToken": token, "Accept": "application/json"},
                          data={**ORDER_10, "cond_value": "11", "definition_id": str(order_10.id),
                                "rec-3-kind": "store_credit", "rec-3-amount": "5", "rec-3-currency": "USD",
                                "preview_days": "2"})
    assert answer.status_code == 200
    panel = answer.get_json()["html"]
    assert re.search(r'data-figure="qualifying">4<', panel)
    assert figure(panel, "recent", "celebrated") == "1"  # eleven@, who got there yesterday
    assert figure(panel, "all", "liability") == "$15" and figure(panel, "all", "emails") == "3"
    assert definition(app, workspace.id, "order-10").condition == {"metric": "order_count", "gte": 10}


def test_actions_and_condition_rows_can_be_added_and_removed_without_javascript(
    console: FlaskClient, app: Flask, workspace: Any,
) -> None:
    order_10 = definition(app, workspace.id, "order-10")
    path = f"/admin/catalogue/{order_10.id}"
    added = text_of(post(console, path, {**ORDER_10, "intent": "rec:add", "add_kind": "task"}))
    assert '<option value="task" selected>' in added and 'name="rec-3-title"' in added
    removed = text_of(post(console, path, {**ORDER_10, "intent": "rec:remove:0"}))
    assert 'name="rec-0-kind"' in removed and 'name="rec-2-kind"' not in removed
    grouped = text_of(post(console, path, {**ORDER_10, "intent": "cond:mode:any"}))
    assert 'name="cond_rows-0-value" value="10"' in grouped
    assert definition(app, workspace.id, "order-10").recognition == order_10.recognition


def test_enabling_shows_the_impact_first_and_enables_on_confirm(console: FlaskClient, app: Flask, workspace: Any,
                                                                build: Any) -> None:
    build(orders(utcnow()))
    order_25 = definition(app, workspace.id, "order-25")
    assert post(console, f"/admin/catalogue/{order_25.id}/disable").status_code == 302
    assert not definition(app, workspace.id, "order-25").enabled
    listing = text_of(console.get("/admin/catalogue/"))
    assert f'href="/admin/catalogue/{order_25.id}/enable">Enable…' in listing
    confirm = console.get(f"/admin/catalogue/{order_25.id}/enable")
    page = text_of(confirm)
    assert confirm.status_code == 200 and "Impact of enabling 25th Order" in page
    assert re.search(r'data-figure="qualifying">2<', page)  # 30 and 40 orders
    assert figure(page, "all", "liability") == "$20"
    unconfirmed = post(console, f"/admin/catalogue/{order_25.id}/enable")
    assert unconfirmed.status_code == 302 and unconfirmed.headers["Location"].endswith("/enable")
    assert not definition(app, workspace.id, "order-25").enabled
    enabled = post(console, f"/admin/catalogue/{order_25.id}/enable", {"confirm": confirm_token(page)})
    assert enabled.status_code == 302
    assert definition(app, workspace.id, "order-25").enabled


def test_deleting_is_refused_with_a_reason_once_customers_reached_it(console: FlaskClient, app: Flask,
                                                                     workspace: Any, build: Any) -> None:
    build(orders(utcnow()))
    order_10 = definition(app, workspace.id, "order-10")
    refused = console.post(f"/admin/catalogue/{order_10.id}/delete", headers={"Referer": "/admin/catalogue/"},
                           data={"csrf_token": csrf_token(console, "/admin/catalogue/")})
    assert refused.status_code == 302 and refused.headers["Location"] == "/admin/catalogue/"
    assert "1 milestone(s) were recorded under this definition; disable it instead" in text_of(
        console.get(refused.headers["Location"]))
    assert definition(app, workspace.id, "order-10").id == order_10.id
    roi = definition(app, workspace.id, "roi-achieved")
    deleted = post(console, f"/admin/catalogue/{roi.id}/delete")
    assert deleted.status_code == 302 and "ROI Achieved is deleted." in text_of(console.get(deleted.headers["Location"]))
    with services_of(app).sessions() as session:
        assert session.get(MilestoneDefinition, roi.id) is None


def test_another_workspaces_definitions_are_not_found_and_not_changed(
    app: Flask, console: FlaskClient, workspace: Any, other_workspace: Any,
) -> None:
    theirs = definition(app, other_workspace.id, "order-10")
    path = f"/admin/catalogue/{theirs.id}"
    assert console.get(path).status_code == 404
    assert console.get(f"{path}/enable").status_code == 404
    for suffix, data in [("", {**ORDER_10, "name": "Stolen", "confirm": "x"}), ("/disable", {}), ("/delete", {}),
                         ("/enable", {})]:
        assert post(console, path + suffix, data).status_code == 404, suffix
    token = csrf_token(console, "/admin/catalogue/new")
    preview = console.post("/admin/catalogue/preview", data={**ORDER_10, "definition_id": str(theirs.id)},
                           headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert preview.status_code == 404
    after = definition(app, other_workspace.id, "order-10")
    assert (after.name, after.enabled) == ("10th Order", True)
    # and their admin sees their own catalogue, not ours
    add_admin(app, other_workspace.id, "owner@someone-else.example")
    stranger = app.test_client()
    sign_in(stranger, "owner@someone-else.example")
    mine = definition(app, workspace.id, "order-10")
    assert stranger.get(f"/admin/catalogue/{mine.id}").status_code == 404


def test_posts_without_the_csrf_token_are_refused_and_change_nothing(console: FlaskClient, app: Flask,
                                                                     workspace: Any) -> None:
    order_10 = definition(app, workspace.id, "order-10")
    path = f"/admin/catalogue/{order_10.id}"
    for target, data in [(path, {**ORDER_10, "name": "Sneaky"}), (f"{path}/disable", {}), (f"{path}/delete", {}),
                         ("/admin/catalogue/new", {**ORDER_10, "enabled": ""}), ("/admin/catalogue/preview", ORDER_10),
                         ("/admin/catalogue/condition", ORDER_10)]:
        assert console.post(target, data=data).status_code == 403, target
    after = definition(app, workspace.id, "order-10")
    assert (after.name, after.enabled) == ("10th Order", True)
    with services_of(app).sessions() as session:
        assert len(session.execute(select(MilestoneDefinition).where(
            MilestoneDefinition.workspace_id == workspace.id)).all()) == 16
