"""The settings page's machinery: who is signed in, CSRF on every form, one database session.

Every page is a small blueprint nested in :data:`plugin.web.console.console`; the hooks here run
before each of them. A request without a signed-in admin is sent to the sign-in page (pages) or
answered 401 (``fetch`` calls). Every POST must carry the form's CSRF token (Flask-WTF), else
403 and nothing changes. Pages read and write only through :mod:`plugin.admin` with
:func:`workspace_id`, so another workspace's ids are simply not found (404).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from plugin.admin.errors import AdminError
from plugin.models import AdminUser, Workspace
from plugin.services import Services

csrf = CSRFProtect()

# The navigation, in order: (endpoint, label). A page appears once its blueprint is registered.
NAV: list[tuple[str, str]] = [
    ("console.dashboard.index", "Dashboard"),
    ("console.milestones.index", "Milestones"),
    ("console.reviews.index", "Review queue"),
    ("console.catalogue.index", "Catalogue"),
    ("console.templates.index", "Templates"),
    ("console.connections.index", "Connections"),
    ("console.operations.index", "Operations"),
]
PUBLIC_ENDPOINTS = {"console.sign_in", "console.static"}


def services() -> Services:
    return current_app.extensions["milestones"]  # type: ignore[no-any-return]


def db() -> Session:
    """This request's database session (opened on first use, closed after the request)."""
    if "console_db" not in g:
        g.console_db = services().sessions()
    return g.console_db  # type: ignore[no-any-return]


def admin() -> AdminUser:
    return g.admin  # type: ignore[no-any-return]


def workspace_id() -> uuid.UUID:
    return g.admin.workspace_id  # type: ignore[no-any-return]


def workspace() -> Workspace:
    row = db().get(Workspace, workspace_id())
    assert row is not None
    return row


def page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    """Render one page of the console with the navigation and the signed-in admin."""
    return render_template(template, **context), status


def back(default_endpoint: str, **values: Any) -> ResponseReturnValue:
    """Redirect to where the form was posted from (same site only), else to ``default_endpoint``."""
    target = request.form.get("next") or request.referrer or ""
    if not _same_site(target):
        target = url_for(default_endpoint, **values)
    return redirect(target)


def safe_next(target: str | None, default: str) -> str:
    return target if target and _same_site(target) else default


def _same_site(target: str) -> bool:
    if not target:
        return False
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return parts.netloc == request.host and parts.path.startswith("/admin")
    return target.startswith("/admin") and not target.startswith("//")


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json" or request.is_json


def install(console: Blueprint) -> None:
    """Sign-in guard, CSRF, session teardown and error pages for every console route."""

    @console.record_once
    def _on_register(state: Any) -> None:
        app = state.app
        app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # only the console's forms use it
        app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
        app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
        app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
        settings = app.extensions["milestones"].settings
        app.config.setdefault("SESSION_COOKIE_SECURE", settings.public_url.startswith("https://") and not settings.testing)
        app.config.setdefault("PERMANENT_SESSION_LIFETIME", 12 * 3600)
        csrf.init_app(app)

    @console.before_request
    def guard() -> ResponseReturnValue | None:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            csrf.protect()
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        signed_in = _signed_in_admin()
        if signed_in is None:
            session.pop("admin_id", None)
            if wants_json() or request.method != "GET":
                return {"error": "sign in first"}, 401
            return redirect(url_for("console.sign_in", next=request.full_path.rstrip("?")))
        g.admin = signed_in
        return None

    @console.app_context_processor
    def navigation() -> dict[str, Any]:
        if request.blueprint is None or not request.blueprint.startswith("console") or "admin" not in g:
            return {}
        links = [(endpoint, label) for endpoint, label in NAV if endpoint in current_app.view_functions]
        return {"nav": links, "current_admin": g.admin, "current_workspace": workspace()}

    @console.teardown_request
    def close(_exc: BaseException | None) -> None:
        opened: Session | None = g.pop("console_db", None)
        if opened is not None:
            opened.close()

    @console.errorhandler(CSRFError)
    def csrf_refused(exc: CSRFError) -> ResponseReturnValue:
        _rollback()
        message = "This form expired or did not come from this page. Reload the page and try again."
        if wants_json():
            return {"error": message}, 403
        return page("console/error.html", 403, title="Refused", message=message)

    @console.errorhandler(AdminError)
    def admin_error(exc: AdminError) -> ResponseReturnValue:
        _rollback()
        if wants_json():
            return {"error": exc.message, "details": exc.details or {}}, exc.status
        if exc.status == 404:
            return page("console/error.html", 404, title="Not found", message=exc.message)
        flash(exc.message, "error")
        return back("console.index")

    @console.errorhandler(IntegrityError)
    def conflict(_exc: IntegrityError) -> ResponseReturnValue:
        _rollback()
        flash("Someone changed this meanwhile; reload and try again.", "error")
        return back("console.index")

    @console.errorhandler(OperationalError)
    def unavailable(_exc: OperationalError) -> ResponseReturnValue:
        _rollback()
        current_app.logger.exception("database unavailable on the settings page")
        return page("console/error.html", 503, title="Unavailable",
                    message="The database is not answering. Try again in a minute.")

    @console.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        if wants_json():
            return {"error": exc.description or exc.name}, exc.code or 500
        return page("console/error.html", exc.code or 500, title=exc.name, message=exc.description or exc.name)


def _signed_in_admin() -> AdminUser | None:
    raw = session.get("admin_id")
    if not raw:
        return None
    try:
        admin_id = uuid.UUID(str(raw))
    except ValueError:
        return None
    found = db().get(AdminUser, admin_id)
    if found is None or str(found.workspace_id) != session.get("workspace_id"):
        return None
    return found


def _rollback() -> None:
    opened: Session | None = g.get("console_db")
    if opened is not None:
        opened.rollback()

