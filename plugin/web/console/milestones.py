"""The milestones feed, a customer's page, and case-study candidates (PRD-114 US-3).

The feed is newest first, filtered by customer, type, definition, date range and celebration
state (:func:`plugin.admin.milestones.celebration_state`); *Mark celebrated* and *Customer
responded* are small POST forms on each row.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, flash, request
from flask.typing import ResponseReturnValue

from plugin.admin import candidates, customers
from plugin.admin import milestones as service
from plugin.db import utcnow
from plugin.web.console import formats
from plugin.web.console.core import admin, back, db, page, workspace, workspace_id

bp = Blueprint("milestones", __name__, url_prefix="/milestones")
formats.install(bp)

PER_PAGE = 25
CANDIDATES_PER_PAGE = 25
MAX_PAGE = 100_000
NOTES_MAX = 5000
MAX_ARR = Decimal(10**15)
CELEBRATION_TYPES = [
    ("call", "Phone call"),
    ("email", "Personal email"),
    ("gift", "Gift sent"),
    ("note", "Handwritten note"),
    ("social", "Social shout-out"),
    ("case_study", "Case study invitation"),
    ("other", "Something else"),
]


@bp.get("/")
def index() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    filters = _feed_filters(request.args, errors)
    page_number = page_arg(errors)
    rows: list[service.FeedRow] = []
    more = False
    if not errors:
        rows, more = service.feed(db(), workspace(), filters, page=page_number, per_page=PER_PAGE)
    definitions = service.milestone_types(db(), workspace_id())
    return list_page(
        "console/milestones.html",
        errors,
        page_number,
        more,
        title="Milestones",
        rows=rows,
        args=filter_args(),
        definitions=definitions,
        types=sorted({kind for _key, _name, kind in definitions}),
        states=service.STATES,
        celebration_types=CELEBRATION_TYPES,
        next_url=request.full_path.rstrip("?"),
    )


@bp.post("/<uuid:milestone_id>/celebrate")
def celebrate(milestone_id: uuid.UUID) -> ResponseReturnValue:
    milestone = service.get(db(), workspace_id(), milestone_id)  # 404 before anything is read
    kind = request.form.get("celebration_type", "")
    notes = request.form.get("notes", "").strip()
    if kind not in dict(CELEBRATION_TYPES):
        flash("Choose how it was celebrated.", "error")
        return back("console.milestones.index")
    if len(notes) > NOTES_MAX:
        flash(f"Notes are at most {NOTES_MAX} characters.", "error")
        return back("console.milestones.index")
    _, changed = service.mark_celebrated(db(), workspace_id(), milestone.id, kind, notes or None)
    if request.form.get("responded"):
        service.record_response(db(), workspace_id(), milestone.id, by=admin().email)
    db().commit()
    name = milestone.milestone_name
    flash(f"{name} marked celebrated." if changed else f"{name} was already celebrated; nothing changed.",
          "success" if changed else "info")
    return back("console.milestones.index")


@bp.post("/<uuid:milestone_id>/responded")
def responded(milestone_id: uuid.UUID) -> ResponseReturnValue:
    note = request.form.get("note", "").strip()
    if len(note) > NOTES_MAX:
        service.get(db(), workspace_id(), milestone_id)
        flash(f"The note is at most {NOTES_MAX} characters.", "error")
        return back("console.milestones.index")
    milestone, changed = service.record_response(db(), workspace_id(), milestone_id, by=admin().email,
                                                 note=note or None)
    db().commit()
    flash("Response recorded: it counts in the customer response rate." if changed
          else "A response was already recorded.", "success" if changed else "info")
    return back("console.milestones.index")


@bp.get("/customers/<uuid:customer_id>")
def customer(customer_id: uuid.UUID) -> ResponseReturnValue:
    profile = customers.profile(db(), workspace(), customer_id)
    return page(
        "console/customer.html",
        title=profile.customer.display_name,
        profile=profile,
        now=utcnow(),
        states=service.STATES,
        celebration_types=CELEBRATION_TYPES,
        next_url=request.full_path.rstrip("?"),
    )


@bp.get("/candidates")
def candidates_page() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    filters = _candidate_filters(request.args, errors)
    page_number = page_arg(errors)
    found: list[dict[str, Any]] = []
    more = False
    if not errors:
        query = candidates.query(workspace_id(), filters)
        rows = list(db().execute(
            query.limit(CANDIDATES_PER_PAGE + 1).offset((page_number - 1) * CANDIDATES_PER_PAGE)
        ).scalars())
        more = len(rows) > CANDIDATES_PER_PAGE
        found = candidates.describe(db(), workspace_id(), rows[:CANDIDATES_PER_PAGE], filters)
    args = filter_args()
    return list_page(
        "console/candidates.html",
        errors,
        page_number,
        more,
        title="Case-study candidates",
        candidates=found,
        args=args,
        types=candidates.significant_types(db(), workspace_id()),
        csv_query=urlencode(args),
    )


@bp.get("/candidates.csv")
def candidates_csv() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    filters = _candidate_filters(request.args, errors)
    if errors:
        return Response("; ".join(errors.values()) + "\n", status=400, mimetype="text/plain")
    everyone = list(db().execute(candidates.query(workspace_id(), filters)).scalars())
    body = candidates.to_csv(candidates.describe(db(), workspace_id(), everyone, filters))
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="case-study-candidates.csv"'})


def page_arg(errors: dict[str, str]) -> int:
    """The ``page`` query argument: a whole number from 1."""
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        errors["page"] = "The page is a whole number from 1."
        return 1
    return int(raw)


def list_page(template: str, errors: dict[str, str], page_number: int, more: bool,
              **context: Any) -> ResponseReturnValue:
    """One page of a filtered list: 400 when its query arguments were refused (``errors``, shown
    next to the filters), else 200; ``page_number`` and ``more`` feed the pager."""
    return page(template, 400 if errors else 200, errors=errors, page_number=page_number, more=more, **context)


def filter_args() -> dict[str, str]:
    """The filters given in the query, without the page: what the pager's links carry on."""
    return {k: v for k, v in request.args.items() if k != "page" and v}


