"""The review queue: RHF's high-value milestones wait here with the customer's context.

*Approve* releases the held rewards (the effect runner is nudged once the decision is
committed) and opens held tasks; *Reject* needs a reason, recorded in the milestone's notes,
and cancels what was held. Both go through :mod:`plugin.admin.reviews`, as the API does.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, request
from flask.typing import ResponseReturnValue

from plugin.admin import reviews
from plugin.admin.milestones import get as get_milestone
from plugin.web.console import formats
from plugin.web.console.core import back, db, services, workspace, workspace_id
from plugin.web.console.milestones import list_page, page_arg

bp = Blueprint("reviews", __name__, url_prefix="/reviews")
formats.install(bp)

PER_PAGE = 20
NOTES_MAX = 5000
REASON_MAX = 2000


@bp.get("/")
def index() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    page_number = page_arg(errors)
    waiting, total = reviews.waiting(db(), workspace(), page=page_number, per_page=PER_PAGE)
    return list_page(
        "console/reviews.html",
        errors,
        page_number,
        page_number * PER_PAGE < total,
        title="Review queue",
        reviews=waiting,
        total=total,
    )


@bp.post("/<uuid:milestone_id>/approve")
def approve(milestone_id: uuid.UUID) -> ResponseReturnValue:
    get_milestone(db(), workspace_id(), milestone_id)  # another workspace's id: 404, nothing read
    notes = request.form.get("notes", "").strip()
    if len(notes) > NOTES_MAX:
        flash(f"Notes are at most {NOTES_MAX} characters.", "error")
        return back("console.reviews.index")
    decision = reviews.approve(db(), workspace_id(), milestone_id, notes or None)
    name = decision.milestone.milestone_name
    db().commit()
    if decision.runnable:
        from plugin.jobs.effects import run_effects

        services().queue.nudge(run_effects, "effects")
    released = decision.released
    flash(f"Approved {name}: {released} held recognition{'s' if released != 1 else ''} released.", "success")
    return back("console.reviews.index")


@bp.post("/<uuid:milestone_id>/reject")
def reject(milestone_id: uuid.UUID) -> ResponseReturnValue:
    get_milestone(db(), workspace_id(), milestone_id)
    reason = request.form.get("reason", "").strip()
    if not reason:
        flash("Say why you reject it: the reason is recorded with the milestone.", "error")
        return back("console.reviews.index")
    if len(reason) > REASON_MAX:
        flash(f"The reason is at most {REASON_MAX} characters.", "error")
        return back("console.reviews.index")
    decision = reviews.reject(db(), workspace_id(), milestone_id, reason)
    name = decision.milestone.milestone_name
    db().commit()
    cancelled = decision.released
    flash(f"Rejected {name}: {cancelled} held recognition{'s' if cancelled != 1 else ''} cancelled. "
          f"Reason recorded.", "success")
    return back("console.reviews.index")
