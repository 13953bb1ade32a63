"""What makes "Redis only carries work" true: re-nudge anything committed but never picked up.

Each sweep first releases held effects whose wait is over (:mod:`plugin.milestones.holds`), so
the effect runner is nudged for them in the same sweep.

Run every few seconds by ``milestones scheduler`` (and once at the end of ``milestones demo``).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, or_, select

from plugin.db import utcnow
from plugin.jobs.drain import drain_inbox
from plugin.jobs.effects import STALE_IN_FLIGHT, run_effects
from plugin.milestones.holds import release
from plugin.models import Effect, InboxDelivery
from plugin.models import delivery as inbox_status
from plugin.models import effect as effect_status
from plugin.services import current

PENDING_GRACE = timedelta(seconds=5)


def sweep() -> dict[str, int]:
    """Nudge the drain and the effect runner when work is waiting. Returns what was waiting."""
    services = current()
    now = utcnow()
    with services.sessions() as session:
        release(session, now)  # credit holds that are due, resumed kill switches, settled clawbacks
        session.commit()
        inbox_waiting = session.scalar(
            select(func.count())
            .select_from(InboxDelivery)
            .where(InboxDelivery.status == inbox_status.PENDING, InboxDelivery.received_at <= now - PENDING_GRACE)
        ) or 0
        effects_due = session.scalar(
            select(func.count())
            .select_from(Effect)
            .where(
                or_(
                    (Effect.status == effect_status.PENDING) & (Effect.next_attempt_at <= now),
                    (Effect.status == effect_status.IN_FLIGHT) & (Effect.in_flight_at < now - STALE_IN_FLIGHT),
                )
            )
        ) or 0
    if inbox_waiting:
        services.queue.clear_nudge("inbox")
        services.queue.nudge(drain_inbox, "inbox", job_suffix=f"sweep-{int(now.timestamp())}")
    if effects_due:
        services.queue.clear_nudge("effects")
        services.queue.nudge(run_effects, "effects", job_suffix=f"sweep-{int(now.timestamp())}")
    return {"inbox": int(inbox_waiting), "effects": int(effects_due)}
