"""Salesforce Tasks through the REST API, faked with the docs' own shapes.

Request and answer shapes:
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_query.htm (query: totalSize, done, records)
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api/dome_sobject_create.htm (create: id, errors, success;
  error: [{"message", "errorCode"}])
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm
https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_quotedstringescapes.htm
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm (401, 403 REQUEST_LIMIT_EXCEEDED, 404, 5xx)
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_understanding_refresh_token_oauth.htm
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from connectors.errors import ConnectorError
from connectors.payloads import TimelineNote
from connectors.salesforce import (
    REQUEST_LIMIT_RETRY_AFTER,
    SalesforceConnector,
    SalesforceSettings,
    clip,
    soql_string,
    task_marker,
)

BASE = "https://salesforce.test"
API = f"{BASE}/services/data/v62.0"
QUERY = f"{API}/query"
CONTACTS = f"{API}/sobjects/Contact"
TASKS = f"{API}/sobjects/Task"
TOKEN = f"{BASE}/services/oauth2/token"
BODY = "<p>🏆 10th order — 2026-11-21</p><p>Thank you, Ada &amp; team!</p>"
CONTACT_ID = "003D000000QV9n2IAD"
ACCOUNT_ID = "001D000000IqhSLIAZ"
LEAD_ID = "00QD000000XyZ12MAB"
TASK_ID = "00TD000000abcDEMAV"


def connector(**settings: Any) -> SalesforceConnector:
    return SalesforceConnector(
        {"instance_url": "https://acme.my.salesforce.com", "access_token": "00Dxx!token", "base_url": BASE, **settings}
    )


def timeline_note(**overrides: Any) -> TimelineNote:
    fields: dict[str, Any] = {
        "idempotency_key": "effect-42-note",
        "customer_email": "ada@example.com",
        "customer_first_name": "Ada",
        "customer_last_name": "Lovelace",
        "body_html": BODY,
        "occurred_at": datetime(2026, 11, 21, 15, 30, 12, tzinfo=UTC),
    }
    return TimelineNote(**{**fields, **overrides})


def records(sobject: str, *rows: dict[str, Any]) -> dict[str, Any]:
    return {
        "totalSize": len(rows),
        "done": True,
        "records": [
            {"attributes": {"type": sobject, "url": f"/services/data/v62.0/sobjects/{sobject}/{row['Id']}"}, **row}
            for row in rows
        ],
    }


def created(record_id: str) -> dict[str, Any]:
    return {"id": record_id, "errors": [], "success": True}


def soql(call: Any) -> str:
    return parse_qs(urlparse(str(call.request.url)).query)["q"][0]


def sent(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def test_task_is_created_on_the_contact_and_its_account(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, json=records("Contact", {"Id": CONTACT_ID, "AccountId": ACCOUNT_ID}))
    mocked.post(TASKS, json=created(TASK_ID), status=201)

    result = connector().add_timeline_note(timeline_note())

    query, create = mocked.calls
    assert soql(query) == (
        "SELECT Id, AccountId FROM Contact WHERE Email = 'ada@example.com' ORDER BY CreatedDate ASC LIMIT 1"
    )
    assert create.request.headers["Authorization"] == "Bearer 00Dxx!token"
    assert sent(create) == {
        "Subject": "🏆 10th order — 2026-11-21",
        "Description": "🏆 10th order — 2026-11-21\nThank you, Ada & team!\n\n[milestones:effect-42-note]",
        "WhoId": CONTACT_ID,
        "WhatId": ACCOUNT_ID,
        "Status": "Completed",
        "Priority": "Normal",
        "ActivityDate": "2026-11-21",
    }
    assert result.external_id == TASK_ID
    assert result.detail == {"who_id": CONTACT_ID, "what_id": ACCOUNT_ID}


def test_a_contact_without_account_gets_a_task_without_what_id(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, json=records("Contact", {"Id": CONTACT_ID, "AccountId": None}))
    mocked.post(TASKS, json=created(TASK_ID), status=201)

    result = connector().add_timeline_note(timeline_note())

    assert "WhatId" not in sent(mocked.calls[1])
    assert result.detail == {"who_id": CONTACT_ID, "what_id": None}


def test_a_lead_is_used_when_no_contact_has_the_email(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, json=records("Contact"))
    mocked.get(QUERY, json=records("Lead", {"Id": LEAD_ID}))
    mocked.post(TASKS, json=created(TASK_ID), status=201)

    result = connector().add_timeline_note(timeline_note())

    assert soql(mocked.calls[1]) == (
        "SELECT Id FROM Lead WHERE Email = 'ada@example.com' AND IsConverted = false ORDER BY CreatedDate ASC LIMIT 1"
    )
    task = sent(mocked.calls[2])
    assert task["WhoId"] == LEAD_ID and "WhatId" not in task
    assert result.detail == {"who_id": LEAD_ID, "what_id": None}


def test_a_contact_is_created_when_nobody_has_the_email(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, json=records("Contact"))
    mocked.get(QUERY, json=records("Lead"))
    mocked.post(CONTACTS, json=created(CONTACT_ID), status=201)
    mocked.post(TASKS, json=created(TASK_ID), status=201)

    result = connector().add_timeline_note(timeline_note())

    assert sent(mocked.calls[2]) == {"LastName": "Lovelace", "FirstName": "Ada", "Email": "ada@example.com"}
    assert sent(mocked.calls[3])["WhoId"] == CONTACT_ID
    assert result.detail == {"who_id": CONTACT_ID, "what_id": None}


def test_a_nameless_contact_takes_its_last_name_from_the_email(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, json=records("Contact"))
    mocked.get(QUERY, json=records("Lead"))
    mocked.post(CONTACTS, json=created(CONTACT_ID), status=201)
    mocked.post(TASKS, json=created(TASK_ID), status=201)

    connector().add_timeline_note(timeline_note(customer_first_name=None, customer_last_name=None))

    assert sent(mocked.calls[2]) == {"LastName": "ada", "Email": "ada@example.com"}


def test_a_duplicate_rule_on_create_falls_back_to_the_winners_contact(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, json=records("Contact"))
    mocked.get(QUERY, json=records("Lead"))
    mocked.post(
        CONTACTS,
        status=400,
        json=[{"message": "Use one of these records?", "errorCode": "DUPLICATES_DETECTED", "fields": []}],
    )
    mocked.get(QUERY, json=records("Contact", {"Id": CONTACT_ID, "AccountId": ACCOUNT_ID}))
    mocked.post(TASKS, json=created(TASK_ID), status=201)

    result = connector().add_timeline_note(timeline_note())

    assert result.detail == {"who_id": CONTACT_ID, "what_id": ACCOUNT_ID}


def test_quotes_and_backslashes_in_the_email_are_escaped_in_soql(mocked: responses.RequestsMock) -> None:
    email = "o'brien\\x@example.com"
    mocked.get(QUERY, json=records("Contact", {"Id": CONTACT_ID, "AccountId": None}))
    mocked.post(TASKS, json=created(TASK_ID), status=201)

    connector().add_timeline_note(timeline_note(customer_email=email))

    assert "WHERE Email = 'o\\'brien\\\\x@example.com' ORDER BY" in soql(mocked.calls[0])
    assert soql_string("a'b\\c\nd") == "'a\\'b\\\\c\\nd'"


def test_the_subject_is_plain_text_and_fits_in_255_characters(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, json=records("Contact", {"Id": CONTACT_ID, "AccountId": None}))
    mocked.post(TASKS, json=created(TASK_ID), status=201)

    connector().add_timeline_note(timeline_note(body_html="<h2>50th <b>order</b></h2>" + "<p>" + "x" * 40000 + "</p>"))

    task = sent(mocked.calls[1])
    assert task["Subject"] == "🏆 50th order"
    assert len(task["Description"]) <= 32000
    assert task["Description"].endswith("\n\n[milestones:effect-42-note]")
    assert len(clip("🏆" + "y" * 300, 255).encode("utf-16-le")) // 2 == 255


SINCE = datetime(2026, 11, 21, 15, 30, 0, tzinfo=UTC)


def task_row(task_id: str, description: str | None, what_id: str | None = ACCOUNT_ID) -> dict[str, Any]:
    return {"Id": task_id, "WhatId": what_id, "Description": description, "CreatedDate": "2026-11-21T15:30:14.000+0000"}


def test_reconcile_finds_the_task_by_its_marker(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, json=records("Contact", {"Id": CONTACT_ID, "AccountId": ACCOUNT_ID}))
    mocked.get(
        QUERY,
        json=records(
            "Task",
            task_row("00T000000000001AAA", "🏆 $500 spent\n\n" + task_marker("effect-42-note-2")),
            task_row("00T000000000002AAA", None),
            task_row(TASK_ID, "🏆 10th order\r\n\r\n" + task_marker("effect-42-note")),
        ),
    )

    found = connector().find_timeline_note(timeline_note(), since=SINCE)

    assert found is not None and found.external_id == TASK_ID
    assert found.detail == {"who_id": CONTACT_ID, "what_id": ACCOUNT_ID, "reconciled": True}
    # Description is a long text area, which SOQL cannot filter: 15:28:00Z is since minus the skew.
    assert soql(mocked.calls[1]) == (
        "SELECT Id, WhatId, Description, CreatedDate FROM Task"
        f" WHERE WhoId = '{CONTACT_ID}' AND CreatedDate >= 2026-11-21T15:28:00Z ORDER BY CreatedDate DESC LIMIT 200"
    )


def test_reconcile_finds_nothing_when_no_task_is_ours(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, json=records("Contact", {"Id": CONTACT_ID, "AccountId": ACCOUNT_ID}))
    mocked.get(QUERY, json=records("Task", task_row("00T000000000001AAA", "🏆 10th order\n\n[milestones:effect-99-note]")))

    assert connector().find_timeline_note(timeline_note(), since=SINCE) is None


def test_reconcile_without_a_contact_or_lead_finds_nothing_and_creates_nothing(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(QUERY, json=records("Contact"))
    mocked.get(QUERY, json=records("Lead"))

    assert connector().find_timeline_note(timeline_note(), since=SINCE) is None
    assert len(mocked.calls) == 2


INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_401_without_a_refresh_token_is_permanent_and_asks_to_reconnect(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, status=401, json=INVALID_SESSION)

    with pytest.raises(ConnectorError) as caught:
        connector().add_timeline_note(timeline_note())

    assert caught.value.permanent is True
    assert caught.value.status == 401
    assert "INVALID_SESSION_ID: Session expired or invalid" in caught.value.message
    assert "reconnect" in caught.value.message


def test_401_refreshes_the_token_once_and_retries_with_it(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, status=401, json=INVALID_SESSION)
    mocked.post(
        TOKEN,
        json={
            "access_token": "00Dxx!fresh",
            "signature": "d0b2sQ7n0FqMy5PQ3HJhGtLKv8kY0VUBfTXMNHzI5Fc=",
            "scope": "refresh_token api",
            "instance_url": "https://acme.my.salesforce.com",
            "id": "https://login.salesforce.com/id/00Dxx0000001gPL/005xx000001Sv6A",
            "token_type": "Bearer",
            "issued_at": "1795274880000",
        },
    )
    mocked.get(QUERY, json=records("Contact", {"Id": CONTACT_ID, "AccountId": ACCOUNT_ID}))
    mocked.post(TASKS, json=created(TASK_ID), status=201)
    sf = connector(refresh_token="5Aep861.refresh", client_id="3MVG9consumer", client_secret="s3cret")

    result = sf.add_timeline_note(timeline_note())

    assert result.external_id == TASK_ID
    refresh = mocked.calls[1].request
    assert parse_qs(str(refresh.body)) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["5Aep861.refresh"],
        "client_id": ["3MVG9consumer"],
        "client_secret": ["s3cret"],
    }
    assert mocked.calls[2].request.headers["Authorization"] == "Bearer 00Dxx!fresh"
    assert mocked.calls[3].request.headers["Authorization"] == "Bearer 00Dxx!fresh"
    assert sf.access_token == "00Dxx!fresh"


def test_a_second_401_after_refreshing_is_permanent_and_does_not_loop(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, status=401, json=INVALID_SESSION)
    mocked.post(TOKEN, json={"access_token": "00Dxx!fresh", "instance_url": BASE, "token_type": "Bearer"})
    mocked.get(QUERY, status=401, json=INVALID_SESSION)

    with pytest.raises(ConnectorError) as caught:
        connector(refresh_token="5Aep861.refresh", client_id="3MVG9consumer").add_timeline_note(timeline_note())

    assert caught.value.permanent is True and caught.value.status == 401
    assert len(mocked.calls) == 3


def test_a_refused_refresh_token_is_permanent(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, status=401, json=INVALID_SESSION)
    mocked.post(
        "https://login.salesforce.com/services/oauth2/token",
        status=400,
        json={"error": "invalid_grant", "error_description": "expired access/refresh token"},
    )
    sf = connector(refresh_token="5Aep861.old", client_id="3MVG9consumer", login_url="https://login.salesforce.com")

    with pytest.raises(ConnectorError) as caught:
        sf.add_timeline_note(timeline_note())

    assert caught.value.permanent is True
    assert "reconnect" in caught.value.message and "invalid_grant" in caught.value.message


def test_request_limit_exceeded_is_transient_and_waits(mocked: responses.RequestsMock) -> None:
    mocked.get(QUERY, status=403, json=[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])

    with pytest.raises(ConnectorError) as caught:
        connector().add_timeline_note(timeline_note())

    assert caught.value.permanent is False
    assert caught.value.status == 403
    assert caught.value.retry_after == REQUEST_LIMIT_RETRY_AFTER
    assert "REQUEST_LIMIT_EXCEEDED" in caught.value.message


def test_other_403s_are_permanent(mocked: responses.RequestsMock) -> None:
    mocked.get(
        QUERY, status=403, json=[{"message": "API is not enabled for this Organization", "errorCode": "API_DISABLED_FOR_ORG"}]
    )

    with pytest.raises(ConnectorError) as caught:
        connector().add_timeline_note(timeline_note())

    assert caught.value.permanent is True


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], "NOT_FOUND"),
        (
            400,
            [{"message": "Required fields are missing: [LastName]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}],
            "REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]",
        ),
        (400, [{"message": "No such column 'Foo' on sobject of type Task", "errorCode": "INVALID_FIELD"}], "INVALID_FIELD"),
    ],
)
def test_not_found_and_bad_requests_are_permanent_with_salesforces_message(
    mocked: responses.RequestsMock, status: int, body: list[dict[str, Any]], expected: str
) -> None:
    mocked.get(QUERY, json=records("Contact", {"Id": CONTACT_ID, "AccountId": None}))
    mocked.post(TASKS, status=status, json=body)

    with pytest.raises(ConnectorError) as caught:
        connector().add_timeline_note(timeline_note())

    assert caught.value.permanent is True
    assert caught.value.status == status
    assert expected in caught.value.message
    assert caught.value.message.startswith("salesforce: POST /sobjects/Task")


@pytest.mark.parametrize(
    ("status", "kwargs"),
    [
        (500, {"json": [{"errorCode": "UNKNOWN_EXCEPTION", "message": "An unexpected error occurred."}]}),
        (503, {"json": [{"errorCode": "SERVER_UNAVAILABLE", "message": "Server unavailable"}], "headers": {"Retry-After": "30"}}),
        (503, {"body": "<html><body>Service Unavailable</body></html>"}),
    ],
)
def test_server_errors_are_transient(mocked: responses.RequestsMock, status: int, kwargs: dict[str, Any]) -> None:
    mocked.get(QUERY, status=status, **kwargs)

    with pytest.raises(ConnectorError) as caught:
        connector().add_timeline_note(timeline_note())

    assert caught.value.permanent is False
    assert caught.value.status == status
    if "headers" in kwargs:
        assert caught.value.retry_after == 30.0


def test_check_connection_reads_the_task_object(mocked: responses.RequestsMock) -> None:
    # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api/resources_sobject_basic_info_get.htm
    mocked.get(
        TASKS,
        json={
            "objectDescribe": {"name": "Task", "label": "Task", "createable": True, "queryable": True, "keyPrefix": "00T"},
            "recentItems": [],
        },
    )

    connector().check_connection()

    assert mocked.calls[0].request.headers["Authorization"] == "Bearer 00Dxx!token"


def test_check_connection_fails_when_the_user_cannot_create_tasks(mocked: responses.RequestsMock) -> None:
    mocked.get(TASKS, json={"objectDescribe": {"name": "Task", "createable": False}, "recentItems": []})

    with pytest.raises(ConnectorError) as caught:
        connector().check_connection()

    assert caught.value.permanent is True


def test_without_base_url_the_instance_url_is_the_host(mocked: responses.RequestsMock) -> None:
    mocked.get("https://acme.my.salesforce.com/services/data/v61.0/sobjects/Task", json={"objectDescribe": {}})

    SalesforceConnector(
        {"instance_url": "https://acme.my.salesforce.com/", "access_token": "t", "api_version": "v61.0"}
    ).check_connection()

    assert len(mocked.calls) == 1


def test_settings_require_an_https_instance_and_mark_credentials_secret() -> None:
    schema = SalesforceSettings()
    loaded = schema.load({"instance_url": "https://acme.my.salesforce.com", "access_token": "t"})
    assert loaded["api_version"] == "v62.0"
    assert schema.validate({"instance_url": "http://acme.my.salesforce.com", "access_token": "t"})
    assert SalesforceSettings.secret_fields() == {"access_token", "refresh_token", "client_id", "client_secret"}
