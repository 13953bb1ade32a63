"""The milestones feed: newest first, filters, the celebration state of each, Mark celebrated,
Customer responded; a workspace sees only its own and every change needs the form's CSRF token."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from plugin.models import CustomerMilestone
from tests.api.support import build, credit
from tests.conftest import services_of
from tests.console.conftest import OTHER_ADMIN_EMAIL, add_admin, post_form, sign_in

T = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def _feed_rows(rows: Any) -> dict[str, Any]:
    ada = rows.customer("ada@example.com", first_name="Ada", last_name="Lovelace")
    bob = rows.customer("bob@example.com", first_name="Bob", last_name="Brown")
    rewarded = rows.milestone(ada, "order-25", achieved_at=T, time_to_milestone=timedelta(days=240))
    rows.effect(rewarded, "store_credit", "succeeded", credit("10.00"))
    failed = rows.milestone(bob, "order-10", achieved_at=T - timedelta(days=1))
    rows.effect(failed, "email", "dead", last_error="Klaviyo: the email bounced")
    waiting = rows.milestone(bob, "order-100", achieved_at=T - timedelta(days=2), status="pending_review")
    rows.effect(waiting, "customer_tag", "held")
    alerted = rows.milestone(ada, "order-1", achieved_at=T - timedelta(days=40))
    rows.effect(alerted, "slack_alert", "succeeded")
    return {"rewarded": rewarded.id, "failed": failed.id, "waiting": waiting.id, "alerted": alerted.id}


def _states(html: str) -> list[tuple[str, str]]:
    """(milestone id, state) of each row, in page order."""
    return re.findall(r'<tr data-milestone="([^"]+)">.*?data-state="([a-z_]+)"', html, re.S)


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None) -> Any:
    return post_form(client, path, data, from_page="/admin/milestones/")


def _milestone(app: Flask, milestone_id: Any) -> CustomerMilestone:
    with services_of(app).sessions() as session:
        found = session.get(CustomerMilestone, milestone_id)
        assert found is not None
        session.expunge(found)
        return found


def test_the_feed_is_newest_first_with_each_state(app: Flask, workspace: Any, console: FlaskClient) -> None:
    ids = build(app, workspace.id, _feed_rows)
    page = console.get("/admin/milestones/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert _states(html) == [(str(ids["rewarded"]), "rewarded"), (str(ids["failed"]), "failed"),
                             (str(ids["waiting"]), "pending_review"), (str(ids["alerted"]), "alerted")]
    assert "Ada Lovelace" in html and "25 orders" in html and "8 months" in html  # customer, value, time to it
    assert "Mar 10, 2026" in html  # the achieved date, in the workspace's timezone (UTC here)


def test_filters_narrow_the_feed(app: Flask, workspace: Any, console: FlaskClient) -> None:
    ids = build(app, workspace.id, _feed_rows)

    def shown(query: str) -> set[str]:
        answer = console.get(f"/admin/milestones/?{query}")
        assert answer.status_code == 200, query
        return {milestone for milestone, _ in _states(answer.get_data(as_text=True))}

    assert shown("state=failed") == {str(ids["failed"])}
    assert shown("customer=LOVELACE") == {str(ids["rewarded"]), str(ids["alerted"])}
    assert shown("customer=bob%40example") == {str(ids["failed"]), str(ids["waiting"])}
    assert shown("key=order-100") == {str(ids["waiting"])}
    assert shown("type=order&since=2026-03-08&until=2026-03-09") == {str(ids["failed"]), str(ids["waiting"])}
    assert shown("customer=%25") == set()  # a % is a character to find, not a wildcard
    empty = console.get("/admin/milestones/?state=rewarded&customer=bob").get_data(as_text=True)
    assert "No milestone matches these filters." in empty


def test_bad_filters_are_explained_not_guessed(app: Flask, workspace: Any, console: FlaskClient) -> None:
    build(app, workspace.id, _feed_rows)
    for query, message in (("since=10/03/2026", "Enter a date as YYYY-MM-DD."),
                           ("since=2026-03-10&until=2026-03-01", "The end date is before the start date."),
                           ("state=party", "Choose a celebration state from the list."),
                           ("page=0", "The page is a whole number from 1.")):
        answer = console.get(f"/admin/milestones/?{query}")
        assert answer.status_code == 400, query
        html = answer.get_data(as_text=True)
        assert message in html and not _states(html), query


def test_pages_hold_25_rows_and_link_to_older_ones(app: Flask, workspace: Any, console: FlaskClient) -> None:
    def many(rows: Any) -> None:
        customer = rows.customer("busy@example.com")
        for n in range(30):
            rows.milestone(customer, "anniversary-1y", achieved_at=T - timedelta(days=n), occurrence=n + 1)

    build(app, workspace.id, many)
    first = console.get("/admin/milestones/?type=time").get_data(as_text=True)
    assert len(_states(first)) == 25 and "page=2" in first and "type=time" in first
    second = console.get("/admin/milestones/?type=time&page=2").get_data(as_text=True)
    assert len(_states(second)) == 5 and "Older" not in second


def test_mark_celebrated_records_how_and_changes_the_state(app: Flask, workspace: Any, console: FlaskClient) -> None:
    ids = build(app, workspace.id, _feed_rows)
    answer = post(console, f"/admin/milestones/{ids['alerted']}/celebrate",
                       {"celebration_type": "call", "notes": "Called Ada, she loved it", "responded": "1",
                        "next": "/admin/milestones/?state=celebrated"})
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/milestones/?state=celebrated"
    milestone = _milestone(app, ids["alerted"])
    assert (milestone.celebrated, milestone.celebration_type, milestone.notes) == (True, "call", "Called Ada, she loved it")
    assert milestone.context["response"]["by"] == "ops@redhillfresh.example"
    page = console.get("/admin/milestones/?state=celebrated").get_data(as_text=True)
    assert _states(page) == [(str(ids["alerted"]), "celebrated")]
    assert "1st Order marked celebrated." in page and "customer responded" in page
    again = post(console, f"/admin/milestones/{ids['alerted']}/celebrate", {"celebration_type": "gift"})
    assert again.status_code == 302
    assert _milestone(app, ids["alerted"]).celebration_type == "call"  # the first celebration stays
    assert "already celebrated" in console.get("/admin/milestones/").get_data(as_text=True)


def test_mark_celebrated_refuses_what_it_cannot_record(app: Flask, workspace: Any, console: FlaskClient) -> None:
    def rejected(rows: Any) -> Any:
        return rows.milestone(rows.customer("no@example.com"), "order-100", status="rejected").id

    ids = build(app, workspace.id, _feed_rows)
    no = build(app, workspace.id, rejected)
    post(console, f"/admin/milestones/{ids['alerted']}/celebrate", {"celebration_type": "party"})
    assert "Choose how it was celebrated." in console.get("/admin/milestones/").get_data(as_text=True)
    post(console, f"/admin/milestones/{ids['alerted']}/celebrate", {"celebration_type": "call", "notes": "x" * 5001})
    assert "Notes are at most 5000 characters." in console.get("/admin/milestones/").get_data(as_text=True)
    assert _milestone(app, ids["alerted"]).celebrated is False
    post(console, f"/admin/milestones/{no}/celebrate", {"celebration_type": "call"})
    assert "milestone is rejected: nothing to celebrate" in console.get("/admin/milestones/").get_data(as_text=True)
    assert _milestone(app, no).celebrated is False


def test_customer_responded_is_recorded_once(app: Flask, workspace: Any, console: FlaskClient) -> None:
    ids = build(app, workspace.id, _feed_rows)
    assert post(console, f"/admin/milestones/{ids['rewarded']}/responded").status_code == 302
    first = _milestone(app, ids["rewarded"]).context["response"]
    assert "Response recorded" in console.get("/admin/milestones/").get_data(as_text=True)
    post(console, f"/admin/milestones/{ids['rewarded']}/responded", {"note": "a second click"})
    assert _milestone(app, ids["rewarded"]).context["response"] == first


def test_another_workspace_cannot_see_or_change_these_milestones(
    app: Flask, workspace: Any, other_workspace: Any, console: FlaskClient
) -> None:
    ids = build(app, workspace.id, _feed_rows)
    add_admin(app, other_workspace.id, OTHER_ADMIN_EMAIL)
    stranger = app.test_client()
    assert sign_in(stranger, OTHER_ADMIN_EMAIL).status_code == 302
    assert _states(stranger.get("/admin/milestones/").get_data(as_text=True)) == []
    for action, data in (("celebrate", {"celebration_type": "call"}), ("responded", {})):
        answer = post(stranger, f"/admin/milestones/{ids['alerted']}/{action}", data)
        assert answer.status_code == 404, action
    milestone = _milestone(app, ids["alerted"])
    assert milestone.celebrated is False and "response" not in milestone.context


def test_a_post_without_the_csrf_token_is_refused(app: Flask, workspace: Any, console: FlaskClient) -> None:
    ids = build(app, workspace.id, _feed_rows)
    answer = console.post(f"/admin/milestones/{ids['alerted']}/celebrate", data={"celebration_type": "call"})
    assert answer.status_code == 403
    wrong = console.post(f"/admin/milestones/{ids['alerted']}/responded", data={"csrf_token": "forged"})
    assert wrong.status_code == 403
    milestone = _milestone(app, ids["alerted"])
    assert milestone.celebrated is False and "response" not in milestone.context
