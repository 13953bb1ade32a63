"""Signing in and out in a real browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import ADMIN_EMAIL, LiveServer


def test_sign_in_with_a_wrong_password_then_the_right_one_then_sign_out(
    browser: Any, live_server: LiveServer, admin: Any
) -> None:
    context = browser.new_context(base_url=live_server.url)
    tab = context.new_page()
    tab.goto("/admin/")
    assert "/admin/sign-in" in tab.url
    tab.fill("#email", ADMIN_EMAIL)
    tab.fill("#password", "wrong password!")
    tab.click("button[type=submit]")
    assert "do not match" in tab.inner_text("[role=alert]")
    tab.fill("#password", "correct horse battery")
    tab.click("button[type=submit]")
    tab.wait_for_selector(".sidebar")
    assert "Red Hill Fresh" in tab.inner_text(".brand")
    assert "Olivia Ops" in tab.inner_text(".sign-out")
    tab.click(".sign-out button")
    tab.wait_for_url("**/admin/sign-in")
    assert "You are signed out." in tab.inner_text(".flashes")
    tab.goto("/admin/")
    assert "/admin/sign-in" in tab.url
    context.close()
