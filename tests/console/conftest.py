"""Fixtures for the settings page: an admin, a signed-in test client, and a real browser.

Browser tests drive Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) with
Playwright against the app served on a loopback port by a thread of this process, so the
browser and the test read and write the same PostgreSQL database.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from plugin.admins import create_admin
from plugin.db import transaction
from tests.conftest import services_of

ADMIN_EMAIL = "ops@redhillfresh.example"
ADMIN_PASSWORD = "correct horse battery"
OTHER_ADMIN_EMAIL = "owner@someone-else.example"
CHROMIUM = os.environ.get("MILESTONES_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "screenshots")


def add_admin(app: Flask, workspace_id: Any, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> Any:
    with transaction(services_of(app).sessions) as session:
        return create_admin(session, workspace_id, email, password, name="Olivia Ops")


@pytest.fixture
def admin(app: Flask, workspace: Any) -> Any:
    return add_admin(app, workspace.id)


def csrf_token(client: FlaskClient, path: str = "/admin/sign-in") -> str:
    """The CSRF token of the form on ``path``, as a browser would read it from the page."""
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page) or re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> Any:
    token = csrf_token(client)
    return client.post("/admin/sign-in", data={"email": email, "password": password, "csrf_token": token})


@pytest.fixture
def console(app: Flask, admin: Any) -> FlaskClient:
    """A test client signed in as the workspace's admin."""
    client = app.test_client()
    answer = sign_in(client)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def post_form(client: FlaskClient, path: str, data: dict[str, Any] | None = None, *, from_page: str | None = None) -> Any:
    """POST a form to ``path`` with the CSRF token read from ``from_page`` (default: ``path``)."""
    token = csrf_token(client, from_page or "/admin/")
    return client.post(path, data={**(data or {}), "csrf_token": token})


# --- a real browser -------------------------------------------------------------------------


class LiveServer:
    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, live_server: LiveServer, admin: Any) -> Iterator[Any]:
    """A browser tab signed in as the workspace's admin, on the dashboard."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.goto("/admin/sign-in")
    tab.fill("#email", ADMIN_EMAIL)
    tab.fill("#password", ADMIN_PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(re.compile(r".*/admin/(?!sign-in).*"))
    yield tab
    context.close()


def screenshot(tab: Any, name: str) -> str:
    """Save a full-page screenshot under docs/screenshots/ (the README shows them)."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.abspath(os.path.join(SCREENSHOTS, name))
    tab.screenshot(path=path, full_page=True)
    return path
