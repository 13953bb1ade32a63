"""The settings page under ``/admin``: server-rendered pages for a workspace's admins.

:data:`console` holds sign-in, sign-out and the landing redirect; each page (dashboard,
milestones, reviews, catalogue, templates, connections, operations) is a blueprint of its own
module nested in it, so the guard of :mod:`plugin.web.console.core` runs before every one.
Business operations live in :mod:`plugin.admin`, shared with the JSON API.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from plugin.admins import authenticate
from plugin.db import transaction
from plugin.web.console import core

console = Blueprint(
    "console", __name__, url_prefix="/admin", template_folder="templates",
    static_folder="static", static_url_path="/static",
)
core.install(console)


@console.get("/")
def index() -> ResponseReturnValue:
    for endpoint, _label in core.NAV:
        if endpoint in current_app.view_functions:
            return redirect(url_for(endpoint))
    return core.page("console/error.html", 404, title="Nothing here yet", message="No page is installed.")


@console.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    next_url = core.safe_next(request.values.get("next"), url_for("console.index"))
    if request.method == "GET":
        return core.page("console/sign_in.html", next_url=next_url, email="")
    email = request.form.get("email", "")
    password = request.form.get("password", "")
    with transaction(core.services().sessions) as db:
        found = authenticate(db, email, password)
        signed_in = None if found is None else (str(found.id), str(found.workspace_id))
    if signed_in is None:
        return core.page("console/sign_in.html", 401, next_url=next_url, email=email,
                         error="That email and password do not match an admin.")
    session.clear()  # a new session on sign-in: nothing of a previous one carries over
    session.permanent = True
    session["admin_id"], session["workspace_id"] = signed_in
    return redirect(next_url)


@console.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("console.sign_in"))


def register_pages() -> None:
    """Nest every page blueprint that exists in :data:`console` (called once, at import)."""
    from plugin.web.console import pages

    for blueprint in pages.BLUEPRINTS:
        console.register_blueprint(blueprint)


register_pages()

__all__ = ["console"]