def _feed_filters(args: Any, errors: dict[str, str]) -> service.FeedFilters:
    since = _day(args.get("since"), "since", errors)
    until = _day(args.get("until"), "until", errors)
    if since and until and since > until:
        errors["until"] = "The end date is before the start date."
    state = args.get("state") or None
    if state and state not in service.STATES:
        errors["state"] = "Choose a celebration state from the list."
    customer_text = (args.get("customer") or "").strip()
    if len(customer_text) > 320:
        errors["customer"] = "Search for at most 320 characters of an email or name."
    return service.FeedFilters(
        customer=customer_text or None,
        milestone_type=(args.get("type") or None),
        key=(args.get("key") or None),
        state=state,
        since=since,
        until=until,
    )


def _candidate_filters(args: Any, errors: dict[str, str]) -> candidates.Filters:
    min_arr: Decimal | None = None
    if raw := (args.get("min_arr") or "").strip().replace(",", ""):
        try:
            min_arr = Decimal(raw)
            if not min_arr.is_finite() or not 0 <= min_arr <= MAX_ARR:
                raise InvalidOperation
        except InvalidOperation:
            errors["min_arr"] = "Minimum ARR is an amount such as 50000."
            min_arr = None
    min_health: int | None = None
    if raw := (args.get("min_health") or "").strip():
        if not raw.isdigit() or int(raw) > 1000:
            errors["min_health"] = "Minimum health score is a whole number from 0."
        else:
            min_health = int(raw)
    return candidates.Filters(min_arr, min_health, (args.get("milestone_type") or "").strip() or None)


def _day(raw: str | None, name: str, errors: dict[str, str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Enter a date as YYYY-MM-DD."
        return None
