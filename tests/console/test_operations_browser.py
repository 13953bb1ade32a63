"""Retrying a dead effect from the Operations page in a real browser: the Slack alert that died
goes out to the demo's Slack stand-in on loopback and its status changes on the page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from plugin.demo.standins import SLACK, StandInServer
from tests.conftest import add_connection
from tests.console.test_operations import build, slack_alert


@pytest.fixture
def standin() -> Iterator[StandInServer]:
    server = StandInServer().start()
    yield server
    server.stop()


def test_retry_a_dead_effect_and_see_it_succeed(page: Any, app: Flask, workspace: Any, standin: StandInServer) -> None:
    slack = add_connection(app, workspace.id, "slack", {
        "bot_token": "xoxb-1-2-3", "signing_secret": "s", "channel": "C0CSMCELEB", "base_url": standin.base_url(SLACK)},
        name="#csm-celebrations")
    dead = build(app, workspace.id, lambda rows: slack_alert(rows, slack.id, attempts=8,
                                                              last_error="slack: ratelimited (gave up after 8 tries)").id)

    page.goto("/admin/operations/")
    assert page.inner_text("#kpi-dead .value") == "1"
    page.click("#kpi-dead a")  # "See and retry them": the effects tab filtered to dead ones
    row = page.locator(f"#effect-{dead}")
    assert row.locator(".status").inner_text() == "dead"
    assert "gave up after 8 tries" in row.inner_text() and "Maya Chen" in row.inner_text()

    row.get_by_role("button", name="Retry").click()
    assert f"Effect #{dead} is being tried again." in page.inner_text(".flashes")
    assert "No effects match these filters." in page.inner_text(".card")  # no longer dead

    page.click("text=Clear")
    row = page.locator(f"#effect-{dead}")
    assert row.locator(".status").inner_text() == "succeeded"
    assert "gave up" not in row.inner_text()
    assert row.get_by_role("button", name="Retry").count() == 0
    posted = standin.standins.recorded(SLACK, "chat.postMessage")
    assert len(posted) == 1 and "10th Order!" in str(posted[0].body)

    page.click(".tabs >> text=Health")
    assert page.inner_text("#kpi-dead .value") == "0"
