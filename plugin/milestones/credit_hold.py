"""The credit hold: money rewards paid N days after the qualifying order, if it still counts.

A definition with ``credit_hold_days = N`` plans its money effects (store credit, discount
codes) ``held`` with ``hold_reason`` credit_hold and ``next_attempt_at`` = the qualifying order's
time + N days; its CRM note and Slack alert are planned as usual and go out at once. The release
step (:mod:`plugin.milestones.holds`) pays them when due, unless the qualifying order was
refunded or cancelled meanwhile — then they are cancelled, saying why (a reversal of the
milestone cancels them at once, :mod:`plugin.milestones.reversals`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from plugin.milestones.policies import MONEY_KINDS
from plugin.models import effect as status

if TYPE_CHECKING:
    from plugin.milestones.award import Crossing


def hold_money(row: dict[str, Any], crossing: Crossing) -> None:
    """Put a planned money effect on its definition's credit hold (no hold: unchanged).

    A reward already held by a money rule or for review keeps that reason too: the release step
    still checks the kill switch and still leaves a milestone under review to the reviewer.
    """
    days = crossing.definition.credit_hold_days
    if not days or row["kind"] not in MONEY_KINDS or row["status"] not in (status.PENDING, status.HELD):
        return
    until = crossing.achieved_at + timedelta(days=days)
    why = f"credit hold: paid on {until.date().isoformat()} if the qualifying order still counts"
    row.update(
        status=status.HELD,
        hold_reason=status.CREDIT_HOLD,
        next_attempt_at=until,
        last_error=f"{row['last_error']}; {why}" if row.get("last_error") else why,
        payload={**row["payload"], "hold": {"days": days, "until": until.isoformat()}},
    )
