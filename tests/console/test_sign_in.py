"""Signing in and out of the settings page, CSRF on every form, and what a stranger sees."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from plugin.models import AdminUser
from tests.conftest import services_of
from tests.console.conftest import ADMIN_EMAIL, OTHER_ADMIN_EMAIL, add_admin, csrf_token, sign_in


def test_pages_send_a_stranger_to_sign_in_and_back(app: Flask, admin: Any) -> None:
    client = app.test_client()
    answer = client.get("/admin/?tab=x")
    assert answer.status_code == 302
    assert "/admin/sign-in?next=/admin/?tab%3Dx" in answer.headers["Location"]
    token = csrf_token(client)
    signed = client.post("/admin/sign-in", data={
        "email": ADMIN_EMAIL.upper(), "password": "correct horse battery", "csrf_token": token,
        "next": "/admin/?tab=x",
    })
    assert signed.status_code == 302
    assert signed.headers["Location"] == "/admin/?tab=x"


def test_a_wrong_password_is_refused_and_signs_nobody_in(app: Flask, admin: Any) -> None:
    client = app.test_client()
    answer = sign_in(client, password="not the password")
    assert answer.status_code == 401
    assert "do not match" in answer.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302
    with services_of(app).sessions() as session:
        assert session.scalar(select(AdminUser.last_sign_in_at)) is None


def test_sign_in_records_the_time_and_never_redirects_off_site(app: Flask, admin: Any) -> None:
    client = app.test_client()
    token = csrf_token(client)
    answer = client.post("/admin/sign-in", data={
        "email": ADMIN_EMAIL, "password": "correct horse battery", "csrf_token": token,
        "next": "https://evil.example/admin/",
    })
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin/"
    with services_of(app).sessions() as session:
        assert session.scalar(select(AdminUser.last_sign_in_at)) is not None


def test_a_post_without_the_csrf_token_is_refused(app: Flask, admin: Any) -> None:
    client = app.test_client()
    answer = client.post("/admin/sign-in", data={"email": ADMIN_EMAIL, "password": "correct horse battery"})
    assert answer.status_code == 403
    assert "did not come from this page" in answer.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302  # not signed in


def test_a_csrf_token_of_another_session_is_refused(app: Flask, console: FlaskClient) -> None:
    stranger = app.test_client()
    foreign = csrf_token(stranger)
    answer = console.post("/admin/sign-out", data={"csrf_token": foreign})
    assert answer.status_code == 403
    assert console.get("/admin/").status_code != 302 or "sign-in" not in console.get("/admin/").headers.get("Location", "")


def test_sign_out_ends_the_session(console: FlaskClient) -> None:
    token = csrf_token(console, "/admin/")
    answer = console.post("/admin/sign-out", data={"csrf_token": token})
    assert answer.status_code == 302
    assert console.get("/admin/").headers["Location"].startswith("/admin/sign-in")


def test_a_deleted_admin_is_signed_out_on_the_next_request(app: Flask, console: FlaskClient) -> None:
    with services_of(app).sessions() as session, session.begin():
        session.query(AdminUser).delete()
    answer = console.get("/admin/")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/sign-in")


def test_json_callers_get_401_not_a_redirect(app: Flask, admin: Any) -> None:
    answer = app.test_client().get("/admin/", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "sign in first"}


def test_an_admin_signs_in_to_their_own_workspace_only(app: Flask, admin: Any, other_workspace: Any) -> None:
    add_admin(app, other_workspace.id, email=OTHER_ADMIN_EMAIL)
    client = app.test_client()
    sign_in(client, email=OTHER_ADMIN_EMAIL)
    page = client.get("/admin/", follow_redirects=True).get_data(as_text=True)
    assert "Someone Else&#39;s Shop" in page or "Someone Else's Shop" in page
    assert "Red Hill Fresh" not in page
