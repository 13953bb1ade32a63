"""The one HTTP choke point: every failure becomes a ConnectorError with the right flags."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
import responses

from connectors.errors import ConnectorError
from connectors.http import HttpClient, excerpt, parse_retry_after

URL = "https://api.example.test/things"


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def test_success_returns_the_response_and_passes_headers_through(mocked: responses.RequestsMock) -> None:
    mocked.post(URL, json={"id": 1}, status=201)

    answer = HttpClient().json("POST", URL, json={"a": 1}, headers={"X-Token": "t"})

    assert answer == {"id": 1}
    assert mocked.calls[0].request.headers["X-Token"] == "t"
    assert mocked.calls[0].request.body == b'{"a": 1}'


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_permanent_and_keep_their_status(mocked: responses.RequestsMock, status: int) -> None:
    mocked.get(URL, json={"message": "nope"}, status=status)

    with pytest.raises(ConnectorError) as caught:
        HttpClient().request("GET", URL)

    assert caught.value.permanent is True
    assert caught.value.status == status
    assert "nope" in caught.value.message


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_server_errors_and_throttling_are_transient(mocked: responses.RequestsMock, status: int) -> None:
    mocked.get(URL, body="busy", status=status)

    with pytest.raises(ConnectorError) as caught:
        HttpClient().request("GET", URL)

    assert caught.value.permanent is False
    assert caught.value.status == status


def test_429_retry_after_seconds_is_parsed(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, body="slow down", status=429, headers={"Retry-After": "17"})

    with pytest.raises(ConnectorError) as caught:
        HttpClient().request("GET", URL)

    assert caught.value.retry_after == 17.0


def test_retry_after_http_date_becomes_seconds_from_now() -> None:
    now = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)

    assert parse_retry_after("Sat, 21 Nov 2026 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Sat, 21 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_long_bodies_are_truncated_in_the_error(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, body="x" * 5000, status=500)

    with pytest.raises(ConnectorError) as caught:
        HttpClient().request("GET", URL)

    assert len(caught.value.message) < 500
    assert caught.value.message.endswith("…")
    assert excerpt("a\n  b") == "a b"


def test_connection_failure_is_transient_without_status(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, body=requests.ConnectionError("refused"))

    with pytest.raises(ConnectorError) as caught:
        HttpClient().request("GET", URL)

    assert caught.value.permanent is False
    assert caught.value.status is None
    assert "ConnectionError" in caught.value.message


def test_timeout_is_transient(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, body=requests.ReadTimeout("slow"))

    with pytest.raises(ConnectorError) as caught:
        HttpClient().request("GET", URL)

    assert caught.value.permanent is False
    assert "timed out" in caught.value.message


def test_an_answer_that_is_not_json_is_an_error(mocked: responses.RequestsMock) -> None:
    mocked.get(URL, body="<html>maintenance</html>", status=200)

    with pytest.raises(ConnectorError) as caught:
        HttpClient().json("GET", URL)

    assert "not JSON" in caught.value.message
